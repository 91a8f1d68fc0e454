"""Train: choose data, model and hyperparameters; watch progress and live loss curves."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import streamlit as st

from pages.ui import session, widgets
from pages.ui.frame import presenting
from vae.analysis import images
from vae.core import archives, folders
from vae.core.config import LATENT_DIM_RANGE, ModelConfig, TrainConfig
from vae.core.data import DATASET_NAMES, load_dataset
from vae.core.errors import LatentExplorerError
from vae.core.models import default_model_config
from vae.services import animation, plots
from vae.services.jobs import LIVE_STATES, TrainingJob, TrainingRequest, follow_up_training
from vae.services.workflow import MODEL_CHOICES, check_name, checkpoint_paths, models_dir, progress_measure

st.title("Train")
JOB_KEY = "train_job"
FORM_MEMORY = "train_form_memory"  # the form's last values: Streamlit drops a widget's state while its page is not shown
AUTO_NAME = "train_auto_name"  # the default name now in "Save as"; it follows dataset and latent dim until the user types
FORM_DEFAULTS = {
    "train_dataset": DATASET_NAMES[0], "train_model": "both", "train_arch": "mlp", "train_latent_dim": 2,
    "train_beta": 1.0, "train_epochs": 40, "train_batch_size": 128, "train_lr": 1e-3, "train_seed": 0,
    "train_name": f"{DATASET_NAMES[0]}-2d-run", "train_overwrite": False,
}


def default_name(dataset: str, latent_dim: int) -> str:
    return f"{dataset}-{latent_dim}d-run"


def is_live(job: TrainingJob | None) -> bool:
    """Whether the job may still make progress (so the page keeps polling it)."""
    return job is not None and job.alive and job.snapshot().status in LIVE_STATES


def label_of(saved: list[str]) -> str | None:
    """The sidebar's label for exactly these saved files: a pair's label for both files of a
    pair, a model's own label for one file (labels come from session.model_options)."""
    wanted = {Path(p).resolve() for p in saved}
    for label, sources in session.model_options().items():
        if {Path(s.ref).resolve() for s in sources.values() if s.kind == "file"} == wanted:
            return label
    return None


def select_what_was_trained(job: TrainingJob | None) -> None:
    """Once per job, when it ended with files saved: select them in this session's sidebar (app.py
    reads "select_label" on the next run) and rerun, so the replay below shows the new model.
    Other sessions keep their choice: nothing here is shared."""
    if job is None or is_live(job) or st.session_state.get("train_selected_job") is job:
        return
    saved = job.snapshot().saved
    if not saved:
        return
    st.session_state["train_selected_job"] = job
    label = label_of(saved)
    if label is not None and label != st.session_state.get("model_choice"):
        st.session_state["select_label"] = label
        st.rerun()


def start_job(form: dict[str, Any]) -> bool:
    """Validate everything at the edge, then start the background job; True when it started.
    The name is the one in "Save as", always; files of that name are replaced only when the
    form's "overwrite" box is ticked."""
    st.session_state.pop("train_error", None)
    st.session_state.pop("train_overwrite_warning", None)
    try:
        name = check_name(form["name"].strip())
        train_config = TrainConfig(
            dataset=form["dataset"], epochs=int(form["epochs"]), batch_size=int(form["batch_size"]),
            lr=float(form["lr"]), beta=float(form["beta"]), seed=int(form["seed"]),
        ).validate()
        ModelConfig(arch=form["arch"], latent_dim=int(form["latent_dim"])).validate()
        data = load_dataset(form["dataset"])  # fails here, with a message, when missing offline
        model_config = default_model_config(data.image_shape, arch=form["arch"], latent_dim=int(form["latent_dim"])).validate()
        targets = checkpoint_paths(models_dir(), name, form["model"])
    except LatentExplorerError as exc:
        st.session_state["train_error"] = str(exc)
        return False
    existing = [p.name for p in targets.values() if p.exists()]
    if existing and not form["overwrite"]:
        files = " and ".join(f"**{n}**" for n in existing)
        st.session_state["train_overwrite_warning"] = (
            f"{files} already {'exist' if len(existing) > 1 else 'exists'} in the models folder; training under the name "
            f"**{name}** would replace {'them' if len(existing) > 1 else 'it'}. Choose another name, or tick "
            "**Overwrite existing files** and press Train again."
        )
        return False
    job = TrainingJob(TrainingRequest(form["dataset"], form["model"], model_config, train_config, models_dir(), name))
    st.session_state[JOB_KEY] = job.start()
    return True


