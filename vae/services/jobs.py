"""Background training: one job type, `TrainingJob`, that runs `train_models` and exposes its progress.

Two kinds of job, told apart by `priority`:
  * "background" (the Train page: one per browser session): it waits for one of the
    process-wide `TRAINING_SLOTS` and trains at the lowest OS priority, so sessions moving
    sliders get the CPU first; it can be stopped while queued or running;
  * "first-run" (the default 2-D pair on an empty models folder, see `first_run_training`): every
    session is waiting for it, so it runs at normal priority and takes no slot. There is one
    per models folder, shared by every session. Once it is saved, the 16-D default pair follows
    as a "background" job that nobody waits for (`follow_up_training`).
A long run survives reruns, can be stopped, and never blocks other sessions' scripts.
Progress is copied into plain fields (`JobState`) under a lock.

A classroom on one laptop (bench/classroom.py measures it, bench/RESULTS.md has the numbers):
  * by default a background job trains in a worker process (`python -c "...worker_main()"`). The
    training loop is Python that holds the GIL between small tensor ops; in a thread of the server
    it made every other session's slider wait for the GIL. A process has its own GIL, its own
    torch thread count (set there, so the server's is never changed: torch.set_num_threads is
    process-global) and the lowest OS priority (nice 19, and SCHED_IDLE on Linux: it runs on CPU
    time nothing else wants). A thread per job still relays the process's progress into
    `JobState`. The worker is a fresh interpreter that imports only `vae.services.jobs` and what
    training needs: multiprocessing's "spawn" re-ran the parent's `__main__` in the child, and
    under `streamlit run` that is the app's script (Streamlit installs it as `__main__` during a
    script run), which printed ~55 lines of Streamlit warnings per training and imported the app;
  * at most `TRAINING_SLOTS` background jobs train at once (default: half the CPU cores, at least
    1; `VAE_MAX_TRAININGS` overrides); later ones wait, "queued", and can be stopped while waiting;
  * `mode="thread"` trains in a thread of the calling process instead (no start-up cost; the
    first run, and tests that patch the engine); a background thread lowers its own priority
    (Linux: nice is per thread).

Not `concurrent.futures.ProcessPoolExecutor` (spawn, an os.nice initializer): `Future.cancel()`
cannot stop a running call, and the pool marks calls "running" (uncancellable) while they still
wait in its call queue, so Stop and "queued" need channels of our own beside it, as progress does;
spawn re-imports `__main__` (the app's script); idle workers outlive a killed server; one crashed
worker breaks the pool for every queued job; and the first run would need a second, un-niced pool.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Literal, TypeAlias

from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import DEFAULT_DATASET, Dataset, load_dataset
from vae.core.errors import LatentExplorerError
from vae.core.train import FitResult, Progress
from vae.services import workflow
from vae.services.workflow import TrainedModel, checkpoint_paths, list_models, progress_measure
from vae.settings import settings

MODES = ("process", "thread")
Priority = Literal["background", "first-run"]
PRIORITIES: tuple[Priority, ...] = ("background", "first-run")
LIVE_STATES = ("pending", "queued", "running")  # a job in one of these may still make progress
KIND_NAMES = {"vae": "VAE", "ae": "AE"}


def _slot_count() -> int:
    return settings().max_trainings


TRAINING_SLOTS = threading.BoundedSemaphore(_slot_count())  # process-wide: shared by every session's background jobs
TRAINING_NICE = 19  # added to a background trainer's nice value, capped at 19 (the lowest priority); 0 disables


def _lower_thread_priority(increment: int = TRAINING_NICE) -> None:
    """Make the calling thread yield the CPU to interactive work (best effort, Linux only)."""
    if not increment or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class TrainingRequest:
    """What to train and where to save it: the arguments of `workflow.train_models`."""

    dataset: str
    which: str  # "vae", "ae" or "both"
    model_config: ModelConfig
    train_config: TrainConfig
    out_dir: Path
    name: str  # file name in out_dir, as the user typed it (see workflow.checkpoint_paths)
    judge: str = "after"  # when the stored metrics' judge is trained: workflow.JUDGE_WHEN

    def train(self, callback: Callable[[str, Progress], None], should_stop: Callable[[], bool]) -> list[TrainedModel]:
        return workflow.train_models(self.dataset, self.which, self.model_config, self.train_config, self.out_dir,
                                     self.name, callback=callback, should_stop=should_stop, judge=self.judge)


@dataclass(frozen=True)
class WorkerArgs:
    """Everything the worker process reads from its stdin (pickled, parent to its own child)."""

    request: TrainingRequest
    parent_pid: int
    threads: int  # torch intra-op threads in the worker
    nice: int  # added to the worker's nice value; 0 leaves its priority alone


# What the worker writes to its stdout, pickled, one after the other: Progressed events, then
# Finished or Failed.
@dataclass(frozen=True)
class Progressed:
    kind: str  # the model being trained
    progress: Progress  # without its snapshot tensor


@dataclass(frozen=True)
class Finished:
    paths: list[str]  # the files saved


@dataclass(frozen=True)
class Failed:
    message: str


WorkerEvent: TypeAlias = Progressed | Finished | Failed


@dataclass
class JobState:
    status: str = "pending"  # pending | queued | running | done | stopped | failed
    kind: str = ""  # model being trained now
    fraction: float = 0.0
    message: str = ""
    step: dict[str, float] = field(default_factory=dict)  # latest running means
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # kind -> epoch rows
    saved: list[str] = field(default_factory=list)  # files written (also by a stopped run: the models that finished)
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float = 0.0  # time.time() when it ended (done, stopped or failed); 0 while it runs

    @property
    def text(self) -> str:
        """The progress in one short line, as the first-run status box shows it:
        "VAE epoch 3/60: ELBO -64.5 nats" ("starting" before the first report)."""
        s = self.step
        if not s:
            return "starting"
        return f"{self.kind.upper()} epoch {int(s['epoch'])}/{int(s['epochs'])}: {progress_measure(self.kind, s['elbo'], s['recon'], 1)}"


def worker_command() -> list[str]:
    """The worker process's command line: a fresh interpreter that imports only this module and
    what training needs, and never the parent's `__main__` (under `streamlit run`, the app)."""
    return [sys.executable, "-c", "from vae.services.jobs import worker_main; worker_main()"]


