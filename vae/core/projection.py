"""Latent means on the plane: the project's one PCA, shared by Explore's map and the training replay.

  fit_pca(mu)       the 2-component PCA (scikit-learn's `PCA`, full SVD) that
                    `vae.analysis.maps.LatentMap` keeps for its "pca" method (locate = transform,
                    lift = inverse_transform)
  on_plane(z)       a 1-D latent drawn at y = 0; a 2-D latent as it is
  default_points(mu) the points of the default map (`maps.default_method`): identity up to two
                    dimensions, the PCA above; `fit` stores it after every epoch for the replay

It lives in core because training (core) computes the replay and core imports nothing from
analysis; the map classes build on it. Signs: scikit-learn makes the largest entry of each
principal axis positive, so a replayed epoch does not flip at random.

scikit-learn is imported on the first PCA, not here: importing it takes about a second, and a
2-D model (the default) never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


def fit_pca(mu: np.ndarray) -> PCA:
    """The two principal axes of latent means (N, D), N >= 2 and D >= 2."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, svd_solver="full").fit(np.asarray(mu, dtype=np.float32))


def on_plane(z: np.ndarray) -> np.ndarray:
    """Latent points (M, 1) or (M, 2) -> map positions (M, 2) float32 (a new array): a 1-D latent at y = 0."""
    z = np.asarray(z, dtype=np.float32)
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], 1)
    return z.copy()


def default_points(mu: np.ndarray) -> np.ndarray:
    """Latent means (N, D) -> (N, 2) float32: as they are for D = 2, at y = 0 for D = 1, PCA above."""
    mu = np.asarray(mu, dtype=np.float32)
    if mu.shape[1] <= 2:
        return on_plane(mu)
    return fit_pca(mu).transform(mu).astype(np.float32)
