"""Latent Explorer: the frame. Runs before every page: first-run training, the shared
sidebar (model choice, upload, download) and navigation over pages/."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from pages import common
from vae.errors import LatentExplorerError
from vae.workflow import first_run_training, list_models, models_dir

st.set_page_config(page_title="Latent Explorer", page_icon=":material/explore:", layout="wide")
st.markdown(common.PAGE_CSS, unsafe_allow_html=True)

DEFAULT_PAIR = "digits-2d"


@st.cache_resource(max_entries=1)
def _freeze_startup_objects() -> int:
    """Once per server: exempt what the imports built from the cyclic garbage collector.

    torch, scikit-learn and Plotly leave ~350,000 long-lived objects; every full collection
    walked them all (~200 ms on a 2-core laptop, every other slider move), stalling every
    session at once. Frozen objects are still freed by reference counting (bench/RESULTS.md,
    "Classroom load")."""
    import gc

    import pandas  # noqa: F401 - the pages' heavy imports, so that they are frozen too
    import plotly.subplots  # noqa: F401
    import vae.metrics  # noqa: F401
    import vae.plots  # noqa: F401
    import vae.theory  # noqa: F401

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


_freeze_startup_objects()


def ensure_default_models() -> None:
    """On an empty models folder, wait for the default 2-D VAE + AE pair, with progress.

    The training runs once per server in a background thread (vae.workflow.first_run_training),
    not in this script run: a click here only restarts the waiting, and a second browser shows
    the same progress instead of a blank page. Every waiting page goes on by itself once it is done."""
    if list_models(models_dir()):
        return
    training = first_run_training(models_dir(), DEFAULT_PAIR)
    with st.status("First start: training the default models, a 2-D VAE and a 2-D AE on the embedded digits…",
                   expanded=True) as status:
        st.write("This happens once, on an empty models folder, and takes from a few seconds to a minute. "
                 "Every open page goes on by itself when it is done.")
        bar = st.progress(0.0, text="starting")
        while (state := training.snapshot()).status == "running":
            bar.progress(min(1.0, state.fraction), text=state.text)  # where a rerun or a closed tab ends this wait (not the training)
            time.sleep(0.5)
        if state.status == "failed":
            status.update(label=f"First-run training failed: {state.error}", state="error")
            return
        bar.progress(1.0, text="done")
        status.update(label="Trained and saved the default VAE + AE pair", state="complete", expanded=False)


def sidebar() -> None:
    with st.sidebar:
        st.header("Model")
        options = common.model_options()
        if not options:
            st.session_state["selection"] = None
            st.caption("No models in the models folder yet.")
        else:
            labels = list(options)
            wanted = st.session_state.pop("select_label", None)
            if wanted in labels:
                st.session_state["model_choice"] = wanted
            if st.session_state.get("model_choice") not in labels:
                st.session_state["model_choice"] = labels[0]
            label = st.selectbox("Model or pair", labels, key="model_choice")
            try:
                st.session_state["selection"] = common.select(label, options[label])
            except (LatentExplorerError, OSError) as exc:
                st.session_state["selection"] = None
                st.error(f"Cannot load {label}: {exc}")
        sel = st.session_state.get("selection")
        if sel is not None:
            ckpt = sel.primary
            mc = ckpt.model_config
            st.caption(f"{mc.arch.upper()} · {mc.latent_dim}-D latent · dataset **{ckpt.dataset.get('name')}**")
            for kind, source in options[label].items():
                name = Path(source.ref).name if source.kind == "file" else f"{sel.label.split(' ')[0]}.safetensors"
                st.download_button(
                    f"Download {kind.upper()} checkpoint", data=source.data(), file_name=name,
                    mime="application/octet-stream", key=f"download_{kind}", width="stretch",
                )
        st.divider()
        uploaded = st.file_uploader(
            f"Upload a .safetensors checkpoint (max {common.UPLOAD_LIMIT_MB} MB)", type=["safetensors"], key="upload",
        )
        if uploaded is not None and st.session_state.get("upload_seen") != uploaded.file_id:
            st.session_state["upload_seen"] = uploaded.file_id
            error = common.handle_upload(uploaded)
            if error:
                st.session_state["upload_error"] = error
            else:
                st.session_state.pop("upload_error", None)
                st.session_state["select_label"] = f"{uploaded.name.removesuffix('.safetensors')} (uploaded)"
                st.rerun()
        if st.session_state.get("upload_error"):
            st.error(st.session_state["upload_error"])


ensure_default_models()
pages = [
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
    st.Page("pages/live.py", title="Live pad", icon=":material/touch_app:"),
    st.Page("pages/compare.py", title="Compare AE vs VAE", icon=":material/compare:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/grid_view:"),
    st.Page("pages/theory.py", title="Theory", icon=":material/functions:"),
    st.Page("pages/inpaint.py", title="Fill in missing pixels", icon=":material/healing:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
nav = st.navigation(pages)
sidebar()
nav.run()
