"""The Live pad as one self-contained HTML file, and the data dict every pad host sends.

`pad_data` builds the one dict the pad's JavaScript (pages/ui/latent_pad/pad.js) receives:
the Live pad page sends it through Streamlit (st.components.v2), the standalone file embeds
it as JSON. `standalone_html` writes the file: pad.html, pad.css and the scripts the
component uses (read by the component's own `JS_MODULES` list), a small host shim
(standalone.js) instead of Streamlit, and the data with the decoders' weights inlined. It
fetches nothing, so it opens from file:// or any static host: no server, no network.

Where the front-end files are (`PAD_ASSETS`): they belong beside the component's Python in
pages/ui/latent_pad (DESIGN.md), but `vae/` never imports `pages/` (that would import
Streamlit), so the folder is named here as a path, the one place that does, and the page
reads the same files through its own module. The order of the scripts is the component's
`JS_MODULES`, read from its source with `ast` (not imported: no Streamlit), so there is
one list, wherever a script is added.

Size. The default 2-D MNIST pair has 2 x 315,584 decoder weights: 2.5 MB as float32, 3.4 MB
as base64. float16 is too coarse (the decode moves by up to 8e-4, measured, and the pad
promises PyTorch's decode within 1e-4). So each weight travels as an integer code on a step,
value = float32(code * step) (`quantise`, `dequantise`): an error of at most half a step
whatever the weight's size, which is what the decode's error depends on (a float's error grows
with the weight). The steps are chosen by measurement (`choose_steps`): the coarsest whose
decode, evaluated in float64 with the dequantised float32 weights as the browser evaluates it,
stays within `PACK_TOLERANCE` of PyTorch's float32 decode on points the pad can reach (a grid
over the map and the test codes). First one step per tensor, its standard deviation times
2**(-k/2), one k for all; then, on an MLP decoder, a step per row of its output layer (row i
moves pixel i alone: the pixels that stay black or white wherever the pad goes take far coarser
steps), the other layers on half the step. Measured on the default pair (VAE / AE): one k for
all 652 / 640 kB (16.5 bits a weight; one k per tensor saves 0-4 % more), a step per row 455 /
480 kB (11.5 / 12.2 bits), where the mantissa rounding this replaced (14 of 23 bits kept) took
698 / 708 kB (17.7 bits).

The format (`pack_export`, and its inverse `unpack_decoder`, which standalone.js does value for
value): each "weight" / "bias" of the export becomes {"at", "n", "rows", "step_at"}: its n values
from offset `at`, in `rows` equal rows, row r on step `step_at + r`. `packed` holds one deflated
blob: every step as little-endian float32, then the codes zigzagged (0, -1, 1, -2 -> 0, 1, 2, 3)
and split into byte planes, low byte first (`bytes_per_code` planes of `n` bytes). Deflate's
default strategy, not Huffman coding alone: rows on coarse steps leave long runs of zero bytes in
the high planes (455 against 516 kB for the VAE). The shim inflates it with the browser's own
DecompressionStream and hands pad.js Float32Arrays (decoder.js's f32 takes them as they are).

The hole meter. Where the dataset has a judge, the file carries it packed the same way (its class
probabilities on decodes of the reachable points within PACK_TOLERANCE of the float32 judge's;
one step per tensor: its softmax ties the rows together), then each VAE's q(z) sample, then each
encoder (the round trip, float32: about 1.7 MB for the default MNIST MLP), each only while the
file stays within MAX_FILE_BYTES; the meter names what was left out ("not in this file"). On the
default 2-D MNIST pair the file holds the judge (about 0.28 MB) and the VAE's q(z) (43 kB) in
1.66 MB; the encoders do not fit. On digits everything does.
"""

from __future__ import annotations

import ast
import base64
import copy
import html
import json
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae.analysis.judge import Judge, judge_for
from vae.analysis.layers import posterior_sample
from vae.analysis.maps import LatentMap, compute_map, default_method
from vae.core.checkpoint import Checkpoint, load_checkpoint
from vae.core.data import Dataset, load_dataset
from vae.core.device import model_device
from vae.core.errors import LatentExplorerError
from vae.core.models import LatentModel
from vae.services import browser_export, plots

