"""A judge per labelled dataset: a small classifier that only scores decoded images.

Trained on the dataset's training split only, cached on disk per dataset (safetensors, never
pickle), trained in seconds. `judge_for(data)` returns it, or None for a dataset without labels.
Every measure that says "recognisable" asks this module (RECOGNISED: top probability >= 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

RECOGNISED = 0.5  # a decode is recognisable when the judge's top probability reaches this


@dataclass(frozen=True)
class Verdict:
    """The judge's reading of N images."""

    classes: np.ndarray  # (N,) int64: the most probable class
    confidence: np.ndarray  # (N,) float32: its probability
    probs: np.ndarray  # (N, K) float32: every class's probability

    @property
    def recognised(self) -> np.ndarray:
        """(N,) bool: top probability >= RECOGNISED."""
        return self.confidence >= RECOGNISED


class Judges(Protocol):
    """What the measures and the layers need of a judge (tests pass simple stand-ins)."""

    class_names: tuple[str, ...]

    def judge(self, images: torch.Tensor) -> Verdict:
        """images (N, C, H, W) in [0, 1] -> their verdict."""
        ...
