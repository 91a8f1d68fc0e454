"""The map's layers, computed on a grid over a 2-D box: what the plots draw under and over the dots.

  landscape            (a) decode every grid point (batched), ask the judge: class and confidence per
                       cell (fading where the judge is unsure is the plot's job)
  prior_circles        (b) the prior's 1σ, 2σ, 3σ circles
  aggregate_posterior  (c) q(z) = mean over test images of N(z; μᵢ, diag σᵢ²), as a density on the grid
                       (for contours); for the AE (σ = 0) q(z) is a set of points, not a density:
                       `density` is None and `points` holds the codes
  posterior_ellipses   (c) the σ-ellipses of q(z|x) for a sample of test points
  (d) the current z is a point: plots.current_marker draws it, nothing to compute here.
  hole_meter           at the current z: the judge's class and confidence of its decode, q(z)/p(z) in
                       the full latent, and the round trip ‖μ(decode(z)) − z‖ (issue 11, item 6)

The plane. A map position p (2,) is the latent z = origin + p @ axes (axes (2, D), orthonormal rows),
and a latent z is at p = (z - origin) @ axesᵀ on the map. Three planes (`Plane`):

  identity_plane(2)     a 2-D latent: the map is the latent (origin 0, axes I); everything is exact
  pca_plane(map)        above 2-D, Explore's PCA map (vae.core.projection.fit_pca): origin = the means'
                        mean m, axes = the two principal axes P; lift is the map's lift
  dims_plane(D, (i, j), z_rest)
                        two chosen dimensions i, j, the rest held at z_rest (the current z)

What each layer is on a plane above 2-D:

  landscape  decodes the lifted grid points, so it is exact on every plane (it is the decoder's slice).
  prior      N(0, I) projected by p = P(z - m) is N(-Pm, P Pᵀ) = N(-Pm, I): P's rows are orthonormal, so
             the projection is still a unit Gaussian, centred where z = 0 lands on the map (locate(0) =
             -Pm, not the map's (0, 0)); its restriction to the plane (the slice) has the same centre and
             covariance, since |m + Pᵀp|² = |m - PᵀPm|² + |p + Pm|². On a dims plane the prior's
             dimensions are independent: circles of radius 1, 2, 3 about z_i = z_j = 0, exact.
             (In 2-D, the 1σ, 2σ, 3σ circles hold 39 %, 86 %, 98.9 % of the prior's mass: 1 - exp(-r²/2).)
  q(z)       the marginal of the mixture on the plane: component i is N(P(μᵢ - m), P diag(σᵢ²) Pᵀ)
             (a linear map of a Gaussian), so the density integrates to 1 over the plane. On a dims plane
             it is the marginal over z_i, z_j (the other dimensions integrated out, not the slice at
             z_rest), and so does not depend on z_rest.
  ellipses   the same covariance P diag(σᵢ²) Pᵀ per test point, its eigen-decomposition giving the
             ellipse's semi-axes (square roots of the eigenvalues) and orientation; in 2-D (P = I) the
             semi-axes are σᵢ along the axes.

A 1-D latent has no plane (its map is a line with a row per class): these layers need D >= 2; t-SNE has
no plane either (no linear lift), so `plane_of` refuses it.

Grid: n × n cell centres over the box ((x0, x1), (y0, y1)), the plots' `ranges`: xs[k] = x0 + (k + ½)
(x1 - x0) / n, so a heatmap on (xs, ys) covers exactly the box. Arrays are (n_y, n_x): row = y, column
= x, as Plotly's heatmap and contour take them.

Cache: on disk, the maps' pattern (vae.analysis.maps: `cache_dir()`, `atomic_write`, `.npz` read back
with `allow_pickle=False`), so a layer is computed once per checkpoint for every session and every
restart. The file name holds the checkpoint's sha256 (16 hex digits), the layer and the grid size; a
hash of the rest of the key (box, plane, sample size, test-set size, judge id, version) ends it. A
damaged entry is recomputed; an unwritable folder only costs time. Nothing is ever evicted (a landscape
entry is ~50 kB; on a dims plane every z_rest is its own entry). The prior's circles are not cached:
they take microseconds.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from vae.analysis.judge import Judges
from vae.analysis.maps import LatentMap, cache_dir, sample_index
from vae.core.device import model_device
from vae.core.files import atomic_write
from vae.core.models import LatentModel

Box = tuple[tuple[float, float], tuple[float, float]]  # ((x0, x1), (y0, y1)), as plots' ranges
GRID = 64  # the default grid: 64 × 64 cells
PRIOR_RADII = (1.0, 2.0, 3.0)
DEFAULT_Q_SAMPLE = 2000  # test images in the aggregate posterior (the maps' sample for identity / PCA)
DEFAULT_ELLIPSES = 60  # test points whose σ-ellipses are drawn
CACHE_VERSION = 1
LAYERS = ("landscape", "aggregate", "ellipses")  # the cached ones


# --- the plane -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plane:
    """A 2-D plane in the latent: z = origin + p @ axes, axes (2, D) with orthonormal rows."""

    origin: np.ndarray  # (D,) float64
    axes: np.ndarray  # (2, D) float64
    kind: str = "identity"  # identity | pca | dims

    def __post_init__(self) -> None:
        a = np.asarray(self.axes, np.float64)
        if a.ndim != 2 or a.shape[0] != 2 or a.shape[1] < 2:
            raise ValueError(f"a plane's axes are (2, D) with D >= 2, got {a.shape}")
        if not np.allclose(a @ a.T, np.eye(2), atol=1e-5):
            raise ValueError("a plane's axes must be orthonormal")
        if np.asarray(self.origin).shape != (a.shape[1],):
            raise ValueError(f"origin must be ({a.shape[1]},), got {np.asarray(self.origin).shape}")

    @property
    def latent_dim(self) -> int:
        return int(self.axes.shape[1])

    def lift(self, p: np.ndarray) -> np.ndarray:
        """Map positions (M, 2) -> latent points (M, D) float32."""
        return (np.asarray(self.origin, np.float64) + np.asarray(p, np.float64) @ self.axes).astype(np.float32)

    def locate(self, z: np.ndarray) -> np.ndarray:
        """Latent points (M, D) -> map positions (M, 2) float64 (the orthogonal projection)."""
        return (np.asarray(z, np.float64) - self.origin) @ self.axes.T

    def project_cov(self, var: np.ndarray) -> np.ndarray:
        """Diagonal covariances (M, D) (the variances σ²) -> their projections P diag(σ²) Pᵀ, (M, 2, 2)."""
        a = self.axes
        return np.einsum("id,md,jd->mij", a, np.asarray(var, np.float64), a)

    def key(self, with_origin: bool = True) -> str:
        """The plane as a cache key: axes and the offset (axes @ origin) always, the origin itself
        only where it matters (the landscape decodes lifted points; the projections do not)."""
        h = hashlib.sha256()
        h.update(np.round(self.axes, 6).astype(np.float64).tobytes())
        h.update(np.round(self.axes @ self.origin, 6).astype(np.float64).tobytes())
        if with_origin:
            h.update(np.round(self.origin, 6).astype(np.float64).tobytes())
        return h.hexdigest()[:16]


def identity_plane(latent_dim: int = 2) -> Plane:
    """A 2-D latent's own plane (the identity map)."""
    if latent_dim != 2:
        raise ValueError(f"the identity plane is a 2-D latent's; this one has {latent_dim} dimensions (use pca_plane or dims_plane)")
    return Plane(np.zeros(2), np.eye(2), "identity")


