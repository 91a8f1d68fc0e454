"""The ELBO and its pieces, in nats per image (Kingma & Welling 2014; Burda et al. 2016).

    log p(x) >= ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))

The reconstruction term is a Bernoulli log-likelihood of the pixels under the decoder's
logits; the KL has a closed form per latent dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae.core.models import LatentModel

LOG_2PI = math.log(2 * math.pi)
LOG_PX_MAX_ELEMENTS = 2**22  # pixels decoded at once by log_px_importance: 16 MB per float32 buffer


def reconstruction_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) for Bernoulli pixels: logits (..., N, C, H, W), x (N, C, H, W) -> (..., N) nats.

    Leading sample dims of `logits` broadcast against one copy of x (a view, never a copy).
    """
    target = x.expand_as(logits)
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(-3).sum(-1)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, closed form: (N, D) -> (N, D) nats.

    KL = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


@dataclass
class ElboTerms:
    """Per-image terms, each (N,): recon = E_q log p(x|z) (one sample), kl, elbo = recon - kl."""

    recon: torch.Tensor
    kl: torch.Tensor
    elbo: torch.Tensor

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """The mean training objective: -(recon - beta * KL)."""
        return -(self.recon - beta * self.kl).mean()


def elbo_terms(model: LatentModel, x: torch.Tensor, generator: torch.Generator | None = None) -> ElboTerms:
    """One-sample ELBO per image. For the AE there is no posterior: kl is 0 and elbo = recon."""
    logits, mu, logvar, _ = model(x, generator)
    recon = reconstruction_log_likelihood(logits, x)
    kl = kl_per_dim(mu, logvar).sum(1) if logvar is not None else torch.zeros_like(recon)
    return ElboTerms(recon=recon, kl=kl, elbo=recon - kl)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def log_px_importance(
    model: LatentModel, x: torch.Tensor, k: int = 100, chunk: int = 100, max_elements: int = LOG_PX_MAX_ELEMENTS
) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) with K samples from q(z|x), (N,) nats.

        log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    K = 1 is a one-sample ELBO; larger K is a tighter lower bound (Burda et al.'s IWAE bound)
    that converges to log p(x).
    """
    weights = log_importance_weights(model, x, k, chunk, max_elements)  # (K, N)
    return torch.logsumexp(weights, 0) - math.log(k)


@torch.no_grad()
def log_importance_weights(
    model: LatentModel, x: torch.Tensor, k: int = 100, chunk: int = 100, max_elements: int = LOG_PX_MAX_ELEMENTS
) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for K samples z_k ~ q(z|x): (K, N) nats.

    The noise is drawn `chunk` samples at a time (so a seed gives the same weights whatever the
    memory limit); they are decoded a few at a time so that at most `max_elements` pixels
    (samples x N x C x H x W, at least one sample) exist at once.
    """
    if not model.stochastic:
        raise ValueError("log p(x) needs a stochastic encoder: an AE defines no q(z|x)")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    mu, logvar = model.encode(x)
    assert logvar is not None
    per_sample = x[0].numel() * x.shape[0]
    decode_at_once = max(1, max_elements // max(1, per_sample))
    log_w: list[torch.Tensor] = []
    done = 0
    while done < k:
        m = min(chunk, k - done)
        eps = torch.randn((m, *mu.shape), device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (m, N, D)
        log_px_z = torch.cat([_log_px_given_z(model, z[i : i + decode_at_once], x) for i in range(0, m, decode_at_once)])
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _log_normal(z, mu, logvar)
        log_w.append(log_px_z + log_pz - log_qz)
        done += m
    return torch.cat(log_w, 0)


def _log_px_given_z(model: LatentModel, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """z (S, N, D), x (N, C, H, W) -> log p(x|z) (S, N): x broadcasts over the S samples."""
    logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], *x.shape)
    return reconstruction_log_likelihood(logits, x)
