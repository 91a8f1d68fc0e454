"""Fixtures for the AppTest tests: st.navigation mode across runs and a FakeJob for the Train page.
(The default pair and `app_env`, which points the app at it, are in tests/conftest.py.)"""

from __future__ import annotations

import pytest

import vae.services.jobs
from vae.services.jobs import JobState, TrainingRequest


@pytest.fixture(autouse=True)
def navigation_without_pages_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run app.py on every AppTest run, as a real server does once app.py has called st.navigation.

    Streamlit turns on its old pages-folder mode (MPA v1) when a folder named `pages/` sits
    next to the main script; st.navigation turns it off again, for the rest of the process.
    AppTest resets that flag before every run, so without this each run after the first would
    execute the page file alone, without app.py's sidebar. (On a real server the same thing
    happens to the first request after a start when it is a deep link such as /compare; see
    tests/e2e/test_app_browser.py.) Harmless once the folder has another name.
    """
    from pages.ui.frame import keep_navigation_mode  # the one place that touches the private flag

    keep_navigation_mode(monkeypatch)


class FakeJob:
    """Stands in for vae.services.jobs.TrainingJob on the Train page: records what it was asked to train
    and reports whatever state a test puts into it; trains nothing."""

    started: list[TrainingRequest] = []

    def __init__(self, request: TrainingRequest, **options: object) -> None:
        self.request = request
        self.state = JobState(
            status="running", kind="vae", fraction=0.25,
            step={"epoch": 1, "epochs": 4, "recon": -70.0, "kl": 10.0, "elbo": -80.0, "images_per_s": 1000.0})

    def start(self) -> FakeJob:
        FakeJob.started.append(self.request)
        return self

    @property
    def alive(self) -> bool:
        return self.state.status in ("pending", "queued", "running")

    def snapshot(self) -> JobState:
        return self.state

    def stop(self) -> None:
        self.state.status = "stopped"


@pytest.fixture
def fake_jobs(monkeypatch: pytest.MonkeyPatch) -> list[TrainingRequest]:
    """The Train page starts FakeJobs (pages/train.py imports TrainingJob on every run); returns their requests."""
    monkeypatch.setattr(FakeJob, "started", [])
    monkeypatch.setattr(vae.services.jobs, "TrainingJob", FakeJob)
    return FakeJob.started


@pytest.fixture(autouse=True)
def small_first_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run in these tests trains on the 8x8 digits (seconds, not the bundled MNIST
    default) and starts no 16-D pair after it (the tests list the models folder)."""
    monkeypatch.setenv("VAE_FIRST_RUN_DATASET", "digits")
    monkeypatch.setenv("VAE_FIRST_RUN_FOLLOW_UP", "0")
