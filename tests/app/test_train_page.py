"""The Train page (issue 9): the name in "Save as" is the name used, the form survives leaving
the page, the session that trained a model gets it selected, and an AE's progress is not
called an ELBO."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.services.jobs import TrainingRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = str(REPO_ROOT / "app.py")
TIMEOUT = 60


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widget(at: AppTest, kind: str, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in getattr(at, kind) if w.label == label)


def press_train(at: AppTest) -> AppTest:
    widget(at, "button", "Train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_typed_name_is_used_after_changing_the_latent_dim(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """Issue 9.1: change Latent dim, type a name, tick Overwrite, press Train: that name is used."""
    at = train_page()
    widget(at, "number_input", "Latent dim").set_value(3)
    widget(at, "text_input", "Save as").set_value("my-run")
    at.checkbox(key="train_overwrite").set_value(True)
    press_train(at)

    assert len(fake_jobs) == 1, [e.value for e in at.main.error]
    r = fake_jobs[0]
    assert (r.dataset, r.which, r.name, r.model_config.latent_dim) == ("mnist-bundled", "both", "my-run", 3)  # the default dataset


def test_the_overwrite_warning_names_the_typed_files(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """Without the tick, the warning is about the files of the name in the box, not a default's."""
    at = train_page()
    widget(at, "number_input", "Latent dim").set_value(3)
    widget(at, "text_input", "Save as").set_value("mnist-2d")  # the existing pair's name
    press_train(at)

    assert fake_jobs == []
    (warning,) = at.main.warning
    assert "mnist-2d-vae.safetensors" in warning.value and "mnist-2d-ae.safetensors" in warning.value


