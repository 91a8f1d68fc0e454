"""The numbers behind "the VAE's latent space is smoother than the AE's".

- `elbo_report`: test ELBO, its two terms, KL per dimension (inactive dims show ~0), and the
  importance-sampled log p(x) estimate (VAE only: an AE defines no q(z|x)).
- `path_smoothness`: decode straight lines between codes; per step, the mean absolute pixel
  change. A smooth space changes the image a little at every step; a space with holes has
  most of the change in one jump, so the worst step is large relative to the mean.
- `prior_report`: decode z ~ N(0, I) (what "sampling" means) and measure how far each sample
  is from the nearest real test image, plus the smoothness of lines between prior samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vae.analysis.maps import encode_means
from vae.core.device import model_device
from vae.core.losses import kl_per_dim, log_px_importance
from vae.core.models import LatentModel
from vae.core.train import evaluate_elbo

ACTIVE_KL_NATS = 0.01  # a dimension whose mean KL is below this carries no information


@torch.no_grad()
def kl_per_dimension(model: LatentModel, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """Mean KL per latent dimension over x, (D,) nats; zeros for the AE."""
    if not model.stochastic:
        return np.zeros(model.latent_dim, dtype=np.float32)
    dev = model_device(model)
    total = torch.zeros(model.latent_dim, device=dev)
    for i in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[i : i + batch_size].to(dev))
        total += kl_per_dim(mu, logvar).sum(0)  # type: ignore[arg-type]
    return (total / x.shape[0]).cpu().numpy()


@torch.no_grad()
def elbo_report(model: LatentModel, x: torch.Tensor, k: int = 100, n_log_px: int = 500, seed: int = 0) -> dict[str, Any]:
    """Test-set ELBO terms (nats per image) and, for a VAE, the K-sample log p(x) estimate."""
    dev = model_device(model)
    gen = torch.Generator(device=dev).manual_seed(seed)
    x = x.to(dev)
    terms = evaluate_elbo(model, x, generator=gen)
    kl_dims = kl_per_dimension(model, x)
    report: dict[str, Any] = {
        "kind": "vae" if model.stochastic else "ae",
        "n_images": int(x.shape[0]),
        "recon": terms["recon"],
        "kl": terms["kl"] if model.stochastic else None,
        "elbo": terms["elbo"] if model.stochastic else None,
        "kl_per_dim": [float(v) for v in kl_dims],
        "active_dims": int((kl_dims > ACTIVE_KL_NATS).sum()) if model.stochastic else model.latent_dim,
        "log_px": None,
        "log_px_k": None,
    }
    if model.stochastic and k > 0:
        sub = x[: min(n_log_px, x.shape[0])]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            report["log_px"] = float(log_px_importance(model, sub, k=k).mean())
        report["log_px_k"] = k
    return report


@torch.no_grad()
def path_smoothness(model: LatentModel, starts: torch.Tensor, ends: torch.Tensor, steps: int = 16) -> dict[str, float]:
    """Decode straight lines z(t) = (1 - t) a + t b, t in [0, 1] in `steps` steps, for each row pair.

    Returns mean_step (mean absolute pixel change per step, averaged over steps and paths),
    worst_step (the largest step of each path, averaged over paths) and jump_ratio
    (worst / mean step of each path, averaged; 1 means perfectly even change).
    """
    dev = model_device(model)
    t = torch.linspace(0, 1, steps + 1, device=dev).view(1, -1, 1)
    a, b = starts.to(dev).unsqueeze(1), ends.to(dev).unsqueeze(1)
    z = (1 - t) * a + t * b  # (P, steps + 1, D)
    images = model.decode(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], steps + 1, -1)
    step_change = (images[:, 1:] - images[:, :-1]).abs().mean(-1)  # (P, steps)
    mean_per_path = step_change.mean(1)
    worst_per_path = step_change.max(1).values
    return {
        "mean_step": float(mean_per_path.mean()),
        "worst_step": float(worst_per_path.mean()),
        "jump_ratio": float((worst_per_path / mean_per_path.clamp_min(1e-12)).mean()),
    }


@torch.no_grad()
def interpolation_smoothness(model: LatentModel, x: torch.Tensor, n_pairs: int = 64, steps: int = 16, seed: int = 0) -> dict[str, float]:
    """`path_smoothness` between the codes (means) of seeded random pairs of test images."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(x.shape[0], size=(n_pairs, 2), replace=x.shape[0] < 2 * n_pairs)
    mu = torch.from_numpy(encode_means(model, x[torch.from_numpy(idx.reshape(-1))])).reshape(n_pairs, 2, -1)
    return path_smoothness(model, mu[:, 0], mu[:, 1], steps)


@torch.no_grad()
def prior_report(model: LatentModel, x: torch.Tensor, n_samples: int = 256, steps: int = 16, seed: int = 0) -> dict[str, float]:
    """Decode z ~ N(0, I): distance to the nearest test image (mean abs pixel difference) and
    the smoothness of lines between pairs of prior samples."""
    dev = model_device(model)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, model.latent_dim, generator=gen).to(dev)
    samples = model.decode(z).flatten(1)
    real = x.to(dev).flatten(1)
    nearest = torch.cdist(samples, real, p=1).min(1).values / real.shape[1]
    half = n_samples // 2
    lines = path_smoothness(model, z[:half], z[half : 2 * half], steps)
    return {
        "nearest_test_distance": float(nearest.mean()),
        "mean_step": lines["mean_step"],
        "worst_step": lines["worst_step"],
        "jump_ratio": lines["jump_ratio"],
    }


def full_report(model: LatentModel, x_test: torch.Tensor, k: int = 100, seed: int = 0) -> dict[str, Any]:
    """Everything above in one JSON-able dict (stored in checkpoints as the final test metrics)."""
    report = elbo_report(model, x_test, k=k, seed=seed)
    report["interpolation"] = interpolation_smoothness(model, x_test, seed=seed)
    report["prior"] = prior_report(model, x_test[:2000], seed=seed)
    return report
