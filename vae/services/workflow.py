"""Train-and-save, and the models folder: the steps the CLI and the app share.

`train_models` builds a VAE, an AE or both with the same architecture and seed, fits each,
measures the final test metrics and saves one checkpoint per model. With both, the files
are `<name>-vae.safetensors` and `<name>-ae.safetensors` and carry the pair name.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vae.analysis.judge import Judges
from vae.analysis.metrics import full_report, judge_or_none
from vae.core.checkpoint import SUFFIX, peek_metadata, save_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import Dataset, load_dataset
from vae.core.distributed import is_main
from vae.core.errors import CheckpointError, ConfigError
from vae.core.files import remove_stale_temp_files
from vae.core.models import LatentModel, build_model, default_model_config
from vae.core.train import FitResult, Progress, fit
from vae.settings import settings

MODEL_CHOICES = ("vae", "ae", "both")
# When train_models gets the dataset's judge for the stored metrics: "after" training (trained
# then if not cached), "first" (before training: a background run that pages may wait on
# later), "cached" (only if its cache file is there, else the judge's measures are left out:
# the first run, whose image must not wait ~10-15 s for an MNIST judge).
JUDGE_WHEN = ("after", "first", "cached")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SAVE_LOCK = threading.Lock()  # two sessions saving a pair under one name: one pair wins whole, never a mix


def models_dir() -> Path:
    """Where checkpoints live: $VAE_MODELS_DIR, else ./models."""
    return settings().models_dir


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ConfigError("name: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    return name


def checkpoint_paths(out_dir: Path, name: str, which: str) -> dict[str, Path]:
    """Kind -> the file `train_models` writes for it: `<name>.safetensors` for one model,
    `<name>-vae.safetensors` and `<name>-ae.safetensors` for a pair."""
    if which not in MODEL_CHOICES:
        raise ConfigError(f"model: must be one of {MODEL_CHOICES}, got {which!r}")
    if which == "both":
        return {kind: Path(out_dir) / f"{name}-{kind}{SUFFIX}" for kind in ("vae", "ae")}
    return {which: Path(out_dir) / f"{name}{SUFFIX}"}


@dataclass
class TrainedModel:
    kind: str
    path: Path
    model: LatentModel
    result: FitResult
    metrics: dict[str, Any] = field(default_factory=dict)


def train_models(
    data: Dataset | str,
    which: str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: Path,
    name: str,
    callback: Callable[[str, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    data_root: str | None = None,
    judge: str = "after",
) -> list[TrainedModel]:
    """Train `which` ("vae", "ae" or "both") and save each model; returns what was saved.

    The callback gets (kind, progress). A NaN raises TrainingDiverged before anything is
    written, so existing checkpoints stay as they were. A stop saves every model that finished
    all its epochs and nothing else: a pair stopped during its AE saves its VAE alone, as
    `<name>-vae.safetensors` without the pair name (so it never pairs up with an older AE of
    that name), and a model stopped mid-training is never saved. `judge`: see JUDGE_WHEN.
    """
    if judge not in JUDGE_WHEN:
        raise ConfigError(f"judge: must be one of {JUDGE_WHEN}, got {judge!r}")
    if which not in MODEL_CHOICES:
        raise ConfigError(f"model: must be one of {MODEL_CHOICES}, got {which!r}")
    check_name(name)
    train_config.validate()
    if isinstance(data, str):
        data = load_dataset(data, data_root=data_root)
    paths = checkpoint_paths(out_dir, name, which)
    pair = name if which == "both" else ""
    trained: list[TrainedModel] = []
    get_judge = _judge_getter(data, judge)  # for the stored metrics (None: no labels, or not cached with "cached")
    for kind, path in paths.items():
        cfg = ModelConfig(**{**model_config.to_dict(), "kind": kind, "image_shape": data.image_shape}).validate()
        model = build_model(cfg, seed=train_config.seed)
        result = fit(
            model, data, train_config,
            callback=functools.partial(callback, kind) if callback else None,
            should_stop=should_stop, device=device,
        )
        if result.stopped and len(result.history) < train_config.epochs:
            break  # stopped before its last epoch ended: this model is not saved
        # several processes (torchrun): only rank 0 measures and saves; the others end here
        metrics = full_report(model, data.x_test, seed=train_config.seed, judge=get_judge(),
                              factors=data.factors_test, factor_names=data.factor_names) if is_main() else {}
        trained.append(TrainedModel(kind, path, model, result, metrics))
        if result.stopped:
            break  # the stop came on the last step: this model finished, the next one never starts
    if len(trained) < len(paths):
        pair = ""  # a lone model of a stopped pair
    if not is_main():
        return trained
    # save only once every model of the run finished (or was stopped), so a pair is never half-written
    with _SAVE_LOCK:
        if Path(out_dir).is_dir():
            remove_stale_temp_files(out_dir)  # left by a writer that was killed mid-save
        for item in trained:
            save_checkpoint(
                item.path, item.model, train_config, data.info(),
                history=item.result.history, metrics=item.metrics,
                snapshots=item.result.snapshots, snapshot_index=item.result.snapshot_index, pair=pair,
                snapshot_decodes=item.result.snapshot_decodes,
            )
    return trained


def _judge_getter(data: Dataset, when: str) -> Callable[[], Judges | None]:
    if when == "first":
        found = judge_or_none(data)
        return lambda: found
    if when == "cached":
        return functools.cache(lambda: judge_or_none(data) if judge_cached(data) else None)
    return functools.cache(functools.partial(judge_or_none, data))


def judge_cached(data: Dataset) -> bool:
    """Whether the dataset's judge is in its cache file (loading it takes milliseconds, training seconds)."""
    from vae.analysis.judge import has_labels, judge_path

    return has_labels(data) and judge_path(data).is_file()


