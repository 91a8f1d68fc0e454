"""Export a decoder and a 2-D map for evaluation in the browser (the Live pad).

The browser gets plain JSON: a list of layers, each with its shapes and its weights as
base64 of little-endian float32 (a third larger than the raw bytes, far smaller than a
JSON list of numbers, and decoded in one pass). `decode_from_export` is the numpy
reference of exactly what the JavaScript evaluates; the tests hold it, and the
JavaScript, to PyTorch.

Layer types, applied in order to a flat (N, D) batch:

  linear     {shape: [out, in], weight, bias}            y = x W^T + b
  relu       {}                                           max(x, 0)
  unflatten  {shape: [C, H, W]}                           view a flat row as C x H x W
  convT      {shape: [C_in, C_out, kH, kW], stride, padding, output_padding, weight, bias}
             PyTorch's ConvTranspose2d (groups = dilation = 1)
  sigmoid    {}                                           logits -> pixel probabilities

The map export carries what `LatentMap.lift` and `locate` need: `slice` (identity: the
position is z), `linear` (PCA: mean and components) or `idw` (t-SNE: points, mu, k).

What comes back from the browser is untrusted: `read_release` checks a pad's release report
(z and the browser's pixels) before any of it reaches numpy or the page.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from vae.embed import LatentMap
from vae.models import LatentModel

FORMAT = "latent-explorer-web"
VERSION = 1
LAYER_TYPES = ("linear", "relu", "unflatten", "convT", "sigmoid")


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
        if layer.groups != 1 or _pair(layer.dilation) != [1, 1] or layer.padding_mode != "zeros":
            raise ValueError("only ConvTranspose2d with groups=1, dilation=1 and zero padding can be exported")
        return {
            "type": "convT", "shape": list(layer.weight.shape), "stride": _pair(layer.stride), "padding": _pair(layer.padding),
            "output_padding": _pair(layer.output_padding), "weight": encode_f32(layer.weight), "bias": encode_f32(layer.bias),
        }
    raise ValueError(f"cannot export a {type(layer).__name__} layer; the browser decoder supports {LAYER_TYPES}")


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


# ---- numpy reference of the JavaScript ---------------------------------------------------


def _conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: list[int], padding: list[int], output_padding: list[int]) -> np.ndarray:
    """PyTorch's ConvTranspose2d: x (N, Ci, H, W), w (Ci, Co, kH, kW) -> (N, Co, H', W'),
    H' = (H - 1) * stride - 2 * padding + kH + output_padding. Each input pixel scatters its
    kernel into the output at stride spacing; the padding is then cropped off both sides."""
    n, _, h, wd = x.shape
    _, co, kh, kw = w.shape
    (sh, sw), (ph, pw), (oh, ow) = stride, padding, output_padding
    hout, wout = (h - 1) * sh - 2 * ph + kh + oh, (wd - 1) * sw - 2 * pw + kw + ow
    full = np.zeros((n, co, (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            full[:, :, ky : ky + (h - 1) * sh + 1 : sh, kx : kx + (wd - 1) * sw + 1 : sw] += np.einsum("nihw,io->nohw", x, w[:, :, ky, kx])
    return full[:, :, ph : ph + hout, pw : pw + wout] + b[None, :, None, None]


def decode_from_export(export: dict[str, Any], z: np.ndarray) -> np.ndarray:
    """z (N, D) or (D,) -> pixel probabilities (N, C, H, W) float32, from the export alone
    (float64 arithmetic on the float32 weights, like the browser)."""
    if export.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} export")
    x = np.asarray(z, dtype=np.float64).reshape(-1, export["latent_dim"])
    n = x.shape[0]
    for layer in export["layers"]:
        kind = layer["type"]
        if kind == "linear":
            out_f, in_f = layer["shape"]
            x = x @ decode_f32(layer["weight"], (out_f, in_f)).astype(np.float64).T + decode_f32(layer["bias"])
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        elif kind == "unflatten":
            x = x.reshape(n, *layer["shape"])
        elif kind == "convT":
            w = decode_f32(layer["weight"], layer["shape"]).astype(np.float64)
            x = _conv_transpose(x, w, decode_f32(layer["bias"]).astype(np.float64), layer["stride"], layer["padding"], layer["output_padding"])
        elif kind == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-x))
        else:
            raise ValueError(f"unknown layer type {kind!r}; expected one of {LAYER_TYPES}")
    return x.reshape(n, *export["image_shape"]).astype(np.float32)


def _idw(ref: np.ndarray, values: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Inverse-distance-weighted mean of `values` at the k nearest rows of `ref` (as embed._idw)."""
    out = np.empty((queries.shape[0], values.shape[1]), np.float64)
    k = min(k, ref.shape[0])
    for m, q in enumerate(queries.astype(np.float64)):
        dist = np.sqrt(((ref.astype(np.float64) - q) ** 2).sum(1))
        idx = np.argsort(dist, kind="stable")[:k]
        d = dist[idx]
        weights = (d < 1e-9).astype(np.float64) if d[0] < 1e-9 else 1.0 / np.maximum(d, 1e-12) ** 2
        out[m] = (weights / weights.sum()) @ values[idx].astype(np.float64)
    return out.astype(np.float32)


def lift_from_export(export: dict[str, Any], p: np.ndarray) -> np.ndarray:
    """Map positions (M, 2) -> latent vectors (M, D), as `LatentMap.lift` does."""
    p = np.asarray(p, np.float64).reshape(-1, 2)
    d = export["latent_dim"]
    if export["lift"] == "linear":
        return (p @ decode_f32(export["components"], (2, d)).astype(np.float64) + decode_f32(export["mean"])).astype(np.float32)
    if export["lift"] == "idw":
        return _idw(decode_f32(export["points"], (-1, 2)), decode_f32(export["mu"], (-1, d)), p, export["k"])
    return p[:, :d].astype(np.float32)


def locate_from_export(export: dict[str, Any], z: np.ndarray) -> np.ndarray:
    """Latent vectors (M, D) -> map positions (M, 2), as `LatentMap.locate` does."""
    d = export["latent_dim"]
    z = np.asarray(z, np.float64).reshape(-1, d)
    if export["lift"] == "linear":
        return ((z - decode_f32(export["mean"])) @ decode_f32(export["components"], (2, d)).astype(np.float64).T).astype(np.float32)
    if export["lift"] == "idw":
        return _idw(decode_f32(export["mu"], (-1, d)), decode_f32(export["points"], (-1, 2)), z, export["k"])
    return (np.concatenate([z, np.zeros_like(z)], 1) if d == 1 else z).astype(np.float32)


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
