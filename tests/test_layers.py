"""vae.analysis.layers (the map's layers) and their Plotly traces, on known answers: stand-in
models with a linear decoder and an identity encoder, and an analytic stand-in judge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae.analysis import layers
from vae.analysis.judge import Verdict
from vae.analysis.maps import LatentMap
from vae.core.config import ModelConfig
from vae.core.models import AE, VAE
from vae.services import plots

BOX = ((-8.0, 8.0), (-8.0, 8.0))


class LinearVAE(VAE):
    """decode(z) = z as a 1 × 1 × D image (a linear decoder); encode(x) = (x, log σ²) with σ fixed."""

    def __init__(self, latent_dim: int, sigma: np.ndarray | None = None) -> None:
        super().__init__(ModelConfig(image_shape=(1, 1, latent_dim), latent_dim=latent_dim, hidden=(4,)))
        self.sigma = torch.as_tensor(np.ones(latent_dim) if sigma is None else sigma, dtype=torch.float32)
        self.encode_calls = 0

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.encode_calls += 1
        mu = x.reshape(x.shape[0], -1)
        return mu, (2 * self.sigma.log()).expand_as(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], 1, 1, -1)


class LinearAE(AE):
    def __init__(self, latent_dim: int) -> None:
        super().__init__(ModelConfig(kind="ae", image_shape=(1, 1, latent_dim), latent_dim=latent_dim, hidden=(4,)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return x.reshape(x.shape[0], -1), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], 1, 1, -1)


class SignJudge:
    """Two classes from pixels v: class 1 where w·v > 0, probability sigmoid(4 w·v)."""

    class_names = ("neg", "pos")

    def __init__(self, w: np.ndarray) -> None:
        self.w = torch.as_tensor(w, dtype=torch.float32)
        self.calls = 0

    def judge(self, images: torch.Tensor) -> Verdict:
        self.calls += 1
        s = images.reshape(images.shape[0], -1) @ self.w
        p1 = torch.sigmoid(4 * s)
        probs = torch.stack([1 - p1, p1], 1).numpy()
        return Verdict(probs.argmax(1).astype(np.int64), probs.max(1).astype(np.float32), probs.astype(np.float32))


def cell_area(xs: np.ndarray, ys: np.ndarray) -> float:
    return float((xs[1] - xs[0]) * (ys[1] - ys[0]))


def test_grid_is_64_by_64_cell_centres_covering_the_box() -> None:
    xs, ys = layers.grid_axes(((-2.0, 2.0), (0.0, 1.0)))
    assert xs.shape == ys.shape == (64,)
    assert xs[0] == pytest.approx(-2 + 2 / 64) and xs[-1] == pytest.approx(2 - 2 / 64)
    pts = layers.grid_points(((-2.0, 2.0), (0.0, 1.0)))
    assert pts.shape == (64 * 64, 2)
    assert np.allclose(pts.reshape(64, 64, 2)[3, 5], [xs[5], ys[3]])  # [row y][column x]


def test_density_integrates_to_one_and_matches_the_formula_in_2d() -> None:
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 1.5, (40, 2))
    var = rng.uniform(0.3, 1.0, (40, 2)) ** 2
    agg = layers.aggregate_posterior(mu, var, layers.identity_plane(), BOX)
    assert agg.density is not None and agg.density.shape == (64, 64)
    assert agg.density.sum() * cell_area(agg.xs, agg.ys) == pytest.approx(1.0, abs=2e-3)
    p = np.array([0.3, -0.7])
    expected = np.mean(np.prod(np.exp(-0.5 * (p - mu) ** 2 / var) / np.sqrt(2 * np.pi * var), 1))
    assert layers.mixture_density(p[None], mu, np.stack([np.diag(v) for v in var]))[0] == pytest.approx(expected, rel=1e-10)
    assert np.allclose(agg.points, mu)


def test_projected_density_is_the_marginal_on_the_pca_plane() -> None:
    rng = np.random.default_rng(1)
    d = 6
    mu = rng.normal(0, 1.0, (30, d)) * np.array([2.0, 1.5, 0.3, 0.3, 0.2, 0.2])
    var = rng.uniform(0.3, 0.9, (30, d)) ** 2
    plane = layers.pca_plane(LatentMap("pca").fit(mu))
    assert np.allclose(plane.lift(plane.locate(mu)), LatentMap("pca").fit(mu).lift(plane.locate(mu)), atol=1e-5)
    agg = layers.aggregate_posterior(mu, var, plane, BOX)
    assert agg.density is not None
    assert agg.density.sum() * cell_area(agg.xs, agg.ys) == pytest.approx(1.0, abs=2e-3)
    # each component's projection is N(P(μ - m), P diag σ² Pᵀ): check one against samples
    z = mu[0] + rng.standard_normal((200_000, d)) * np.sqrt(var[0])
    p = plane.locate(z)
    assert np.allclose(p.mean(0), plane.locate(mu[:1])[0], atol=0.01)
    assert np.allclose(np.cov(p.T), plane.project_cov(var[:1])[0], atol=0.01)
    # and on two chosen dimensions, the marginal over them, whatever z_rest is
    dims = layers.dims_plane(d, (0, 2), z_rest=rng.normal(size=d))
    agg2 = layers.aggregate_posterior(mu, var, dims, BOX)
    assert agg2.density is not None
    assert agg2.density.sum() * cell_area(agg2.xs, agg2.ys) == pytest.approx(1.0, abs=2e-3)
    two_d = layers.aggregate_posterior(mu[:, [0, 2]], var[:, [0, 2]], layers.identity_plane(), BOX)
    assert two_d.density is not None and np.allclose(agg2.density, two_d.density)


def test_ellipses_match_sigma_in_2d_and_the_projected_covariance_above() -> None:
    mu = np.array([[0.0, 0.0], [1.0, 2.0]])
    var = np.array([[0.25, 1.0], [0.81, 0.09]])
    e = layers.posterior_ellipses(mu, var, layers.identity_plane())
    assert np.allclose(e.centres, mu)
    assert np.allclose(e.semi_axes, [[1.0, 0.5], [0.9, 0.3]])
    assert np.allclose(np.abs(e.angles), [np.pi / 2, 0.0])  # the major axis along z₂, then along z₁
    outline = layers.ellipse_outline(e.centres[1], e.semi_axes[1], float(e.angles[1]))
    assert np.allclose(((outline - mu[1]) ** 2 / var[1]).sum(1), 1.0)  # on the 1σ ellipse
    rng = np.random.default_rng(2)
    mu5, var5 = rng.normal(size=(20, 5)), rng.uniform(0.1, 2.0, (20, 5))
    plane = layers.pca_plane(LatentMap("pca").fit(mu5))
    e5 = layers.posterior_ellipses(mu5, var5, plane)
    for k in range(20):
        c, s = np.cos(e5.angles[k]), np.sin(e5.angles[k])
        rot = np.array([[c, -s], [s, c]])
        rebuilt = rot @ np.diag(e5.semi_axes[k] ** 2) @ rot.T
        assert np.allclose(rebuilt, plane.axes @ np.diag(var5[k]) @ plane.axes.T)
    assert (e5.semi_axes[:, 0] >= e5.semi_axes[:, 1]).all()


def test_prior_circles_have_radii_1_2_3_about_where_z0_lands() -> None:
    c = layers.prior_circles(layers.identity_plane())
    assert np.allclose(c.centre, 0.0)
    assert np.allclose(np.linalg.norm(c.outlines - c.centre, axis=2), np.array([1.0, 2.0, 3.0])[:, None])
    assert np.allclose(c.outlines[:, 0], c.outlines[:, -1])  # closed
    rng = np.random.default_rng(3)
    mu = rng.normal(0.5, 1.0, (50, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.5])
    plane = layers.pca_plane(LatentMap("pca").fit(mu))
    cp = layers.prior_circles(plane)
    assert np.allclose(cp.centre, -plane.axes @ mu.mean(0))  # locate(0) = -P m
    p = plane.locate(rng.standard_normal((200_000, 5)))  # the prior, projected: N(locate(0), I)
    assert np.allclose(p.mean(0), cp.centre, atol=0.01) and np.allclose(np.cov(p.T), np.eye(2), atol=0.01)
    cd = layers.prior_circles(layers.dims_plane(5, (1, 3), z_rest=np.arange(5.0)))
    assert np.allclose(cd.centre, 0.0)
    assert np.allclose(np.linalg.norm(cd.outlines, axis=2), np.array([1.0, 2.0, 3.0])[:, None])


def test_landscape_of_a_linear_decoder_under_an_analytic_judge() -> None:
    judge = SignJudge(np.array([1.0, 1.0]))
    land = layers.landscape(LinearVAE(2), judge, layers.identity_plane(), ((-1.0, 1.0), (-2.0, 2.0)), batch_size=1000)
    assert land.classes.shape == land.confidence.shape == (64, 64) and land.classes.dtype == np.int64
    s = land.xs[None, :] + land.ys[:, None]
    assert np.array_equal(land.classes, (s > 0).astype(np.int64))
    assert np.allclose(land.confidence, 1 / (1 + np.exp(-4 * np.abs(s))), atol=1e-6)
    assert judge.calls == 5  # 4096 cells in batches of 1000
    # two chosen dimensions, the rest held at z_rest: the judge reads z₃ too
    judge3 = SignJudge(np.array([1.0, 0.0, 1.0]))
    plane = layers.dims_plane(3, (0, 1), z_rest=np.array([9.0, 9.0, -0.5]))
    land3 = layers.landscape(LinearVAE(3), judge3, plane, ((-1.0, 1.0), (-1.0, 1.0)), n=16)
    assert land3.classes.shape == (16, 16)
    assert np.array_equal(land3.classes, np.broadcast_to(land3.xs[None, :] - 0.5 > 0, (16, 16)).astype(np.int64))


def test_the_ae_has_points_not_a_density() -> None:
    mu = np.random.default_rng(4).normal(size=(10, 2))
    agg = layers.aggregate_posterior(mu, None, layers.identity_plane(), BOX)
    assert agg.density is None and np.allclose(agg.points, mu)
    assert layers.mass_levels(agg).size == 0
    e = layers.posterior_ellipses(mu, None, layers.identity_plane())
    assert np.allclose(e.semi_axes, 0.0)


def test_mass_levels_of_one_gaussian() -> None:
    agg = layers.aggregate_posterior(np.zeros((1, 2)), np.ones((1, 2)), layers.identity_plane(), BOX, n=256)
    levels = layers.mass_levels(agg, (0.5, 0.9))
    # N(0, I) in 2-D: the region holding mass f is r² <= -2 ln(1 - f), its edge's density (1 - f) / 2π
    assert np.allclose(levels, [0.1 / (2 * np.pi), 0.5 / (2 * np.pi)], rtol=0.03)


def test_cached_layers_are_read_back_equal_without_recomputing(tmp_path) -> None:
    model = LinearVAE(2, sigma=np.array([0.5, 0.8]))
    x = torch.randn(300, 1, 1, 2)
    plane = layers.identity_plane()
    judge = SignJudge(np.array([1.0, -1.0]))
    first = layers.compute_landscape(model, judge, "ab" * 32, plane, BOX, cache=tmp_path)
    calls = judge.calls
    second = layers.compute_landscape(model, judge, "ab" * 32, plane, BOX, cache=tmp_path)
    assert judge.calls == calls
    assert np.array_equal(first.classes, second.classes) and np.array_equal(first.confidence, second.confidence)
    assert second.classes.shape == (64, 64)
    layers.compute_landscape(model, judge, "ab" * 32, plane, ((-1.0, 1.0), (-1.0, 1.0)), cache=tmp_path)
    assert judge.calls > calls  # another box is another entry
    a1 = layers.compute_aggregate(model, x, "cd" * 32, plane, BOX, cache=tmp_path)
    calls = model.encode_calls
    a2 = layers.compute_aggregate(model, x, "cd" * 32, plane, BOX, cache=tmp_path)
    assert model.encode_calls == calls
    assert a1.density is not None and a2.density is not None and np.array_equal(a1.density, a2.density)
    assert a1.density.sum() * cell_area(a1.xs, a1.ys) == pytest.approx(1.0, abs=2e-3)
    e1 = layers.compute_ellipses(model, x, "cd" * 32, plane, n_sample=10, cache=tmp_path)
    e2 = layers.compute_ellipses(model, x, "cd" * 32, plane, n_sample=10, cache=tmp_path)
    assert model.encode_calls == calls + 1
    assert np.allclose(e1.semi_axes, [0.8, 0.5]) and np.array_equal(e1.index, e2.index)
    assert np.allclose(e1.centres, x.reshape(-1, 2).numpy()[e1.index])
    ae = LinearAE(2)  # no density: the entry without one reads back as None
    b1 = layers.compute_aggregate(ae, x, "ef" * 32, plane, BOX, cache=tmp_path)
    b2 = layers.compute_aggregate(ae, x, "ef" * 32, plane, BOX, cache=tmp_path)
    assert b1.density is None and b2.density is None and np.array_equal(b1.points, b2.points)
    assert len(list(tmp_path.glob("*.npz"))) == 5  # two landscapes, two aggregates, one set of ellipses


def test_a_damaged_cache_entry_is_recomputed(tmp_path) -> None:
    judge = SignJudge(np.array([1.0, 1.0]))
    model = LinearVAE(2)
    layers.compute_landscape(model, judge, "00" * 32, layers.identity_plane(), BOX, n=8, cache=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"not an npz")
    again = layers.compute_landscape(model, judge, "00" * 32, layers.identity_plane(), BOX, n=8, cache=tmp_path)
    assert judge.calls == 2 and again.classes.shape == (8, 8)


def test_planes_refuse_what_they_cannot_be() -> None:
    with pytest.raises(ValueError):
        layers.identity_plane(3)
    with pytest.raises(ValueError):
        layers.dims_plane(4, (1, 1), np.zeros(4))
    with pytest.raises(ValueError):
        layers.plane_of(LatentMap("tsne"))
    with pytest.raises(ValueError):
        layers.Plane(np.zeros(3), np.array([[1.0, 0, 0], [1.0, 0, 0]]))


def test_layer_traces() -> None:
    names = [str(i) for i in range(10)]
    xs = np.linspace(-1, 1, 4)
    classes = np.array([[0, 1, 2, 3]] * 4)
    confidence = np.array([[0.1, 0.55, 1.0, 1.0]] * 4)
    img = plots.landscape_trace(xs, xs, classes, confidence, names)
    z = np.asarray(img.z)
    assert z.shape == (4, 4, 4)
    for c in range(4):  # the map's class colours
        assert tuple(z[0, c, :3]) == plots._rgb(plots.class_color(c))
    assert z[0, 0, 3] == 0.0 and 0 < z[0, 1, 3] < z[0, 2, 3] == pytest.approx(plots.LANDSCAPE_MAX_ALPHA)
    assert img.x0 == pytest.approx(-1) and img.dx == pytest.approx(2 / 3)
    circles = layers.prior_circles(layers.identity_plane())
    traces = plots.circle_traces(circles.outlines, circles.radii)
    assert len(traces) == 3 and sum(bool(t.showlegend) for t in traces) == 1
    agg = layers.aggregate_posterior(np.zeros((1, 2)), np.ones((1, 2)), layers.identity_plane(), BOX)
    assert len(plots.density_contour_traces(agg.xs, agg.ys, agg.density, layers.mass_levels(agg))) == 3
    assert plots.density_contour_traces(agg.xs, agg.ys, None, []) == []
    e = layers.posterior_ellipses(np.array([[1.0, 1.0]]), np.array([[4.0, 1.0]]), layers.identity_plane())
    (line,) = plots.ellipse_traces(e.centres, e.semi_axes, e.angles)
    pts = np.array([[x, y] for x, y in zip(line.x, line.y, strict=True) if x is not None])
    assert np.allclose(((pts - 1.0) ** 2 / np.array([4.0, 1.0])).sum(1), 1.0)
    (dots,) = plots.ellipse_traces(e.centres, np.zeros((1, 2)), e.angles)
    assert dots.mode == "markers"
    fig = plots.latent_map(np.zeros((2, 2)), np.array([0, 1]), names, np.arange(2))
    fig.add_traces([img, *traces, line])  # they sit on a latent_map


def test_a_real_tiny_model_above_2d_on_the_pca_plane(tmp_path) -> None:
    from vae.core.models import build_model

    model = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=3, hidden=(8,)), seed=0).eval()
    x = torch.rand(120, 1, 4, 4)
    mu, var = layers.encode_posterior(model, x)
    assert var is not None and mu.shape == var.shape == (120, 3)
    plane = layers.plane_of(LatentMap("pca").fit(mu.astype(np.float32)))
    assert plane.kind == "pca"
    agg = layers.compute_aggregate(model, x, "12" * 32, plane, BOX, cache=tmp_path)
    assert agg.density is not None and agg.density.shape == (64, 64)
    assert agg.density.sum() * cell_area(agg.xs, agg.ys) == pytest.approx(1.0, abs=5e-3)
    land = layers.compute_landscape(model, SignJudge(np.ones(16) - 2 * (np.arange(16) % 2)), "12" * 32, plane, BOX, cache=tmp_path)
    assert land.classes.shape == (64, 64) and set(np.unique(land.classes)) <= {0, 1}
