"""The Live latent pad: a custom component (st.components.v2) that decodes in the browser
while you drag. Not a page: pages/live.py imports it.

Its front end is in this folder, read once at import and passed inline (no build step, no npm):
pad.html, pad.css, and one script made of decoder.js (weights, the decoder's forward pass),
maps.js (lift / locate, slider grid, ticks), meter.js (the hole meter: the judge's and the
encoder's forward passes, q(z)/p(z), the round trip) and layers.js (the map's layers; q(z)'s
contours), all pure maths that Node's tests (tests/js) check against PyTorch, then pad.js (the
DOM, drawing and input).

Data flow. Python sends each decoder's weights and the map's points once per browser
session (`vae.services.browser_export` dicts, cached per checkpoint sha256 with st.cache_data); later
reruns send only their ids and the browser keeps the decoded arrays. The hole meter's parts (the
dataset's judge, each model's encoder and the test sample behind its q(z)) and each map layer
the user switches on (vae.analysis.layers, computed over the map's own range without z, cached on
disk per checkpoint) travel the same way, each under its own id; a layer switched off is simply
not listed, and switched on again it is not sent again. The meter runs beside each decoded image
on every frame (throttled to every k-th frame, and said so under the images, when it costs more
than METER_BUDGET_MS; the final z always gets it). Should the browser
lack one (a reload, a lost message), it fires the `missing` trigger and the next run
sends it again. Every pointer move, arrow key or slider step updates z in JavaScript and
one requestAnimationFrame evaluates the decoder(s) and paints the image at native size
(CSS scales it with pixelated rendering). On release the component sets its `release`
state: {z, p, seq, pixels} and Python's `on_release(z, pixels)` runs. Python moves the
crosshair by sending `z_in` with a new nonce.

The crosshair is always on the map: the map's range covers the test codes, the prior's mean
z = 0 and the z Python sends (`map_ranges`), and it is recomputed only when Python moves z (a
new nonce) or the map changes, never while z moves in the browser. Where the map places z
outside that range all the same (a slider above 2-D), the crosshair is pinned inside the plot's
edge with an arrow pointing towards z.

For tests and the benchmark, and only with VAE_TEST_HOOKS=1 in the server's environment, the
page exposes in the app's own document (v2 components render in a shadow root, not an iframe):
window.__latentPadDecode(z, which), window.__latentPadState(), window.__latentPadLast,
window.__latentPadCache, window.__latentPadStats (frame, decode and meter times) and
window.__latentPadTest (decode, lift and locate from any export dict; the meter at any z); the
state lists the layers drawn and each meter's lines and values; see pad.js.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from pages.ui.frame import presenting
from vae.analysis.judge import Judge
from vae.analysis.maps import LatentMap
from vae.core.checkpoint import Checkpoint
from vae.services import browser_export, plots
from vae.services.standalone_pad import map_ranges as map_ranges  # the pad's ranges, shared with the standalone file
from vae.services.standalone_pad import pad_data
from vae.settings import settings

SENT_KEY = "_latent_pad_sent"  # payload ids this session has already sent to the browser
MAX_REPORTED_PIXELS = 4096  # the release report carries the browser's pixels up to this size
RANGES_KEY = "_latent_pad_ranges_{}"  # per pad: ((map id, z nonce), the map's ranges) it was drawn with
TEST_HOOKS = settings().test_hooks  # window.__latentPad* for the browser tests and the benchmark
METER_BUDGET_MS = 6.0  # the hole meter's share of a frame (60 Hz: 16.7 ms); above it, every k-th frame only

FOLDER = Path(__file__).resolve().parent
JS_MODULES = ("decoder.js", "maps.js", "meter.js", "layers.js", "pad.js")  # one script, in this order: each uses names of the ones before


def _read(name: str) -> str:
    return (FOLDER / name).read_text(encoding="utf-8")


HTML = _read("pad.html")
CSS = _read("pad.css")
JS = "\n".join(_read(name) for name in JS_MODULES)

_component = st.components.v2.component("latent_explorer_pad", html=HTML, css=CSS, js=JS)


@st.cache_data(max_entries=16, show_spinner=False)
def decoder_export(sha: str, _ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's decoder for the browser (base64 float32), computed once per sha256."""
    return browser_export.export_decoder(_ckpt.model)


@st.cache_data(max_entries=16, show_spinner=False)
def map_export(map_id: str, _lmap: LatentMap, _labels: np.ndarray) -> dict[str, Any]:
    """A fitted map for the browser; `map_id` names checkpoint, method and sample."""
    return browser_export.export_map(_lmap, _labels)