def pca_plane(latent_map: LatentMap) -> Plane:
    """The plane of a fitted PCA map (`LatentMap("pca")`, D > 2): its lift and locate, exactly."""
    pca = getattr(latent_map, "pca_", None)
    if latent_map.method != "pca" or pca is None:
        raise ValueError("pca_plane needs a fitted PCA map of a latent with more than one dimension")
    return Plane(np.asarray(pca.mean_, np.float64), np.asarray(pca.components_, np.float64), "pca")


def dims_plane(latent_dim: int, dims: tuple[int, int], z_rest: np.ndarray) -> Plane:
    """Dimensions (i, j) across and up; every other dimension held at z_rest's value."""
    i, j = dims
    if i == j or not (0 <= i < latent_dim and 0 <= j < latent_dim):
        raise ValueError(f"dims must be two different dimensions in 0..{latent_dim - 1}, got {dims}")
    origin = np.asarray(z_rest, np.float64).reshape(-1).copy()
    if origin.shape != (latent_dim,):
        raise ValueError(f"z_rest must have {latent_dim} entries, got {origin.shape[0]}")
    origin[[i, j]] = 0.0
    axes = np.zeros((2, latent_dim))
    axes[0, i] = axes[1, j] = 1.0
    return Plane(origin, axes, "dims")


