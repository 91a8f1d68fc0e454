"""One `.safetensors` file per model: weights plus, in its metadata, everything needed to use it.

Layout
  tensors   model.<name>          the state_dict (float32)
            aux.snapshots         (E + 1, P, 2) float32: the 2-D map before training and after each epoch
            aux.snapshot_index    (P,) int64: which test images the snapshots show
  metadata  format = "latent-explorer", format_version, model_config, train_config, dataset,
            history, metrics, pair (JSON strings)

Saving is atomic (temp file in the same folder, fsync, rename). Loading never unpickles: the
header is checked by hand (size, JSON, format, version), safetensors parses the tensors, and
names and shapes must match the model that the config describes.

Reading metadata: `peek_metadata` (the models list) checks the header by hand the same way,
then reads the metadata with safetensors' own `safe_open(path).metadata()`. `load_checkpoint`
takes its metadata from the header it has checked: it works on bytes (an upload has no path),
and the metadata, the tensors and the content hash must all come from the same bytes, which a
second open of the file by path could not promise.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vae.core.config import ModelConfig, TrainConfig
from vae.core.errors import CheckpointError, ConfigError
from vae.core.files import atomic_write
from vae.core.models import LatentModel, build_model

FORMAT = "latent-explorer"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024  # far above any model this app trains (a 64-D conv VAE is ~20 MB)
MAX_HEADER_BYTES = 8 * 1024 * 1024
SUFFIX = ".safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model in eval mode plus everything stored beside it."""

    model: LatentModel
    model_config: ModelConfig
    train_config: TrainConfig
    dataset: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    snapshots: torch.Tensor | None = None
    snapshot_index: torch.Tensor | None = None
    snapshot_decodes: torch.Tensor | None = None  # (E + 1, K, C, H, W) uint8 reconstructions beside the snapshots
    pair: str = ""  # name shared by a VAE and an AE trained together ("" when alone)
    sha256: str = ""  # hash of the file's bytes: the key of every derived cache

    @property
    def kind(self) -> str:
        return self.model_config.kind


def checkpoint_bytes(
    model: LatentModel,
    train_config: TrainConfig,
    dataset: dict[str, Any],
    history: list[dict[str, float]] | None = None,
    metrics: dict[str, Any] | None = None,
    snapshots: torch.Tensor | None = None,
    snapshot_index: torch.Tensor | None = None,
    pair: str = "",
    snapshot_decodes: torch.Tensor | None = None,
) -> bytes:
    """Serialize a model and its context to safetensors bytes."""
    tensors = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    if snapshots is not None:
        tensors["aux.snapshots"] = snapshots.detach().to("cpu", torch.float32).contiguous()
        index = snapshot_index if snapshot_index is not None else torch.arange(snapshots.shape[1])
        tensors["aux.snapshot_index"] = index.detach().to("cpu", torch.int64).contiguous()
        if snapshot_decodes is not None:
            tensors["aux.snapshot_decodes"] = snapshot_decodes.detach().to("cpu", torch.uint8).contiguous()
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(model.config.to_dict()),
        "train_config": json.dumps(train_config.to_dict()),
        "dataset": json.dumps(dataset),
        "history": json.dumps(history or []),
        "metrics": json.dumps(metrics or {}),
        "pair": pair,
    }
    return st_save(tensors, metadata=metadata)


def save_checkpoint(path: str | Path, model: LatentModel, train_config: TrainConfig, dataset: dict[str, Any], **extra: Any) -> Path:
    """Save atomically to `path` (".safetensors" is appended if missing). Returns the path."""
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    return atomic_write(path, checkpoint_bytes(model, train_config, dataset, **extra))


