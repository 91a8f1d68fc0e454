"""Training jobs (issue 9): a stop keeps every model that finished and is never a failure; the
worker process prints nothing and never runs the app's script; an AE's progress is not an ELBO."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vae.core.checkpoint import load_checkpoint, save_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.models import build_model
from vae.core.train import Progress
from vae.services.jobs import TrainingJob, TrainingRequest, first_run_request
from vae.services.workflow import find_pairs, list_models

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(arch="mlp", latent_dim=2, image_shape=(1, 8, 8), hidden=(16,))


class StopDuringTheAE(TrainingJob):
    """Presses Stop as soon as the AE of a pair reports progress (the VAE has finished by then)."""

    def _on_progress(self, kind: str, p: Progress) -> None:
        super()._on_progress(kind, p)
        if kind == "ae":
            self.stop()


def old_pair(folder: Path, name: str) -> dict[str, bytes]:
    """An existing pair `name` (the user ticked Overwrite): its files' bytes."""
    for kind in ("vae", "ae"):
        save_checkpoint(folder / f"{name}-{kind}.safetensors", build_model(ModelConfig(**{**TINY.to_dict(), "kind": kind}), seed=1),
                        TrainConfig(epochs=1), {"name": "digits"}, pair=name)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("mode", ["thread", pytest.param("process", marks=pytest.mark.server)])
def test_a_stop_during_the_ae_keeps_the_finished_vae(mode: str, tmp_path: Path) -> None:
    before = old_pair(tmp_path, "run")
    request = TrainingRequest("digits", "both", TINY, TrainConfig(epochs=30, snapshot_points=0, seed=0), tmp_path, "run")
    job = StopDuringTheAE(request, mode=mode)
    job.start().join(180)
    state = job.snapshot()

    assert state.status == "stopped" and state.error == "", state  # a stop is never a failure
    vae_file = tmp_path / "run-vae.safetensors"
    assert [Path(p) for p in state.saved] == [vae_file]
    assert "run-vae.safetensors" in state.message and "AE was not saved" in state.message, state.message
    ckpt = load_checkpoint(vae_file)
    assert ckpt.kind == "vae" and len(ckpt.history) == 30  # the finished VAE, all its epochs
    assert vae_file.read_bytes() != before["run-vae.safetensors"]
    # the lone VAE belongs to no pair, so it never pairs up with the old AE
    assert ckpt.pair == "" and find_pairs(list_models(tmp_path)) == {}
    assert (tmp_path / "run-ae.safetensors").read_bytes() == before["run-ae.safetensors"]  # the AE that did not finish replaces nothing
    assert [r.kind for r in job.results] == ["vae"]


def test_a_stop_during_the_vae_of_a_pair_saves_nothing(tmp_path: Path) -> None:
    class StopAtOnce(TrainingJob):
        def _on_progress(self, kind: str, p: Progress) -> None:
            super()._on_progress(kind, p)
            self.stop()

    request = TrainingRequest("digits", "both", TINY, TrainConfig(epochs=30, snapshot_points=0), tmp_path, "run")
    job = StopAtOnce(request, mode="thread")
    job.start().join(120)
    state = job.snapshot()
    assert state.status == "stopped" and state.saved == [] and "nothing was saved" in state.message
    assert not list(tmp_path.iterdir())


WORKER_SCRIPT = """
import os, sys, types
from pathlib import Path

# What `streamlit run app.py` does while a script run is executing: the app's script is installed
# as the __main__ module (streamlit/runtime/scriptrunner/script_runner.py). The Train page starts
# its job from inside such a run.
app = Path(sys.argv[1])
app.write_text("import pathlib, streamlit\\npathlib.Path(__file__).with_suffix('.ran').write_text('ran')\\nprint('the app script ran')\\n")
fake_main = types.ModuleType("__main__")
fake_main.__file__ = str(app)
sys.modules["__main__"] = fake_main

from vae.core.config import ModelConfig, TrainConfig
from vae.services.jobs import TrainingJob, TrainingRequest

tiny = ModelConfig(arch="mlp", latent_dim=2, image_shape=(1, 8, 8), hidden=(16,))
job = TrainingJob(TrainingRequest("digits", "vae", tiny, TrainConfig(epochs=2, snapshot_points=0), Path(sys.argv[2]), "quiet"),
                  mode="process")
job.start().join(180)
print("STATUS", job.snapshot().status, file=sys.stderr)
"""


@pytest.mark.server
def test_the_training_worker_is_quiet_and_never_runs_the_app_script(tmp_path: Path) -> None:
    """Issue 9.10: under `streamlit run`, __main__ is the app's script; a spawn worker re-ran it
    (~55 lines of "missing ScriptRunContext" per training). The worker must run only the training."""
    app = tmp_path / "fake_app.py"
    models = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "VAE_TEST_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(WORKER_SCRIPT), str(app), str(models)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.stderr.strip() == "STATUS done" and out.stdout == "", (out.stdout, out.stderr)
    assert not app.with_suffix(".ran").exists()
    assert [p.name for p in models.iterdir()] == ["quiet.safetensors"]