def plane_of(latent_map: LatentMap) -> Plane:
    """The plane under a fitted map: identity (2-D latent) or PCA; t-SNE and 1-D maps have none."""
    if latent_map.method == "identity":
        return identity_plane(latent_map.latent_dim_)
    if latent_map.method == "pca":
        return pca_plane(latent_map)
    raise ValueError(f"a {latent_map.method} map has no plane in the latent (no linear lift); use pca or dims_plane")


# --- the grid --------------------------------------------------------------------------------


def grid_axes(box: Box, n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """The n cell centres across (xs) and up (ys) of the box, float64."""
    if n < 1:
        raise ValueError(f"grid size must be >= 1, got {n}")
    (x0, x1), (y0, y1) = box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must have x0 < x1 and y0 < y1, got {box}")
    k = np.arange(n) + 0.5
    return x0 + k * (x1 - x0) / n, y0 + k * (y1 - y0) / n


def grid_points(box: Box, n: int = GRID) -> np.ndarray:
    """(n * n, 2) cell centres, row-major with y slow: reshape(n, n) gives [y][x]."""
    xs, ys = grid_axes(box, n)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


# --- the layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landscape:
    """(a) The judge's reading of the decode at every cell: classes and confidence (n_y, n_x)."""

    xs: np.ndarray
    ys: np.ndarray
    classes: np.ndarray  # (n_y, n_x) int64
    confidence: np.ndarray  # (n_y, n_x) float32, the top probability


@dataclass(frozen=True)
class PriorCircles:
    """(b) The prior's k-σ circles on the map: one (n_points, 2) closed outline per radius."""

    centre: np.ndarray  # (2,) where z = 0 projects
    radii: np.ndarray  # (K,)
    outlines: np.ndarray  # (K, n_points, 2), first point repeated last


@dataclass(frozen=True)
class Aggregate:
    """(c) q(z) on the plane: the density on the grid (None for an AE: q(z) is then a set of
    points, `points`, the codes on the map) and the projected means."""

    xs: np.ndarray
    ys: np.ndarray
    density: np.ndarray | None  # (n_y, n_x) float64 per unit area of the map, or None
    points: np.ndarray  # (N, 2) the components' centres P(μᵢ - m)


@dataclass(frozen=True)
class Ellipses:
    """(c) 1σ ellipses of q(z|x) for a sample of test points: centre, semi-axes (major, minor)
    and the major axis's angle (radians, counter-clockwise from the map's x axis). An AE's are
    points: semi-axes 0."""

    centres: np.ndarray  # (K, 2)
    semi_axes: np.ndarray  # (K, 2) major >= minor >= 0
    angles: np.ndarray  # (K,)
    index: np.ndarray  # (K,) the test images'


@torch.no_grad()
def landscape(model: LatentModel, judge: Judges, plane: Plane, box: Box, n: int = GRID, batch_size: int = 1024) -> Landscape:
    """Decode the n × n grid's lifted points in batches and judge each decode."""
    if plane.latent_dim != model.latent_dim:
        raise ValueError(f"plane is {plane.latent_dim}-D, the model's latent {model.latent_dim}-D")
    xs, ys = grid_axes(box, n)
    z = torch.from_numpy(plane.lift(grid_points(box, n)))
    device = model_device(model)
    classes, confidence = [], []
    for i in range(0, z.shape[0], batch_size):
        verdict = judge.judge(model.decode(z[i : i + batch_size].to(device)).float().cpu())
        classes.append(np.asarray(verdict.classes, np.int64))
        confidence.append(np.asarray(verdict.confidence, np.float32))
    return Landscape(xs, ys, np.concatenate(classes).reshape(n, n), np.concatenate(confidence).reshape(n, n))


def prior_circles(plane: Plane, radii: tuple[float, ...] = PRIOR_RADII, n_points: int = 181) -> PriorCircles:
    """The prior N(0, I)'s circles on the plane: its projection is N(locate(0), I) (module doc)."""
    centre = plane.locate(np.zeros((1, plane.latent_dim)))[0]
    t = np.linspace(0.0, 2 * np.pi, n_points)
    t[-1] = 0.0  # closed exactly
    unit = np.stack([np.cos(t), np.sin(t)], 1)
    r = np.asarray(radii, np.float64)
    return PriorCircles(centre, r, centre + r[:, None, None] * unit[None])


@torch.no_grad()
def encode_posterior(model: LatentModel, x: torch.Tensor, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray | None]:
    """x (N, C, H, W) -> (μ (N, D), σ² (N, D)) float64; σ² is None for the AE."""
    device = model_device(model)
    mus, variances = [], []
    for i in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[i : i + batch_size].to(device))
        mus.append(mu.double().cpu())
        if logvar is not None:
            variances.append(logvar.double().exp().cpu())
    return torch.cat(mus).numpy(), (torch.cat(variances).numpy() if variances else None)


