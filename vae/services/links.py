"""A view's link: the query parameters that carry the model (name and content hash), z and
presenter mode, parsed and formatted without Streamlit (the page itself is the URL's path).

    ?model=mnist-2d&hash=1a2b3c4d5e6f-0f1e2d3c4b5a&z=0.5,-1.25&present=1

`hash` is the first HASH_CHARS hex digits of each checkpoint's sha256 (the file's bytes, as
vae.core.checkpoint computes it), the VAE's first for a pair: a link opens the very model it
was made with, or says that it cannot. Everything in a link is untrusted: parse_link keeps
what is well formed and returns a one-line note for each thing it ignored, never raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: app.py reads a link before its first paint
    import numpy as np

HASH_CHARS = 12  # hex digits of a checkpoint's sha256 in a link: 48 bits, plenty to tell models apart
MAX_Z_ABS = 1000.0  # a z beyond this is not a place any model's codes are (an AE's reach tens)
MAX_Z_DIMS = 64  # vae.core.config.LATENT_DIM_RANGE's top
MAX_NAME = 200
KNOWN = ("model", "hash", "z", "present")
STREAMLIT_OWN = ("embed", "embed_options")  # Streamlit's own query parameters: not ours to judge
_HASH = re.compile(rf"[0-9a-f]{{{HASH_CHARS}}}(-[0-9a-f]{{{HASH_CHARS}}})?")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class LinkState:
    """What a link asks for; None where it says nothing (or said something malformed)."""

    model: str | None = None  # the model's name: a pair's name or a file's stem
    model_hash: str | None = None  # model_hash() of its checkpoint(s)
    z: tuple[float, ...] | None = None
    present: bool | None = None

    @property
    def empty(self) -> bool:
        return self == LinkState()


def model_hash(shas: Sequence[str]) -> str:
    """The link's hash of one checkpoint or a pair (VAE first), from their full sha256 hex digests."""
    return "-".join(s[:HASH_CHARS].lower() for s in shas)


def format_z(z: Sequence[float]) -> str:
    """z as the shortest decimals that read back to the same float32 values ("0.5,-1.25")."""
    import numpy as np

    return ",".join(np.format_float_positional(np.float32(v), trim="-") for v in z)


def link_params(state: LinkState) -> dict[str, str]:
    """The query parameters of a view (only what it says), in a stable order."""
    params: dict[str, str] = {}
    if state.model is not None:
        params["model"] = state.model
    if state.model_hash is not None:
        params["hash"] = state.model_hash
    if state.z is not None:
        params["z"] = format_z(state.z)
    if state.present:
        params["present"] = "1"
    return params


def _one(value: str | Sequence[str]) -> str:
    """A parameter given twice counts as its last value (as a browser's URLSearchParams.get would not,
    but as st.query_params does)."""
    if isinstance(value, str):
        return value
    return str(value[-1]) if len(value) else ""


def _parse_z(text: str) -> tuple[tuple[float, ...] | None, str | None]:
    parts = text.split(",")
    if len(parts) > MAX_Z_DIMS:
        return None, f"z has {len(parts)} values; a latent has at most {MAX_Z_DIMS}"
    values = []
    for part in parts:
        try:
            v = float(part)
        except ValueError:
            return None, f"z must be numbers separated by commas, not {text[:40]!r}"
        if not math.isfinite(v):
            return None, "z must be finite numbers (no NaN or infinity)"
        if abs(v) > MAX_Z_ABS:
            return None, f"z's values must lie within ±{MAX_Z_ABS:g}"
        values.append(v + 0.0)
    return tuple(values), None


def parse_link(params: Mapping[str, str | Sequence[str]]) -> tuple[LinkState, list[str]]:
    """The link state in `params` (st.query_params' mapping), and a short note for every
    parameter ignored: unknown, or malformed (a bad z, a hash that is not hex, ...)."""
    notes: list[str] = []
    unknown = sorted(k for k in params if k not in KNOWN and k not in STREAMLIT_OWN)
    if unknown:
        notes.append("ignored the link's unknown parameter" + ("s " if len(unknown) > 1 else " ")
                     + ", ".join(repr(k[:40]) for k in unknown[:5]) + (", …" if len(unknown) > 5 else ""))
    get = {k: _one(params[k]).strip() for k in KNOWN if k in params}
    model = get.get("model") or None
    if model is not None and (len(model) > MAX_NAME or not model.isprintable()):
        notes.append("ignored the link's model name: not a name this app gives its models")
        model = None
    model_hash_ = (get.get("hash") or "").lower() or None
    if model_hash_ is not None and not _HASH.fullmatch(model_hash_):
        notes.append(f"ignored the link's model hash: expected {HASH_CHARS} hex digits (two, joined by '-', for a pair)")
        model_hash_ = None
    z = None
    if get.get("z"):
        z, problem = _parse_z(get["z"])
        if problem:
            notes.append(f"ignored the link's z: {problem}")
    present = None
    if "present" in get:
        flag = get["present"].lower()
        if flag in _TRUE or flag in _FALSE:
            present = flag in _TRUE
        else:
            notes.append("ignored the link's present: use present=1 (presenter mode) or present=0")
    return LinkState(model, model_hash_, z, present), notes


def match_model(state: LinkState, options: Mapping[str, tuple[str, str]]) -> tuple[str | None, str | None]:
    """The option a link's model names: `options` maps each label to its (name, model_hash).
    Returns (label, None) where the hash matches (whatever the name: a renamed file is the same
    model), else (None, note): the model is not here, or a model of that name has other content
    (retrained or replaced since the link was made). Without a hash, the name alone decides."""
    if state.model is None and state.model_hash is None:
        return None, None
    if state.model_hash is not None:
        for label, (_, h) in options.items():
            if h == state.model_hash:
                return label, None
    named = [label for label, (name, _) in options.items() if name == state.model]
    what = f"the model {state.model!r}" if state.model else "the link's model"
    if state.model_hash is None and len(named) == 1:
        return named[0], None
    if named:
        return None, f"{what} here is not the one the link was made with (its content hash differs): the link's model and z are ignored"
    return None, f"{what} is not on this server (removed, or an upload of another session): the link's model and z are ignored"


def fit_z(z: Sequence[float], latent_dim: int) -> tuple[np.ndarray | None, str | None]:
    """The link's z for a model with `latent_dim` dimensions, or (None, note) when the lengths differ."""
    import numpy as np

    if len(z) != latent_dim:
        return None, f"ignored the link's z: it has {len(z)} values, this model's latent has {latent_dim}"
    return np.asarray(z, np.float32), None