def test_the_default_name_follows_dataset_and_latent_dim_until_the_user_types_one(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    at = train_page()
    assert widget(at, "text_input", "Save as").value == "mnist-bundled-2d-run"
    widget(at, "number_input", "Latent dim").set_value(4).run()
    assert widget(at, "text_input", "Save as").value == "mnist-bundled-4d-run"
    widget(at, "text_input", "Save as").set_value("mine").run()
    widget(at, "number_input", "Latent dim").set_value(5).run()
    assert widget(at, "text_input", "Save as").value == "mine"
    press_train(at)
    assert [r.name for r in fake_jobs] == ["mine"]


def test_the_form_survives_leaving_the_page(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """Issue 9.1: leaving Train and coming back keeps the user's last choices for the session."""
    at = train_page()
    widget(at, "selectbox", "Model").set_value("vae")
    widget(at, "selectbox", "Architecture").set_value("conv")
    widget(at, "number_input", "Latent dim").set_value(5)
    widget(at, "number_input", "Epochs").set_value(7)
    widget(at, "number_input", "β (KL weight)").set_value(2.5)
    widget(at, "text_input", "Save as").set_value("keep-me")
    at.run()
    at.switch_page("pages/explore.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]

    assert widget(at, "selectbox", "Model").value == "vae"
    assert widget(at, "selectbox", "Architecture").value == "conv"
    assert widget(at, "number_input", "Latent dim").value == 5
    assert widget(at, "number_input", "Epochs").value == 7
    assert widget(at, "number_input", "β (KL weight)").value == 2.5
    assert widget(at, "text_input", "Save as").value == "keep-me"
    press_train(at)
    (r,) = fake_jobs
    assert (r.which, r.name, r.model_config.latent_dim, r.model_config.arch, r.train_config.epochs, r.train_config.beta) == (
        "vae", "keep-me", 5, "conv", 7, 2.5)


def test_an_ae_progress_is_not_called_an_elbo(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """Issue 9.12: the AE has no ELBO; its progress names its reconstruction term."""
    at = train_page()
    widget(at, "text_input", "Save as").set_value("ae-run")
    widget(at, "selectbox", "Model").set_value("ae")
    press_train(at)
    job = at.session_state["train_job"]
    job.state.kind = "ae"
    at.run()
    text = at.get("progress")[0].proto.text
    assert "ELBO" not in text and "log p(x|z) -70.00" in text, text


def test_a_stopped_pair_shows_what_was_saved_and_selects_it(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """Issue 9.2 on the page: a stop that saved the VAE is a warning naming it, never "Training
    failed", and that VAE is selected for the replay."""
    at = train_page()
    widget(at, "text_input", "Save as").set_value("half")
    press_train(at)
    job = at.session_state["train_job"]
    vae_path = app_env / "mnist-2d-vae.safetensors"  # stands in for the saved VAE (a FakeJob trains nothing)
    job.state.status, job.state.saved = "stopped", [str(vae_path)]
    job.state.message = "stopped during the AE: saved the finished VAE as mnist-2d-vae.safetensors; the AE was not saved"
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert not at.main.error, [e.value for e in at.main.error]
    assert any("saved the finished VAE" in w.value for w in at.main.warning)
    assert at.sidebar.selectbox(key="model_choice").value.startswith("mnist-2d-vae  (VAE")


def test_the_session_that_trained_a_model_gets_it_selected(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9.11: after a real (thread-mode) training, the sidebar selects the new model in this
    session and the replay shows it, not the model that was selected before."""
    models = tmp_path / "models"
    shutil.copytree(app_env, models)
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_TRAINING_MODE", "thread")
    at = train_page()
    widget(at, "selectbox", "Dataset").set_value("digits")  # the tiny option: seconds
    widget(at, "selectbox", "Model").set_value("vae")
    widget(at, "number_input", "Epochs").set_value(2)
    widget(at, "text_input", "Save as").set_value("fresh")
    press_train(at)
    job = at.session_state["train_job"]
    job.join(120)
    assert job.snapshot().status == "done", job.snapshot()
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="model_choice").value == "fresh  (VAE, mlp, 2-D, digits)"
    assert any("fresh" in s.value for s in at.subheader), [s.value for s in at.subheader]

    other = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # another session keeps its choice
    other.sidebar.selectbox(key="model_choice").set_value("mnist-2d (VAE + AE pair)").run()
    at.run()
    other.run()
    assert other.sidebar.selectbox(key="model_choice").value == "mnist-2d (VAE + AE pair)"


def test_a_refusal_disappears_once_the_name_changes(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    """The overwrite warning is about the name Train was pressed with; typing another name removes it."""
    at = train_page()
    widget(at, "text_input", "Save as").set_value("mnist-2d")
    press_train(at)
    assert len(at.main.warning) == 1
    widget(at, "text_input", "Save as").set_value("something-else").run()
    assert not at.main.warning and fake_jobs == []


def test_the_background_default_pair_shows_here_and_so_does_its_failure(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 16-D default pair that follows the first run blocks nobody: the Train page is where its
    progress and a failure show."""
    import vae.services.workflow
    from vae.core.data import load_dataset
    from vae.services import jobs

    gate = threading.Event()

    def held_then_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(30)
        raise vae.services.workflow.ConfigError("disk on fire")

    monkeypatch.setattr(vae.services.workflow, "train_models", held_then_fails)
    model_config, train_config = vae.services.workflow.default_run(load_dataset("digits"), latent_dim=16)
    request = jobs.TrainingRequest("digits", "both", model_config, train_config, app_env, jobs.FOLLOW_UP_PAIR)
    job = jobs.TrainingJob(request, mode="thread").start()
    monkeypatch.setitem(jobs._FOLLOW_UPS, app_env.resolve(), job)
    try:
        at = train_page()
        assert any("16-D default pair **mnist-16d** is training in the background" in i.value for i in at.main.info), \
            [i.value for i in at.main.info]
    finally:
        gate.set()
        job.join(30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("mnist-16d failed: disk on fire" in w.value for w in at.main.warning), [w.value for w in at.main.warning]