def mixture_density(points: np.ndarray, centres: np.ndarray, covs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Mean over components of N(p; centreᵢ, covᵢ) at every point: points (G, 2), centres (N, 2),
    covs (N, 2, 2) -> (G,) float64. Components are taken `chunk` at a time (memory G × chunk)."""
    p = np.asarray(points, np.float64)
    out = np.zeros(p.shape[0])
    floor = 1e-12  # a component squeezed flat (σ -> 0 along one axis) stays finite
    for s in range(0, centres.shape[0], chunk):
        c = centres[s : s + chunk]
        a = covs[s : s + chunk, 0, 0] + floor
        b = covs[s : s + chunk, 0, 1]
        d = covs[s : s + chunk, 1, 1] + floor
        det = a * d - b * b
        dx = p[:, None, 0] - c[None, :, 0]
        dy = p[:, None, 1] - c[None, :, 1]
        maha = (d * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
        out += (np.exp(-0.5 * maha) / (2 * np.pi * np.sqrt(det))).sum(1)
    return out / centres.shape[0]


def aggregate_posterior(mu: np.ndarray, var: np.ndarray | None, plane: Plane, box: Box, n: int = GRID) -> Aggregate:
    """q(z)'s marginal on the plane, on the n × n grid (module doc); var None (an AE): no density."""
    xs, ys = grid_axes(box, n)
    centres = plane.locate(mu)
    if var is None:
        return Aggregate(xs, ys, None, centres)
    density = mixture_density(grid_points(box, n), centres, plane.project_cov(var)).reshape(n, n)
    return Aggregate(xs, ys, density, centres)


def mass_levels(agg: Aggregate, fractions: tuple[float, ...] = (0.5, 0.9, 0.99)) -> np.ndarray:
    """Density levels whose contours enclose those fractions of q(z)'s mass on the grid (the
    highest-density regions), ascending; empty for an AE (no density). Fractions are of the mass
    the grid holds, so a box that cuts q(z) off still gets its levels."""
    if agg.density is None:
        return np.zeros(0)
    d = np.sort(agg.density.ravel())[::-1]
    cum = np.cumsum(d)
    if cum[-1] <= 0:
        return np.zeros(0)
    levels = [d[min(int(np.searchsorted(cum, f * cum[-1])), d.size - 1)] for f in fractions]
    return np.unique(np.asarray(levels, np.float64))


def ellipse_shape(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2 × 2 covariances (K, 2, 2) -> semi-axes (K, 2) (major, minor: square roots of the
    eigenvalues) and the major axis's angle (K,) in radians, in (-π/2, π/2]."""
    values, vectors = np.linalg.eigh(np.asarray(covs, np.float64))  # ascending
    semi = np.sqrt(np.clip(values[:, ::-1], 0.0, None))
    major = vectors[:, :, 1]
    angle = np.arctan2(major[:, 1], major[:, 0])
    angle = np.where(angle > np.pi / 2, angle - np.pi, np.where(angle <= -np.pi / 2, angle + np.pi, angle))
    return semi, angle


def posterior_ellipses(mu: np.ndarray, var: np.ndarray | None, plane: Plane, index: np.ndarray | None = None) -> Ellipses:
    """The 1σ ellipse of each q(z|xᵢ) on the plane (all rows of mu, or those in `index`)."""
    index = np.arange(mu.shape[0]) if index is None else np.asarray(index, np.int64)
    centres = plane.locate(mu[index])
    if var is None:
        return Ellipses(centres, np.zeros((len(index), 2)), np.zeros(len(index)), index)
    semi, angle = ellipse_shape(plane.project_cov(var[index]))
    return Ellipses(centres, semi, angle, index)


def ellipse_outline(centre: np.ndarray, semi_axes: np.ndarray, angle: float, k: float = 1.0, n_points: int = 49) -> np.ndarray:
    """The k-σ outline of one ellipse: (n_points, 2), closed."""
    t = np.linspace(0.0, 2 * np.pi, n_points)
    t[-1] = 0.0
    x, y = k * semi_axes[0] * np.cos(t), k * semi_axes[1] * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], 1)


