"""Export a decoder and a 2-D map for evaluation in the browser (the Live pad).

The browser gets plain JSON: a list of layers, each with its shapes and its weights as
base64 of little-endian float32 (a third larger than the raw bytes, far smaller than a
JSON list of numbers, and decoded in one pass). The browser's evaluation of these dicts
(pages/ui/latent_pad/decoder.js and maps.js) is tested under Node against PyTorch's and
`LatentMap`'s own outputs: tests/js, with fixtures from tests/js/export_fixtures.py.

Layer types, applied in order to a flat (N, D) batch:

  linear     {shape: [out, in], weight, bias}            y = x W^T + b
  relu       {}                                           max(x, 0)
  unflatten  {shape: [C, H, W]}                           view a flat row as C x H x W
  convT      {shape: [C_in, C_out, kH, kW], stride, padding, output_padding, weight, bias}
             PyTorch's ConvTranspose2d (groups = dilation = 1)
  sigmoid    {}                                           logits -> pixel probabilities
  flatten    {}                                           C x H x W -> a flat row
  conv2d     {shape: [C_out, C_in, kH, kW], stride, padding, weight, bias}
             PyTorch's Conv2d (groups = dilation = 1, zero padding)
  maxpool    {kernel, stride, padding, ceil_mode}         PyTorch's MaxPool2d (dilation = 1)

The hole meter (issue 11, item 6) runs in the browser too, from three more exports evaluated by
pages/ui/latent_pad/meter.js: `export_encoder` (the encoder's mean path, image -> μ, for the round
trip ‖μ(decode(z)) − z‖), `export_judge` (the judge's net, image -> class logits; the browser
takes the softmax) and `export_posterior` (μ and log σ² of the test sample behind q(z), for
q(z)/p(z)). The map's layers (vae.analysis.layers) are exported by `export_layer` as the pad draws
them: the landscape as RGBA cells, the prior's centre and radii, q(z)'s density grid with its
mass levels (the browser draws the contours), the ellipses' centres, semi-axes and angles.

The map export carries what `LatentMap.lift` and `locate` need: `slice` (identity: the
position is z), `linear` (PCA: mean and components) or `idw` (t-SNE: points, mu, k).

What comes back from the browser is untrusted: `read_release` checks a pad's release report
(z and the browser's pixels) before any of it reaches numpy or the page.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from vae.analysis.judge import Judge
from vae.analysis.maps import LatentMap
from vae.core.models import LatentModel

FORMAT = "latent-explorer-web"
VERSION = 1
LAYER_TYPES = ("linear", "relu", "unflatten", "convT", "sigmoid", "flatten", "conv2d", "maxpool")


def encode_f32(array: np.ndarray | torch.Tensor) -> str:
    """Any array -> base64 of its values as little-endian float32, C order."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def decode_f32(text: str, shape: tuple[int, ...] | list[int] | None = None) -> np.ndarray:
    """Inverse of `encode_f32`: float32 array (reshaped to `shape` when given)."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 4:
        raise ValueError(f"float32 data must be a multiple of 4 bytes, got {len(raw)}")
    out = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return out.reshape(tuple(shape)) if shape is not None else out


def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    """The decoder's layers in call order (nested nn.Sequential flattened)."""
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


def _pair(v: int | tuple[int, ...]) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def _export_layer(layer: nn.Module) -> dict[str, Any]:
    if isinstance(layer, nn.Linear):
        return {"type": "linear", "shape": list(layer.weight.shape), "weight": encode_f32(layer.weight), "bias": encode_f32(layer.bias)}
    if isinstance(layer, nn.ReLU):
        return {"type": "relu"}
    if isinstance(layer, nn.Unflatten):
        return {"type": "unflatten", "shape": [int(s) for s in layer.unflattened_size]}
    if isinstance(layer, nn.ConvTranspose2d):
        if layer.groups != 1 or _pair(layer.dilation) != [1, 1] or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError("only ConvTranspose2d with groups=1, dilation=1 and zero padding can be exported")
        if layer.bias is None:
            raise ValueError("only ConvTranspose2d with a bias can be exported")
        return {
            "type": "convT", "shape": list(layer.weight.shape), "stride": _pair(layer.stride), "padding": _pair(layer.padding),
            "output_padding": _pair(layer.output_padding), "weight": encode_f32(layer.weight), "bias": encode_f32(layer.bias),
        }
    if isinstance(layer, nn.Flatten):
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise ValueError("only Flatten(1, -1) can be exported")
        return {"type": "flatten"}
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1 or _pair(layer.dilation) != [1, 1] or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError("only Conv2d with groups=1, dilation=1 and zero padding can be exported")
        if layer.bias is None:
            raise ValueError("only Conv2d with a bias can be exported")
        return {"type": "conv2d", "shape": list(layer.weight.shape), "stride": _pair(layer.stride), "padding": _pair(layer.padding),
                "weight": encode_f32(layer.weight), "bias": encode_f32(layer.bias)}
    if isinstance(layer, nn.MaxPool2d):
        if _pair(layer.dilation) != [1, 1] or layer.return_indices:
            raise ValueError("only MaxPool2d with dilation=1 can be exported")
        return {"type": "maxpool", "kernel": _pair(layer.kernel_size), "stride": _pair(layer.stride or layer.kernel_size),
                "padding": _pair(layer.padding), "ceil_mode": bool(layer.ceil_mode)}
    raise ValueError(f"cannot export a {type(layer).__name__} layer; the browser supports {LAYER_TYPES}")