def _worker_env() -> dict[str, str]:
    """The server's environment, with this package importable from any working directory."""
    root = str(Path(__file__).resolve().parent.parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def worker_main() -> None:
    """Worker-process entry point. Reads pickled `WorkerArgs` from stdin, trains, and writes
    pickled `WorkerEvent`s to stdout: `Progressed`, then `Finished` or `Failed`. Stop: the
    parent closes our stdin (which also happens when it dies). Anything else written to stdout
    goes to stderr, so it can never corrupt the event stream."""
    events = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    args: WorkerArgs = pickle.load(sys.stdin.buffer)
    stop = threading.Event()

    def wait_for_stop() -> None:
        # os.read on the raw descriptor: a daemon thread blocked in the buffered sys.stdin holds
        # its lock, and the interpreter aborts at exit ("could not acquire lock for <stdin>")
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=wait_for_stop, name="stop-watch", daemon=True).start()

    def send(event: WorkerEvent) -> None:
        pickle.dump(event, events)
        events.flush()

    _train_in_child(args, send, stop)
    events.close()


def _train_in_child(args: WorkerArgs, send: Callable[[WorkerEvent], None], stop: threading.Event) -> None:
    """Train in the worker process and report every event through `send`; never raise."""
    if args.nice:
        try:
            os.nice(args.nice)
            # Linux: run only on CPU time that nothing else wants, so the server never waits for us
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError):
            pass
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    def on_progress(kind: str, p: Progress) -> None:
        send(Progressed(kind, replace(p, snapshot=None)))

    def should_stop() -> bool:  # also stop when the server that started us is gone
        return stop.is_set() or os.getppid() != args.parent_pid

    try:
        trained = args.request.train(on_progress, should_stop)
        send(Finished([str(t.path) for t in trained]))
    except LatentExplorerError as exc:
        send(Failed(str(exc)))
    except BaseException as exc:  # noqa: BLE001 - the parent must hear about it
        traceback.print_exc()
        send(Failed(f"unexpected error: {type(exc).__name__}: {exc}"))