# --- cached, per checkpoint ------------------------------------------------------------------

T = TypeVar("T", Landscape, Aggregate, Ellipses)


def _cache_path(folder: Path, checkpoint_hash: str, layer: str, n: int, key: Mapping[str, object]) -> Path:
    digest = hashlib.sha256(json.dumps({**key, "v": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{checkpoint_hash[:16]}-layer-{layer}-{n}-{digest}.npz"


def _box_key(box: Box) -> list[float]:
    return [float(f"{v:.6g}") for v in (*box[0], *box[1])]


def _cached(cls: type[T], path: Path | None, compute: Callable[[], T]) -> T:
    """Read `path` as a `cls` if it is there and whole, else compute it and (try to) write it."""
    names = [f.name for f in fields(cls)]
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                values = {k: (None if k not in f.files else f[k]) for k in names}
            if all(v is not None for k, v in values.items() if k != "density"):
                return cls(**values)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed and overwritten
    result = compute()
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, **{k: getattr(result, k) for k in names if getattr(result, k) is not None})
        try:
            atomic_write(path, buf.getvalue())
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
            pass
    return result


def _folder(cache: Path | None | bool) -> Path | None:
    if cache is False:
        return None
    return cache_dir() if cache is None or cache is True else Path(cache)


def judge_id(judge: Judges) -> str:
    """What tells judges apart in the cache key: the judge's `fingerprint` attribute where it has
    one (e.g. its weights' hash), else its class and class names."""
    fp = getattr(judge, "fingerprint", None)
    if isinstance(fp, str) and fp:
        return fp
    return f"{type(judge).__module__}.{type(judge).__qualname__}:{','.join(judge.class_names)}"


def compute_landscape(
    model: LatentModel, judge: Judges, checkpoint_hash: str, plane: Plane, box: Box, n: int = GRID,
    cache: Path | None | bool = None,
) -> Landscape:
    """`landscape`, cached per checkpoint (module doc); `cache` False disables, a path overrides."""
    folder = _folder(cache)
    key = {"box": _box_key(box), "plane": plane.key(), "judge": judge_id(judge)}
    path = _cache_path(folder, checkpoint_hash, "landscape", n, key) if folder else None
    return _cached(Landscape, path, lambda: landscape(model, judge, plane, box, n))


def compute_aggregate(
    model: LatentModel, x_test: torch.Tensor, checkpoint_hash: str, plane: Plane, box: Box, n: int = GRID,
    n_sample: int = DEFAULT_Q_SAMPLE, cache: Path | None | bool = None,
) -> Aggregate:
    """`aggregate_posterior` over a seeded sample of n_sample test images (maps.sample_index), cached."""
    folder = _folder(cache)
    index = sample_index(x_test.shape[0], n_sample)
    key = {"box": _box_key(box), "plane": plane.key(with_origin=False), "n_test": int(x_test.shape[0]), "sample": len(index)}
    path = _cache_path(folder, checkpoint_hash, "aggregate", n, key) if folder else None

    def compute() -> Aggregate:
        mu, var = encode_posterior(model, x_test[torch.from_numpy(index)])
        return aggregate_posterior(mu, var, plane, box, n)

    return _cached(Aggregate, path, compute)


def compute_ellipses(
    model: LatentModel, x_test: torch.Tensor, checkpoint_hash: str, plane: Plane, n_sample: int = DEFAULT_ELLIPSES,
    cache: Path | None | bool = None,
) -> Ellipses:
    """`posterior_ellipses` of a seeded sample of n_sample test images (maps.sample_index, seed 1), cached."""
    folder = _folder(cache)
    index = sample_index(x_test.shape[0], n_sample, seed=1)
    key = {"plane": plane.key(with_origin=False), "n_test": int(x_test.shape[0]), "sample": len(index)}
    path = _cache_path(folder, checkpoint_hash, "ellipses", len(index), key) if folder else None

    def compute() -> Ellipses:
        mu, var = encode_posterior(model, x_test[torch.from_numpy(index)])
        e = posterior_ellipses(mu, var, plane)
        return Ellipses(e.centres, e.semi_axes, e.angles, index)

    return _cached(Ellipses, path, compute)


# --- the hole meter at z ---------------------------------------------------------------------


@dataclass(frozen=True)
class HoleMeter:
    """What the pages show beside the decode of one z (issue 11, item 6).

    class_index, class_name, confidence: the judge's reading of decode(z) (None without a judge);
    log_q_over_p: log q(z) - log p(z), the aggregate posterior's density at z over the prior's,
    both in the full latent (None for an AE, whose q(z) is a set of points, or without an aggregate);
    round_trip: ‖μ(decode(z)) − z‖ in latent units (0 when encoding the decode gives z back)."""

    class_index: int | None
    class_name: str | None
    confidence: float | None
    log_q_over_p: float | None
    round_trip: float

    @property
    def q_over_p(self) -> float | None:
        """q(z)/p(z) (0 or inf where it under- or overflows a float)."""
        if self.log_q_over_p is None:
            return None
        return float(np.exp(min(self.log_q_over_p, 700.0)))


def log_normal_diag(z: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log N(z_m; μᵢ, diag varᵢ) for every z (M, D) and component i (N, D): (M, N) float64."""
    z = np.asarray(z, np.float64)[:, None, :]
    mu = np.asarray(mu, np.float64)[None]
    var = np.maximum(np.asarray(var, np.float64), 1e-12)[None]
    return -0.5 * (((z - mu) ** 2 / var).sum(-1) + np.log(2 * np.pi * var).sum(-1))


def log_aggregate_over_prior(z: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log q(z) - log p(z) at each z (M, D): q(z) = mean over i of N(z; μᵢ, diag varᵢ) (in the full
    latent), p = N(0, I). Computed in log space (log-sum-exp), so a z far from every code is a
    large negative number rather than log 0."""
    comp = log_normal_diag(z, mu, var)
    top = comp.max(1, keepdims=True)
    log_q = top[:, 0] + np.log(np.exp(comp - top).mean(1))
    zz = np.asarray(z, np.float64)
    log_p = -0.5 * ((zz**2).sum(1) + zz.shape[1] * np.log(2 * np.pi))
    return log_q - log_p


def posterior_sample(model: LatentModel, x_test: torch.Tensor, n_sample: int = DEFAULT_Q_SAMPLE) -> tuple[np.ndarray, np.ndarray | None]:
    """(μ, σ²) of the same seeded sample of test images compute_aggregate uses (σ² None for the AE):
    the `aggregate` hole_meter takes."""
    index = sample_index(x_test.shape[0], n_sample)
    return encode_posterior(model, x_test[torch.from_numpy(index)])


@torch.no_grad()
def hole_meter(
    model: LatentModel, judge: Judges | None, z: np.ndarray, aggregate: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> HoleMeter:
    """The hole meter at one z (D,): one decode, one judge call (without a judge: None for its
    fields), one encode of the decode (the round trip), and q(z)/p(z) from `aggregate` = (μ, σ²)
    of test images (posterior_sample; σ² None for an AE: no density, None)."""
    zt = torch.as_tensor(np.asarray(z, np.float32).reshape(1, -1))
    device = model_device(model)
    decoded = model.decode(zt.to(device)).float()
    mu, _ = model.encode(decoded)
    round_trip = float((mu.float().cpu() - zt).norm(dim=1)[0])
    cls = name = conf = None
    if judge is not None:
        verdict = judge.judge(decoded.cpu())
        cls = int(verdict.classes[0])
        name = str(judge.class_names[cls]) if 0 <= cls < len(judge.class_names) else str(cls)
        conf = float(verdict.confidence[0])
    ratio = None
    if aggregate is not None and aggregate[1] is not None:
        ratio = float(log_aggregate_over_prior(zt.numpy(), aggregate[0], aggregate[1])[0])
    return HoleMeter(cls, name, conf, ratio, round_trip)
