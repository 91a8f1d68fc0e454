"""Streamlit helpers shared by app.py and every page: cached loading, the model choice,
image display and latent sliders. With pages/ui/frame.py (what app.py needs before the heavy
imports), the only Streamlit modules besides the pages themselves."""

from __future__ import annotations

import streamlit as st

from pages.ui.frame import leave_pages_folder_mode as _leave_pages_folder_mode  # light: Streamlit only

# Before the heavy imports below, on purpose: see leave_pages_folder_mode's docstring.
_leave_pages_folder_mode()

import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Literal  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from vae.core.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from vae.core.files import atomic_write  # noqa: E402
from vae.core.data import Dataset, load_dataset  # noqa: E402
from vae.analysis.maps import LatentMap, compute_map, default_method  # noqa: E402
from vae.core.errors import LatentExplorerError  # noqa: E402
from vae.services.workflow import find_pairs, list_models, models_dir  # noqa: E402

UPLOAD_LIMIT_MB = 64
MAX_UPLOADS_PER_SESSION = 4  # older uploads are forgotten, so one session cannot fill the server's memory
IMAGE_PX = 280  # decoded images are shown this wide, upscaled with nearest-neighbour pixels


@st.cache_resource(max_entries=32, show_spinner=False)
def load_model_file(path: str, mtime: float) -> Checkpoint:
    """A checkpoint from the models folder, shared read-only by every session (inference only)."""
    return load_checkpoint(path)


@st.cache_resource(max_entries=16, show_spinner=False)
def load_model_upload(sha: str, _data: bytes) -> Checkpoint:
    return load_checkpoint(_data)


@st.cache_resource(max_entries=6, show_spinner=False)
def get_dataset(name: str) -> Dataset:
    return load_dataset(name)


@dataclass
class _MapSlot:
    """One fitted map (LatentMap, indices into x_test), computed once; sessions that ask for it
    while it is being computed wait for that computation."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    value: tuple[LatentMap, np.ndarray] | None = None


@st.cache_resource(max_entries=24, show_spinner=False)
def _map_slot(sha: str, method: str, n: int | None) -> _MapSlot:
    """The shared holder of one checkpoint's map. The map is computed outside this cached
    function so that the computation can show its steps: Streamlit replays the elements a
    cached function created on every later hit (a cached map must show nothing)."""
    return _MapSlot()


@st.cache_data(max_entries=8, show_spinner=False)
def _file_bytes(path: str, mtime: float) -> bytes:
    return Path(path).read_bytes()


@dataclass
class Source:
    """Where a selected model comes from: a file in the models folder or this session's upload."""

    kind: str  # "file" or "upload"
    ref: str  # path or sha256

    def data(self) -> bytes:
        """The checkpoint's bytes as stored, for the download button."""
        if self.kind == "file":
            path = Path(self.ref)
            return _file_bytes(str(path), path.stat().st_mtime)
        return st.session_state.get("uploads", {}).get(self.ref, b"")

    def load(self) -> Checkpoint:
        if self.kind == "file":
            path = Path(self.ref)
            return load_model_file(str(path), path.stat().st_mtime)
        data = st.session_state.get("uploads", {}).get(self.ref)
        if data is None:
            raise LatentExplorerError("this upload is no longer in the session; upload the file again")
        return load_model_upload(self.ref, data)


@dataclass
class Selection:
    label: str
    vae: Checkpoint | None
    ae: Checkpoint | None

    @property
    def primary(self) -> Checkpoint:
        model = self.vae or self.ae
        assert model is not None
        return model

    @property
    def is_pair(self) -> bool:
        return self.vae is not None and self.ae is not None


def model_options() -> dict[str, dict[str, Source]]:
    """Label -> {"vae": Source, "ae": Source} for pairs, single files and this session's uploads."""
    entries = list_models(models_dir())
    options: dict[str, dict[str, Source]] = {}
    for name, kinds in find_pairs(entries).items():
        options[pair_label(name)] = {k: Source("file", str(e.path)) for k, e in kinds.items()}
    for e in entries:
        options[e.label] = {e.kind: Source("file", str(e.path))}
    for sha, label in st.session_state.get("upload_labels", {}).items():
        kind = st.session_state["upload_kinds"][sha]
        options[f"{label} (uploaded)"] = {kind: Source("upload", sha)}
    return options


DEFAULT_PAIR = "digits-2d"  # the first-run pair, and what every new session opens on unless pinned
DEFAULT_CHOICE_FILE = "default-model.json"  # in the models folder: the teacher's pinned default, if any


def pair_label(name: str) -> str:
    return f"{name} (VAE + AE pair)"


def pinned_default() -> str | None:
    """The label pinned as every new session's model ("Make this the default for new sessions"),
    or None. A missing or unreadable file means nothing is pinned."""
    try:
        label = json.loads((models_dir() / DEFAULT_CHOICE_FILE).read_text()).get("label")
    except (OSError, ValueError, AttributeError):
        return None
    return label if isinstance(label, str) else None


