"""The Live latent pad: a custom component (st.components.v2) that decodes in the browser
while you drag. Not a page: pages/live.py imports it.

Its front end is in this folder, read once at import and passed inline (no build step, no npm):
pad.html, pad.css, and one script made of decoder.js (weights, the decoder's forward pass) and
maps.js (lift / locate, slider grid, ticks), both pure maths that Node's tests (tests/js) check
against PyTorch, then pad.js (the DOM, drawing and input).

Data flow. Python sends each decoder's weights and the map's points once per browser
session (`vae.services.browser_export` dicts, cached per checkpoint sha256 with st.cache_data); later
reruns send only their ids and the browser keeps the decoded arrays. Should the browser
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
window.__latentPadCache, window.__latentPadStats and window.__latentPadTest (decode, lift and
locate from any export dict); see pad.js.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from pages.ui.frame import presenting
from vae.analysis.maps import LatentMap
from vae.core.checkpoint import Checkpoint
from vae.services import browser_export, plots
from vae.settings import settings

SENT_KEY = "_latent_pad_sent"  # payload ids this session has already sent to the browser
MAX_REPORTED_PIXELS = 4096  # the release report carries the browser's pixels up to this size
RANGES_KEY = "_latent_pad_ranges_{}"  # per pad: ((map id, z nonce), the map's ranges) it was drawn with
TEST_HOOKS = settings().test_hooks  # window.__latentPad* for the browser tests and the benchmark

FOLDER = Path(__file__).resolve().parent
JS_MODULES = ("decoder.js", "maps.js", "pad.js")  # one script, in this order: each uses names of the ones before


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
) -> None:
    """Mount the pad. `decoders`: (label, checkpoint) pairs that all decode the same z.

    The map `lmap` (with `labels` per point) is drawn and used to lift the crosshair to z.
    `z` with a new `z_nonce` moves the crosshair from Python. On release, `on_release(z,
    pixels)` runs before the rerun: z (D,) float32 and finite, pixels per decoder as the
    browser computed them ((C, H, W) float32, or None for images above MAX_REPORTED_PIXELS or
    a malformed report). A release whose z is not D finite numbers is ignored
    (`browser_export.read_release`)."""
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
    data = {
        "pad_id": key,
        "decoders": [
            {"id": pid, "label": label, "export": None if pid in sent else decoder_export(ckpt.sha256, ckpt)}
            for pid, label, ckpt in payloads
        ],
        "map": {
            "id": map_id, "export": None if map_id in sent else map_export(map_id, lmap, labels),
            "ranges": [[x0, x1], [y0, y1]], "axis_titles": list(axis_titles), "class_names": [str(c) for c in class_names],
            "colors": [plots.class_color(i) for i in range(max(len(class_names), 1))],
        },
        "sliders": [[float(lo), float(hi)] for lo, hi in slider_ranges] if slider_ranges is not None else None,
        "z_in": {"z": [float(v) for v in np.asarray(z, np.float64).ravel()], "nonce": int(z_nonce)},
        "image_px": int(image_px),
        "max_pixels": MAX_REPORTED_PIXELS,
        "test_hooks": TEST_HOOKS,
        "presenting": presenting(),  # presenter mode: pad.js hides its developer readouts (the weights note)
    }
    _component(key=key, data=data, on_release_change=released, on_missing_change=missing, width="stretch", height="content")
    sent.update([pid for pid, _, _ in payloads] + [map_id])
