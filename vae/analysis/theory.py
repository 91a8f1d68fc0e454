"""The numbers of the Theory page for one image: mu, sigma, eps, z = mu + sigma * eps, the
reconstruction term, KL per dimension, the ELBO and the log p(x) estimate against K."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vae.core.device import model_device
from vae.core.losses import kl_per_dim, log_importance_weights, reconstruction_log_likelihood
from vae.core.models import LatentModel

K_VALUES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class ElboBreakdown:
    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D,)
    eps: np.ndarray  # (D,)
    z: np.ndarray  # (D,) = mu + sigma * eps
    recon: float  # log p(x|z) for this z, nats
    kl_per_dim: np.ndarray  # (D,) closed form
    kl: float
    elbo: float  # recon - kl (one-sample estimate)
    reconstruction: np.ndarray  # (H, W, C) decoder probabilities at z


@torch.no_grad()
def elbo_breakdown(model: LatentModel, x: torch.Tensor, seed: int = 0) -> ElboBreakdown:
    """x (1, C, H, W): one draw of eps (seeded) and every term of the one-sample ELBO."""
    if not model.stochastic:
        raise ValueError("the ELBO needs a VAE; an AE has no q(z|x)")
    dev = model_device(model)
    x = x.to(dev)
    mu, logvar = model.encode(x)
    assert logvar is not None
    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(dev)
    z = mu + sigma * eps  # the reparameterization trick
    logits = model.decode_logits(z)
    recon = float(reconstruction_log_likelihood(logits, x)[0])
    kl_dims = kl_per_dim(mu, logvar)[0]
    kl = float(kl_dims.sum())
    return ElboBreakdown(
        mu=mu[0].cpu().numpy(), sigma=sigma[0].cpu().numpy(), eps=eps[0].cpu().numpy(), z=z[0].cpu().numpy(),
        recon=recon, kl_per_dim=kl_dims.cpu().numpy(), kl=kl, elbo=recon - kl,
        reconstruction=torch.sigmoid(logits)[0].permute(1, 2, 0).cpu().numpy(),
    )


@torch.no_grad()
def log_px_versus_k(model: LatentModel, x: torch.Tensor, ks: tuple[int, ...] = K_VALUES, repeats: int = 20, seed: int = 0) -> tuple[list[float], float]:
    """The K-sample estimate of log p(x) for each K, and the ELBO, for one image x (1, C, H, W).

    Every K is evaluated on one pool of `repeats` x max(ks) seeded importance samples, cut into
    blocks of K: the estimate for K is the mean over blocks of log (1/K) sum_block w. Sharing the
    samples keeps the curve from jumping with the noise of separate draws, and since a block's
    log-mean-exp is never below its mean (Jensen), each K's estimate is at least the K = 1 value,
    which is the ELBO averaged over the same samples: ELBO <= estimate, as in expectation.
    """
    pool = max(ks)
    if any(k < 1 or pool % k for k in ks):
        raise ValueError(f"every K must divide the largest ({pool}), got {ks}")
    dev = model_device(model)
    x = x.to(dev)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        log_w = log_importance_weights(model, x.repeat(repeats, 1, 1, 1), k=pool)  # (pool, repeats)
    estimates = [float((torch.logsumexp(log_w.reshape(pool // k, k, -1), 1) - math.log(k)).mean()) for k in ks]
    return estimates, float(log_w.mean())
