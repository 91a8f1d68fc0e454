"""The one home for device choice: where new work runs, and where a model already lives."""

from __future__ import annotations

import torch
from torch import nn

from vae.core.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def pick_device(prefer: str | None = None) -> torch.device:
    """cuda if present, else mps, else cpu (or `prefer` when given)."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters are on (inputs must go there)."""
    return next(model.parameters()).device


def check_device(name: str | None) -> str | None:
    """`--device`: cpu, cuda[:i] or mps, and only one this machine has; None picks the best available."""
    if name is None:
        return None

    allowed = "cpu, cuda, cuda:<index> or mps (or leave --device out for the best available)"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device: must be {allowed}, got {name!r}") from None
    if device.type not in DEVICE_TYPES:
        raise ConfigError(f"device: must be {allowed}, got {name!r}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError("device: cuda was asked for, but torch finds no CUDA GPU here; use --device cpu or leave --device out")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device: {name!r} does not exist; this machine has cuda:0 to cuda:{count - 1}")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device: mps was asked for, but this machine has no usable Apple GPU (MPS); use --device cpu or leave --device out")
    return name
