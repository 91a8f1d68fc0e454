"""Measured reports the pages show, computed once per checkpoint (or pair) and cached for every
session: a checkpoint's metrics, completed where an older checkpoint lacks the judge's measures,
and the fill-in measures of a VAE + AE pair per mask. The computations are vae.analysis.metrics'."""

from __future__ import annotations

import streamlit as st

from pages.ui.frame import leave_pages_folder_mode  # light: Streamlit only

# Before the heavy imports below, on purpose: see leave_pages_folder_mode's docstring.
leave_pages_folder_mode()

from typing import Any  # noqa: E402

from vae.analysis import metrics  # noqa: E402
from vae.core.checkpoint import Checkpoint  # noqa: E402
from vae.core.data import Dataset  # noqa: E402

QUICK_PIXELS = 256  # fill-in measures of images this small (8 x 8 digits) run at once, larger ones behind a button


@st.cache_data(max_entries=16, show_spinner="measuring the model…")
def checkpoint_report(sha: str, _ckpt: Checkpoint, _data: Dataset) -> dict[str, Any]:
    """The checkpoint's stored metrics (`sha` its hash, the cache key); what an older checkpoint
    lacks is computed once: the whole report, or only the judge's measures (also when a judge
    exists now but did not when it was saved)."""
    stored = dict(_ckpt.metrics)
    if not stored.get("interpolation"):
        return metrics.full_report(_ckpt.model, _data.x_test, judge=metrics.judge_or_none(_data))
    if "prior_samples" not in stored or not (stored.get("judge") or {}).get("available"):
        judge = metrics.judge_or_none(_data)
        if "prior_samples" not in stored or judge is not None:
            stored.update(metrics.latent_measures(_ckpt.model, _data.x_test, judge))
    return stored


@st.cache_data(max_entries=32, show_spinner=False)
def fill_reports(vae_sha: str, ae_sha: str, mask: str, n_images: int, _vae: Checkpoint, _ae: Checkpoint,
                 _data: Dataset) -> dict[str, dict[str, Any]]:
    """Both models' `metrics.fill_in_report` on the same n_images seeded test images and `mask`
    (keyed by the two checkpoints' hashes, the mask and the count): {"vae": ..., "ae": ...}."""
    judge = metrics.judge_or_none(_data)
    return {kind: metrics.fill_in_report(c.model, _data.x_test, _data.y_test, judge, mask, n_images=n_images)
            for kind, c in (("vae", _vae), ("ae", _ae))}


@st.cache_resource(show_spinner=False)
def measured_keys() -> set[tuple[str, ...]]:
    """The keys of the fill-in measures computed so far on this server (shown without asking again)."""
    return set()