def pin_default(label: str | None) -> None:
    """Pin `label` as the default of new sessions (None: unpin). Written atomically, server-wide."""
    path = models_dir() / DEFAULT_CHOICE_FILE
    if label is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, json.dumps({"label": label}).encode())


def default_label(labels: list[str]) -> str:
    """What a new session opens on: the pinned model, else the default pair, else the newest.
    Never "the newest" while the default pair exists: one student's training must not change
    what the rest of the class opens."""
    for wanted in (pinned_default(), pair_label(DEFAULT_PAIR)):
        if wanted in labels:
            return wanted
    return labels[0]


def current_selection() -> Selection | None:
    """The model(s) the sidebar picked, loaded; None when there is nothing to show."""
    return st.session_state.get("selection")


def select(label: str, sources: dict[str, Source]) -> Selection:
    loaded = {kind: src.load() for kind, src in sources.items()}
    return Selection(label, loaded.get("vae"), loaded.get("ae"))


def handle_upload(file) -> str | None:  # type: ignore[no-untyped-def]
    """Validate an uploaded checkpoint; store it in this session. Returns an error message or None."""
    if not file.name.lower().endswith(".safetensors"):
        return f"{file.name} is not a checkpoint: choose a .safetensors file saved by Latent Explorer"
    if file.size > UPLOAD_LIMIT_MB * 2**20:
        return f"{file.name} is {file.size / 2**20:.1f} MiB; uploads are limited to {UPLOAD_LIMIT_MB} MiB"
    data = file.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    try:
        ckpt = load_model_upload(sha, data)
    except LatentExplorerError as exc:
        return f"{file.name} was refused: {exc}"
    uploads = st.session_state.setdefault("uploads", {})
    labels = st.session_state.setdefault("upload_labels", {})
    kinds = st.session_state.setdefault("upload_kinds", {})
    uploads.pop(sha, None)  # re-insert: the newest upload is last
    uploads[sha], labels[sha], kinds[sha] = data, Path(file.name).stem, ckpt.kind
    while len(uploads) > MAX_UPLOADS_PER_SESSION:
        oldest = next(iter(uploads))
        for store in (uploads, labels, kinds):
            store.pop(oldest, None)
    return None


def dataset_for(ckpt: Checkpoint) -> Dataset:
    name = ckpt.dataset.get("name", "digits")
    data = get_dataset(name)
    if data.image_shape != tuple(ckpt.model_config.image_shape):
        raise LatentExplorerError(
            f"the model expects {tuple(ckpt.model_config.image_shape)} images but dataset {name!r} has {data.image_shape}"
        )
    return data


def dataset_or_stop(ckpt: Checkpoint) -> Dataset:
    """The checkpoint's dataset, or a message (e.g. MNIST missing offline) and the page stops."""
    try:
        return dataset_for(ckpt)
    except Exception as exc:  # whatever went wrong, the page shows a message, not a traceback
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() ends the script run


def map_for(
    ckpt: Checkpoint, method: str | None = None, n: int | None = None, on_status: Callable[[str], None] | None = None,
) -> tuple[LatentMap, np.ndarray]:
    """The fitted 2-D map of a checkpoint's test set, shared by every session (and cached on disk
    by compute_map). `on_status(message)` hears the steps of a map computed now; a cached map
    returns at once and says nothing."""
    data = dataset_for(ckpt)
    method = method or default_method(ckpt.model_config.latent_dim)
    slot = _map_slot(ckpt.sha256, method, n)
    if slot.value is None:
        if not slot.lock.acquire(blocking=False):
            if on_status:
                on_status("waiting for another session that is computing the same map")
            slot.lock.acquire()
        try:
            if slot.value is None:
                slot.value = compute_map(ckpt.model, data.x_test, method, ckpt.sha256, n=n, on_status=on_status)
        finally:
            slot.lock.release()
    return slot.value


