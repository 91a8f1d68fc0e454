"""Image-producing computations: decode grids, traversals, prior samples, interpolation
strips and filling in missing pixels. Arrays out are numpy float32 in [0, 1].

Filling in (Rezende et al. 2014, sec. 6.2, with the decoder's mean image instead of a pixel
sample): the hidden pixels start grey (0.5); each iteration encodes the current image x~, takes a
code z and puts decode(z) into the hidden pixels, the known ones back. `fill_missing` and
`fill_batch` take z = mu (one deterministic fill, the AE's only kind); `fill_samples` and
`fill_batch(..., sample=True)` draw z = mu + sigma * eps from q(z|x~) at every iteration, so
each seeded chain ends at its own completion (an AE, which has no sigma, gives its mean fill).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import torch

from vae.core.device import model_device
from vae.core.models import LatentModel

MASKS = ("top half", "bottom half", "left half", "right half", "centre square")


@torch.no_grad()
def decode_images(model: LatentModel, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """z (N, D) -> images (N, H, W, C) float32 in [0, 1]: the one decode path the app uses."""
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim).to(model_device(model))
    return model.decode(zt).permute(0, 2, 3, 1).cpu().numpy()


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """(rows * cols, H, W, C) -> one (rows*(H+pad)-pad, cols*(W+pad)-pad, C) mosaic, row-major,
    with `pad` pixels of `pad_value` between the images (none around them)."""
    n, c = images.shape[0], images.shape[3]
    if n != rows * cols:
        raise ValueError(f"need {rows * cols} images for a {rows}x{cols} tile, got {n}")
    # torchvision is imported here, not at the top: importing it takes about a second, and the
    # app's first page (Explore) never tiles
    from torchvision.utils import make_grid

    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    grid = make_grid(batch, nrow=cols, padding=pad, pad_value=pad_value)
    if n > 1:  # make_grid also frames the mosaic (a single image comes back as it is): cut the frame off
        grid = grid[:, pad : grid.shape[1] - pad, pad : grid.shape[2] - pad]
    # make_grid repeats a single channel three times: keep the images' own channels; np.array copies
    return np.array(grid[:c].permute(1, 2, 0).numpy(), dtype=np.float32, order="C")


def gaussian_grid(n: int, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """n values evenly spaced in probability under N(0, 1): the inverse-CDF spacing of
    Kingma & Welling's Fig. 4, so each cell covers equal prior mass."""
    dist = NormalDist()
    return np.array([dist.inv_cdf(p) for p in np.linspace(low, high, n)], dtype=np.float32)


def manifold_grid(model: LatentModel, n: int = 15, dims: tuple[int, int] = (0, 1), base: np.ndarray | None = None) -> np.ndarray:
    """Decode an n x n grid over two latent dims (others fixed at `base`, default 0).
    Rows go from high to low values of dims[1] (so "up" is up), columns over dims[0]."""
    values = gaussian_grid(n)
    d = model.latent_dim
    z = np.tile(np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32), (n * n, 1))
    for r, v1 in enumerate(values[::-1]):
        for c, v0 in enumerate(values):
            z[r * n + c, dims[0]] = v0
            if d > 1:
                z[r * n + c, dims[1]] = v1
    return tile(decode_images(model, z), n, n)


def manifold_strip(model: LatentModel, n: int = 15) -> np.ndarray:
    """The decoded manifold of a 1-D latent, which is one line: n values of z1 spaced by the
    inverse CDF of N(0, 1) (as manifold_grid spaces each axis), low to high, left to right;
    one (H, n*(W+1)-1, C) row."""
    if model.latent_dim != 1:
        raise ValueError(f"a manifold strip is the view of a 1-D latent; this model's latent has {model.latent_dim} dimensions")
    return tile(decode_images(model, gaussian_grid(n)[:, None]), 1, n)


