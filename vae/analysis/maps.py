"""2-D maps of the latent means: identity (2-D latent), PCA, t-SNE; plus locate/lift.

`LatentMap` follows scikit-learn's estimator style: `fit(mu)` returns self, learned
attributes end in `_`. `locate(z)` places any latent point on the fitted map and `lift(p)`
turns a map position back into a latent vector:

  identity  exact both ways (a 1-D latent is drawn at y = 0)
  pca       exact: transform / inverse_transform (lift lands in the PCA plane through the mean);
            the PCA is `vae.core.projection.fit_pca`, the one the training replay uses too
  tsne      t-SNE has no inverse and no out-of-sample transform, so both directions use an
            inverse-distance-weighted mean over the k nearest neighbours (in latent space for
            locate, on the map for lift); a point that coincides with a neighbour maps exactly.

`compute_map` encodes a seeded sample of the test set and caches the result on disk, keyed by
the checkpoint's content hash, the method and the sample size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vae.core.device import model_device
from vae.core.files import atomic_write
from vae.core.models import LatentModel
from vae.core.projection import fit_pca, on_plane
from vae.settings import settings

if TYPE_CHECKING:
    from sklearn.neighbors import NearestNeighbors

# scikit-learn is imported where a PCA or t-SNE map is fitted, not here: importing it takes
# ~1.2 s on a 2-core machine, and a 2-D model's map (the default) never needs it, so the app's
# first decoded image does not wait for it (bench/RESULTS.md, "App latency", warm start).

METHODS = ("identity", "pca", "tsne")
DEFAULT_SAMPLE = {"identity": 2000, "pca": 2000, "tsne": 1000}
CACHE_VERSION = 1


@torch.no_grad()
def encode_means(model: LatentModel, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """x (N, C, H, W) -> posterior means mu (N, D) float32 (the AE's codes)."""
    device = model_device(model)
    out = [model.encode(x[i : i + batch_size].to(device))[0].float().cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy()


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a[None, :] if a.ndim == 1 else a


def idw(neigh: NearestNeighbors, values: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Inverse-distance-weighted mean of `values` at the k nearest fitted points of each query.

    `neigh` is fitted on the points that `values` (N, D) belong to; queries (M, d) -> (M, D).
    Weights are 1 / distance^2; a query on a fitted point takes that point's value exactly.
    The one Python copy (t-SNE's locate and lift); the browser's is pages/ui/latent_pad/maps.js,
    tested against this one under Node (tests/js).
    """
    dist, idx = neigh.kneighbors(queries, n_neighbors=min(k, values.shape[0]))
    weights = 1.0 / np.maximum(dist, 1e-12) ** 2
    exact = dist[:, :1] < 1e-9
    weights = np.where(exact, (dist < 1e-9).astype(np.float64), weights)  # an exact hit takes all the weight
    weights /= weights.sum(1, keepdims=True)
    return np.einsum("mk,mkd->md", weights, values[idx]).astype(np.float32)


class LatentMap:
    """A 2-D map of latent means. After `fit(mu)`: points_ (N, 2), mu_ (N, D)."""

    def __init__(self, method: str = "pca", n_neighbors: int = 8, perplexity: float = 30.0, random_state: int = 0) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.n_neighbors = n_neighbors
        self.perplexity = perplexity
        self.random_state = random_state

    def fit(self, mu: np.ndarray, points: np.ndarray | None = None) -> LatentMap:
        """Fit on latent means (N, D). `points` reuses a cached t-SNE layout instead of recomputing."""
        mu = _as_2d(mu)
        n, d = mu.shape
        if self.method == "identity" and d > 2:
            raise ValueError(f"the identity map needs a latent of at most 2 dimensions, this one has {d}; use pca or tsne")
        self.mu_ = mu
        self.latent_dim_ = d
        if self.method == "pca":
            self.pca_ = None if d == 1 else fit_pca(mu)
        if self.method == "tsne":
            from sklearn.manifold import TSNE
            from sklearn.neighbors import NearestNeighbors

            if points is None:
                perplexity = min(self.perplexity, max(2.0, (n - 1) / 3))
                points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=self.random_state).fit_transform(mu)
            self.points_ = np.asarray(points, dtype=np.float32)
            self.latent_nn_ = NearestNeighbors().fit(mu)
            self.map_nn_ = NearestNeighbors().fit(self.points_)
        else:
            self.points_ = self.locate(mu)
        return self

    def locate(self, z: np.ndarray) -> np.ndarray:
        """Latent points (M, D) -> map positions (M, 2)."""
        z = _as_2d(z)
        if self.method == "tsne":
            return idw(self.latent_nn_, self.points_, z, self.n_neighbors)
        if self.method == "pca" and self.pca_ is not None:
            return self.pca_.transform(z).astype(np.float32)
        return on_plane(z)

    def lift(self, p: np.ndarray) -> np.ndarray:
        """Map positions (M, 2) -> latent vectors (M, D)."""
        p = _as_2d(p)
        if self.method == "tsne":
            return idw(self.map_nn_, self.mu_, p, self.n_neighbors)
        if self.method == "pca" and self.pca_ is not None:
            return self.pca_.inverse_transform(p).astype(np.float32)
        return p[:, : self.latent_dim_].astype(np.float32)


def default_method(latent_dim: int) -> str:
    """The map Explore opens with; its points are `vae.core.projection.default_points` (the replay's)."""
    return "identity" if latent_dim <= 2 else "pca"


def sample_index(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """A seeded, sorted choice of min(n, n_total) indices: the same points every time."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_total)[: min(n, n_total)])


def cache_dir() -> Path:
    return settings().cache_dir


def compute_map(
    model: LatentModel,
    x_test: torch.Tensor,
    method: str,
    checkpoint_hash: str,
    n: int | None = None,
    cache: Path | None | bool = None,
    on_status: Callable[[str], None] | None = None,
) -> tuple[LatentMap, np.ndarray]:
    """Map a seeded sample of the test set; returns (fitted map, indices into x_test).

    The fitted layout is cached in `cache` (default `cache_dir()`; False disables) as
    `<hash16>-<method>-<n>.npz`, so a second request for the same checkpoint is instant.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = n or DEFAULT_SAMPLE[method]
    index = sample_index(x_test.shape[0], n)
    folder = cache_dir() if cache is None or cache is True else cache
    path = Path(folder) / f"{checkpoint_hash[:16]}-{method}-{len(index)}-v{CACHE_VERSION}.npz" if folder else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                if np.array_equal(f["index"], index):
                    return LatentMap(method).fit(f["mu"], points=f["points"]), index
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is recomputed and overwritten
    if on_status:
        on_status(f"encoding {len(index):,} test images")
    mu = encode_means(model, x_test[torch.from_numpy(index)])
    if on_status and method == "tsne":
        on_status(f"running t-SNE on {len(index):,} points")
    fitted = LatentMap(method).fit(mu)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, mu=fitted.mu_, points=fitted.points_, index=index)
        try:
            atomic_write(path, buf.getvalue())
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
            pass
    return fitted, index