def read_header(data: bytes) -> dict[str, Any]:
    """Parse and check the safetensors header of `data`; returns the JSON header dict."""
    # A safetensors header is JSON at offset 8; without that check, any file whose header
    # length is 0x80 mod 256 (its first byte) would be mistaken for a pickle's PROTO opcode.
    looks_like_safetensors = data[8:9] == b"{"
    if not looks_like_safetensors and (data[:4] == b"PK\x03\x04" or data[:1] == b"\x80"):
        raise CheckpointError(
            "this is a PyTorch pickle (torch.save) file; only .safetensors checkpoints are accepted, and pickles are never loaded"
        )
    if len(data) < 8:
        raise CheckpointError(f"not a safetensors file: only {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"not a checkpoint: header claims {n:,} bytes (limit {MAX_HEADER_BYTES:,})")
    if 8 + n > len(data):
        raise CheckpointError(f"truncated file: header needs {n:,} bytes but only {len(data) - 8:,} follow")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, 4300+ digit numbers, absurd nesting
        raise CheckpointError("not a safetensors file: the header is not JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError("not a safetensors file: the header is not a JSON object")
    return header


def _metadata(header: dict[str, Any]) -> dict[str, str]:
    return _checked_metadata(header.get("__metadata__"))


def _checked_metadata(meta: Any) -> dict[str, str]:
    """A safetensors metadata dict that is ours, in a version this code reads."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("a safetensors file, but not a Latent Explorer checkpoint (no 'format' metadata)")
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"checkpoint format version {version!r} is not supported (this app reads version {FORMAT_VERSION})")
    return meta


def _json_field(meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise CheckpointError(f"checkpoint metadata field {key!r} is missing or not JSON") from None


def read_bytes(source: str | Path | bytes) -> bytes:
    """File contents (size-checked before reading) or the bytes themselves."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if path.exists() and not path.is_file():  # a folder, a FIFO or /dev/zero would never end reading
            raise CheckpointError(f"{path} is not a regular file")
        try:
            size = path.stat().st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{path.name} is {size / 2**20:.0f} MiB; checkpoints are limited to {MAX_CHECKPOINT_BYTES // 2**20} MiB")
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint is {len(data) / 2**20:.0f} MiB; the limit is {MAX_CHECKPOINT_BYTES // 2**20} MiB")
    if not data:
        raise CheckpointError("the file is empty")
    return data


def load_checkpoint(source: str | Path | bytes, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint from a path or bytes. Raises CheckpointError with a one-line reason."""
    data = read_bytes(source)
    header = read_header(data)
    meta = _metadata(header)
    try:
        model_config = ModelConfig.from_dict(_json_field(meta, "model_config"))
        train_config = TrainConfig.from_dict(_json_field(meta, "train_config"))
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint holds an invalid config: {exc}") from None
    dataset = _json_field(meta, "dataset")
    history = _json_field(meta, "history")
    metrics = _json_field(meta, "metrics")
    if not isinstance(dataset, dict) or not isinstance(history, list) or not isinstance(metrics, dict):
        raise CheckpointError("checkpoint metadata has the wrong types (dataset, history or metrics)")
    if not isinstance(dataset.get("name", ""), str):
        raise CheckpointError("checkpoint metadata field 'dataset' has a name that is not a string")
    # Names and shapes are checked against the header before anything is allocated, so a
    # config that describes a giant model cannot make us build one.
    expected = _expected_shapes(model_config)
    declared = {k[len("model.") :]: v.get("shape") if isinstance(v, dict) else None for k, v in header.items() if k.startswith("model.")}
    _check_names(model_config, set(expected), set(declared))
    for name, shape in expected.items():
        if declared[name] != list(shape):
            raise CheckpointError(f"weight {name} has shape {_short(declared[name])}, the config needs {shape}")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"corrupt safetensors data: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_names(model_config, set(expected), set(weights))
    for name, tensor in weights.items():
        if tuple(tensor.shape) != expected[name]:
            raise CheckpointError(f"weight {name} has shape {tuple(tensor.shape)}, the config needs {expected[name]}")
        if tensor.dtype != torch.float32:
            raise CheckpointError(f"weight {name} is {tensor.dtype}, expected float32")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"weight {name} holds NaN or infinite values")
    model = build_model(model_config)
    model.load_state_dict(weights, strict=True)
    model.to(device).eval()
    snapshots = tensors.get("aux.snapshots")
    index = tensors.get("aux.snapshot_index")
    if snapshots is not None and not _valid_replay(snapshots, index, dataset.get("n_test")):
        snapshots, index = None, None  # optional extras: ignore a malformed replay rather than refuse the model
    decodes = tensors.get("aux.snapshot_decodes")
    if decodes is not None and not _valid_replay_decodes(decodes, snapshots, model_config.image_shape):
        decodes = None
    if not all(_valid_history_row(row) for row in history):
        history = []  # likewise: curves that could not be drawn are dropped, the model is kept
    return Checkpoint(
        model=model,
        model_config=model_config,
        train_config=train_config,
        dataset=dataset,
        history=history,
        metrics=metrics,
        snapshots=snapshots,
        snapshot_index=index,
        snapshot_decodes=decodes,
        pair=str(meta.get("pair", "")),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _expected_shapes(model_config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of the model a config describes, built on the meta device (no memory)."""
    with torch.device("meta"):
        skeleton = build_model(model_config)
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _check_names(model_config: ModelConfig, expected: set[str], found: set[str]) -> None:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"weights do not match the stored {model_config.kind}/{model_config.arch} config: "
            f"missing {_short(missing[:3])}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {_short(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}"
        )


HISTORY_KEYS = ("epoch", "train_recon", "train_kl", "train_elbo", "test_recon", "test_kl", "test_elbo")


def _valid_history_row(row: Any) -> bool:
    return isinstance(row, dict) and all(type(row.get(k)) in (int, float) for k in HISTORY_KEYS)


def _valid_replay(snapshots: torch.Tensor, index: torch.Tensor | None, n_test: Any) -> bool:
    """(E + 1, P, 2) finite float32 maps of P test images whose int64 indices lie in [0, n_test)."""
    if snapshots.dtype != torch.float32 or snapshots.ndim != 3 or snapshots.shape[-1] != 2:
        return False
    if index is None or index.dtype != torch.int64 or index.shape != snapshots.shape[1:2] or type(n_test) is not int:
        return False
    in_range = index.numel() == 0 or (int(index.min()) >= 0 and int(index.max()) < n_test)
    return in_range and bool(torch.isfinite(snapshots).all())


def _valid_replay_decodes(decodes: torch.Tensor, snapshots: torch.Tensor | None, image_shape: tuple[int, int, int]) -> bool:
    """(E + 1, K, C, H, W) uint8 images of the model's shape, one set per valid snapshot."""
    if snapshots is None or decodes.dtype != torch.uint8 or decodes.ndim != 5:
        return False
    return decodes.shape[0] == snapshots.shape[0] and decodes.shape[1] <= snapshots.shape[1] and tuple(decodes.shape[2:]) == tuple(image_shape)


def peek_metadata(path: str | Path) -> dict[str, Any]:
    """Read only the header of a checkpoint file: its configs, dataset and pair name.

    The header is checked by hand first, as `load_checkpoint` checks it (its length against
    MAX_HEADER_BYTES and the file, the JSON, what a pickle looks like), so safetensors never
    sees a file that claims a giant header; then `safe_open` (which maps the file and reads
    none of the tensors) gives the metadata, checked for our format and version.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path.name}: not a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise CheckpointError(f"{path.name}: header too large")
            data = head + f.read(n)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    read_header(data)
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path.name}: not a readable safetensors file ({reason})") from None
    meta = _checked_metadata(metadata)
    return {
        "model_config": _json_field(meta, "model_config"),
        "train_config": _json_field(meta, "train_config"),
        "dataset": _json_field(meta, "dataset"),
        "metrics": _json_field(meta, "metrics"),
        "pair": meta.get("pair", ""),
    }
