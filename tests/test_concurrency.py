"""A full classroom on one server: sessions are isolated, shared cached models are only read,
trainings queue instead of piling up, and a long-running server's memory stays flat.

The timing side (30 sessions moving sliders while one trains) is a benchmark, not a test:
bench/classroom.py, numbers in bench/RESULTS.md."""

from __future__ import annotations

import ast
import gc
import hashlib
import os
import shutil
import sys
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import vae.services.jobs
from vae.analysis import images
from vae.analysis.maps import compute_map
from vae.core.checkpoint import load_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.services import plots
from vae.services.jobs import TrainingJob, TrainingRequest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
TINY = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
LONG = TrainConfig(epochs=10_000, snapshot_points=0)  # runs until stopped
SHORT = TrainConfig(epochs=1, snapshot_points=0)


def start_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sliders(at: AppTest) -> list:
    found = [s for s in at.slider if (s.key or "").startswith("explore_") and "_z" in (s.key or "")]
    return sorted(found, key=lambda s: s.key)


def decoded_url(at: AppTest) -> str:
    return next(img for img in at.image if "decoded image" in img.captions).value[0]


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- isolation


def test_one_sessions_sliders_and_uploads_do_not_change_another(app_env: Path) -> None:
    a, b = start_app(), start_app()
    b_values, b_url = [s.value for s in sliders(b)], decoded_url(b)

    z1 = sliders(a)[0]
    z1.set_value(z1.max).run()
    assert decoded_url(a) != b_url
    data = (app_env / "mnist-2d-ae.safetensors").read_bytes()
    a.sidebar.file_uploader(key="upload").set_value(("only-mine.safetensors", data, "application/octet-stream")).run()
    assert a.session_state["model_choice"] == "only-mine (uploaded)"

    b.run()
    assert not b.exception
    assert [s.value for s in sliders(b)] == b_values and decoded_url(b) == b_url
    assert "only-mine (uploaded)" not in b.sidebar.selectbox(key="model_choice").options
    assert "uploads" not in b.session_state


