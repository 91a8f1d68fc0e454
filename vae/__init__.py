"""Latent Explorer's engine: datasets, VAE/AE models, losses, training, checkpoints, maps, metrics.

Pure PyTorch and scikit-learn; nothing here imports streamlit. The package is laid out by role:

- ``vae.core``      the model itself: config, data, models, losses, train, checkpoint, device, files, errors
- ``vae.analysis``  what we measure and draw from a trained model: maps, metrics, theory, images
- ``vae.services``  the app's server side: training jobs, workflow, the browser export, plots
- ``vae.settings``  everything read from the environment, in one typed object

The public API is below. Names are imported on first use (PEP 562), so ``import vae`` stays
cheap: the app shows its first screen before torch is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_API: dict[str, str] = {
    # core
    "ModelConfig": "vae.core.config",
    "TrainConfig": "vae.core.config",
    "Dataset": "vae.core.data",
    "load_dataset": "vae.core.data",
    "LatentModel": "vae.core.models",
    "VAE": "vae.core.models",
    "AE": "vae.core.models",
    "build_model": "vae.core.models",
    "default_model_config": "vae.core.models",
    "pick_device": "vae.core.device",
    "elbo_terms": "vae.core.losses",
    "fit": "vae.core.train",
    "FitResult": "vae.core.train",
    "Progress": "vae.core.train",
    "evaluate_elbo": "vae.core.train",
    "Checkpoint": "vae.core.checkpoint",
    "save_checkpoint": "vae.core.checkpoint",
    "load_checkpoint": "vae.core.checkpoint",
    "peek_metadata": "vae.core.checkpoint",
    "atomic_write": "vae.core.files",
    "LatentExplorerError": "vae.core.errors",
    "ConfigError": "vae.core.errors",
    "DatasetError": "vae.core.errors",
    "CheckpointError": "vae.core.errors",
    "TrainingDiverged": "vae.core.errors",
    # analysis
    "LatentMap": "vae.analysis.maps",
    "compute_map": "vae.analysis.maps",
    "encode_means": "vae.analysis.maps",
    "full_report": "vae.analysis.metrics",
    "elbo_breakdown": "vae.analysis.theory",
    "decode_images": "vae.analysis.images",
    "compute_landscape": "vae.analysis.layers",
    "compute_aggregate": "vae.analysis.layers",
    "compute_ellipses": "vae.analysis.layers",
    "prior_circles": "vae.analysis.layers",
    "hole_meter": "vae.analysis.layers",
    "Judge": "vae.analysis.judge",
    "judge_for": "vae.analysis.judge",
    # services
    "train_models": "vae.services.workflow",
    "TrainingJob": "vae.services.jobs",
    "TrainingRequest": "vae.services.jobs",
    # settings
    "Settings": "vae.settings",
    "settings": "vae.settings",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vae' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from vae.analysis.images import decode_images
    from vae.analysis.judge import Judge, judge_for
    from vae.analysis.layers import compute_aggregate, compute_ellipses, compute_landscape, hole_meter, prior_circles
    from vae.analysis.maps import LatentMap, compute_map, encode_means
    from vae.analysis.metrics import full_report
    from vae.analysis.theory import elbo_breakdown
    from vae.core.checkpoint import Checkpoint, load_checkpoint, peek_metadata, save_checkpoint
    from vae.core.config import ModelConfig, TrainConfig
    from vae.core.data import Dataset, load_dataset
    from vae.core.device import pick_device
    from vae.core.errors import CheckpointError, ConfigError, DatasetError, LatentExplorerError, TrainingDiverged
    from vae.core.files import atomic_write
    from vae.core.losses import elbo_terms
    from vae.core.models import AE, VAE, LatentModel, build_model, default_model_config
    from vae.core.train import FitResult, Progress, evaluate_elbo, fit
    from vae.services.jobs import TrainingJob, TrainingRequest
    from vae.services.workflow import train_models
    from vae.settings import Settings, settings
