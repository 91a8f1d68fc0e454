"""Latent Explorer: the frame. Runs before every page: navigation, a start-up screen while the
heavy modules load, first-run training, the shared sidebar (model choice, upload, download)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import streamlit as st

from pages.ui import frame, links

# Everything up to the start-up screen imports only Streamlit (and the link parser, stdlib only), so
# that the first paint (the app's own navigation and a title) comes before torch & co. are loaded
# (bench/RESULTS.md).
frame.leave_pages_folder_mode()
st.set_page_config(page_title="Latent Explorer", page_icon=str(frame.FAVICON), layout="wide")

PAGES = [
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
    st.Page("pages/live.py", title="Live pad", icon=":material/touch_app:"),
    st.Page("pages/compare.py", title="Compare AE vs VAE", icon=":material/compare:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/grid_view:"),
    st.Page("pages/theory.py", title="Theory", icon=":material/functions:"),
    st.Page("pages/inpaint.py", title="Fill in missing pixels", icon=":material/healing:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
nav = st.navigation(PAGES, position="hidden")
links.read_link(nav.url_path)  # once per link: presenter mode decides this run's styling
frame.page_style()
frame.navigation_links(PAGES)
frame.presenter_toggle()

startup = st.empty()  # always created, so the page's elements keep their positions from run to run
# The first runs of this server (another session may be importing it right now): still to come.
if not hasattr(sys.modules.get("pages.ui.session"), "require_selection"):  # its last definition
    with startup.container():
        st.title(nav.title)
        st.caption("Starting Latent Explorer: loading PyTorch and the models… (once per server, a few seconds)")

from pages.ui import session  # noqa: E402 - heavy (torch, scikit-learn): after the first paint on purpose
from vae.core.errors import LatentExplorerError  # noqa: E402
from vae.services.jobs import LIVE_STATES, first_run_training  # noqa: E402
from vae.services.workflow import list_models, models_dir  # noqa: E402

DATASET_TITLES = {"mnist-bundled": "the bundled MNIST digits (28×28)", "digits": "the embedded 8×8 digits"}


@st.cache_resource(max_entries=1, show_spinner=False)
def _freeze_startup_objects() -> int:
    """Once per server: exempt what the imports built from the cyclic garbage collector.

    torch, scikit-learn and Plotly leave ~350,000 long-lived objects; every full collection
    walked them all (~200 ms on a 2-core laptop, every other slider move), stalling every
    session at once. Frozen objects are still freed by reference counting (bench/RESULTS.md,
    "Classroom load"). Called after the first page has been drawn, so that it does not delay it."""
    import gc

    import pandas  # noqa: F401 - the pages' heavy imports, so that they are frozen too
    import plotly.subplots  # noqa: F401
    import torchvision.utils  # noqa: F401 - images.tile (make_grid) imports it on first use: not on a page's first tile

    from vae.analysis import metrics, theory  # noqa: F401
    from vae.services import plots  # noqa: F401

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def ensure_default_models() -> None:
    """On an empty models folder, wait for the default 2-D VAE + AE pair, with progress (the 16-D
    pair that follows it trains in the background: nobody waits for it).

    The training runs once per server in a background thread (vae.services.jobs.first_run_training),
    not in this script run: a click here only restarts the waiting, and a second browser shows
    the same progress instead of a blank page. Every waiting page goes on by itself once it is done."""
    if list_models(models_dir()):
        return
    startup.empty()
    training = first_run_training(models_dir(), session.DEFAULT_PAIR)
    dataset = DATASET_TITLES.get(training.request.dataset, training.request.dataset)
    with st.status(f"First start: training the default models, a 2-D VAE and a 2-D AE on {dataset}…",
                   expanded=True) as status:
        st.write("This happens once, on an empty models folder, and takes from a few seconds to a minute. "
                 "Every open page goes on by itself when it is done; a 16-D pair then trains in the "
                 "background (the Train page shows it).")
        bar = st.progress(0.0, text="starting")
        while (state := training.snapshot()).status in LIVE_STATES:
            bar.progress(min(1.0, state.fraction), text=state.text)  # where a rerun or a closed tab ends this wait (not the training)
            time.sleep(0.5)
        if state.status != "done":  # failed (nothing stops a first run)
            status.update(label=f"First-run training failed: {state.error or state.message}", state="error")
            return
        bar.progress(1.0, text="done")
        status.update(label="Trained and saved the default VAE + AE pair", state="complete", expanded=False)


def default_setting(label: str, options: dict) -> None:  # type: ignore[type-arg]
    """The visible, server-wide choice of what new sessions open on (a teacher pins the class's model)."""
    if any(source.kind != "file" for source in options[label].values()):
        return  # an upload lives in one session only: nothing to pin
    pinned = session.pinned_default()
    try:
        if pinned == label:
            st.caption(":material/push_pin: New sessions open on this model.")
            if st.button(f"Unpin: new sessions open on {session.DEFAULT_PAIR}", key="unpin_default", width="stretch"):
                session.pin_default(None)
                st.rerun()
        elif st.button("Make this the default for new sessions", key="pin_default", icon=":material/push_pin:",
                       width="stretch", help=f"Now: {pinned or session.pair_label(session.DEFAULT_PAIR)}. "
                                             "Sessions already open keep their own choice."):
            session.pin_default(label)
            st.rerun()
    except LatentExplorerError as exc:
        st.error(f"Cannot save the default: {exc}")


def upload_box() -> None:
    """The uploader with its message right under it (and a toast, which is always in view);
    a message belongs to the file that caused it and goes as soon as that file does."""
    # No `type=` filter: the browser would refuse another file silently, leaving the previous
    # file's message on screen; handle_upload names what is wrong with the file actually chosen.
    uploaded = st.file_uploader(f"Upload a .safetensors checkpoint (max {session.UPLOAD_LIMIT_MB} MB)", key="upload")
    if uploaded is None:
        st.session_state.pop("upload_error", None)
        return
    if st.session_state.get("upload_seen") != uploaded.file_id:
        st.session_state["upload_seen"] = uploaded.file_id
        st.session_state.pop("upload_error", None)
        error = session.handle_upload(uploaded)
        if error:
            st.session_state["upload_error"] = (uploaded.file_id, error)
            st.toast(error, icon=":material/error:", duration="long")
        else:
            st.session_state["select_label"] = f"{uploaded.name.removesuffix('.safetensors')} (uploaded)"
            st.rerun()
    file_id, error = st.session_state.get("upload_error") or (None, None)
    if error and file_id == uploaded.file_id:
        st.error(error)


def link_model_choice(options: dict) -> None:  # type: ignore[type-arg]
    """A link's model, selected where this server has it unchanged (its content hash), else a note."""
    request = links.requested_model()
    if request is None:
        return
    label, note = session.link_label(options, request)
    if label is not None:
        st.session_state["select_label"] = label
    elif note:
        links.add_note(note, drop_z=True)


def sidebar() -> None:
    with st.sidebar:
        st.header("Model")
        options = session.model_options()
        label = None
        if not options:
            st.session_state["selection"] = None
            st.caption("No models in the models folder yet.")
        else:
            labels = list(options)
            link_model_choice(options)
            wanted = st.session_state.pop("select_label", None)
            if wanted in labels:
                st.session_state["model_choice"] = wanted
            if st.session_state.get("model_choice") not in labels:
                st.session_state["model_choice"] = session.default_label(labels)
            label = st.selectbox("Model or pair", labels, key="model_choice")
            try:
                st.session_state["selection"] = session.select(label, options[label])
            except (LatentExplorerError, OSError) as exc:
                st.session_state["selection"] = None
                st.error(f"Cannot load {label}: {exc}")
        sel = st.session_state.get("selection")
        if sel is not None and label is not None:
            ckpt = sel.primary
            mc = ckpt.model_config
            st.caption(f"{mc.arch.upper()} · {mc.latent_dim}-D latent · dataset **{ckpt.dataset.get('name')}**")
        upload_box()
        if sel is not None and label is not None:
            default_setting(label, options)
            for kind, source in options[label].items():
                name = Path(source.ref).name if source.kind == "file" else f"{sel.label.split(' ')[0]}.safetensors"
                st.download_button(
                    f"Download {kind.upper()} checkpoint", data=source.data(), file_name=name,
                    mime="application/octet-stream", key=f"download_{kind}", width="stretch",
                )


ensure_default_models()
sidebar()
startup.empty()
links.show_notes(nav.url_path)
try:
    nav.run()
finally:
    links.end_of_run()
    _freeze_startup_objects()  # once per server, after the first page is on screen