def test_cached_models_are_only_read(app_env: Path, default_pair_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page, in two sessions, plus a training in one of them: the shared cached models
    (st.cache_resource) keep their exact weights and stay in eval mode."""
    from pages.ui import session

    monkeypatch.setenv("VAE_MODELS_DIR", str(default_pair_copy))  # the training below saves into the folder
    paths = sorted(default_pair_copy.glob("*.safetensors"))
    cached = [session.load_model_file(str(p), p.stat().st_mtime).model for p in paths]  # the objects sessions share
    before = [weights_digest(m) for m in cached]
    on_disk = [weights_digest(load_checkpoint(p).model) for p in paths]
    assert before == on_disk

    a, b = start_app(), start_app()
    for page in ("explore", "compare", "generate", "theory", "inpaint", "train"):
        for at in (a, b):
            at.switch_page(f"pages/{page}.py").run()
            assert not at.exception, (page, [e.value for e in at.exception])
    a.switch_page("pages/explore.py").run()
    z1 = sliders(a)[0]
    z1.set_value(z1.min).run()

    # a training in this very process (thread mode; the app's default worker process could not touch them anyway)
    job = TrainingJob(TrainingRequest("digits", "both", TINY, TrainConfig(epochs=1, snapshot_points=10), default_pair_copy,
                                      "class-run"), mode="thread")
    job.start().join(120)
    assert job.snapshot().status == "done"
    try:
        after = [weights_digest(session.load_model_file(str(p), p.stat().st_mtime).model) for p in paths]
        assert after == before
        for p in paths:
            model = session.load_model_file(str(p), p.stat().st_mtime).model
            assert not model.training
            assert all(t.grad is None for t in model.parameters())
        assert all(r.model not in cached for r in job.results)  # training built its own models
    finally:
        for p in default_pair_copy.glob("class-run-*.safetensors"):
            p.unlink()


# ---------------------------------------------------------------- training does not crowd out the others


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch) -> threading.BoundedSemaphore:
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(vae.services.jobs, "TRAINING_SLOTS", slots)
    return slots


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_trainings_queue_for_a_free_slot_and_can_be_stopped_while_queued(one_slot, tmp_path: Path) -> None:
    long_run = TrainConfig(epochs=10_000, snapshot_points=0)
    first = TrainingJob(TrainingRequest("digits", "vae", TINY, long_run, tmp_path, "first"), mode="thread").start()
    wait_for(lambda: first.snapshot().status == "running")
    second = TrainingJob(TrainingRequest("digits", "vae", TINY, long_run, tmp_path, "second"), mode="thread").start()
    wait_for(lambda: second.snapshot().status == "queued")
    time.sleep(0.3)
    assert second.snapshot().status == "queued"  # still waiting: one training at a time

    second.stop()
    second.join(10)
    assert second.snapshot().status == "stopped" and "before it started" in second.snapshot().message
    first.stop()
    first.join(30)
    assert first.snapshot().status == "stopped"
    assert one_slot.acquire(blocking=False)  # the slot was given back
    one_slot.release()
    assert not list(tmp_path.glob("*.safetensors"))


def test_a_queued_job_starts_when_the_slot_frees(one_slot, tmp_path: Path) -> None:
    first = TrainingJob(TrainingRequest("digits", "vae", TINY, LONG, tmp_path, "first"), mode="thread").start()
    wait_for(lambda: first.snapshot().status == "running")
    second = TrainingJob(TrainingRequest("digits", "vae", TINY, SHORT, tmp_path, "second"), mode="thread").start()
    wait_for(lambda: second.snapshot().status == "queued")
    first.stop()
    second.join(120)
    assert second.snapshot().status == "done"
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["second.safetensors"]


def test_stop_pressed_while_saving_reports_what_was_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop arrives after the last epoch, while the files are written: they are saved, and the
    job says so instead of "nothing was saved"."""
    import vae.services.workflow

    real_save = vae.services.workflow.save_checkpoint
    job = TrainingJob(TrainingRequest("digits", "both", TINY, SHORT, tmp_path, "late"), mode="thread")

    def save_while_user_presses_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        job.stop()
        return real_save(*args, **kwargs)

    monkeypatch.setattr(vae.services.workflow, "save_checkpoint", save_while_user_presses_stop)
    job.start().join(120)
    state = job.snapshot()
    files = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert files == ["late-ae.safetensors", "late-vae.safetensors"]
    assert state.status == "done", state
    assert sorted(Path(p).name for p in state.saved) == files
    assert "nothing was saved" not in state.message and "late-vae.safetensors" in state.message
    assert state.started <= state.finished <= time.time()  # "Done in N s" stops counting when the job ends
    time.sleep(0.05)
    assert job.snapshot().finished == state.finished


@pytest.mark.server
def test_training_runs_in_a_lower_priority_worker_process(tmp_path: Path) -> None:
    """The default: its own process (own GIL, own torch threads), at nice +TRAINING_NICE (19);
    stop ends it, nothing saved."""
    threads_before = torch.get_num_threads()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    job = TrainingJob(TrainingRequest("digits", "vae", TINY, LONG, tmp_path, "proc")).start()
    try:
        wait_for(lambda: job.snapshot().step != {}, timeout=120)  # progress arrives from the worker
        assert job.pid is not None and job.pid != os.getpid()
        if hasattr(os, "getpriority"):
            assert os.getpriority(os.PRIO_PROCESS, job.pid) == min(19, base + vae.services.jobs.TRAINING_NICE)
        assert job.snapshot().status == "running"
    finally:
        job.stop()
        job.join(60)
    assert job.snapshot().status == "stopped" and not job.alive
    assert not list(tmp_path.glob("*.safetensors"))
    assert torch.get_num_threads() == threads_before
    with pytest.raises(ProcessLookupError):  # the worker is gone
        os.kill(job.pid, 0)


def test_a_background_job_waits_for_a_busy_training_slot(one_slot, tmp_path: Path) -> None:
    """A Train page job (priority "background") queues while every slot is taken, and trains once one frees."""
    assert one_slot.acquire(blocking=False)  # another session's training holds the only slot
    job = TrainingJob(TrainingRequest("digits", "vae", TINY, SHORT, tmp_path, "waits"), mode="thread").start()
    try:
        wait_for(lambda: job.snapshot().status == "queued")
        time.sleep(0.3)
        assert job.snapshot().status == "queued" and not list(tmp_path.iterdir())
    finally:
        one_slot.release()
    job.join(120)
    assert job.snapshot().status == "done"
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["waits.safetensors"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_the_first_run_takes_no_slot_and_keeps_normal_priority(one_slot, tmp_path: Path) -> None:
    """Every session waits for the first run: it never queues behind the Train page's jobs and
    is not niced, while every training slot is busy."""
    assert one_slot.acquire(blocking=False)  # the only slot is busy
    base = os.getpriority(os.PRIO_PROCESS, 0)
    job = TrainingJob(TrainingRequest("digits", "vae", TINY, LONG, tmp_path, "first-run"), priority="first-run", mode="thread")
    seen: list[str] = []

    def training() -> bool:
        state = job.snapshot()
        seen.append(state.status)
        return state.step != {}

    job.start()
    try:
        wait_for(training)  # while this test holds the only slot
        assert "queued" not in seen and job.snapshot().status == "running"
        assert os.getpriority(os.PRIO_PROCESS, job._thread.native_id) == base
    finally:
        job.stop()
        job.join(30)
        one_slot.release()
    assert job.snapshot().status == "stopped"
    assert one_slot.acquire(blocking=False)  # free again: the first run neither took nor released it
    one_slot.release()


def test_first_run_training_is_one_job_per_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every session asking for the first run of a folder gets the same job, a first-run one; a
    new one only once it failed or its models have gone."""
    import vae.services.workflow
    from vae.services import jobs

    def short_default_run(data):  # type: ignore[no-untyped-def]
        return replace(TINY, image_shape=data.image_shape), replace(SHORT, dataset=data.name)

    monkeypatch.setattr(vae.services.workflow, "default_run", short_default_run)
    monkeypatch.setattr(jobs, "_FIRST_RUNS", {})
    monkeypatch.setenv("VAE_FIRST_RUN_DATASET", "digits")  # seconds; the real default's recipe: tests/test_real_claims.py
    monkeypatch.setenv("VAE_FIRST_RUN_FOLLOW_UP", "0")  # this test counts the folder's files
    first = jobs.first_run_training(tmp_path, "mnist-2d")
    assert first.priority == "first-run" and first.mode == "thread" and first.request.which == "both"
    assert jobs.first_run_training(tmp_path / ".", "mnist-2d") is first
    first.join(120)
    assert first.snapshot().status == "done"
    assert jobs.first_run_training(tmp_path, "mnist-2d") is first  # done, models there: nothing to do
    for p in tmp_path.glob("*.safetensors"):
        p.unlink()
    again = jobs.first_run_training(tmp_path, "mnist-2d")  # the models have gone: train them again
    assert again is not first
    again.join(120)
    assert again.snapshot().status == "done" and len(list(tmp_path.glob("*.safetensors"))) == 2


def _short_first_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Both default pairs as tiny 1-epoch digits runs, in threads, with fresh first-run registries."""
    import vae.services.workflow
    from vae.services import jobs

    def short_default_run(data, which="both", latent_dim=2, arch="mlp"):  # type: ignore[no-untyped-def]
        return replace(TINY, image_shape=data.image_shape, latent_dim=latent_dim), replace(SHORT, dataset=data.name)

    monkeypatch.setattr(vae.services.workflow, "default_run", short_default_run)
    monkeypatch.setattr(jobs, "_FIRST_RUNS", {})
    monkeypatch.setattr(jobs, "_FOLLOW_UPS", {})
    monkeypatch.setenv("VAE_FIRST_RUN_DATASET", "digits")
    monkeypatch.setenv("VAE_TRAINING_MODE", "thread")
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_FIRST_RUN_FOLLOW_UP", raising=False)
    return jobs


def test_the_first_run_is_followed_by_the_16d_pair_in_the_background_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the 2-D pair is saved, the 16-D default pair trains as a background job (a slot, low
    priority) that nobody waits for; asking for the first run again starts neither again."""
    jobs = _short_first_runs(monkeypatch, tmp_path)
    models = tmp_path / "models"
    first = jobs.first_run_training(models, "mnist-2d")
    assert first.request.judge == "cached"  # the first image never waits for a judge's training
    first.join(120)
    assert first.snapshot().status == "done"
    wait_for(lambda: jobs.follow_up_training(models) is not None)
    follow = jobs.follow_up_training(models)
    assert follow is not None
    r = follow.request
    assert follow.priority == "background" and (r.name, r.which, r.model_config.latent_dim, r.judge) == ("mnist-16d", "both", 16, "first")
    follow.join(120)
    assert follow.snapshot().status == "done", follow.snapshot().error
    assert sorted(p.name for p in models.glob("*.safetensors")) == [
        "mnist-16d-ae.safetensors", "mnist-16d-vae.safetensors", "mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]
    assert load_checkpoint(models / "mnist-16d-vae.safetensors").metrics["judge"]["available"]  # trained first, then used
    assert jobs.first_run_training(models, "mnist-2d") is first  # models there: nothing starts again
    time.sleep(0.2)
    assert jobs.follow_up_training(models) is follow


def test_a_failed_follow_up_blocks_nobody_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vae.services.workflow

    jobs = _short_first_runs(monkeypatch, tmp_path)
    train_models = vae.services.workflow.train_models

    def fails_for_16d(data, which, model_config, train_config, out_dir, name, **kwargs):  # type: ignore[no-untyped-def]
        if name == jobs.FOLLOW_UP_PAIR:
            raise vae.services.workflow.ConfigError("disk on fire")
        return train_models(data, which, model_config, train_config, out_dir, name, **kwargs)

    monkeypatch.setattr(vae.services.workflow, "train_models", fails_for_16d)
    models = tmp_path / "models"
    first = jobs.first_run_training(models, "mnist-2d")
    first.join(120)
    wait_for(lambda: jobs.follow_up_training(models) is not None)
    follow = jobs.follow_up_training(models)
    assert follow is not None
    follow.join(60)
    assert first.snapshot().status == "done" and follow.snapshot().status == "failed"
    assert follow.snapshot().error == "disk on fire"
    assert sorted(p.name for p in models.glob("*.safetensors")) == ["mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_training_thread_runs_at_lower_priority_and_leaves_torch_threads_alone(tmp_path: Path) -> None:
    threads_before = torch.get_num_threads()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    job = TrainingJob(TrainingRequest("digits", "vae", TINY, LONG, tmp_path, "nice"), mode="thread").start()
    try:
        wait_for(lambda: job.snapshot().status == "running")
        wait_for(lambda: job.snapshot().step != {})
        tid = job._thread.native_id
        assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, base + vae.services.jobs.TRAINING_NICE)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # this thread is untouched
    finally:
        job.stop()
        job.join(30)
    assert torch.get_num_threads() == threads_before


# ---------------------------------------------------------------- a long-running server


def cache_decorators(path: Path) -> list[tuple[int, str, bool]]:
    """(line, decorator, bounded) for every st.cache_data / st.cache_resource in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = ast.unparse(target)
            if name.endswith(("cache_data", "cache_resource")):
                keywords = {k.arg for k in deco.keywords} if isinstance(deco, ast.Call) else set()
                found.append((deco.lineno, name, "max_entries" in keywords))
    return found


def test_every_streamlit_cache_is_bounded() -> None:
    files = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "pages").glob("*.py"))]
    found = {f"{p.relative_to(REPO_ROOT)}:{line} {name}": bounded for p in files for line, name, bounded in cache_decorators(p)}
    assert found, "no caches found: the scan is broken"
    assert [where for where, bounded in found.items() if not bounded] == []


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere, which makes the check vacuous)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def test_memory_stays_flat_over_1000_slider_moves(default_pair_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The whole decode path of a slider move (decode, PNG for st.image, locate on the map,
    the map's z marker as CSS), 1,000 times: Python allocations must not grow with the count."""
    from pages.ui import session, widgets

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = load_checkpoint(default_pair_dir / "mnist-2d-vae.safetensors")
    data = session.get_dataset("digits")
    lmap, index = compute_map(ckpt.model, data.x_test, "identity", ckpt.sha256)
    ranges = widgets.slider_ranges(lmap.mu_)
    axis = ((-4.0, 4.0), (-4.0, 4.0))
    rng = np.random.default_rng(0)

    def move() -> None:
        z = np.array([rng.uniform(lo, hi) for lo, hi in ranges], np.float32)
        widgets.png_bytes(images.decode_images(ckpt.model, z)[0], widgets.IMAGE_PX + 80)
        plots.marker_css("st-key-map", plots.current_marker(lmap.locate(z)[0], axis), axis, 440)

    for _ in range(100):  # warm up: first-call allocations, torch and PIL internals
        move()
    gc.collect()
    rss_start = rss_bytes()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            move()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert growth < 256 * 1024, f"{growth / 1024:.0f} KiB of Python/numpy memory retained after 1,000 slider moves"
    # torch's own allocations are invisible to tracemalloc: the process size must not creep either
    assert rss_bytes() - rss_start < 32 * 2**20


@pytest.mark.slow
def test_memory_stays_flat_over_slider_reruns_in_the_app(app_env: Path) -> None:
    """The same through the real script (AppTest): after a warm-up, 40 more slider reruns leave
    the number of live Python objects and the session state's keys exactly where they were."""
    at = start_app()
    z1 = sliders(at)[0]
    values = np.linspace(z1.min, z1.max, 7)

    def moves(n: int) -> None:
        for i in range(n):
            sliders(at)[0].set_value(float(values[i % len(values)])).run()
        assert not at.exception, [e.value for e in at.exception]

    moves(10)
    gc.collect()
    objects, keys = len(gc.get_objects()), set(at.session_state)
    moves(40)
    gc.collect()
    assert set(at.session_state) == keys
    assert len(gc.get_objects()) - objects < 200, "live objects grow with every rerun"


@pytest.mark.server
@pytest.mark.slow
def test_server_memory_stays_flat_over_1000_slider_moves(default_pair_dir: Path, digits_judge_cache: Path, tmp_path: Path) -> None:
    """A real `streamlit run app.py`: four sessions make 1,000 slider moves between them over
    the websocket, as browsers do (bench/classroom.py's client: rerun the slider fragment, then
    fetch the new image). After a warm-up, the server's resident memory must not grow with the
    number of moves: every cache, media file and session entry a move creates has to be bounded."""
    import asyncio
    import random
    from concurrent.futures import ThreadPoolExecutor

    from bench import classroom

    async def drive(port: int, pid: int) -> dict[str, float]:
        sessions = [classroom.LightSession(port) for _ in range(4)]
        for s in sessions:
            await s.open()
        rngs = [random.Random(i) for i in range(len(sessions))]

        async def moves(total: int) -> int:
            changed = 0
            for i in range(total):
                k = i % len(sessions)
                _, new_image = await sessions[k].move(rngs[k])
                changed += new_image
            return changed

        try:
            await moves(200)  # warm-up: first-call allocations, the map cache, every session's first images
            after_warmup = classroom.rss_mib(pid)
            changed = await moves(1000)
            return {"after_warmup": after_warmup, "changed": changed, "end": classroom.rss_mib(pid)}
        finally:
            for s in sessions:
                await s.close()

    # the judge cached, as on a server that trained it before: trained now (a child process, seconds),
    # it would be loaded into the server mid-measurement, and that is not memory a move holds
    shutil.copytree(digits_judge_cache, tmp_path / "cache")
    with classroom.serve_app(default_pair_dir, tmp_path / "cache", tmp_path / "server.log") as server:
        with ThreadPoolExecutor(max_workers=1) as pool:  # see test_classroom_smoke: no loop on this thread
            result = pool.submit(asyncio.run, drive(server.port, server.proc.pid)).result(timeout=300)
    assert result["changed"] > 600, result  # most moves decoded a new image (bouncing at a slider end can repeat one)
    growth = result["end"] - result["after_warmup"]
    assert growth < 4, f"server memory grew {growth:.1f} MiB over 1,000 slider moves: {result}"
