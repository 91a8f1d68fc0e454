"""Views of a 1-D latent: its whole decoded manifold is one line, so it is drawn as one strip
(numpy float32 in [0, 1], like vae.images)."""

from __future__ import annotations

import numpy as np

from vae.images import decode_images, gaussian_grid, tile
from vae.models import LatentModel


def manifold_strip(model: LatentModel, n: int = 15) -> np.ndarray:
    """Decode n values of z1 spaced by the inverse CDF of N(0, 1) (as manifold_grid does per
    axis), low to high, left to right: one (H, n*(W+1)-1, C) row. Only for a 1-D latent."""
    if model.latent_dim != 1:
        raise ValueError(f"a manifold strip is the view of a 1-D latent; this model's latent has {model.latent_dim} dimensions")
    return tile(decode_images(model, gaussian_grid(n)[:, None]), 1, n)