def _relay_events(stream: BinaryIO, events: queue.Queue[WorkerEvent | None]) -> None:
    """Parent side: unpickle the worker's events (our own child's output) onto a queue; None at the end."""
    try:
        while True:
            events.put(pickle.load(stream))
    except (EOFError, OSError, pickle.UnpicklingError):
        pass
    finally:
        events.put(None)


class TrainingJob:
    """Runs one `TrainingRequest` in the background. `snapshot()` returns a copy of its state.

    `priority`: "background" waits for a `TRAINING_SLOTS` slot and trains at the lowest OS
    priority; "first-run" takes no slot and keeps normal priority (every session waits for it).
    `mode`: "process" (a worker process) or "thread"; default: settings().training_mode.
    `torch_threads`: intra-op threads of the worker process (default: half the cores); in
    thread mode it is applied to the whole calling process, so leave it 0 in a server.
    """

    def __init__(self, request: TrainingRequest, *, priority: Priority = "background", mode: str | None = None,
                 torch_threads: int = 0) -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
        self.request = request
        self.priority = priority
        self.torch_threads = torch_threads
        self.mode = mode or settings().training_mode
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self._state = JobState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        thread_name = f"{'train' if priority == 'background' else 'first-run'}-{request.name}"
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self.results: list[TrainedModel] = []
        self.pid: int | None = None  # the worker process, in process mode

    def start(self) -> TrainingJob:
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
        which = self.request.which
        n_models = 2 if which == "both" else 1
        offset = 1 if (which == "both" and kind == "ae") else 0
        with self._lock:
            self._state.kind = kind
            self._state.fraction = (offset + p.fraction) / n_models
            self._state.step = {"epoch": p.epoch, "epochs": p.epochs, "recon": p.recon, "kl": p.kl, "elbo": p.elbo, "images_per_s": p.images_per_s}
            if p.kind == "epoch" and p.record is not None:
                self._state.history.setdefault(kind, []).append(dict(p.record))

    def _wait_for_slot(self, slots: threading.BoundedSemaphore) -> bool:
        """Queue for a training slot; False when stopped while waiting."""
        with self._lock:
            self._state.status = "queued"
            self._state.message = "waiting for another session's training to finish"
        while not slots.acquire(timeout=0.1):
            if self._stop.is_set():
                with self._lock:
                    self._state.status, self._state.message = "stopped", "stopped before it started; nothing was saved"
                    self._state.finished = time.time()
                return False
        return True

    def _run(self) -> None:
        background = self.priority == "background"
        slots = TRAINING_SLOTS if background else None  # read once: released to the one it came from
        if slots is not None and not self._wait_for_slot(slots):
            return
        with self._lock:
            self._state.status = "running"
            self._state.message = ""
        try:
            if self.mode == "process":
                self._train_in_process(TRAINING_NICE if background else 0)
            else:
                if background:
                    _lower_thread_priority()
                self._train_in_thread()
        except LatentExplorerError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - a page must show a message, never a dead thread
            traceback.print_exc()
            self._fail(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            if slots is not None:
                slots.release()

    def _train_in_thread(self) -> None:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        self.results = self.request.train(self._on_progress, self._stop.is_set)
        self._finish()

    def _train_in_process(self, nice: int) -> None:
        threads = self.torch_threads or max(1, (os.cpu_count() or 2) // 2)
        args = WorkerArgs(self.request, os.getpid(), threads, nice)
        proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env())
        self.pid = proc.pid
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin
        events: queue.Queue[WorkerEvent | None] = queue.Queue()
        threading.Thread(target=_relay_events, args=(proc.stdout, events), name=f"relay-{self.request.name}", daemon=True).start()

        def request_stop() -> None:  # the worker reads EOF on its stdin
            try:
                stdin.close()
            except OSError:
                pass

        outcome: Finished | Failed | None = None
        try:
            try:
                stdin.write(pickle.dumps(args))
                stdin.flush()
            except OSError:
                pass  # it died at once: the end of its events says so below
            while outcome is None:
                if self._stop.is_set():
                    request_stop()
                try:
                    event = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if event is None:
                    raise LatentExplorerError(
                        f"the training process ended unexpectedly (exit code {proc.wait(30)}); nothing was saved"
                    )
                if isinstance(event, Progressed):
                    self._on_progress(event.kind, event.progress)
                else:
                    outcome = event
        finally:
            request_stop()  # after its outcome the worker only exits; otherwise the relay failed: stop it
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            proc.stdout.close()
        if isinstance(outcome, Failed):
            self._fail(outcome.message)
            return
        from vae.core.checkpoint import load_checkpoint

        for path in outcome.paths:
            ckpt = load_checkpoint(path)
            result = FitResult(history=ckpt.history, snapshots=ckpt.snapshots, snapshot_index=ckpt.snapshot_index,
                               snapshot_decodes=ckpt.snapshot_decodes)
            self.results.append(TrainedModel(ckpt.kind, Path(path), ckpt.model, result, ckpt.metrics))
        self._finish()

    def _finish(self) -> None:
        # What was saved decides, not whether Stop was pressed: a stop that arrives after the
        # last epoch (while the metrics are computed or the files written) saves everything,
        # and a stop during the AE of a pair saves the VAE that had finished.
        r = self.request
        wanted = list(checkpoint_paths(r.out_dir, r.name, r.which))
        saved_kinds = [m.kind for m in self.results]
        with self._lock:
            self._state.finished = time.time()
            self._state.saved = [str(m.path) for m in self.results]
            files = ", ".join(m.path.name for m in self.results)
            if not self.results:
                self._state.status = "stopped"
                self._state.message = "stopped by the user; nothing was saved"
            elif len(self.results) < len(wanted):
                missing = " and ".join(KIND_NAMES[k] for k in wanted if k not in saved_kinds)
                done = " and ".join(KIND_NAMES[k] for k in saved_kinds)
                self._state.status = "stopped"
                self._state.message = (
                    f"stopped during the {missing}: saved the finished {done} as {files} (a model on its own, "
                    f"not a pair); the {missing} was not saved"
                )
            else:
                self._state.status = "done"
                self._state.fraction = 1.0
                late = "training had already finished when Stop was pressed; " if self._stop.is_set() else ""
                self._state.message = late + "saved " + files

    def _fail(self, error: str) -> None:
        with self._lock:
            self._state.status, self._state.error = "failed", error
            self._state.finished = time.time()


# ---------------------------------------------------------------- the first run

FOLLOW_UP_LATENT_DIM = 16
FOLLOW_UP_PAIR = "mnist-16d"  # the second default pair's name (the first one's is pages.ui.session.DEFAULT_PAIR)
_FIRST_RUNS: dict[Path, TrainingJob] = {}
_FOLLOW_UPS: dict[Path, TrainingJob] = {}
_FIRST_RUNS_LOCK = threading.Lock()


JUDGE_NICE = 10  # the judge's child process: below the sessions (nice 0), above the background trainers (19)


def judge_command(dataset: str) -> list[str]:
    """The child process that trains and caches a dataset's judge: the CLI's `judge` command."""
    return [sys.executable, "-m", "vae", "judge", "--dataset", dataset, "--json"]


def train_judge_apart(data: Dataset) -> None:
    """Cache `data`'s judge, trained in a child process (`judge_command`) at nice JUDGE_NICE on one
    torch thread, and wait for it. In a thread of the server the judge's training loop (Python
    between small tensor ops, ~10 CPU-s for MNIST) held the GIL against every session's script:
    side by side on a quiet machine, 30 sessions' slider moves while it trained had p95 180 ms and
    27 ms of server CPU each with it in a thread, 145 ms and 18 ms with it in this child (1.5-1.8 s
    with it in a thread on a busy machine; bench/RESULTS.md, "Classroom load"). The child loads the
    dataset by name, like a training worker; where it fails, or cached a judge of other data (a
    folder loaded at another size), the judge is trained here after all (judge_or_none)."""
    from vae.analysis.metrics import judge_or_none
    from vae.services.workflow import judge_cached

    if judge_cached(data):
        return
    try:
        child = subprocess.Popen(judge_command(data.name), env={**_worker_env(), "OMP_NUM_THREADS": "1"},
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError:
        child = None
    if child is not None:
        if JUDGE_NICE and hasattr(os, "setpriority"):
            try:  # Linux: the main thread, whose torch threads start later and inherit it
                os.setpriority(os.PRIO_PROCESS, child.pid, JUDGE_NICE)
            except OSError:
                pass
        _, err = child.communicate()
        if child.returncode != 0:
            last = (err.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            print(f"judge of {data.name}: its process failed ({child.returncode}: {last}); training it in the server", file=sys.stderr)
    if not judge_cached(data):
        judge_or_none(data)


def first_run_dataset() -> str:
    """The default pairs' dataset: the default (bundled MNIST, offline), or $VAE_FIRST_RUN_DATASET
    (tests and benchmarks: "digits" trains in a second or two)."""
    return settings().first_run_dataset or DEFAULT_DATASET


def first_run_request(out_dir: Path, name: str, latent_dim: int = 2, judge: str = "cached") -> TrainingRequest:
    """A default pair (`workflow.default_run`): the first run's 2-D VAE + AE, or with latent_dim
    FOLLOW_UP_LATENT_DIM the 16-D one that follows it.

    judge="cached": the first run's stored metrics use the dataset's judge only if it is already
    cached, so that its training (~10-15 s for MNIST) never delays the first image; the follow-up
    trains it first (judge="first"), and the pages find it cached from then on (Compare fills in
    the judge's measures of a checkpoint stored without them)."""
    dataset = first_run_dataset()
    data = load_dataset(dataset)
    # default_run(data) for the 2-D pair: what tests that stand in for default_run are called with
    model_config, train_config = workflow.default_run(data) if latent_dim == 2 else workflow.default_run(data, latent_dim=latent_dim)
    return TrainingRequest(dataset, "both", model_config, train_config, Path(out_dir), name, judge=judge)


def first_run_training(out_dir: Path, name: str) -> TrainingJob:
    """The first-run training of this models folder: the one under way (or just finished), or a
    new one when there is none, the last one ended without its models, or they have gone since.

    A thread of the server that belongs to no page run: every session that finds the folder empty
    waits for this one job; a rerun, a second browser or a closed tab neither stops nor restarts it.
    When it has saved its pair, the 16-D pair starts in the background (`follow_up_training`;
    not with VAE_FIRST_RUN_FOLLOW_UP=0)."""
    key = Path(out_dir).expanduser().resolve()
    with _FIRST_RUNS_LOCK:
        job = _FIRST_RUNS.get(key)
        status = job.snapshot().status if job is not None else None
        if job is None or (status not in LIVE_STATES and (status != "done" or not list_models(key))):
            job = _FIRST_RUNS[key] = TrainingJob(first_run_request(key, name), priority="first-run", mode="thread").start()
            if settings().first_run_follow_up:
                threading.Thread(target=_follow_up, args=(job, key), name=f"follow-up-{name}", daemon=True).start()
        return job


def _follow_up(first: TrainingJob, key: Path) -> None:
    """After a first run that saved its pair: the 16-D default pair, a "background" job (a training
    slot, the lowest OS priority, a worker process by default). Started at most once at a time per
    models folder, and not when that pair is already there; nobody waits for it."""
    first.join()
    if first.snapshot().status != "done":
        return
    with _FIRST_RUNS_LOCK:
        running = _FOLLOW_UPS.get(key)
        if running is not None and running.snapshot().status in LIVE_STATES:
            return
        if all(p.exists() for p in checkpoint_paths(key, FOLLOW_UP_PAIR, "both").values()):
            return
        try:
            request = first_run_request(key, FOLLOW_UP_PAIR, latent_dim=FOLLOW_UP_LATENT_DIM, judge="first")
        except Exception:  # noqa: BLE001 - nobody waits for it: a message in the log, never a dead server
            traceback.print_exc()
            return
        _FOLLOW_UPS[key] = TrainingJob(request, priority="background").start()


def follow_up_training(out_dir: Path) -> TrainingJob | None:
    """The 16-D default pair's background job of this models folder (the Train page shows it), if one started."""
    with _FIRST_RUNS_LOCK:
        return _FOLLOW_UPS.get(Path(out_dir).expanduser().resolve())