def traversals(model: LatentModel, base: np.ndarray, steps: int = 9, span: float = 3.0) -> np.ndarray:
    """One row per latent dim: base with that dim swept over [-span, span]."""
    d = model.latent_dim
    sweep = np.linspace(-span, span, steps, dtype=np.float32)
    z = np.tile(np.asarray(base, np.float32), (d * steps, 1))
    for i in range(d):
        z[i * steps : (i + 1) * steps, i] = sweep
    return tile(decode_images(model, z), d, steps)


def prior_samples(model: LatentModel, n: int = 16, seed: int = 0) -> np.ndarray:
    """Decode n draws of z ~ N(0, I) (seeded): (n, H, W, C)."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode_images(model, z)


def interpolation(model: LatentModel, z_start: np.ndarray, z_end: np.ndarray, steps: int = 10) -> np.ndarray:
    """Decode the straight line from z_start to z_end: (steps, H, W, C)."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    return decode_images(model, (1 - t) * np.asarray(z_start, np.float32) + t * np.asarray(z_end, np.float32))


def make_mask(kind: str, shape: tuple[int, int], fraction: float = 0.5) -> np.ndarray:
    """Boolean (H, W) mask: True where the pixel is KNOWN, False where it is hidden."""
    h, w = shape
    known = np.ones((h, w), dtype=bool)
    if kind == "top half":
        known[: h // 2] = False
    elif kind == "bottom half":
        known[h // 2 :] = False
    elif kind == "left half":
        known[:, : w // 2] = False
    elif kind == "right half":
        known[:, w // 2 :] = False
    elif kind == "centre square":
        sh, sw = max(1, int(h * fraction)), max(1, int(w * fraction))
        top, left = (h - sh) // 2, (w - sw) // 2
        known[top : top + sh, left : left + sw] = False
    else:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    return known


FILL_START = 0.5  # the grey the hidden pixels start from


@torch.no_grad()
def fill_batch(
    model: LatentModel,
    x: torch.Tensor,
    known: np.ndarray,
    iterations: int = 30,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fill the hidden pixels of a batch x (N, C, H, W) in [0, 1] (known: (H, W) bool, True =
    known, the same for every image) by `iterations` rounds of encode -> z -> decode, putting the
    known pixels back each round. z = mu, or with `sample` z = mu + sigma * eps drawn with
    `generator` (on the CPU, so a seed gives the same fills on every device). Returns (N, C, H, W)
    on the CPU; the known pixels are x's own."""
    dev = model_device(model)
    x = x.to(dev, torch.float32)
    keep = torch.as_tensor(np.asarray(known, dtype=bool), device=dev).view(1, 1, *known.shape).expand_as(x)
    current = torch.where(keep, x, torch.full_like(x, FILL_START))
    for _ in range(iterations):
        mu, logvar = model.encode(current)
        z = mu
        if sample and logvar is not None:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(dev)
            z = mu + torch.exp(0.5 * logvar) * eps
        current = torch.where(keep, x, model.decode(z))
    return current.cpu()


def fill_samples(
    model: LatentModel, image: np.ndarray, known: np.ndarray, n: int = 4, iterations: int = 30, seed: int = 0,
) -> np.ndarray:
    """n stochastic fills of one image (H, W, C): n chains of `fill_batch(..., sample=True)`
    seeded with `seed`, each drawing its own z from q(z|x~) at every iteration. Returns
    (n, H, W, C); for an AE all n equal its `fill_missing`."""
    x = torch.as_tensor(np.asarray(image, np.float32)).permute(2, 0, 1).unsqueeze(0).repeat(n, 1, 1, 1)
    out = fill_batch(model, x, known, iterations, sample=True, generator=torch.Generator().manual_seed(seed))
    return out.permute(0, 2, 3, 1).numpy()


def fill_missing(model: LatentModel, image: np.ndarray, known: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Fill the hidden pixels of one image (H, W, C) by iterating encode -> decode (with the
    posterior mean) and putting the known pixels back each time. Returns (H, W, C)."""
    x = torch.as_tensor(np.asarray(image, np.float32)).permute(2, 0, 1).unsqueeze(0)
    return fill_batch(model, x, known, iterations)[0].permute(1, 2, 0).numpy()