def progress_measure(kind: str, elbo: float, recon: float, digits: int = 2) -> str:
    """The number a progress line shows: a VAE's ELBO; an AE has no ELBO (no KL term, no
    posterior), so its reconstruction term log p(x|z) is named as what it is."""
    if kind == "ae":
        return f"reconstruction log p(x|z) {recon:.{digits}f} nats"
    return f"ELBO {elbo:.{digits}f} nats"


# The default recipe of 28x28 images (mnist-bundled), 2-D and 16-D alike, chosen by measurement
# (tests/test_real_claims.py checks the claims on three seeds): 6 epochs of batch 128 at lr 2e-3
# train a 2-D pair in ~7 s on one core of a 2-core laptop (the first decoded image comes within 20 s
# of launch, bench/first_run.py) and are enough for what the pages claim: in 2-D the VAE's prior
# samples cover more classes than the AE's (normalised class entropy ~0.85 vs ~0.70); in 16-D most
# of the AE's prior samples are unrecognisable (~65 %) against ~20 % of the VAE's. (15 epochs bring
# the 16-D VAE's down to ~16 %, at 2.5 times the time: not worth the background job's CPU.)
IMAGE_EPOCHS, IMAGE_BATCH_SIZE, IMAGE_LR = 6, 128, 2e-3
SMALL_IMAGE_PIXELS = 256  # up to this many pixels (8x8 digits): the small images' recipe


def default_run(data: Dataset, which: str = "both", latent_dim: int = 2, arch: str = "mlp") -> tuple[ModelConfig, TrainConfig]:
    """Configs of the default pairs: a 2-D MLP (the first run) and a 16-D one (trained next, in the background).

    8x8 digits: 60 epochs of batch 128 at lr 1e-3, seconds to train. Larger images: IMAGE_EPOCHS
    of IMAGE_BATCH_SIZE at IMAGE_LR (measured on mnist-bundled, see above).

    One torch thread: on a model this small a second thread costs more in synchronisation than
    it gives (2.1 s vs 2.4-3.5 s for the VAE's 60 epochs of digits on 2 cores), and in the server it
    leaves a core to the sessions and the browser (bench/RESULTS.md, "App latency")."""
    model_config = default_model_config(data.image_shape, arch=arch, latent_dim=latent_dim)
    if math.prod(data.image_shape) <= SMALL_IMAGE_PIXELS:
        return model_config, TrainConfig(dataset=data.name, epochs=60, batch_size=128, max_threads=1)
    return model_config, TrainConfig(dataset=data.name, epochs=IMAGE_EPOCHS, batch_size=IMAGE_BATCH_SIZE, lr=IMAGE_LR, max_threads=1)


@dataclass
class ModelEntry:
    """A checkpoint file in the models folder, described from its header alone."""

    path: Path
    kind: str
    latent_dim: int
    arch: str
    dataset: str
    pair: str

    @property
    def label(self) -> str:
        return f"{self.path.stem}  ({self.kind.upper()}, {self.arch}, {self.latent_dim}-D, {self.dataset})"


def list_models(folder: Path | None = None) -> list[ModelEntry]:
    """Every readable checkpoint in the folder, newest first; unreadable files are skipped."""
    folder = folder or models_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:  # deleted since the glob
            continue
    entries = []
    for _, path in sorted(found, key=lambda t: t[0], reverse=True):
        try:
            meta = peek_metadata(path)
            mc = ModelConfig.from_dict(meta["model_config"])  # typed and validated: a hostile header is skipped
            entries.append(ModelEntry(path, mc.kind, mc.latent_dim, mc.arch, str(meta["dataset"].get("name", "?")), str(meta["pair"])))
        except (CheckpointError, ConfigError, KeyError, TypeError, ValueError, AttributeError):
            continue
    return entries


def find_pairs(entries: list[ModelEntry]) -> dict[str, dict[str, ModelEntry]]:
    """Pair name -> {"vae": entry, "ae": entry} for complete pairs."""
    pairs: dict[str, dict[str, ModelEntry]] = {}
    for e in entries:
        if e.pair:
            pairs.setdefault(e.pair, {}).setdefault(e.kind, e)
    return {name: kinds for name, kinds in pairs.items() if set(kinds) == {"vae", "ae"}}