def restore_form() -> None:
    """Put back the user's last choices (or the defaults) into widgets Streamlit has forgotten."""
    memory = st.session_state.setdefault(FORM_MEMORY, dict(FORM_DEFAULTS))
    for key, value in memory.items():
        if key not in st.session_state:
            st.session_state[key] = value
    st.session_state.setdefault(AUTO_NAME, FORM_DEFAULTS["train_name"])


def own_data() -> str | None:
    """Your own images: a folder or .npz on the server, or a ZIP upload (vae.core.archives); the
    dataset name to train on, or None for the list's choice."""
    with st.expander("Your own images: a folder or .npz on this server, or a ZIP upload"):
        c1, c2, c3 = st.columns([3, 1, 1])
        path = c1.text_input("Folder or .npz path on the server", key="train_own_path", help="ImageFolder layout (a subfolder per class) or a flat folder")
        size = c2.number_input("Image size (0 = auto)", 0, folders.SIZE_RANGE[1], key="train_own_size", help="square side; auto: the most common, at most 64")
        channels = c3.selectbox("Channels", folders.CHANNEL_CHOICES, key="train_own_channels")
        upload = st.file_uploader("or a ZIP file of images (at most 200 MB)", type="zip", key="train_own_zip")
        try:
            if upload is not None:
                memo = (upload.file_id, int(size), channels)
                if st.session_state.get("train_own_import", (None, None))[0] != memo:
                    with st.spinner("Unpacking and reading the images..."):
                        st.session_state["train_own_import"] = (memo, archives.import_zip(upload.getvalue(), int(size) or None, channels))
                name: str | None = st.session_state["train_own_import"][1]
            else:
                name = folders.spec_for_path(path, int(size) or None, channels) if path.strip() else None
        except LatentExplorerError as exc:
            st.error(str(exc))
            return None
        if name:
            st.caption(f"Training on **{name}** instead of the list's dataset")
        return name


def settings_form() -> None:
    """The training settings. A fragment, not an st.form: a change reruns only this part (the
    replay below stays as it is), and "Save as" can follow dataset and latent dim until the user
    types a name. Whatever "Save as" holds when Train is pressed is the name used."""
    restore_form()
    job: TrainingJob | None = st.session_state.get(JOB_KEY)
    running = job is not None and job.alive
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns(4)
        dataset = c1.selectbox("Dataset", DATASET_NAMES, key="train_dataset",
                               help="digits and mnist-bundled ship with the app (offline); the others need their files (see README)")
        model = c2.selectbox("Model", MODEL_CHOICES, key="train_model", format_func={"vae": "VAE", "ae": "AE", "both": "VAE + AE"}.__getitem__,
                             help="VAE + AE trains both with the same architecture and seed, for a fair comparison")
        arch = c3.selectbox("Architecture", ["mlp", "conv"], key="train_arch")
        latent_dim = c4.number_input("Latent dim", LATENT_DIM_RANGE[0], LATENT_DIM_RANGE[1], key="train_latent_dim")
        dataset = own_data() or dataset
        c5, c6, c7, c8, c9 = st.columns(5)
        beta = c5.number_input("β (KL weight)", 0.0, 1000.0, step=0.5, key="train_beta")
        epochs = c6.number_input("Epochs", 1, 10_000, key="train_epochs")
        batch_size = c7.number_input("Batch size", 1, 65_536, key="train_batch_size")
        lr = c8.number_input("Learning rate", 1e-6, 10.0, format="%.4f", step=1e-4, key="train_lr")
        seed = c9.number_input("Seed", 0, 2**31 - 1, key="train_seed")
        suggested = default_name(dataset if dataset in DATASET_NAMES else "own", int(latent_dim))
        if st.session_state["train_name"] == st.session_state[AUTO_NAME]:  # not typed by the user: follow the settings
            st.session_state["train_name"] = suggested
        st.session_state[AUTO_NAME] = suggested
        c_name, c_overwrite = st.columns([3, 1], vertical_alignment="bottom")
        name = c_name.text_input("Save as", key="train_name", help="file name in the models folder")
        overwrite = c_overwrite.checkbox("Overwrite existing files", key="train_overwrite",
                                         help="replace the checkpoint(s) of that name, if there are any; otherwise Train refuses")
        pressed = st.button("Train", type="primary", disabled=running, key="train_submit")
    st.session_state[FORM_MEMORY] = {key: st.session_state[key] for key in FORM_DEFAULTS}
    form = dict(dataset=dataset, model=model, arch=arch, latent_dim=latent_dim, beta=beta, epochs=epochs,
                batch_size=batch_size, lr=lr, seed=seed, name=name, overwrite=overwrite)
    if pressed and not running:
        st.session_state["train_feedback_form"] = form
        if start_job(form):
            st.rerun()  # the whole page: its progress panels start polling the new job
    # a refusal is about the settings Train was pressed with: once they change, it no longer applies
    if st.session_state.get("train_feedback_form") == form:
        if st.session_state.get("train_error"):
            st.error(st.session_state["train_error"])
        if st.session_state.get("train_overwrite_warning"):
            st.warning(st.session_state["train_overwrite_warning"], icon=":material/warning:")