def to_pil(image: np.ndarray, width: int = IMAGE_PX) -> Image.Image:
    """(H, W, C) float in [0, 1] -> PIL image upscaled by a whole factor (at most `width` wide)
    with nearest-neighbour pixels, so every model pixel stays a crisp square."""
    arr = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    arr = arr[..., 0] if arr.shape[-1] == 1 else arr
    img = Image.fromarray(arr)
    scale = max(1, width // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def show_image(image: np.ndarray, caption: str | None = None, width: int | Literal["stretch", "content"] = IMAGE_PX) -> None:
    """Show an image at `width` px (or "stretch" to fill the column; CSS keeps pixels crisp).
    PNG, not Streamlit's default JPEG, so no compression noise is added."""
    pil = to_pil(image, width if isinstance(width, int) else 2 * IMAGE_PX)
    st.image(pil, caption=caption, width=pil.width if isinstance(width, int) else width, output_format="PNG")


def png_bytes(image: np.ndarray, width: int = IMAGE_PX) -> bytes:
    buf = io.BytesIO()
    to_pil(image, width).save(buf, format="PNG")
    return buf.getvalue()


def slider_step(lo: float, hi: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving 100-250 positions over [lo, hi]:
    with ranges rounded to it (slider_ranges), 0 and every value shown with two decimals is
    reachable exactly."""
    raw = max(hi - lo, 1e-9) / 100
    power = 10.0 ** np.floor(np.log10(raw))
    step = max(m * power for m in (1, 2, 5) if m * power <= raw * (1 + 1e-9))
    return float(f"{step:.3g}")


def _decimals(step: float) -> int:
    return max(0, int(-np.floor(np.log10(step) + 1e-9)))


def slider_ranges(mu: np.ndarray, cover_prior: bool = False) -> list[tuple[float, float]]:
    """Per-dimension (lo, hi) slider range for the test means mu (N, D): mean ± 3 std, widened
    to a multiple of a round step (slider_step), so 0 is on the grid where the range holds it. With `cover_prior` (for a
    VAE) the range also covers at least ±3, the prior's ±3σ where samples z ~ N(0, I) come from,
    however tightly the test means happen to cluster."""
    mean, std = mu.mean(0), np.maximum(mu.std(0), 1e-3)
    lo, hi = mean - 3 * std, mean + 3 * std
    if cover_prior:
        lo, hi = np.minimum(lo, -3.0), np.maximum(hi, 3.0)
    out = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        a, b = (a, b) if b - a > 1e-6 else (a - 1e-3, b + 1e-3)
        step = slider_step(a, b)
        d = _decimals(step) + 1
        a, b = round(np.floor(a / step + 1e-3) * step, d), round(np.ceil(b / step - 1e-3) * step, d)
        out.append((float(a) + 0.0, float(b) + 0.0))  # + 0.0: no -0.0
    return out


def z_key(prefix: str, i: int) -> str:
    return f"{prefix}_z{i}"


def _z_store(prefix: str) -> str:
    """This page's own copy of z (not a widget key): Streamlit forgets a widget's value when
    the widget is not drawn in a run (another page), this one stays for the session."""
    return f"{prefix}_zvec"


def _on_grid(v: float, lo: float, hi: float) -> float:
    """v clipped into [lo, hi] and rounded to the slider's step (so 0 stays exactly 0)."""
    step = slider_step(lo, hi)
    v = min(max(float(v), lo), hi)
    return round(lo + round((v - lo) / step) * step, _decimals(step) + 1) + 0.0


def set_z(prefix: str, z: np.ndarray, ranges: list[tuple[float, float]]) -> None:
    """Put z into the sliders' session state (clipped into their ranges)."""
    z = np.asarray(z, dtype=float).ravel()
    for i, v in enumerate(z):
        lo, hi = ranges[i]
        st.session_state[z_key(prefix, i)] = float(min(max(v, lo), hi))
    st.session_state[_z_store(prefix)] = np.array([st.session_state[z_key(prefix, i)] for i in range(len(z))], np.float32)


def reset_z_button(prefix: str, ranges: list[tuple[float, float]], key: str | None = None,
                   on_reset: Callable[[np.ndarray], None] | None = None) -> None:
    """A "reset z to 0" button for the sliders of `prefix` (0 clipped into a range without it);
    `on_reset(z)` replaces the default set_z."""
    zero = np.zeros(len(ranges), np.float32)

    def reset() -> None:
        set_z(prefix, zero, ranges)

    st.button(
        "Reset z to 0", key=key or f"{prefix}_reset",
        on_click=on_reset or reset, args=(zero,) if on_reset else None,
    )


def latent_sliders(
    prefix: str, ranges: list[tuple[float, float]], columns: int = 2, height: int | None = None,
) -> np.ndarray:
    """One slider per latent dimension, starting at 0 (or its stored z); returns z (D,).
    `height` (px) puts them in a scrolling box of that height (a 64-D latent's 64 sliders)."""
    stored = st.session_state.get(_z_store(prefix))
    for i, (lo, hi) in enumerate(ranges):
        key = z_key(prefix, i)
        if key not in st.session_state:  # first run, or the widget was forgotten off this page
            start = stored[i] if stored is not None and len(stored) == len(ranges) else 0.0
            st.session_state[key] = _on_grid(start, lo, hi)
        elif not lo <= st.session_state[key] <= hi:
            st.session_state[key] = _on_grid(st.session_state[key], lo, hi)
    values = []
    box = st.container(height=height, border=True) if height else st.container()
    with box:
        cols = st.columns(min(columns, len(ranges)))
        for i, (lo, hi) in enumerate(ranges):
            step = slider_step(lo, hi)
            with cols[i % len(cols)]:
                values.append(st.slider(
                    f"z{i + 1}", min_value=lo, max_value=hi, step=step, key=z_key(prefix, i),
                    format=f"%.{max(2, _decimals(step))}f",
                ))
    z = np.array(values, dtype=np.float32)
    st.session_state[_z_store(prefix)] = z
    return z


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon="⚠️")


def require_selection() -> Selection:
    sel = current_selection()
    if sel is None:
        st.info("No model yet: train one on the **Train** page or upload a checkpoint in the sidebar.")
        st.stop()
    return sel
