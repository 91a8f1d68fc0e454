"""Background training: a thread that runs `train_models` and exposes its progress.

The app starts one per browser session, so a long run survives reruns, can be stopped, and
never blocks other sessions' scripts. Progress is copied into plain fields under a lock.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vae.config import ModelConfig, TrainConfig
from vae.errors import LatentExplorerError
from vae.train import Progress
from vae.workflow import TrainedModel, train_models


@dataclass
class JobState:
    status: str = "pending"  # pending | running | done | stopped | failed
    kind: str = ""  # model being trained now
    fraction: float = 0.0
    message: str = ""
    step: dict[str, float] = field(default_factory=dict)  # latest running means
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # kind -> epoch rows
    saved: list[str] = field(default_factory=list)
    error: str = ""
    started: float = field(default_factory=time.time)


class TrainingJob:
    """Runs one training in a daemon thread. `snapshot()` returns a copy of its state."""

    def __init__(
        self, dataset: str, which: str, model_config: ModelConfig, train_config: TrainConfig, out_dir: Path, name: str,
        torch_threads: int = 0,
    ) -> None:
        self.args = (dataset, which, model_config, train_config, Path(out_dir), name)
        self.torch_threads = torch_threads
        self._state = JobState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)
        self.results: list[TrainedModel] = []

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
            return JobState(
                s.status, s.kind, s.fraction, s.message, dict(s.step),
                {k: list(v) for k, v in s.history.items()}, list(s.saved), s.error, s.started,
            )

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
        dataset, which, model_config, train_config, out_dir, name = self.args
        with self._lock:
            self._state.status = "running"
        try:
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            self.results = train_models(
                dataset, which, model_config, train_config, out_dir, name,
                callback=self._on_progress, should_stop=self._stop.is_set,
            )
            with self._lock:
                if self._stop.is_set():
                    self._state.status = "stopped"
                    self._state.message = "stopped by the user; nothing was saved"
                else:
                    self._state.status = "done"
                    self._state.fraction = 1.0
                    self._state.saved = [str(r.path) for r in self.results]
                    self._state.message = "saved " + ", ".join(r.path.name for r in self.results)
        except LatentExplorerError as exc:
            with self._lock:
                self._state.status, self._state.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a page must show a message, never a dead thread
            traceback.print_exc()
            with self._lock:
                self._state.status, self._state.error = "failed", f"unexpected error: {type(exc).__name__}: {exc}"