@st.cache_data(max_entries=16, show_spinner=False)
def encoder_export(sha: str, _ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's encoder mean path for the browser's round trip, once per sha256."""
    return browser_export.export_encoder(_ckpt.model)


@st.cache_data(max_entries=4, show_spinner=False)
def judge_export(key: str, _judge: Judge) -> dict[str, Any]:
    """A dataset's judge for the browser, once per judge key."""
    return browser_export.export_judge(_judge)


@st.cache_data(max_entries=16, show_spinner=False)
def posterior_export(pid: str, _sample: tuple[np.ndarray, np.ndarray | None]) -> dict[str, Any]:
    """The test sample behind a model's q(z) for the browser; `pid` names checkpoint and sample."""
    return browser_export.export_posterior(*_sample)


@st.cache_data(max_entries=64, show_spinner="computing the map's layer (once per model)…")
def layer_export(layer_id: str, _compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One map layer as the pad draws it (browser_export.export_layer), once per id."""
    return _compute()


@dataclass(frozen=True)
class PadLayer:
    """A map layer to draw: `id` names checkpoint, map, layer and grid; `compute` returns its
    browser_export.export_layer dict (called only when this browser lacks it)."""

    id: str
    compute: Callable[[], dict[str, Any]]


def meter_payload(
    ckpt: Checkpoint, judge: Judge | None, posterior: tuple[np.ndarray, np.ndarray | None], sent: set[str],
) -> tuple[dict[str, Any], list[str]]:
    """The hole meter's parts for one decoder: {kind, judge, encoder, posterior}, each {id, export}
    (export None when this session has sent it already, judge None without one), and their ids."""
    sha = ckpt.sha256[:16]
    parts = {
        "judge": (f"judge-{judge.key}", lambda: judge_export(judge.key, judge)) if judge is not None else None,
        "encoder": (f"enc-{sha}", lambda: encoder_export(ckpt.sha256, ckpt)),
        "posterior": (f"q-{sha}-{len(posterior[0])}", lambda: posterior_export(f"q-{sha}-{len(posterior[0])}", posterior)),
    }
    out: dict[str, Any] = {"kind": ckpt.kind}
    for name, part in parts.items():
        out[name] = None if part is None else {"id": part[0], "export": None if part[0] in sent else part[1]()}
    return out, [part[0] for part in parts.values() if part is not None]


def latent_pad(
    *,
    key: str,
    decoders: Sequence[tuple[str, Checkpoint]],
    lmap: LatentMap,
    map_id: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    axis_titles: tuple[str, str],
    z: np.ndarray,
    z_nonce: int,
    on_release: Callable[[np.ndarray, list[np.ndarray | None]], None],
    slider_ranges: Sequence[tuple[float, float]] | None = None,
    image_px: int = 280,
    judge: Judge | None = None,
    judge_pending: bool = False,
    posteriors: Sequence[tuple[np.ndarray, np.ndarray | None]] | None = None,
    layers: Sequence[PadLayer] = (),
) -> None:
    """Mount the pad. `decoders`: (label, checkpoint) pairs that all decode the same z.

    The map `lmap` (with `labels` per point) is drawn and used to lift the crosshair to z.
    `z` with a new `z_nonce` moves the crosshair from Python. On release, `on_release(z,
    pixels)` runs before the rerun: z (D,) float32 and finite, pixels per decoder as the
    browser computed them ((C, H, W) float32, or None for images above MAX_REPORTED_PIXELS or
    a malformed report). A release whose z is not D finite numbers is ignored
    (`browser_export.read_release`).

    The hole meter: with `posteriors` ((μ, σ²) behind q(z), one per decoder, σ² None for an AE;
    layers.posterior_sample), each decoded image gets the meter, with the dataset's `judge` (None:
    the meter says there is none, or with `judge_pending` that it is being trained). `layers`:
    the map layers to draw, in drawing order."""
    sent: set[str] = st.session_state.setdefault(SENT_KEY, set())
    payloads = [(f"dec-{ckpt.sha256[:16]}", label, ckpt) for label, ckpt in decoders]
    config = decoders[0][1].model_config

    def released() -> None:
        # the browser's values are untrusted: a malformed report is ignored and z stays as it was
        checked = browser_export.read_release(
            (st.session_state.get(key) or {}).get("release"), config.latent_dim, config.image_shape, len(decoders)
        )
        if checked is not None:
            on_release(*checked)

    def missing() -> None:
        wanted = (st.session_state.get(key) or {}).get("missing")
        sent.difference_update([w for w in wanted if isinstance(w, str)] if isinstance(wanted, list) else [])

    # The range is kept while z only moves in the browser (a release): never rescaled under the pointer.
    held = st.session_state.get(RANGES_KEY.format(key))
    if held is None or held[0] != (map_id, int(z_nonce)):
        held = ((map_id, int(z_nonce)), map_ranges(lmap, config.latent_dim, z))
        st.session_state[RANGES_KEY.format(key)] = held
    (x0, x1), (y0, y1) = held[1]
    meters, meter_ids = None, []
    if posteriors is not None:
        meters = []
        for (_, ckpt), sample in zip(decoders, posteriors, strict=True):
            payload, ids = meter_payload(ckpt, judge, sample, sent)
            meters.append({**payload, "judge_pending": bool(judge_pending and judge is None)})
            meter_ids += ids
    data = pad_data(  # the same dict the standalone file embeds (vae/services/standalone_pad.py)
        pad_id=key,
        decoders=[(pid, label, None if pid in sent else decoder_export(ckpt.sha256, ckpt)) for pid, label, ckpt in payloads],
        map_id=map_id, map_export=None if map_id in sent else map_export(map_id, lmap, labels), ranges=((x0, x1), (y0, y1)),
        axis_titles=axis_titles, class_names=class_names, sliders=slider_ranges, z=z, z_nonce=z_nonce, image_px=image_px,
        test_hooks=TEST_HOOKS, max_pixels=MAX_REPORTED_PIXELS,
        layers=[{"id": layer.id, "export": None if layer.id in sent else layer_export(layer.id, layer.compute)} for layer in layers],
        layer_style={"prior": plots.PRIOR_COLOR, "q": plots.Q_COLOR, "ellipses": plots.ELLIPSE_COLOR},
        meters=meters, meter_budget_ms=METER_BUDGET_MS,
        presenting=presenting(),  # presenter mode: pad.js hides its developer readouts (the weights note)
    )
    _component(key=key, data=data, on_release_change=released, on_missing_change=missing, width="stretch", height="content")
    sent.update([pid for pid, _, _ in payloads] + [map_id] + meter_ids + [layer.id for layer in layers])