job: TrainingJob | None = st.session_state.get(JOB_KEY)
select_what_was_trained(job)
st.fragment(settings_form)()
# The panels below poll the job on timers only while it can still change: a timer reruns its
# fragment even when there is nothing to show, and 30 idle Train pages would keep the server busy.
live = is_live(job)


def thin(rows: list[dict[str, Any]], max_points: int = 200) -> list[dict[str, Any]]:
    """At most ~max_points evenly spaced rows, the last one always kept: a 10,000-epoch curve
    costs the same to draw as a 200-epoch one (drawing grows with points: 5,000 took 0.45 s)."""
    if len(rows) <= max_points:
        return rows
    step = -(-len(rows) // max_points)
    kept = rows[::step]
    return kept if kept[-1] is rows[-1] else [*kept, rows[-1]]


def curves_panel() -> None:
    """Live loss curves, refreshed every few seconds rather than on every progress tick, and
    rebuilt only when new epochs arrived: building the Plotly figure takes ~100 ms of the
    server's GIL, which every other session's slider waits for (bench/RESULTS.md, "Classroom load")."""
    job: TrainingJob | None = st.session_state.get(JOB_KEY)
    history = job.snapshot().history if job is not None else {}
    rows = sum(len(v) for v in history.values())
    if not rows:
        return
    cached = st.session_state.get("train_curves_cache")
    if cached is None or cached[0] is not job or cached[1] != rows:
        cached = (job, rows, plots.training_curves({k: thin(v) for k, v in history.items()}))
        st.session_state["train_curves_cache"] = cached
    st.plotly_chart(cached[2], key="train_curves")


def progress_panel() -> None:
    job: TrainingJob | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if live and not is_live(job):  # it just ended: one full run draws the result and stops the timers
        st.rerun()
    state = job.snapshot()
    s = state.step
    speed = "" if presenting() else f" · {s.get('images_per_s', 0):,.0f} images/s"  # a developer's readout
    text = (f"{state.kind.upper()} epoch {int(s.get('epoch', 0))}/{int(s.get('epochs', 0))} · "
            f"{progress_measure(state.kind, s.get('elbo', 0.0), s.get('recon', 0.0))}{speed}") if s else "starting…"
    if state.status == "queued":  # trainings run a few at a time, so the app stays responsive for everyone
        text = f"queued: {state.message}"
    elif state.status == "stopped" and s:
        text = f"stopped at {text}"
    st.progress(min(1.0, state.fraction), text=text)
    if state.status in ("running", "queued") and st.button("Stop training", key="train_stop"):
        job.stop()
    if state.status == "done":
        st.success(f"Done in {(state.finished or time.time()) - state.started:.0f} s: {state.message}")
    elif state.status == "failed":
        st.error(f"Training failed: {state.error}. The models you had are unchanged.")
    elif state.status == "stopped":  # a stop is never a failure; it says what it saved, if anything
        st.warning(state.message, icon=":material/stop_circle:")
    if state.saved and st.button("Explore it", type="primary", key="train_explore"):
        st.session_state["select_label"] = label_of(state.saved)
        st.session_state.pop(JOB_KEY, None)
        st.switch_page("pages/explore.py")


def follow_up_panel() -> None:
    """The 16-D default pair that trains in the background after the first run: nobody waits for
    it, so this is where its progress, or its failure, shows."""
    job = follow_up_training(models_dir())
    if job is None:
        return
    if follow_up_live and not is_live(job):  # it just ended: one full run shows its models and stops the timer
        st.rerun()
    state = job.snapshot()
    if state.status in LIVE_STATES:
        doing = state.text if state.status == "running" else state.status
        st.info(f"The {job.request.model_config.latent_dim}-D default pair **{job.request.name}** is training in the "
                f"background ({doing}, {state.fraction:.0%}); it joins the model list when it is done.",
                icon=":material/hourglass_top:")
    elif state.status == "failed":
        st.warning(f"The background training of the default pair {job.request.name} failed: {state.error}. "
                   "Nothing else is affected; train it here if you want it.", icon=":material/warning:")


follow_up_live = is_live(follow_up_training(models_dir()))
st.fragment(follow_up_panel, run_every=2.0 if follow_up_live else None)()
st.fragment(progress_panel, run_every=0.7 if live else None)()
st.fragment(curves_panel, run_every=3.0 if live else None)()

sel = session.current_selection()
if sel is not None and sel.primary.snapshots is not None:
    st.divider()
    st.subheader(f"Replay: how the map of **{sel.label}** formed")
    ckpts = [(k, c) for k, c in (("VAE", sel.vae), ("AE", sel.ae)) if c is not None and c.snapshots is not None]
    data = session.dataset_or_stop(sel.primary)
    snapshots = {k: c.snapshots for k, c in ckpts if c.snapshots is not None}  # all of ckpts: typed as present
    last = min(s.shape[0] for s in snapshots.values()) - 1  # snapshot 0 is the map before training
    if last > 0:
        epoch = st.slider("Epoch", 0, last, last, key=f"replay_{sel.label}")
    else:  # a run stopped in its first epoch holds one snapshot: nothing to slide over
        epoch = 0
        st.caption("This checkpoint holds a single snapshot (the map before training), so there is nothing to replay yet.")
    cols = st.columns(len(ckpts), gap="large")
    frames = {k: s[epoch].numpy() for k, s in snapshots.items()}
    shared = plots.axis_ranges(*frames.values())
    for col, (kind, c) in zip(cols, ckpts, strict=True):
        with col:
            labels = data.y_test[c.snapshot_index].numpy()
            st.plotly_chart(
                plots.snapshot_map(frames[kind], labels, data.class_names, f"{kind}, epoch {epoch}", ranges=shared),
                key=f"replay_{kind}",
            )
            if c.snapshot_decodes is not None:  # what the decoder made of the first test images at that epoch
                row = c.snapshot_decodes[epoch].permute(0, 2, 3, 1).float().numpy() / 255
                widgets.show_image(images.tile(row, 1, row.shape[0]), f"{kind}: reconstructions of {row.shape[0]} test images, epoch {epoch}",
                                   width="stretch")
    widgets.gif_download(
        "Download the replay as GIF",
        functools.partial(animation.replay_gif, [s.numpy() for s in snapshots.values()],
                          [data.y_test[c.snapshot_index].numpy() for _, c in ckpts], list(snapshots), data.class_names,
                          decodes=[c.snapshot_decodes.numpy() if c.snapshot_decodes is not None else None for _, c in ckpts]),
        "replay.gif", f"replay_gif_{sel.label}",
    )
    if last + 1 > animation.MAX_FRAMES:
        st.caption(f"The GIF shows {animation.MAX_FRAMES} of the {last + 1} snapshots, evenly spaced (the first and last kept).")
    if sel.primary.history:
        st.plotly_chart(plots.training_curves({k.lower(): c.history for k, c in ckpts}), key="replay_curves")