@torch.no_grad()
def export_decoder(model: LatentModel) -> dict[str, Any]:
    """The model's decoder as a JSON-able dict (layers end with the sigmoid of `model.decode`)."""
    layers = [_export_layer(m) for m in _leaves(model.decoder.body)] + [{"type": "sigmoid"}]
    n_params = sum(p.numel() for p in model.decoder.parameters())
    return {
        "format": FORMAT, "version": VERSION, "kind": model.config.kind, "arch": model.config.arch,
        "latent_dim": int(model.latent_dim), "image_shape": [int(s) for s in model.config.image_shape],
        "n_params": int(n_params), "layers": layers,
    }


@torch.no_grad()
def export_encoder(model: LatentModel) -> dict[str, Any]:
    """The encoder's mean path (image (C, H, W) -> μ (D,)) as a JSON-able dict: its body's layers,
    then the μ head. The log-variance head is left out: the round trip needs μ only."""
    layers = [_export_layer(m) for m in _leaves(model.encoder.body)] + [_export_layer(model.encoder.mu)]
    return {
        "format": FORMAT, "version": VERSION, "kind": model.config.kind, "arch": model.config.arch,
        "latent_dim": int(model.latent_dim), "image_shape": [int(s) for s in model.config.image_shape], "layers": layers,
    }


@torch.no_grad()
def export_judge(judge: Judge) -> dict[str, Any]:
    """A dataset's judge (vae.analysis.judge.Judge) as a JSON-able dict: its net's layers (image
    (C, H, W) -> class logits); the browser takes the softmax as `Judge.judge` does."""
    return {
        "format": FORMAT, "version": VERSION, "key": judge.key, "class_names": [str(c) for c in judge.class_names],
        "image_shape": [int(s) for s in judge.image_shape], "layers": [_export_layer(m) for m in _leaves(judge.net)],
    }


def export_posterior(mu: np.ndarray, var: np.ndarray | None) -> dict[str, Any]:
    """The test sample behind q(z) (vae.analysis.layers.posterior_sample: μ (N, D), σ² (N, D) or None
    for an AE) as a JSON-able dict. σ² travels as log σ²: the encoder's own float32 output, so the
    browser's exp() gives the float64 variances Python uses; an AE sends no log σ² (q(z) is a set
    of points, no density: the meter shows n/a)."""
    mu = np.asarray(mu, np.float64)
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "n": int(mu.shape[0]), "latent_dim": int(mu.shape[1]),
                           "mu": encode_f32(mu), "logvar": None}
    if var is not None:
        out["logvar"] = encode_f32(np.log(np.maximum(np.asarray(var, np.float64), 1e-45)))
    return out


