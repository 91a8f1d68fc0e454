"""A judge per labelled dataset: a small classifier that only scores decoded images.

Trained on the dataset's training split only, cached on disk per dataset (safetensors, never
pickle), trained in seconds. `judge_for(data)` returns it, or None for a dataset without labels.
Every measure that says "recognisable" asks this module (RECOGNISED: top probability >= 0.5).

The net: two conv3x3-ReLU-maxpool stages (16 and 32 channels) and a 64-wide linear layer, Adam
with a one-cycle schedule over 40,000 training images seen (JudgeRecipe), seed 0. "Without
labels" means fewer than 2 distinct classes in the training split (`has_labels`). The cache file
is <settings().cache_dir>/judges/<dataset name>-<key>.safetensors, the key a hash of the recipe,
the class names and the data; its metadata holds the class names, the image shape, the test
accuracy and the training time. Loading checks the header (a pickle is refused unread), the
metadata and every weight's name and shape; anything else is retrained and the file replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from vae.core.checkpoint import read_header
from vae.core.data import Dataset
from vae.core.errors import CheckpointError
from vae.core.files import atomic_write
from vae.settings import settings

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


# --- the classifier -----------------------------------------------------------------------

FORMAT = "latent-explorer-judge"  # safetensors metadata "format" of a cached judge
FORMAT_VERSION = "1"
MIN_CLASSES = 2  # a dataset whose training labels hold fewer distinct classes has no judge
BATCH = 2048  # images per forward pass when judging


@dataclass(frozen=True)
class JudgeRecipe:
    """How a judge is built and trained; part of its cache key, so a change retrains."""

    channels: tuple[int, int] = (16, 32)  # two 3x3 conv layers, each followed by a 2x2 max-pool
    hidden: int = 64  # width of the fully connected layer before the class scores
    samples: int = 40_000  # training images seen in all (steps x batch size): bounds the time whatever the split's size
    max_epochs: int = 100  # ...and at most this many passes over a small split (19 images would otherwise get 2,105)
    batch_size: int = 128
    lr: float = 5e-3  # peak learning rate of Adam's one-cycle schedule
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


DEFAULT_RECIPE = JudgeRecipe()


def _pooled(n: int) -> int:
    return (n + 1) // 2  # MaxPool2d(2, ceil_mode=True)


def build_net(image_shape: tuple[int, int, int], n_classes: int, recipe: JudgeRecipe = DEFAULT_RECIPE) -> nn.Sequential:
    """conv3x3-relu-maxpool twice, then two linear layers: (N, C, H, W) -> (N, n_classes) logits.

    Plain layers in one nn.Sequential, so the browser export can walk them like the decoder's."""
    c, h, w = image_shape
    c1, c2 = recipe.channels
    return nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(c2 * _pooled(_pooled(h)) * _pooled(_pooled(w)), recipe.hidden),
        nn.ReLU(),
        nn.Linear(recipe.hidden, n_classes),
    )


class Judge:
    """A trained classifier for one dataset's images (implements `Judges`).

    class_names: the dataset's; image_shape: (C, H, W) it reads; test_accuracy: on the dataset's
    test split (never trained on); key: hash of the data and the recipe (the cache file's name);
    path: the cache file, or None when it could not be written; train_seconds: the training time
    measured when it was trained (also kept in the cache file)."""

    def __init__(
        self,
        net: nn.Sequential,
        class_names: tuple[str, ...],
        image_shape: tuple[int, int, int],
        test_accuracy: float,
        recipe: JudgeRecipe,
        key: str,
        train_seconds: float,
        path: Path | None = None,
    ) -> None:
        self.net = net.eval()
        self.class_names = class_names
        self.image_shape = image_shape
        self.test_accuracy = test_accuracy
        self.recipe = recipe
        self.key = key
        self.train_seconds = train_seconds
        self.path = path

    def __repr__(self) -> str:
        return f"Judge({len(self.class_names)} classes, {self.image_shape}, test accuracy {self.test_accuracy:.4f}, key {self.key})"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, C, H, W) in [0, 1] -> (N, K) float32 logits, on the CPU."""
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"the judge reads (N, {', '.join(map(str, self.image_shape))}) images, got {tuple(images.shape)}")
        x = images.detach().to("cpu", torch.float32)
        with torch.inference_mode():
            parts = [self.net(x[i : i + BATCH]) for i in range(0, x.shape[0], BATCH)]
        return torch.cat(parts) if parts else torch.zeros(0, len(self.class_names))

    def judge(self, images: torch.Tensor) -> Verdict:
        """images (N, C, H, W) in [0, 1] -> their verdict (softmax probabilities, top class, its probability)."""
        probs = torch.softmax(self.logits(images), dim=1).numpy().astype(np.float32)
        classes = probs.argmax(axis=1).astype(np.int64)
        confidence = probs[np.arange(len(classes)), classes].astype(np.float32)
        return Verdict(classes=classes, confidence=confidence, probs=probs)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of `images` whose top class is `labels` (N,) int64."""
        if images.shape[0] == 0:
            return float("nan")
        return float((self.logits(images).argmax(1) == labels.cpu()).float().mean())


