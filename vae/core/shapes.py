"""`shapes`: a procedurally drawn dSprites-style dataset whose true factors are known.

Each image holds one white shape on black, drawn from five independent factors sampled
uniformly from a grid (as in dSprites, Matthey et al. 2017): shape (square, ellipse, heart),
scale (6 values in [0.5, 1]), rotation (40 angles in [0, 2 pi)), and the centre's x and y
(size // 2 positions each across the frame). The factors are returned beside the images, so a
disentanglement measure (MIG, vae.analysis.metrics) can be computed against them.

Drawn with numpy from implicit equations (inside/outside tests on 2 x 2 sub-pixel samples, so
edges are anti-aliased), each (shape, scale, rotation) once, then pasted at its place: the same seed gives the same bytes, offline, in a second or two.
Rotation is the angle of the drawn outline, so a square's 90-degree and an ellipse's
180-degree symmetry make part of it invisible, as in dSprites.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SCALES = np.linspace(0.5, 1.0, 6)
ROTATIONS = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
RADIUS = 0.16  # half-size of a scale-1 shape, as a share of the image side
SIZES = (32, 64)


def positions(size: int) -> np.ndarray:
    """The centre's grid along x or y, in [0, 1] (size // 2 values)."""
    return np.linspace(0.0, 1.0, size // 2)


def sample_factors(n: int, size: int, seed: int) -> np.ndarray:
    """(n, 5) float64 factors: shape index, scale, rotation (radians), x and y in [0, 1]."""
    rng = np.random.default_rng(seed)
    grid = positions(size)
    return np.stack(
        [
            rng.integers(0, len(SHAPE_NAMES), n).astype(np.float64),
            SCALES[rng.integers(0, len(SCALES), n)],
            ROTATIONS[rng.integers(0, len(ROTATIONS), n)],
            grid[rng.integers(0, len(grid), n)],
            grid[rng.integers(0, len(grid), n)],
        ],
        axis=1,
    )


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the points (u, v), in units of the shape's radius, lie inside the shape."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == 1:
        return u**2 + (v / 0.5) ** 2 <= 1.0
    hx, hy = 1.15 * u, -1.15 * v + 0.15  # the heart curve (x^2 + y^2 - 1)^3 <= x^2 y^3, point up on screen
    return (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0


def stamp_side(size: int) -> int:
    """The side of the square that holds any shape at any rotation (even, so its centre is a pixel corner)."""
    return 2 * int(np.ceil(RADIUS * size * np.sqrt(2)))


def stamp(shape: int, scale: float, angle: float, size: int) -> np.ndarray:
    """One shape (stamp_side, stamp_side) float32 in [0, 1]: the share of 2 x 2 sub-pixels inside."""
    side = stamp_side(size)
    sub = (np.arange(2 * side) + 0.5) / 2 - side / 2  # sub-pixel centres relative to the centre
    dy, dx = np.meshgrid(sub, sub, indexing="ij")
    r = RADIUS * size * scale
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (cos * dx + sin * dy) / r, (-sin * dx + cos * dy) / r  # rotate the points back by the angle
    return _inside(shape, u, v).astype(np.float32).reshape(side, 2, side, 2).mean(axis=(1, 3))


def render(factors: np.ndarray, size: int) -> np.ndarray:
    """factors (n, 5) -> images (n, size, size) float32 in [0, 1].

    Each of the 720 (shape, scale, rotation) stamps is drawn once and pasted at the centre,
    which lies on a pixel corner: x = 0 puts it size / 4 pixels from the left edge, x = 1
    size / 2 - 1 pixels further."""
    side, grid = stamp_side(size), positions(size)
    out = np.zeros((len(factors), size, size), dtype=np.float32)
    cache: dict[tuple[int, int, int], np.ndarray] = {}
    for i, (shape, scale, angle, x, y) in enumerate(factors):
        key = (int(shape), int(np.argmin(np.abs(SCALES - scale))), int(np.argmin(np.abs(ROTATIONS - angle))))
        if key not in cache:
            cache[key] = stamp(key[0], float(SCALES[key[1]]), float(ROTATIONS[key[2]]), size)
        cx = size // 4 + int(round(x * (len(grid) - 1)))
        cy = size // 4 + int(round(y * (len(grid) - 1)))
        top, left = cy - side // 2, cx - side // 2
        out[i, top : top + side, left : left + side] = cache[key]
    return out


def generate(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, size, size) float32 in [0, 1] and their factors (n, 5), the same for a seed."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    factors = sample_factors(n, size, seed)
    return render(factors, size), factors
