"""vae.analysis.maps' inverse-distance weighting (the one Python copy; the browser's is held to
it in tests/js) and the shared PCA of vae.core.projection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from vae.analysis import maps
from vae.core import projection


def test_idw_weights_by_inverse_square_distance_and_a_hit_takes_everything() -> None:
    points = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 10.0]], np.float32)
    values = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
    neigh = NearestNeighbors().fit(points)
    # at x = 1 the two nearest points are 1 and 2 away: weights 1/1 and 1/4, normalised 0.8 and 0.2
    out = maps.idw(neigh, values, np.array([[1.0, 0.0], [3.0, 0.0]], np.float32), k=2)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_allclose(out[0], [0.8, 0.2], rtol=1e-6)
    np.testing.assert_array_equal(out[1], values[1])  # on a fitted point: exactly its value
    # k larger than the number of points uses them all
    far = maps.idw(neigh, values, np.array([[0.0, 0.0001]], np.float32), k=50)
    assert np.isfinite(far).all() and np.allclose(far, values[0], atol=1e-3)


def test_tsne_locate_and_lift_are_the_shared_idw(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((40, 3)).astype(np.float32)
    points = rng.standard_normal((40, 2)).astype(np.float32) * 10
    lmap = maps.LatentMap("tsne", n_neighbors=5).fit(mu, points=points)
    calls = []
    real = maps.idw
    monkeypatch.setattr(maps, "idw", lambda neigh, values, queries, k: calls.append(values.shape) or real(neigh, values, queries, k))
    z, p = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_array_equal(lmap.locate(z), real(lmap.latent_nn_, points, z, 5))
    np.testing.assert_array_equal(lmap.lift(p), real(lmap.map_nn_, mu, p, 5))
    assert calls == [(40, 2), (40, 3)]
    np.testing.assert_array_equal(lmap.lift(points[:3]), mu[:3])  # a map point lifts to its own mean


def test_pca_map_is_the_shared_pca_and_its_default_points() -> None:
    mu = np.random.default_rng(1).standard_normal((50, 6)).astype(np.float32)
    lmap = maps.LatentMap("pca").fit(mu)
    pca = projection.fit_pca(mu)
    np.testing.assert_array_equal(lmap.pca_.components_, pca.components_)
    np.testing.assert_array_equal(lmap.points_, projection.default_points(mu))
    # signs: the largest entry of each axis is positive, so a replayed epoch does not flip at random
    rows = np.arange(2)
    assert (pca.components_[rows, np.abs(pca.components_).argmax(1)] > 0).all()
    for d in (1, 2):
        small = mu[:, :d]
        np.testing.assert_array_equal(maps.LatentMap(maps.default_method(d)).fit(small).points_, projection.default_points(small))
    np.testing.assert_array_equal(projection.default_points(mu[:, :1])[:, 1], 0)
