"""Typed, validated configuration for models and training (JSON round-trip).

`validate()` checks every field at the boundary and raises `ConfigError` naming the field
and the allowed range; inside the package the types are trusted.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from vae.core.errors import ConfigError

MODEL_KINDS = ("vae", "ae")
ARCHS = ("mlp", "conv")
LATENT_DIM_RANGE = (1, 64)
PRECISIONS = ("fp32", "bf16")  # bf16: the forward pass under torch.autocast; weights and optimizer stay float32


def _clip(text: str, limit: int = 300) -> str:
    """Keep messages one short line even when the offending value came from a hostile file."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(cond: bool, field_name: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{field_name}: {_clip(message)}")


@dataclass
class ModelConfig:
    kind: str = "vae"  # "vae" (stochastic code) or "ae" (deterministic code, same nets)
    arch: str = "mlp"  # "mlp" or "conv" (conv needs height and width divisible by 4)
    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of the data the model was built for
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256,)  # MLP hidden widths; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)  # conv channels, each layer halves H and W

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # type: ignore[assignment]
        self.hidden = tuple(int(v) for v in self.hidden)
        self.channels = tuple(int(v) for v in self.channels)

    def validate(self) -> ModelConfig:
        _check(self.kind in MODEL_KINDS, "kind", f"must be one of {MODEL_KINDS}, got {self.kind!r}")
        _check(self.arch in ARCHS, "arch", f"must be one of {ARCHS}, got {self.arch!r}")
        lo, hi = LATENT_DIM_RANGE
        _check(
            isinstance(self.latent_dim, int) and lo <= self.latent_dim <= hi,
            "latent_dim",
            f"must be an integer from {lo} to {hi}, got {self.latent_dim!r}",
        )
        _check(
            len(self.image_shape) == 3 and all(1 <= v <= 512 for v in self.image_shape),
            "image_shape",
            f"must be (C, H, W) with each size from 1 to 512, got {self.image_shape!r}",
        )
        _check(
            1 <= len(self.hidden) <= 8 and all(1 <= h <= 8192 for h in self.hidden),
            "hidden",
            f"must be 1 to 8 layer widths from 1 to 8192, got {self.hidden[:9]!r}",
        )
        if self.arch == "conv":
            _, h, w = self.image_shape
            depth = len(self.channels)
            _check(
                1 <= depth <= 4 and all(1 <= c <= 1024 for c in self.channels),
                "channels",
                f"must be 1 to 4 channel counts from 1 to 1024, got {self.channels!r}",
            )
            step = 2**depth
            _check(
                h % step == 0 and w % step == 0,
                "arch",
                f"conv with {depth} layers needs height and width divisible by {step}, "
                f"but the images are {h}x{w}; use arch='mlp' or fewer channels",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data)


@dataclass
class TrainConfig:
    dataset: str = "digits"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the plain ELBO; ignored by an AE
    seed: int = 0
    snapshot_points: int = 300  # test points whose 2-D map is kept after every epoch (0 = none)
    max_threads: int = 0  # torch intra-op threads while training (0 = leave torch's default)
    world_size: int = 1  # processes that trained the model together (torchrun, DDP); batch_size is their global batch
    precision: str = "fp32"  # see PRECISIONS

    def validate(self) -> TrainConfig:
        _check(isinstance(self.dataset, str) and bool(self.dataset), "dataset", "must be a dataset name")
        _check(
            isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000,
            "epochs",
            f"must be an integer from 1 to 10000, got {self.epochs!r}",
        )
        _check(
            isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
            "batch_size",
            f"must be an integer from 1 to 65536, got {self.batch_size!r}",
        )
        _check(
            isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 10,
            "lr",
            f"must be a number in (0, 10], got {self.lr!r}",
        )
        _check(
            isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and 0 <= self.beta <= 1000,
            "beta",
            f"must be a number from 0 to 1000, got {self.beta!r}",
        )
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", "must be an integer from 0 to 2**32-1")
        _check(
            isinstance(self.snapshot_points, int) and 0 <= self.snapshot_points <= 5000,
            "snapshot_points",
            f"must be an integer from 0 to 5000, got {self.snapshot_points!r}",
        )
        _check(isinstance(self.max_threads, int) and 0 <= self.max_threads <= 256, "max_threads", "must be 0 to 256")
        _check(
            isinstance(self.world_size, int) and 1 <= self.world_size <= 65_536,
            "world_size",
            f"must be an integer from 1 to 65536, got {self.world_size!r}",
        )
        _check(
            self.batch_size % self.world_size == 0,
            "batch_size",
            f"the global batch of {self.batch_size} must split evenly over the {self.world_size} training "
            f"processes; use a multiple of {self.world_size}",
        )
        _check(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data)


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(_clip(f"{cls.__name__}: unknown field(s) {unknown}; allowed: {sorted(names)}"))
    try:
        return cls(**data).validate()
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(1e999) from JSON
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(_clip(f"{cls.__name__}: {exc}")) from None


def to_json(cfg: ModelConfig | TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)