@pytest.mark.server
def test_the_worker_imports_only_what_it_needs(tmp_path: Path) -> None:
    """The worker's modules: torch and vae, never streamlit or the app's pages."""
    from vae.services import jobs

    code = jobs.worker_command()
    probe = code[:-1] + [code[-1].replace("worker_main()", "worker_main(); import sys; print(sorted(sys.modules), file=sys.stderr)")]
    assert probe != code
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    import pickle

    request = jobs.TrainingRequest("digits", "vae", TINY, TrainConfig(epochs=1, snapshot_points=0), tmp_path, "mods")
    out = subprocess.run(probe, input=pickle.dumps(jobs.WorkerArgs(request, os.getpid(), 1, 0)), capture_output=True, timeout=300, env=env)
    modules = out.stderr.decode().strip().splitlines()[-1]
    assert "'torch'" in modules and "'vae.services.workflow'" in modules
    assert "streamlit" not in modules and "'pages" not in modules and "'app'" not in modules


def test_ae_progress_text_names_its_reconstruction_term(tmp_path: Path) -> None:
    """Issue 9.12: the first-run progress and the CLI's bar call an AE's number what it is."""
    run = TrainingJob(first_run_request(tmp_path, "x"), priority="first-run", mode="thread")
    assert run.snapshot().text == "starting"
    run._on_progress("ae", Progress("step", 5, 10, 1, 2, recon=-61.5, kl=0.0, elbo=-61.5, images_per_s=10.0))
    text = run.snapshot().text
    assert "ELBO" not in text and "log p(x|z) -61.5" in text, text
    assert text == "AE epoch 1/2: reconstruction log p(x|z) -61.5 nats"
    run._on_progress("vae", Progress("step", 5, 10, 1, 2, recon=-61.5, kl=3.0, elbo=-64.5, images_per_s=10.0))
    assert "ELBO -64.5" in run.snapshot().text

    from vae.__main__ import _progress_printer

    stream = io.StringIO()
    show = _progress_printer(stream)
    record = {"test_elbo": -70.0, "test_recon": -70.0}
    show("ae", Progress("epoch", 10, 10, 2, 2, recon=-61.5, kl=0.0, elbo=-61.5, images_per_s=10.0, record=record))
    line = stream.getvalue()
    assert "ELBO" not in line and "KL" not in line and "recon" in line and "test recon" in line, line


@pytest.mark.server
def test_the_worker_exits_cleanly_while_its_stdin_is_still_open(tmp_path: Path) -> None:
    """The worker's stop watch blocks on stdin for the whole training; the worker must still exit
    at once and silently when it is done (a blocked buffered read aborted the interpreter with
    "Fatal Python error: ... could not acquire lock for <stdin>")."""
    import pickle

    from vae.services import jobs

    request = jobs.TrainingRequest("digits", "vae", TINY, TrainConfig(epochs=1, snapshot_points=0), tmp_path, "open")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(jobs.worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(pickle.dumps(jobs.WorkerArgs(request, os.getpid(), 1, 0)))
        proc.stdin.flush()  # and left open: no stop request
        code = proc.wait(300)
        events = []
        while True:
            try:
                events.append(pickle.load(proc.stdout))
            except EOFError:
                break
        stderr = proc.stderr.read().decode()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
    assert (code, stderr) == (0, ""), (code, stderr)
    assert events[-1] == jobs.Finished([str(tmp_path / "open.safetensors")])
    assert {type(e) for e in events[:-1]} == {jobs.Progressed}


def test_the_worker_finds_this_package_from_any_working_directory() -> None:
    """The worker's PYTHONPATH starts with the folder that holds the `vae` package (the repository)."""
    from vae.services import jobs

    first = Path(jobs._worker_env()["PYTHONPATH"].split(os.pathsep)[0])
    assert first == REPO_ROOT and (first / "vae" / "__init__.py").is_file()


# --- the pages' judge: trained in a child process, not in the server's ---------------------------


def _never_train_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import vae.analysis.judge as judge_mod

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the judge was trained in the server's process")

    monkeypatch.setattr(judge_mod, "train_judge", refuse)


@pytest.mark.slow
def test_the_pages_judge_is_trained_by_a_child_process_into_the_cache(digits, tmp_path, monkeypatch):
    from vae.analysis.judge import judge_for, judge_path
    from vae.services.jobs import train_judge_apart

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    _never_train_here(monkeypatch)
    train_judge_apart(digits)
    assert judge_path(digits).is_file()
    judge = judge_for(digits)  # loaded from the child's file (training here would raise)
    assert judge is not None and judge.test_accuracy >= 0.95


def test_a_failed_child_process_leaves_the_judge_to_the_server(digits, tmp_path, monkeypatch, capsys):
    import vae.services.jobs as jobs
    from vae.analysis.judge import judge_path

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jobs, "judge_command", lambda name: [sys.executable, "-c", "import sys; sys.exit('no such dataset')"])
    jobs.train_judge_apart(digits)
    assert judge_path(digits).is_file()
    assert "its process failed (1: no such dataset); training it in the server" in capsys.readouterr().err