def has_labels(data: Dataset) -> bool:
    """The rule for "a dataset with labels": its training split holds at least MIN_CLASSES
    distinct labels, all within its class names (an unlabelled set stores one dummy label)."""
    if len(data.class_names) < MIN_CLASSES or data.y_train.numel() == 0:
        return False
    y = data.y_train
    return int(y.min()) >= 0 and int(y.max()) < len(data.class_names) and int(torch.unique(y).numel()) >= MIN_CLASSES


def judge_steps(n_images: int, recipe: JudgeRecipe = DEFAULT_RECIPE) -> int:
    """Optimiser steps for a training split of `n_images`: `recipe.samples` images seen in all
    (40,000 by default), but never more than `recipe.max_epochs` passes over the split, so a tiny
    labelled folder (19 images) trains for 100 epochs (100 steps), not 40,000 / 19 = 2,105. Splits of
    512 images or more (4 batches of 128 a pass) never reach the cap."""
    batch = max(1, min(recipe.batch_size, n_images))
    per_epoch = n_images // batch  # as train_judge's loop: a shorter last batch starts the next epoch instead
    return max(1, min(recipe.samples // batch, recipe.max_epochs * per_epoch))


def train_judge(data: Dataset, recipe: JudgeRecipe = DEFAULT_RECIPE) -> Judge:
    """Train a judge on `data`'s training split only (seeded, repeatable; leaves the global RNG as it was).
    It takes judge_steps(len(split)) steps: 40,000 images seen, capped at 100 epochs on small splits."""
    if not has_labels(data):
        raise ValueError(f"dataset {data.name!r} has no labels to train a judge on (fewer than {MIN_CLASSES} classes in its training split)")
    x, y = data.x_train.detach().to("cpu", torch.float32), data.y_train.detach().to("cpu", torch.int64)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        net = build_net(data.image_shape, len(data.class_names), recipe)
        batch = min(recipe.batch_size, x.shape[0])
        steps = judge_steps(x.shape[0], recipe)
        optimiser = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr, total_steps=steps)
        order = torch.Generator().manual_seed(recipe.seed)
        perm, pos = torch.randperm(x.shape[0], generator=order), 0
        net.train()
        for _ in range(steps):
            if pos + batch > x.shape[0]:  # a new epoch: a new order
                perm, pos = torch.randperm(x.shape[0], generator=order), 0
            idx = perm[pos : pos + batch]
            pos += batch
            loss = F.cross_entropy(net(x[idx]), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    seconds = time.perf_counter() - start
    judge = Judge(net, data.class_names, data.image_shape, float("nan"), recipe, judge_key(data, recipe), seconds)
    judge.test_accuracy = judge.accuracy(data.x_test, data.y_test)
    return judge


# --- the cache ------------------------------------------------------------------------------

_MEMO: dict[tuple[str, str], Judge] = {}  # (cache file, key) -> judge: repeated calls are instant
_TRAINED: dict[str, Judge] = {}  # key -> the judge trained in this process: a new cache folder gets a copy, not a retraining
_KEYS: dict[tuple[int, JudgeRecipe], tuple[weakref.ref[Dataset], str]] = {}  # skips re-hashing the same Dataset object
_LOCKS: dict[str, threading.Lock] = {}  # one training per cache file at a time in this process
_GUARD = threading.Lock()


def judge_key(data: Dataset, recipe: JudgeRecipe = DEFAULT_RECIPE) -> str:
    """16 hex digits of SHA-256 over the format version, the recipe, the class names and both
    splits (the test split too: the cached test accuracy belongs to it)."""
    with _GUARD:
        known = _KEYS.get((id(data), recipe))
    if known is not None and known[0]() is data:
        return known[1]
    digest = hashlib.sha256()
    digest.update(f"{FORMAT} {FORMAT_VERSION} {recipe.to_json()} {json.dumps(list(data.class_names))}".encode())
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        array = np.ascontiguousarray(t.detach().cpu().numpy())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    key = digest.hexdigest()[:16]
    with _GUARD:
        _KEYS[(id(data), recipe)] = (weakref.ref(data), key)
    return key


def judge_path(data: Dataset, cache_dir: Path | None = None, recipe: JudgeRecipe = DEFAULT_RECIPE) -> Path:
    """Where `data`'s judge is cached: <cache_dir or settings().cache_dir>/judges/<name>-<key>.safetensors."""
    folder = Path(cache_dir) if cache_dir is not None else settings().cache_dir
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", data.name).strip("._-")[:48] or "dataset"
    return folder / "judges" / f"{slug}-{judge_key(data, recipe)}.safetensors"


def judge_bytes(judge: Judge) -> bytes:
    """The judge as safetensors bytes: weights plus metadata (class names, shape, accuracy, recipe, key)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in judge.net.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "key": judge.key,
        "class_names": json.dumps(list(judge.class_names)),
        "image_shape": json.dumps(list(judge.image_shape)),
        "test_accuracy": repr(judge.test_accuracy),
        "train_seconds": repr(judge.train_seconds),
        "recipe": judge.recipe.to_json(),
    }
    return st_save(tensors, metadata=metadata)


def load_judge(data: bytes, class_names: tuple[str, ...], image_shape: tuple[int, int, int], recipe: JudgeRecipe, key: str) -> Judge:
    """A judge from safetensors bytes, checked against what it must be (never unpickles).
    Raises CheckpointError when the bytes are not that judge."""
    header = read_header(data)  # refuses pickles and broken headers before safetensors parses anything
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError("not a judge file of this version")
    if meta.get("key") != key or meta.get("recipe") != recipe.to_json():
        raise CheckpointError("a judge for other data or another recipe")
    try:
        names = tuple(json.loads(meta["class_names"]))
        shape = tuple(json.loads(meta["image_shape"]))
        accuracy = float(meta["test_accuracy"])
        seconds = float(meta["train_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"judge metadata is incomplete ({type(exc).__name__})") from None
    if names != class_names or shape != image_shape or not 0.0 <= accuracy <= 1.0:
        raise CheckpointError("judge metadata does not match the dataset")
    net = build_net(image_shape, len(class_names), recipe)
    expected = {k: list(v.shape) for k, v in net.state_dict().items()}
    declared = {k: v.get("shape") if isinstance(v, dict) else None for k, v in header.items() if k != "__metadata__"}
    if declared != expected:
        raise CheckpointError("judge weights have other names or shapes than the recipe's net")
    try:
        tensors = st_load(data)
        net.load_state_dict(tensors, strict=True)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"corrupt judge weights ({type(exc).__name__})") from None
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise CheckpointError("judge weights are not finite")
    return Judge(net, class_names, image_shape, accuracy, recipe, key, seconds)


def judge_for(data: Dataset, cache_dir: Path | None = None, recipe: JudgeRecipe = DEFAULT_RECIPE) -> Judge | None:
    """`data`'s judge: None for a dataset without labels (see `has_labels`); else from this
    process's memo, else from the cache file (checked; a broken or mismatched file is retrained
    and replaced), else trained now (seconds) and cached. A cache folder that cannot be written
    only costs the caching: the judge is still returned (with `path` None)."""
    if not has_labels(data):
        return None
    path = judge_path(data, cache_dir, recipe)
    memo_key = (str(path.resolve()), path.stem)
    with _GUARD:
        lock = _LOCKS.setdefault(memo_key[0], threading.Lock())
    with lock:
        judge = _MEMO.get(memo_key)
        if judge is not None:
            return judge
        key = judge_key(data, recipe)
        try:
            judge = load_judge(path.read_bytes(), data.class_names, data.image_shape, recipe, key)
            judge.path = path
        except (OSError, CheckpointError):
            trained = _TRAINED.get(key)  # the same data and recipe, trained in this process for another cache folder
            judge = train_judge(data, recipe) if trained is None else Judge(
                trained.net, trained.class_names, trained.image_shape, trained.test_accuracy, trained.recipe, trained.key,
                trained.train_seconds)
            _TRAINED.setdefault(key, judge)
            try:
                judge.path = atomic_write(path, judge_bytes(judge))
            except CheckpointError:
                judge.path = None
        _MEMO[memo_key] = judge
        return judge


def clear_memo() -> None:
    """Forget the judges held in this process (tests; the cache files stay)."""
    with _GUARD:
        _MEMO.clear()
        _TRAINED.clear()
        _KEYS.clear()
