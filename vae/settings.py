"""Everything Latent Explorer reads from the environment, in one typed, frozen object.

Read at call time (`settings()`), never cached at import, so a test or a launcher that sets a
variable sees it take effect. Nothing else in the code base reads `os.environ` for these.

  VAE_MODELS_DIR       where checkpoints live (default ./models)
  VAE_DATA_ROOT        where datasets are read and downloaded (default $XDG_CACHE_HOME/latent-explorer/data)
  VAE_CACHE_DIR        where computed maps are cached (default $XDG_CACHE_HOME/latent-explorer/maps)
  VAE_MAX_TRAININGS    trainings that may run at once across all sessions (default: half the cores, at least 1)
  VAE_TRAINING_MODE    "process" (default: a low-priority worker process) or "thread"
  VAE_TEST_HOOKS       "1" exposes the Live pad's window.__latentPad* hooks (browser tests, benchmarks)
  VAE_NO_FRAGMENT      set: Explore redraws the whole page on a slider move (the benchmark's baseline)
  VAE_FIRST_RUN_DATASET  the dataset of the first run's default pairs (default: vae.core.data.DEFAULT_DATASET);
                       for tests and benchmarks only, e.g. "digits" trains them in a second or two
  VAE_FIRST_RUN_FOLLOW_UP  "0": no 16-D pair in the background after the first run (tests that
                       watch the models folder); anything else, or unset: the app's behaviour
  RANK, WORLD_SIZE, LOCAL_RANK  set by torchrun (or another launcher) for each training process:
                       its place among all of them, how many there are, its place on this machine
                       (which GPU it takes); unset: one process (0, 1, 0). MASTER_ADDR and
                       MASTER_PORT are read by torch.distributed itself (init_method "env://").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TRAINING_MODES = ("process", "thread")


def _cache_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "latent-explorer"


def _max_trainings(env: Mapping[str, str]) -> int:
    try:
        asked = int(env.get("VAE_MAX_TRAININGS", "0"))
    except ValueError:
        return 1
    return max(1, asked or (os.cpu_count() or 2) // 2)


def _int(env: Mapping[str, str], name: str, default: int, lowest: int) -> int:
    try:
        value = int(env.get(name, "") or default)
    except ValueError:
        return default
    return value if value >= lowest else default


@dataclass(frozen=True)
class Settings:
    models_dir: Path
    data_root: Path
    cache_dir: Path
    max_trainings: int
    training_mode: str
    test_hooks: bool
    no_fragment: bool
    first_run_dataset: str = ""  # "" = the default dataset
    first_run_follow_up: bool = True
    rank: int = 0  # RANK: this training process among all of them (0 saves and reports)
    world_size: int = 1  # WORLD_SIZE: how many training processes share one model
    local_rank: int = 0  # LOCAL_RANK: this process among those on its machine (picks cuda:<local_rank>)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        cache = _cache_home(env)
        return cls(
            models_dir=Path(env.get("VAE_MODELS_DIR") or "models").expanduser(),
            data_root=Path(env["VAE_DATA_ROOT"]).expanduser() if env.get("VAE_DATA_ROOT") else cache / "data",
            cache_dir=Path(env["VAE_CACHE_DIR"]).expanduser() if env.get("VAE_CACHE_DIR") else cache / "maps",
            max_trainings=_max_trainings(env),
            training_mode=env.get("VAE_TRAINING_MODE") or "process",
            test_hooks=env.get("VAE_TEST_HOOKS") == "1",
            no_fragment=bool(env.get("VAE_NO_FRAGMENT")),
            first_run_dataset=env.get("VAE_FIRST_RUN_DATASET") or "",
            first_run_follow_up=env.get("VAE_FIRST_RUN_FOLLOW_UP") != "0",
            rank=_int(env, "RANK", 0, 0),
            world_size=_int(env, "WORLD_SIZE", 1, 1),
            local_rank=_int(env, "LOCAL_RANK", 0, 0),
        )


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings.from_env()