def export_layer(name: str, value: Any, class_count: int = 0) -> dict[str, Any]:
    """One of the map's layers (vae.analysis.layers) as the pad draws it, JSON-able:

      landscape  a Landscape -> {box, n, rgba}: n x n cells, rows bottom-up (as the grid's ys), RGBA
                 bytes (base64) from plots.landscape_rgba, the alpha scaled to 0..255
      prior      a PriorCircles -> {centre, radii}
      aggregate  an Aggregate -> {box, n, density (base64 float32, rows bottom-up) or None, levels}:
                 the contours of mass_levels (50 / 90 / 99 %); None for an AE (q(z) is points)
      ellipses   an Ellipses -> {centres, semi_axes, angles} (lists; an AE's semi-axes are 0)
    """
    from vae.analysis import layers
    from vae.services import plots

    def box_of(xs: np.ndarray, ys: np.ndarray) -> list[list[float]]:
        dx, dy = (float(xs[1] - xs[0]), float(ys[1] - ys[0])) if len(xs) > 1 else (1.0, 1.0)
        return [[float(xs[0]) - dx / 2, float(xs[-1]) + dx / 2], [float(ys[0]) - dy / 2, float(ys[-1]) + dy / 2]]

    out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "layer": name}
    if name == "landscape":
        rgba = plots.landscape_rgba(value.classes, value.confidence, class_count)
        rgba[..., 3] *= 255.0
        out.update(box=box_of(value.xs, value.ys), n=int(len(value.xs)),
                   rgba=base64.b64encode(np.clip(np.round(rgba), 0, 255).astype(np.uint8).tobytes()).decode("ascii"))
    elif name == "prior":
        out.update(centre=[float(v) for v in value.centre], radii=[float(r) for r in value.radii])
    elif name == "aggregate":
        out.update(box=box_of(value.xs, value.ys), n=int(len(value.xs)), levels=layers.mass_levels(value).tolist(),
                   density=None if value.density is None else encode_f32(value.density))
    elif name == "ellipses":
        out.update(centres=np.asarray(value.centres, np.float64).tolist(), semi_axes=np.asarray(value.semi_axes, np.float64).tolist(),
                   angles=np.asarray(value.angles, np.float64).tolist())
    else:
        raise ValueError(f"unknown layer {name!r}; the pad draws landscape, prior, aggregate and ellipses")
    return out


def export_map(lmap: LatentMap, labels: np.ndarray | None = None) -> dict[str, Any]:
    """A fitted map as a JSON-able dict: the points to draw (+ labels) and what lift/locate need."""
    points = np.asarray(lmap.points_, np.float32)
    out: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "method": lmap.method, "latent_dim": int(lmap.latent_dim_),
        "n": int(points.shape[0]), "points": encode_f32(points),
    }
    if labels is not None:
        labels = np.asarray(labels).astype(int).ravel()
        if labels.shape[0] != points.shape[0]:
            raise ValueError(f"need one label per map point ({points.shape[0]}), got {labels.shape[0]}")
        out["labels"] = labels.tolist()
    pca = getattr(lmap, "pca_", None)
    if lmap.method == "tsne":
        out.update(lift="idw", k=int(lmap.n_neighbors), mu=encode_f32(lmap.mu_))
    elif lmap.method == "pca" and pca is not None:
        if pca.whiten:
            raise ValueError("a whitened PCA map cannot be exported")
        out.update(lift="linear", mean=encode_f32(pca.mean_), components=encode_f32(pca.components_))
    else:
        out.update(lift="slice")
    return out


# ---- what the browser sends back -----------------------------------------------------------


def _finite_numbers(values: Any, count: int) -> np.ndarray | None:
    """`values` as (count,) float32 if it is a list of exactly `count` finite JSON numbers, else None."""
    if not isinstance(values, (list, tuple)) or len(values) != count:
        return None
    # bool is an int in Python, and numpy would happily parse "1.5": only real numbers pass
    if not all(type(v) in (int, float) for v in values):
        return None
    try:
        out = np.asarray(values, dtype=np.float64)
    except (OverflowError, ValueError):  # an int too large for a float
        return None
    with np.errstate(over="ignore"):
        out = out.astype(np.float32)
    return out if bool(np.isfinite(out).all()) else None  # also refuses values beyond float32's range


def read_release(
    report: Any, latent_dim: int, image_shape: Sequence[int], n_decoders: int,
) -> tuple[np.ndarray, list[np.ndarray | None]] | None:
    """A pad's release report {z, pixels, ...} as the browser sent it -> (z, pixels), or None.

    z must be a list of `latent_dim` finite numbers, else the whole report is refused (None).
    pixels: one entry per decoder, each (C, H, W) float32 when the browser sent C*H*W finite
    numbers and None otherwise (missing, too large to send, or malformed); always `n_decoders`
    entries, whatever the browser sent.
    """
    if not isinstance(report, dict):
        return None
    z = _finite_numbers(report.get("z"), int(latent_dim))
    if z is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    sent = report.get("pixels")
    sent = sent if isinstance(sent, list) else []
    pixels: list[np.ndarray | None] = []
    for k in range(n_decoders):
        values = _finite_numbers(sent[k], math.prod(shape)) if k < len(sent) else None
        pixels.append(None if values is None else values.reshape(shape))
    return z, pixels
