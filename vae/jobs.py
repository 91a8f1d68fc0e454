"""Background training: a job per browser session that runs `train_models` and exposes its progress.

The app starts one per browser session, so a long run survives reruns, can be stopped, and
never blocks other sessions' scripts. Progress is copied into plain fields under a lock.

A classroom on one laptop (bench/classroom.py measures it, bench/RESULTS.md has the numbers):
  * by default the training runs in a worker process (multiprocessing "spawn"). The training
    loop is Python that holds the GIL between small tensor ops; in a thread of the server it
    made every other session's slider wait for the GIL. A process has its own GIL, its own
    torch thread count (set there, so the server's is never changed: torch.set_num_threads is
    process-global) and the lowest OS priority (nice 19, and SCHED_IDLE on Linux: it runs on CPU
    time nothing else wants), so sessions moving sliders get the CPU first.
    A thread per job still relays the process's progress into `JobState`;
  * at most `TRAINING_SLOTS` jobs train at once (default: half the CPU cores, at least 1;
    `VAE_MAX_TRAININGS` overrides); later jobs wait, "queued", and can be stopped while waiting;
  * `mode="thread"` trains in a thread of the calling process instead (no start-up cost; used
    by tests that patch the engine); that thread lowers its own priority (Linux: nice is per thread).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vae.config import ModelConfig, TrainConfig
from vae.errors import LatentExplorerError
from vae.train import FitResult, Progress
from vae.workflow import TrainedModel, train_models

MODES = ("process", "thread")


def _slot_count() -> int:
    try:
        return max(1, int(os.environ.get("VAE_MAX_TRAININGS", "0")) or (os.cpu_count() or 2) // 2)
    except ValueError:
        return 1


TRAINING_SLOTS = threading.BoundedSemaphore(_slot_count())  # process-wide: shared by every session
TRAINING_NICE = 19  # added to the trainer's nice value, capped at 19 (the lowest priority); 0 disables


def _lower_thread_priority(increment: int = TRAINING_NICE) -> None:
    """Make the calling thread yield the CPU to interactive work (best effort, Linux only)."""
    if not increment or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (OSError, AttributeError):
        pass


@dataclass
class JobState:
    status: str = "pending"  # pending | queued | running | done | stopped | failed
    kind: str = ""  # model being trained now
    fraction: float = 0.0
    message: str = ""
    step: dict[str, float] = field(default_factory=dict)  # latest running means
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # kind -> epoch rows
    saved: list[str] = field(default_factory=list)
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float = 0.0  # time.time() when it ended (done, stopped or failed); 0 while it runs


def _train_in_child(args: tuple, events: Any, stop: Any, parent_pid: int, threads: int, nice: int) -> None:
    """Worker-process entry point: train, report every event through `events`, never raise."""
    if nice:
        try:
            os.nice(nice)
            # Linux: run only on CPU time that nothing else wants, so the server never waits for us
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError):
            pass
    import torch

    if threads:
        torch.set_num_threads(threads)

    def on_progress(kind: str, p: Progress) -> None:
        events.put(("progress", kind, {f.name: getattr(p, f.name) for f in fields(p) if f.name != "snapshot"}))

    def should_stop() -> bool:  # also stop when the server that started us is gone
        return stop.is_set() or os.getppid() != parent_pid

    try:
        trained = train_models(*args, callback=on_progress, should_stop=should_stop)
        events.put(("finished", [str(t.path) for t in trained]))
    except LatentExplorerError as exc:
        events.put(("failed", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - the parent must hear about it
        traceback.print_exc()
        events.put(("failed", f"unexpected error: {type(exc).__name__}: {exc}"))


class TrainingJob:
    """Runs one training in the background. `snapshot()` returns a copy of its state.

    `torch_threads`: intra-op threads of the worker process (default: half the cores); in
    thread mode it is applied to the whole calling process, so leave it 0 in a server.
    """

    def __init__(
        self, dataset: str, which: str, model_config: ModelConfig, train_config: TrainConfig, out_dir: Path, name: str,
        torch_threads: int = 0, mode: str | None = None,
    ) -> None:
        self.args = (dataset, which, model_config, train_config, Path(out_dir), name)
        self.torch_threads = torch_threads
        self.mode = mode or os.environ.get("VAE_TRAINING_MODE") or "process"
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self._state = JobState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)
        self.results: list[TrainedModel] = []
        self.pid: int | None = None  # the worker process, in process mode

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> JobState:
        with self._lock:
            s = self._state
            return replace(s, step=dict(s.step), history={k: list(v) for k, v in s.history.items()}, saved=list(s.saved))

    def _on_progress(self, kind: str, p: Progress) -> None:
        which = self.args[1]
        n_models = 2 if which == "both" else 1
        offset = 1 if (which == "both" and kind == "ae") else 0
        with self._lock:
            self._state.kind = kind
            self._state.fraction = (offset + p.fraction) / n_models
            self._state.step = {"epoch": p.epoch, "epochs": p.epochs, "recon": p.recon, "kl": p.kl, "elbo": p.elbo, "images_per_s": p.images_per_s}
            if p.kind == "epoch" and p.record is not None:
                self._state.history.setdefault(kind, []).append(dict(p.record))

    def _run(self) -> None:
        with self._lock:
            self._state.status = "queued"
            self._state.message = "waiting for another session's training to finish"
        while not TRAINING_SLOTS.acquire(timeout=0.1):
            if self._stop.is_set():
                with self._lock:
                    self._state.status, self._state.message = "stopped", "stopped before it started; nothing was saved"
                    self._state.finished = time.time()
                return
        with self._lock:
            self._state.status = "running"
            self._state.message = ""
        try:
            if self.mode == "process":
                self._train_in_process()
            else:
                _lower_thread_priority()
                self._train_in_thread()
        except LatentExplorerError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - a page must show a message, never a dead thread
            traceback.print_exc()
            self._fail(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            TRAINING_SLOTS.release()

    def _train_in_thread(self) -> None:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        self.results = train_models(*self.args, callback=self._on_progress, should_stop=self._stop.is_set)
        self._finish()

    def _train_in_process(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server with torch loaded
        events, stop = ctx.Queue(), ctx.Event()
        threads = self.torch_threads or max(1, (os.cpu_count() or 2) // 2)
        proc = ctx.Process(
            target=_train_in_child, args=(self.args, events, stop, os.getpid(), threads, TRAINING_NICE),
            name=f"train-{self.args[5]}", daemon=True,
        )
        proc.start()
        self.pid = proc.pid
        outcome = None
        try:
            while outcome is None:
                if self._stop.is_set():
                    stop.set()
                try:
                    event = events.get(timeout=0.2)
                except queue.Empty:
                    if proc.is_alive():
                        continue
                    try:  # it may have exited right after its last message
                        event = events.get(timeout=1.0)
                    except queue.Empty:
                        raise LatentExplorerError(
                            f"the training process ended unexpectedly (exit code {proc.exitcode}); nothing was saved"
                        ) from None
                if event[0] == "progress":
                    self._on_progress(event[1], Progress(**event[2]))
                else:
                    outcome = event
        finally:
            if outcome is None:  # the relay itself failed: do not leave a trainer behind
                stop.set()
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if outcome[0] == "failed":
            self._fail(outcome[1])
            return
        from vae.checkpoint import load_checkpoint

        for path in outcome[1]:
            ckpt = load_checkpoint(path)
            result = FitResult(history=ckpt.history, snapshots=ckpt.snapshots, snapshot_index=ckpt.snapshot_index)
            self.results.append(TrainedModel(ckpt.kind, Path(path), ckpt.model, result, ckpt.metrics))
        self._finish()

    def _finish(self) -> None:
        # What was saved decides, not whether Stop was pressed: a stop that arrives after the
        # last epoch (while the metrics are computed or the files written) saves everything.
        with self._lock:
            self._state.finished = time.time()
            if not self.results:
                self._state.status = "stopped"
                self._state.message = "stopped by the user; nothing was saved"
                return
            self._state.status = "done"
            self._state.fraction = 1.0
            self._state.saved = [str(r.path) for r in self.results]
            late = "training had already finished when Stop was pressed; " if self._stop.is_set() else ""
            self._state.message = late + "saved " + ", ".join(r.path.name for r in self.results)

    def _fail(self, error: str) -> None:
        with self._lock:
            self._state.status, self._state.error = "failed", error
            self._state.finished = time.time()
