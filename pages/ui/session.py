"""What a session works on, loaded once per server: the checkpoints (from the models folder or
this session's uploads, in caches every session shares read-only), the model choice (the labels
the sidebar offers, the pinned default of new sessions, the current selection), uploads, and a
model's dataset and 2-D map. Imports torch and scikit-learn: app.py imports it after the
start-up screen."""

from __future__ import annotations

import streamlit as st

from pages.ui.frame import leave_pages_folder_mode  # light: Streamlit only

# Before the heavy imports below, on purpose: see leave_pages_folder_mode's docstring.
leave_pages_folder_mode()

import hashlib  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

# pandas, fully imported before any page builds a Plotly figure: Plotly looks pandas up with
# sys.modules.get (it never imports it), so while app.py's _freeze_startup_objects imports pandas
# in one script run, a figure in another run could meet the half-initialised module
# ("partially initialized module 'pandas' has no attribute 'Series"). An `import` waits for an
# import in progress to finish, which a sys.modules lookup does not.
import pandas  # noqa: E402, F401

from pages.ui.widgets import show_error  # noqa: E402
from vae.analysis.maps import LatentMap, compute_map, default_method  # noqa: E402
from vae.core.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from vae.core.data import Dataset, load_dataset  # noqa: E402
from vae.core.errors import LatentExplorerError  # noqa: E402
from vae.core.files import atomic_write  # noqa: E402
from vae.services.links import LinkState, match_model, model_hash  # noqa: E402
from vae.services.workflow import find_pairs, list_models, models_dir  # noqa: E402

UPLOAD_LIMIT_MB = 64
MAX_UPLOADS_PER_SESSION = 4  # older uploads are forgotten, so one session cannot fill the server's memory


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
    name: str = ""  # the short name a link carries (option_name)

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


DEFAULT_PAIR = "mnist-2d"  # the first-run pair, and what every new session opens on unless pinned
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
    return Selection(label, loaded.get("vae"), loaded.get("ae"), option_name(label, sources))


# --- links (pages/ui/links.py): the model a link names, found by its content hash -------------


def option_name(label: str, sources: dict[str, Source]) -> str:
    """The short name of a sidebar option, as a link carries it: a pair's name, a file's stem,
    an upload's file name."""
    if len(sources) > 1:
        return label.removesuffix(pair_label(""))
    (source,) = sources.values()
    if source.kind == "file":
        return Path(source.ref).stem
    return str(st.session_state.get("upload_labels", {}).get(source.ref, label))


@st.cache_data(max_entries=64, show_spinner=False)
def _file_sha256(path: str, mtime: float) -> str:
    """The sha256 of a checkpoint file's bytes: its Checkpoint.sha256, without loading it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_sha256(source: Source) -> str:
    if source.kind == "upload":
        return source.ref
    path = Path(source.ref)
    return _file_sha256(str(path), path.stat().st_mtime)


def link_label(options: dict[str, dict[str, Source]], wanted: LinkState) -> tuple[str | None, str | None]:
    """The option a link's model names (vae.services.links.match_model over every option's
    name and content hash), or a note saying why there is none."""
    described = {}
    for label, sources in options.items():
        try:
            shas = [source_sha256(sources[kind]) for kind in ("vae", "ae") if kind in sources]
        except OSError:  # deleted since it was listed
            continue
        described[label] = (option_name(label, sources), model_hash(shas))
    return match_model(wanted, described)


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


def compatible_vaes(ckpt: Checkpoint) -> dict[str, Checkpoint]:
    """Every other VAE (models folder and this session's uploads) trained on `ckpt`'s dataset with
    its latent size and image shape, labelled "<name> (β = <beta>)": what Compare can set beside
    it (e.g. a β = 1 and a β = 4 VAE). Unreadable files are skipped."""
    name, dim = ckpt.dataset.get("name"), ckpt.model_config.latent_dim
    candidates = [(e.path.stem, Source("file", str(e.path))) for e in list_models(models_dir())
                  if e.kind == "vae" and e.latent_dim == dim and e.dataset == name]
    for sha, label in st.session_state.get("upload_labels", {}).items():
        if st.session_state.get("upload_kinds", {}).get(sha) == "vae":
            candidates.append((f"{label} (uploaded)", Source("upload", sha)))
    found: dict[str, Checkpoint] = {}
    seen = {ckpt.sha256}
    for stem, source in candidates:
        try:
            other = source.load()
        except (LatentExplorerError, OSError):
            continue
        if other.sha256 in seen or other.dataset.get("name") != name or other.model_config.latent_dim != dim \
                or tuple(other.model_config.image_shape) != tuple(ckpt.model_config.image_shape):
            continue
        seen.add(other.sha256)
        found[f"{stem} (β = {other.train_config.beta:g})"] = other
    return found


def require_selection() -> Selection:
    sel = current_selection()
    if sel is None:
        st.info("No model yet: train one on the **Train** page or upload a checkpoint in the sidebar.")
        st.stop()
    return sel