PAD_ASSETS = Path(__file__).resolve().parents[2] / "pages" / "ui" / "latent_pad"  # the pad's front end
COMPONENT_MODULE = "__init__.py"  # the component's Python: its JS_MODULES names the scripts, in order
HOST_SHIM = "standalone.js"  # the standalone file's stand-in for Streamlit
MAX_REPORTED_PIXELS = 4096  # the pad's release report carries pixels up to this size (pages/ui/latent_pad)
MAX_FILE_BYTES = 2_000_000  # the file's bound: the hole meter's optional parts go in only while it holds
PACK_TOLERANCE = 5e-5  # the largest decode change packing may cause: half the 1e-4 the pad promises
ENTRY = re.compile(r"^export default ", flags=re.M)  # the pad's entry, renamed to mountPad for the shim
MAX_STEP_K = 60  # the finest step tried: a tensor's scale times 2**(-60 / 2)
K_START = 28  # the first k tried: about what the default pair's decoders and judge keep (a tensor's scale / 16384)


class StandalonePadError(LatentExplorerError):
    """The checkpoints cannot make a standalone pad (wrong kind, mismatched pair)."""


# ---- the data dict: one builder for every host ----------------------------------------------


def map_ranges(lmap: LatentMap, latent_dim: int, z: np.ndarray | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """The pad's x / y ranges: the test codes, the prior's mean z = 0 and `z` (where Python puts
    the crosshair), as the map places them, with a margin. The crosshair starts at z = 0, and an
    AE's or a briefly trained model's codes often exclude it (e.g. all in [0.3, 0.94]): a range
    of the codes alone would leave the crosshair off the map, invisible."""
    anchors = [np.zeros(latent_dim, np.float32)]
    if z is not None:
        z = np.asarray(z, np.float32).ravel()
        if z.shape == (latent_dim,) and np.isfinite(z).all():
            anchors.append(z)
    where = lmap.locate(np.stack(anchors))
    (x0, x1), (y0, y1) = plots.axis_ranges(lmap.points_, where[np.isfinite(where).all(1)])
    if latent_dim == 1:
        y0, y1 = -1.0, 1.0  # a 1-D map is a strip: its points sit at y = 0, no y axis is drawn
    return (x0, x1), (y0, y1)


def pad_data(
    *,
    pad_id: str,
    decoders: Sequence[tuple[str, str, dict[str, Any] | None]],
    map_id: str,
    map_export: dict[str, Any] | None,
    ranges: tuple[tuple[float, float], tuple[float, float]],
    axis_titles: tuple[str, str],
    class_names: Sequence[str],
    sliders: Sequence[tuple[float, float]] | None,
    z: np.ndarray,
    z_nonce: int,
    image_px: int,
    test_hooks: bool,
    max_pixels: int = MAX_REPORTED_PIXELS,
    **extra: Any,
) -> dict[str, Any]:
    """The dict pad.js's entry gets as `data`. `decoders`: (payload id, label, export or None
    when the browser already holds it); `map_export` likewise. `extra`: further JSON-able keys
    of the pad's features (e.g. its map layers or a hole meter), passed through as they are;
    pad.js treats a missing one as "none". JSON-able."""
    (x0, x1), (y0, y1) = ranges
    return {
        **extra,
        "pad_id": pad_id,
        "decoders": [{"id": pid, "label": label, "export": export} for pid, label, export in decoders],
        "map": {
            "id": map_id, "export": map_export,
            "ranges": [[float(x0), float(x1)], [float(y0), float(y1)]], "axis_titles": list(axis_titles),
            "class_names": [str(c) for c in class_names],
            "colors": [plots.class_color(i) for i in range(max(len(class_names), 1))],
        },
        "sliders": [[float(lo), float(hi)] for lo, hi in sliders] if sliders is not None else None,
        "z_in": {"z": [float(v) for v in np.asarray(z, np.float64).ravel()], "nonce": int(z_nonce)},
        "image_px": int(image_px),
        "max_pixels": int(max_pixels),
        "test_hooks": bool(test_hooks),
    }


# ---- the front-end files ----------------------------------------------------------------------


def js_modules(folder: Path = PAD_ASSETS) -> tuple[str, ...]:
    """The component's `JS_MODULES` (its scripts, in order), read from its source without importing it."""
    source = (folder / COMPONENT_MODULE).read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["JS_MODULES"]:
            return tuple(str(n) for n in ast.literal_eval(node.value))
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "JS_MODULES" and node.value is not None:
            return tuple(str(n) for n in ast.literal_eval(node.value))
    raise RuntimeError(f"{folder / COMPONENT_MODULE} defines no JS_MODULES")


def pad_assets(folder: Path = PAD_ASSETS) -> tuple[str, str, str]:
    """(html, css, js) as the Live pad component gets them: js is the scripts of `js_modules`
    joined in order, an ES module whose default export is the pad's entry."""
    read = lambda name: (folder / name).read_text(encoding="utf-8")  # noqa: E731
    return read("pad.html"), read("pad.css"), "\n".join(read(name) for name in js_modules(folder))


def _script_text(js: str) -> str:
    """Script text safe inside <script>: no "</script" (nor "<!--") can end or confuse it."""
    return js.replace("</", "<\\/").replace("<!--", "<\\!--")


def _json_text(value: Any) -> str:
    """JSON safe inside a <script type="application/json">: every "<" escaped (JSON.parse reads it back)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


# ---- packing the weights: integer codes of a measured step -------------------------------------


def zigzag(codes: np.ndarray) -> np.ndarray:
    """int codes (|c| < 2**31) -> uint32 (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...): small codes of either sign, small numbers."""
    c = np.asarray(codes, np.int64)
    return ((c << 1) ^ (c >> 63)).astype(np.uint32)


def unzigzag(u: np.ndarray) -> np.ndarray:
    """Inverse of `zigzag`: uint32 -> int64 codes (standalone.js: `(u >>> 1) ^ -(u & 1)`)."""
    u = np.asarray(u, np.int64)
    return (u >> 1) ^ -(u & 1)


def dequantise(codes: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """float32 values of integer `codes` (rows, ...) with one float32 step per row: the float64 product
    of code and step, rounded to float32 once, exactly as standalone.js's Math.fround(code * step)."""
    steps = np.asarray(steps, np.float32).astype(np.float64)
    rows = np.asarray(codes, np.int64).reshape(len(steps), -1).astype(np.float64)
    return (rows * steps[:, None]).astype(np.float32).ravel()


def quantise(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """int64 codes of float32 `values` (split into len(steps) equal rows), each row on its step: round(value / step)."""
    steps = np.asarray(steps, np.float32).astype(np.float64)
    rows = np.asarray(values, np.float32).reshape(len(steps), -1).astype(np.float64)
    return np.rint(rows / steps[:, None]).astype(np.int64).ravel()


def _scale(values: np.ndarray) -> float:
    """The tensor's unit for its steps: its standard deviation (its largest magnitude, or 1, where that is 0)."""
    return float(values.std()) or float(np.abs(values).max()) or 1.0


def _steps(scale: float, ks: np.ndarray | int) -> np.ndarray:
    """float32 steps scale * 2**(-k / 2), one per k of `ks` (one k: one step), never below float32's smallest normal."""
    steps = scale * 2.0 ** (-np.atleast_1d(np.asarray(ks, np.float64)) / 2)
    return np.maximum(steps, np.finfo(np.float32).tiny).astype(np.float32)


def _coarsest_k(measure: Callable[[int], float], k_max: int, start: int = K_START, stride: int = 2) -> tuple[int, float]:
    """(k, measure(k)): the smallest k in 0 .. k_max with measure(k) <= PACK_TOLERANCE (the measure grows
    with the step, so with 2**(-k/2) it falls as k grows), from `start` in strides, then bisection
    (three measures where k is within one of `start`); (k_max, its measure) where even k_max does not keep it."""
    known: dict[int, float] = {}

    def ok(k: int) -> bool:
        if k not in known:
            known[k] = measure(k)
        return known[k] <= PACK_TOLERANCE

    k = min(start, k_max)
    if ok(k):
        while k > 0 and ok(max(k - stride, 0)):
            k = max(k - stride, 0)
        lo, hi = max(k - stride, 0), k  # lo fails (or is hi: 0)
    else:
        while k < k_max and not ok(min(k + stride, k_max)):
            k = min(k + stride, k_max)
        if k == k_max:
            return k_max, known[k_max]
        lo, hi = k, min(k + stride, k_max)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi, known[hi]


def choose_steps(
    values: Sequence[np.ndarray],
    change_of: Callable[[list[np.ndarray]], float],
    rows: int = 0,
    row_change_of: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> tuple[list[np.ndarray], float]:
    """The coarsest steps whose dequantised weights keep the measured change within PACK_TOLERANCE.

    `values`: the weights, float32, in the order `change_of` takes them; `change_of(dequantised)`:
    the largest change of what the pad shows (decodes, class probabilities) with those weights.
    First one step per tensor: its scale (standard deviation) times 2**(-k/2), one k for all, the
    coarsest that keeps the tolerance (`_coarsest_k` over k = 0 .. MAX_STEP_K, each try measured).
    Then, with `row_change_of` (the change of each of the `rows` outputs, (rows,)), the last two
    tensors (the output layer's weight (rows, in) and bias (rows,)) get a k per row, the others one
    k finer (half the step): row i moves output i alone (a sigmoid per pixel), so the same
    bisection runs for every row at once, one measure a round, and each row takes the coarsest k
    that keeps its output within the tolerance (pixels the decoder paints black or white wherever
    the pad goes take far coarser steps). The whole is measured again; where that fails, the
    one-k steps stand.
    Returns (the float32 steps of each tensor, one per row, and the measured change); the finest
    steps where none keeps the tolerance (their change is then what is recorded)."""
    values = [np.asarray(v, np.float32).ravel() for v in values]
    scales = [_scale(v) for v in values]
    # the finest k whose codes stay well within int32 (|code| < 2**30) for every tensor
    k_max = min([MAX_STEP_K, *(int(2 * np.log2(2**30 * s / m)) for v, s in zip(values, scales, strict=True)
                               if (m := float(np.abs(v).max(initial=0))) > 0)])
    k_max = max(k_max, 0)

    def uniform(k: int) -> list[np.ndarray]:
        return [_steps(s, k) for s in scales]

    def dequantised(tensors: list[np.ndarray], steps: list[np.ndarray]) -> list[np.ndarray]:  # as the browser gets them
        return [dequantise(quantise(v, s), s) for v, s in zip(tensors, steps, strict=True)]

    hi, best = _coarsest_k(lambda k: float(change_of(dequantised(values, uniform(k)))), k_max)
    if best > PACK_TOLERANCE:
        return uniform(hi), best
    if row_change_of is None or len(values) < 2 or values[-1].size != rows or values[-2].size % rows:
        return uniform(hi), best

    finer = uniform(min(hi + 2, k_max))
    fixed = dequantised(values[:-2], finer[:-2])

    def row_changes(ks: np.ndarray) -> np.ndarray:
        return np.asarray(row_change_of([*fixed, *dequantised(values[-2:], [_steps(scales[-2], ks), _steps(scales[-1], ks)])]))

    # the same bisection for every row at once: one measure per round tries each row's own middle k
    low, chosen = np.zeros(rows, np.int64), np.full(rows, k_max, np.int64)
    while (low < chosen).any():
        mid = (low + chosen) // 2
        ok = row_changes(mid) <= PACK_TOLERANCE
        chosen, low = np.where(ok, mid, chosen), np.where(ok, low, mid + 1)
    while ((bad := row_changes(chosen) > PACK_TOLERANCE) & (chosen < k_max)).any():  # a row the bisection misjudged: finer
        chosen = np.where(bad, np.minimum(chosen + 1, k_max), chosen)
    rowwise = [*finer[:-2], _steps(scales[-2], chosen), _steps(scales[-1], chosen)]
    measured = float(change_of(dequantised(values, rowwise)))
    return (rowwise, measured) if measured <= PACK_TOLERANCE else (uniform(hi), best)


def pack_export(export: dict[str, Any], steps: Sequence[np.ndarray], change: float) -> dict[str, Any]:
    """A browser_export dict (decoder, judge, encoder) with its weights packed (module doc): the k-th
    "weight" / "bias" becomes {"at": value offset, "n": count, "rows": len(steps[k]), "step_at": offset
    of its steps}, its values the integer codes of `steps[k]` (one float32 step per row), all in one
    deflated blob: the steps as little-endian float32, then the zigzagged codes' byte planes (low byte
    first); `change` is recorded as measured."""
    export = copy.deepcopy(export)
    codes, all_steps, at, step_at, k = [], [], 0, 0, 0
    for layer in export["layers"]:
        for key in ("weight", "bias"):
            if key in layer:
                values, rows = browser_export.decode_f32(layer[key]), np.asarray(steps[k], np.float32)
                if values.size % rows.size:
                    raise ValueError(f"{values.size} values do not split into {rows.size} rows")
                layer[key] = {"at": at, "n": int(values.size), "rows": int(rows.size), "step_at": step_at}
                codes.append(zigzag(quantise(values, rows)))
                all_steps.append(rows)
                at, step_at, k = at + values.size, step_at + rows.size, k + 1
    if k != len(steps):
        raise ValueError(f"{len(steps)} step arrays for {k} weight tensors")
    flat = np.concatenate(codes) if codes else np.zeros(0, np.uint32)
    width = max(1, (int(flat.max(initial=0)).bit_length() + 7) // 8)  # bytes the largest code needs
    planes = flat.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width].T.tobytes()
    head = (np.concatenate(all_steps) if all_steps else np.zeros(0, np.float32)).astype("<f4").tobytes()
    export["packed"] = {
        "encoding": "deflate", "n": int(flat.size), "n_steps": step_at, "bytes_per_code": width,
        "max_change": change, "data": base64.b64encode(_deflate(head + planes)).decode("ascii"),
    }
    return export


def _parameters(module: torch.nn.Module, export: dict[str, Any]) -> list[np.ndarray]:
    """The export's weights, float32, in `module.parameters()` order (the same order: checked by size)."""
    values = [browser_export.decode_f32(layer[key]) for layer in export["layers"] for key in ("weight", "bias") if key in layer]
    sizes = [p.numel() for p in module.parameters()]
    if [v.size for v in values] != sizes:
        raise ValueError(f"the export's weights ({[v.size for v in values]}) are not the module's ({sizes})")
    return values


@torch.no_grad()
def _float64_copy(module: torch.nn.Module, values: Sequence[np.ndarray]) -> torch.nn.Module:
    """A float64 copy of `module` on the CPU holding `values` (float32 weights), as the browser evaluates it."""
    out = copy.deepcopy(module).cpu().double()
    for p, v in zip(out.parameters(), values, strict=True):
        p.copy_(torch.from_numpy(np.asarray(v, np.float32).astype(np.float64).reshape(p.shape)))
    return out


@torch.no_grad()
def pack_decoder(model: LatentModel, probe: np.ndarray) -> dict[str, Any]:
    """`browser_export.export_decoder(model)` packed (`pack_export`). `probe` (N, D): latent points the
    pad can reach; the decode of each with the packed weights, in float64 as the browser computes
    it, stays within PACK_TOLERANCE of PyTorch's float32 decode (`packed["max_change"]`, measured)."""
    export = browser_export.export_decoder(model)
    z = torch.as_tensor(np.asarray(probe, np.float32), device=model_device(model))
    reference = model.decode(z).double().cpu().reshape(len(z), -1)
    z64 = z.cpu().double()

    def outputs(values: list[np.ndarray]) -> torch.Tensor:
        return (torch.sigmoid(_float64_copy(model.decoder, values)(z64).reshape(len(z64), -1)) - reference).abs()

    rows = reference.shape[1] if isinstance(_last_layer(model.decoder), torch.nn.Linear) else 0
    steps, change = choose_steps(_parameters(model.decoder, export), lambda v: float(outputs(v).max()), rows,
                                 (lambda v: outputs(v).amax(0).numpy()) if rows else None)
    return pack_export(export, steps, change)


def _last_layer(module: torch.nn.Module) -> torch.nn.Module | None:
    """The module's last layer that has weights (in call order)."""
    leaves = [m for m in module.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
    return leaves[-1] if leaves else None


@torch.no_grad()
def pack_judge(judge: Judge, images: torch.Tensor) -> dict[str, Any]:
    """`browser_export.export_judge(judge)` packed (`pack_export`). `images` (N, C, H, W): what the judge
    sees in the pad (decodes of reachable points); its class probabilities on each with the packed
    weights stay within PACK_TOLERANCE of the float32 judge's (`packed["max_change"]`, measured). Measured
    in float32 (a float64 CNN is four times slower on a CPU, and its probabilities differ from float32's
    by about 1e-7, far under the tolerance); the decoders' float64 is for their per-row steps."""
    export = browser_export.export_judge(judge)
    x = images.float().cpu()
    net = copy.deepcopy(judge.net).cpu().float()
    reference = torch.softmax(net(x).double(), dim=1)

    def change(values: list[np.ndarray]) -> float:
        for p, v in zip(net.parameters(), values, strict=True):
            p.copy_(torch.from_numpy(v.reshape(p.shape)))
        return float((torch.softmax(net(x).double(), dim=1) - reference).abs().max())

    return pack_export(export, *choose_steps(_parameters(judge.net, export), change))


def _deflate(data: bytes) -> bytes:
    """zlib format (DecompressionStream's "deflate") at level 9, default strategy: LZ77 finds the long runs
    of zero bytes in the codes' high planes (rows on coarse steps), which Huffman coding alone cannot shorten."""
    return zlib.compress(data, 9)


def unpack_decoder(packed: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `pack_export` (what standalone.js does, value for value): the plain base64 float32 export."""
    meta = packed["packed"]
    width, n, n_steps = int(meta["bytes_per_code"]), int(meta["n"]), int(meta["n_steps"])
    raw = zlib.decompress(base64.b64decode(meta["data"]))
    steps = np.frombuffer(raw[: 4 * n_steps], "<f4")
    planes = np.frombuffer(raw[4 * n_steps :], np.uint8).reshape(width, n).astype(np.uint32)
    codes = unzigzag(sum((planes[p] << np.uint32(8 * p) for p in range(width)), np.zeros(n, np.uint32)))
    out = {k: v for k, v in packed.items() if k != "packed"}
    out["layers"] = []
    for layer in packed["layers"]:
        plain = dict(layer)
        for key in ("weight", "bias"):
            if key in layer:
                ref = layer[key]
                at, count, rows, step_at = int(ref["at"]), int(ref["n"]), int(ref["rows"]), int(ref["step_at"])
                plain[key] = browser_export.encode_f32(dequantise(codes[at : at + count], steps[step_at : step_at + rows]))
        out["layers"].append(plain)
    return out


def reachable_points(lmap: LatentMap, ranges: tuple[tuple[float, float], tuple[float, float]],
                     sliders: Sequence[tuple[float, float]] | None = None, grid: int = 31, codes: int = 1000, seed: int = 0) -> np.ndarray:
    """(N, D) float32 latent points the pad can reach: the lift of a grid over its map, up to
    `codes` test codes (a seeded sample), and (with sliders) random points in the sliders' box."""
    (x0, x1), (y0, y1) = ranges
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    mu = np.asarray(lmap.mu_, np.float32)
    mu = mu[np.random.default_rng(seed).permutation(len(mu))[:codes]]
    parts = [lmap.lift(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)), mu]
    if sliders:
        lo, hi = np.array(sliders, np.float32).T
        parts.append(np.random.default_rng(seed).uniform(lo, hi, (grid * grid, len(lo))).astype(np.float32))
    return np.concatenate(parts).astype(np.float32)


# ---- the file ---------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Latent Explorer export-pad">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 16px 24px; font-family: system-ui, sans-serif; color: #222; background: #fff; }}
.sp-head h1 {{ font-size: 24px; margin: 0 0 4px; }}
.sp-head p {{ margin: 0 0 16px; font-size: 16px; opacity: 0.8; }}
{css}
</style>
</head>
<body>
<header class="sp-head"><h1>{title}</h1><p>{subtitle}</p></header>
<main id="latent-pad-host">{pad_html}</main>
<script type="application/json" id="latent-pad-data">{data}</script>
<script type="module">
{js}
</script>
</body>
</html>
"""


def _meters(
    decoders: Sequence[tuple[str, Checkpoint]], judge: Judge | None, posteriors: Sequence[tuple[np.ndarray, np.ndarray | None]] | None,
    probe: np.ndarray, fits: Callable[[list[dict[str, Any]], int], bool],
) -> list[dict[str, Any]] | None:
    """The hole meters' entries of the data dict (pages/ui/latent_pad/__init__.py's meter_payload,
    every export inlined): the decoders alone, then each optional part in turn (the judge, each
    VAE's q(z) sample, each encoder) kept where `fits(meters, 0)` (the file stays within its bound),
    else listed in the meter's `absent` (the meter says "not in this file"). None without `posteriors`,
    or when none of the parts fits."""
    if posteriors is None:
        return None
    meters: list[dict[str, Any]] = [
        {"kind": ckpt.kind, "judge": None, "encoder": None, "posterior": None, "judge_pending": False, "absent": []}
        for _, ckpt in decoders
    ]

    def attach(k: int, name: str, part: Any, bound: int) -> bool:
        """Put `part` (or what the callable `part` makes) into meter k if the file still fits;
        `bound`: a cheap lower bound on its bytes, checked first (nothing is made when that fails)."""
        if not bound or fits(meters, bound):
            meters[k][name] = part() if callable(part) else part
            if fits(meters, 0):
                return True
            meters[k][name] = None
        meters[k]["absent"].append(name)
        return False

    if judge is not None:
        def packed_judge() -> dict[str, Any]:  # measured on what the judge sees in the pad: decodes of the reachable points
            with torch.no_grad():
                images = torch.cat([ckpt.model.decode(torch.as_tensor(probe, device=model_device(ckpt.model))).cpu() for _, ckpt in decoders])
            return {"id": f"judge-{judge.key}", "export": pack_judge(judge, images)}

        n_judge = sum(p.numel() for p in judge.net.parameters()) // 4  # packed: over 2 bits a weight (the MNIST judge: about 15)
        if attach(0, "judge", packed_judge, n_judge):
            for m in meters[1:]:
                m["judge"] = {"id": f"judge-{judge.key}", "export": None}  # one judge: pad.js builds it once, by id
        else:
            for m in meters[1:]:
                m["absent"].append("judge")
    for k, ((_, ckpt), (mu, var)) in enumerate(zip(decoders, posteriors, strict=True)):
        if var is not None:  # an AE's q(z) is points, no density: its meter says n/a, nothing to send
            post = browser_export.export_posterior(mu, var)
            attach(k, "posterior", {"id": f"q-{ckpt.sha256[:16]}-{len(mu)}", "export": post}, 0)
    for k, (_, ckpt) in enumerate(decoders):
        n_enc = sum(p.numel() for p in ckpt.model.encoder.parameters())
        attach(k, "encoder", lambda ckpt=ckpt: {"id": f"enc-{ckpt.sha256[:16]}", "export": browser_export.export_encoder(ckpt.model)},
               n_enc * 4)  # float32, unpacked
    if not any(m[name] for m in meters for name in ("judge", "encoder", "posterior")):
        return None  # nothing of the meter fits: no meter of three "not in this file" lines
    return meters


def standalone_html(
    decoders: Sequence[tuple[str, Checkpoint]],
    lmap: LatentMap,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    map_id: str,
    axis_titles: tuple[str, str],
    sliders: Sequence[tuple[float, float]] | None = None,
    heading: tuple[str, str] = ("Latent pad", ""),
    test_hooks: bool = False,
    folder: Path = PAD_ASSETS,
    judge: Judge | None = None,
    posteriors: Sequence[tuple[np.ndarray, np.ndarray | None]] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> str:
    """The standalone pad: one HTML file, the same data dict the Live pad sends (z = 0).
    `heading`: the page's title and the line under it (`page_heading`). With `posteriors` ((μ, σ²)
    per decoder, layers.posterior_sample) the decoded images get the hole meter, with the dataset's
    `judge` where there is one: the judge (packed like the decoders: its class probabilities within
    PACK_TOLERANCE of the float32 judge's), each VAE's q(z) sample and each encoder (the round trip)
    go in, in that order, each only while the file stays within `max_bytes`; what is left out the
    meter names as "not in this file". The decoders and the map always go in."""
    dim = decoders[0][1].model_config.latent_dim
    z = np.zeros(dim, np.float32)
    ranges = map_ranges(lmap, dim, z)
    probe = reachable_points(lmap, ranges, sliders)
    data = pad_data(
        pad_id="standalone",
        decoders=[(f"dec-{ckpt.sha256[:16]}", label, pack_decoder(ckpt.model, probe)) for label, ckpt in decoders],
        map_id=map_id, map_export=browser_export.export_map(lmap, labels), ranges=ranges, axis_titles=axis_titles,
        class_names=class_names, sliders=sliders, z=z, z_nonce=0, image_px=260 if len(decoders) > 1 else 320,
        test_hooks=test_hooks,
    )
    pad_html, css, js = pad_assets(folder)
    entry, found = ENTRY.subn("const mountPad = ", js, count=2)
    if found != 1:
        raise RuntimeError(f"the pad's scripts need exactly one `export default`, found {found}")
    shim = (folder / HOST_SHIM).read_text(encoding="utf-8")

    def page(meters: list[dict[str, Any]] | None) -> str:
        return PAGE.format(
            title=html.escape(heading[0]), subtitle=html.escape(heading[1]), css=css, pad_html=pad_html,
            data=_json_text({**data, "meters": meters}), js=_script_text(entry + "\n;\n" + shim),
        )

    def fits(meters: list[dict[str, Any]], more: int) -> bool:
        return len(page(meters).encode("utf-8")) + more <= max_bytes

    return page(_meters(decoders, judge, posteriors, probe, fits))


def axis_titles(method: str, latent_dim: int) -> tuple[str, str]:
    """The map's axis titles, as the Live pad page writes them."""
    if method == "identity":
        return ("z₁", "z₂") if latent_dim == 2 else ("z₁", "")
    projection = "PCA" if method == "pca" else "t-SNE"
    return f"{projection} 1", f"{projection} 2"


def page_heading(decoders: Sequence[tuple[str, Checkpoint]], dataset: str, fallback_name: str = "latent") -> tuple[str, str]:
    """The standalone file's title and the line under it."""
    first = decoders[0][1]
    kinds = " + ".join(label for label, _ in decoders)
    return (
        f"Latent pad: {first.pair or fallback_name}",
        f"{kinds}, {first.model_config.latent_dim}-D latent, {dataset}. Drag the crosshair, or click the map and "
        "use the arrow keys; your browser decodes every frame. Works offline: this file holds everything it needs.",
    )


# ---- from checkpoint files (the CLI) -----------------------------------------------------------


def load_pair(vae_path: str | Path, ae_path: str | Path | None = None) -> list[tuple[str, Checkpoint]]:
    """The checkpoints to export, checked: a VAE first, then optionally an AE of the same
    dataset, latent size and image shape. Raises a one-line LatentExplorerError."""
    vae = load_checkpoint(vae_path)
    if vae.kind != "vae":
        raise StandalonePadError(f"{Path(vae_path).name} is an {vae.kind.upper()}; the first checkpoint must be a VAE (an AE may follow it)")
    out = [("VAE", vae)]
    if ae_path is not None:
        ae = load_checkpoint(ae_path)
        if ae.kind != "ae":
            raise StandalonePadError(f"{Path(ae_path).name} is a {ae.kind.upper()}; the second checkpoint must be an AE")
        mine, theirs = vae.dataset.get("name"), ae.dataset.get("name")
        if mine != theirs or vae.model_config.latent_dim != ae.model_config.latent_dim or vae.model_config.image_shape != ae.model_config.image_shape:
            raise StandalonePadError(
                f"the VAE and the AE do not make a pair: {mine}, {vae.model_config.latent_dim}-D against {theirs}, "
                f"{ae.model_config.latent_dim}-D; export-pad needs two models of the same dataset and latent size"
            )
        out.append(("AE", ae))
    return out


def export_pad(
    vae_path: str | Path, ae_path: str | Path | None = None, data_root: str | Path | None = None, test_hooks: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> str:
    """`python -m vae export-pad`: the standalone pad of a VAE (and an AE) as HTML text; the hole
    meter's parts go in while the file stays within `max_bytes` (`standalone_html`)."""
    decoders = load_pair(vae_path, ae_path)
    first = decoders[0][1]
    data: Dataset = load_dataset(first.dataset.get("name") or "digits", data_root=data_root)
    if data.image_shape != tuple(first.model_config.image_shape):
        raise StandalonePadError(f"dataset {data.name!r} has {data.image_shape} images; the model needs {tuple(first.model_config.image_shape)}")
    method = default_method(first.model_config.latent_dim)
    lmap, index = compute_map(first.model, data.x_test, method, first.sha256, cache=False)
    judge = judge_for(data)  # the dataset's judge (cached on disk; trained once, seconds), None without labels
    posteriors = [posterior_sample(ckpt.model, data.x_test) for _, ckpt in decoders]
    return standalone_html(
        decoders, lmap, data.y_test[index].numpy(), data.class_names, map_id=f"map-{first.sha256[:16]}-{method}-{len(index)}",
        axis_titles=axis_titles(method, first.model_config.latent_dim), heading=page_heading(decoders, data.name, Path(vae_path).stem),
        test_hooks=test_hooks, judge=judge, posteriors=posteriors, max_bytes=max_bytes,
    )
