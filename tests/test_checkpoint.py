"""Checkpoints: exact round trip, atomic writes, and refusal of everything that is not ours."""

from __future__ import annotations

import json
import pickle
import random
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from vae.core import checkpoint as ckpt_module
from vae.core import files as files_module
from vae.core.checkpoint import (
    FORMAT_VERSION,
    checkpoint_bytes,
    load_checkpoint,
    peek_metadata,
    save_checkpoint,
)
from vae.core.config import ModelConfig, TrainConfig
from vae.core.errors import CheckpointError
from vae.core.files import atomic_write
from vae.core.models import build_model

DATASET_INFO = {"name": "digits", "description": "test", "image_shape": [1, 8, 8], "n_train": 1438, "n_test": 359}
HISTORY = [
    {"epoch": 1, "train_recon": -38.0, "train_kl": 2.5, "train_elbo": -40.5, "test_recon": -39.0, "test_kl": 2.25,
     "test_elbo": -41.25, "seconds": 0.5, "images_per_s": 2876.0},
    {"epoch": 2, "train_recon": -32.0, "train_kl": 3.0, "train_elbo": -35.0, "test_recon": -33.0, "test_kl": 3.125,
     "test_elbo": -36.125, "seconds": 0.25, "images_per_s": 5752.0},
]


def small_model(kind: str = "vae", arch: str = "mlp", seed: int = 0):
    cfg = ModelConfig(kind=kind, arch=arch, image_shape=(1, 8, 8), latent_dim=3, hidden=(16,), channels=(4, 8))
    return build_model(cfg, seed=seed)


def train_config() -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=32, lr=1e-3, beta=2.0, seed=7, snapshot_points=5)


def valid_bytes(model=None, **extra) -> bytes:
    return checkpoint_bytes(model or small_model(), train_config(), DATASET_INFO, **extra)


def header_and_tensors(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def refuse(source, match: str | None = None) -> str:
    """Loading must raise CheckpointError with a one-line message; returns the message."""
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(source)
    msg = str(err.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    if match is not None:
        assert match in msg, msg
    return msg


# --- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vae", "ae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_round_trip_decodes_exactly(models_dir, kind, arch):
    model = small_model(kind, arch).eval()
    path = save_checkpoint(models_dir / "m", model, train_config(), DATASET_INFO, history=HISTORY)
    assert path == models_dir / "m.safetensors" and path.is_file()
    loaded = load_checkpoint(path)
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded.model.decode(z), model.decode(z))
        assert torch.equal(loaded.model.encode(x)[0], model.encode(x)[0])
    state, state2 = model.state_dict(), loaded.model.state_dict()
    assert state.keys() == state2.keys() and all(torch.equal(state[k], state2[k]) for k in state)
    assert type(loaded.model) is type(model) and not loaded.model.training
    assert loaded.kind == kind


def test_metadata_round_trips(models_dir):
    model = small_model("ae", "conv")
    snapshots = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([4, 8, 15, 16, 23])
    decodes = torch.randint(0, 256, (3, 4, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    metrics = {"test_elbo": -30.5, "log_px": {"k": 100, "value": -29.0}}
    path = save_checkpoint(
        models_dir / "pair-ae.safetensors", model, train_config(), DATASET_INFO,
        history=HISTORY, metrics=metrics, snapshots=snapshots, snapshot_index=index, pair="pair", snapshot_decodes=decodes,
    )
    loaded = load_checkpoint(path)
    assert loaded.snapshot_decodes is not None and torch.equal(loaded.snapshot_decodes, decodes)
    assert loaded.model_config == model.config
    assert loaded.train_config == train_config()
    assert loaded.dataset == DATASET_INFO
    assert loaded.history == HISTORY
    assert loaded.metrics == metrics
    assert loaded.pair == "pair"
    assert torch.equal(loaded.snapshots, snapshots) and torch.equal(loaded.snapshot_index, index)
    peek = peek_metadata(path)
    assert peek["model_config"] == model.config.to_dict() | {"image_shape": [1, 8, 8], "hidden": [16], "channels": [4, 8]}
    assert peek["dataset"] == DATASET_INFO and peek["pair"] == "pair" and peek["metrics"] == metrics


def test_load_from_bytes_equals_load_from_file(models_dir):
    model = small_model()
    path = save_checkpoint(models_dir / "m.safetensors", model, train_config(), DATASET_INFO)
    data = path.read_bytes()
    from_bytes, from_file = load_checkpoint(data), load_checkpoint(path)
    assert from_bytes.sha256 == from_file.sha256 and len(from_bytes.sha256) == 64
    z = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(from_bytes.model.decode(z), model.decode(z))
    assert load_checkpoint(bytearray(data)).sha256 == from_file.sha256


def test_same_model_same_content():
    # safetensors writes metadata keys in hash-map order, so compare the parsed header, not raw bytes
    (h1, t1), (h2, t2) = header_and_tensors(valid_bytes(small_model(seed=1))), header_and_tensors(valid_bytes(small_model(seed=1)))
    assert h1 == h2 and t1 == t2
    assert header_and_tensors(valid_bytes(small_model(seed=2)))[1] != t1


def test_no_snapshots_loads_as_none():
    loaded = load_checkpoint(valid_bytes())
    assert loaded.snapshots is None and loaded.snapshot_index is None and loaded.history == [] and loaded.pair == ""


def test_header_length_whose_first_byte_is_0x80_loads():
    # regression: the pickle sniffing looked only at the first byte, and a safetensors header
    # length of 0x80 mod 256 (1 file in 32) was refused as "a PyTorch pickle"
    model = small_model()
    for pad in range(300):
        data = valid_bytes(model, pair="p" * pad)
        if data[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length of 0x80 mod 256")
    assert load_checkpoint(data).pair == "p" * pad


# --- atomic writes ------------------------------------------------------------------------


def test_atomic_save_leaves_no_temp_files(models_dir):
    save_checkpoint(models_dir / "a", small_model(), train_config(), DATASET_INFO)
    save_checkpoint(models_dir / "a", small_model(seed=1), train_config(), DATASET_INFO)  # overwrite
    assert sorted(p.name for p in models_dir.iterdir()) == ["a.safetensors"]


def test_failed_replace_keeps_old_file_and_cleans_up(models_dir, monkeypatch):
    old = small_model(seed=0)
    path = save_checkpoint(models_dir / "a.safetensors", old, train_config(), DATASET_INFO)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "replace", broken_replace)
    with pytest.raises(CheckpointError, match="No space left on device") as err:
        save_checkpoint(path, small_model(seed=1), train_config(), DATASET_INFO)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before
    assert [p.name for p in models_dir.iterdir()] == ["a.safetensors"]


def test_failed_write_keeps_old_file_and_cleans_up(models_dir, monkeypatch):
    path = atomic_write(models_dir / "f.bin", b"old contents")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files_module.os, "fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="Input/output error"):
        atomic_write(path, b"new contents")
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in models_dir.iterdir()] == ["f.bin"]


def test_interrupted_write_cleans_up_and_propagates(models_dir, monkeypatch):
    path = atomic_write(models_dir / "f.bin", b"old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in models_dir.iterdir()] == ["f.bin"]


def test_unwritable_folder_is_a_checkpoint_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(blocker / "m.safetensors", small_model(), train_config(), DATASET_INFO)


# --- refusing bad input ---------------------------------------------------------------------


def test_empty_file(models_dir):
    (models_dir / "empty.safetensors").write_bytes(b"")
    refuse(models_dir / "empty.safetensors", "empty")


def test_missing_file(models_dir):
    refuse(models_dir / "nope.safetensors", "cannot read")


@pytest.mark.parametrize("cut", [3, 8, 100, -1, -200])
def test_truncated(cut):
    data = valid_bytes()
    refuse(data[:cut])


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed):
    refuse(random.Random(seed).randbytes(2000))


def test_random_bytes_with_plausible_length():
    body = random.Random(0).randbytes(200)
    refuse(struct.pack("<Q", 100) + body, "not JSON")


def test_header_not_an_object():
    refuse(with_header([1, 2, 3], b""), "not a JSON object")  # type: ignore[arg-type]


def test_foreign_safetensors():
    refuse(st_save({"weight": torch.zeros(3, 3)}), "not a Latent Explorer checkpoint")


def test_foreign_safetensors_with_other_metadata():
    refuse(st_save({"weight": torch.zeros(3)}, metadata={"format": "pt"}), "not a Latent Explorer checkpoint")


@pytest.mark.parametrize("version", [str(FORMAT_VERSION + 1), "0", None])
def test_unknown_format_version(version):
    header, body = header_and_tensors(valid_bytes())
    if version is None:
        del header["__metadata__"]["format_version"]
    else:
        header["__metadata__"]["format_version"] = version
    msg = refuse(with_header(header, body), "format version")
    assert str(version) in msg


@pytest.mark.parametrize("key", ["model_config", "train_config", "dataset", "history"])
def test_broken_metadata_field(key):
    header, body = header_and_tensors(valid_bytes())
    header["__metadata__"][key] = "{not json"
    refuse(with_header(header, body), key)


def test_invalid_stored_config():
    header, body = header_and_tensors(valid_bytes())
    cfg = json.loads(header["__metadata__"]["model_config"])
    cfg["latent_dim"] = 0
    header["__metadata__"]["model_config"] = json.dumps(cfg)
    refuse(with_header(header, body), "latent_dim")


def test_wrong_metadata_types():
    header, body = header_and_tensors(valid_bytes())
    header["__metadata__"]["history"] = json.dumps({"not": "a list"})
    refuse(with_header(header, body), "wrong types")


def our_metadata(model) -> dict[str, str]:
    header, _ = header_and_tensors(valid_bytes(model))
    return header["__metadata__"]


def test_missing_tensor():
    model = small_model()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items() if k != "encoder.mu.bias"}
    refuse(st_save(tensors, metadata=our_metadata(model)), "missing ['encoder.mu.bias']")


def test_unexpected_tensor():
    model = small_model()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors["model.extra.weight"] = torch.zeros(2)
    refuse(st_save(tensors, metadata=our_metadata(model)), "unexpected ['extra.weight']")


def test_ae_weights_under_vae_config():
    # the logvar head is missing: the stored kind and the tensors disagree
    ae, vae = small_model("ae"), small_model("vae")
    tensors = {f"model.{k}": v for k, v in ae.state_dict().items()}
    refuse(st_save(tensors, metadata=our_metadata(vae)), "encoder.logvar")


def test_wrong_tensor_shape():
    model = small_model()
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["model.encoder.mu.weight"] = torch.zeros(4, 16)  # config says latent_dim 3
    msg = refuse(st_save(tensors, metadata=our_metadata(model)), "encoder.mu.weight has shape")
    assert "4, 16" in msg and "(3, 16)" in msg


def test_wrong_tensor_dtype():
    model = small_model()
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    tensors["model.encoder.mu.bias"] = tensors["model.encoder.mu.bias"].double()
    refuse(st_save(tensors, metadata=our_metadata(model)), "float64")


def test_non_finite_weights():
    model = small_model()
    with torch.no_grad():
        model.decoder.body[-1].bias[0] = float("nan")
    refuse(valid_bytes(model), "NaN")


def test_malformed_snapshots_are_dropped_not_fatal():
    model = small_model()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors["aux.snapshots"] = torch.zeros(3, 5, 7)  # last dim must be 2
    tensors["aux.snapshot_index"] = torch.arange(5)
    loaded = load_checkpoint(st_save(tensors, metadata=our_metadata(model)))
    assert loaded.snapshots is None and loaded.snapshot_index is None


@pytest.mark.parametrize("decodes", [
    torch.zeros(3, 2, 1, 8, 8),  # float, not uint8
    torch.zeros(2, 2, 1, 8, 8, dtype=torch.uint8),  # one set short of the snapshots
    torch.zeros(3, 2, 1, 7, 8, dtype=torch.uint8),  # not the model's image shape
    torch.zeros(3, 6, 1, 8, 8, dtype=torch.uint8),  # more images than the snapshots show
])
def test_malformed_replay_reconstructions_are_dropped_and_the_replay_kept(decodes):
    model = small_model()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors["aux.snapshots"] = torch.zeros(3, 5, 2)
    tensors["aux.snapshot_index"] = torch.arange(5)
    tensors["aux.snapshot_decodes"] = decodes
    loaded = load_checkpoint(st_save(tensors, metadata=our_metadata(model)))
    assert loaded.snapshot_decodes is None and loaded.snapshots is not None


def test_oversized_file_is_refused_before_reading(models_dir, monkeypatch):
    path = save_checkpoint(models_dir / "m", small_model(), train_config(), DATASET_INFO)
    monkeypatch.setattr(ckpt_module, "MAX_CHECKPOINT_BYTES", 1000)
    refuse(path, "limited to")


def test_peek_metadata_refuses_garbage(models_dir):
    path = models_dir / "x.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError):
        peek_metadata(path)


def test_peek_metadata_reads_through_safe_open_after_the_header_checks(models_dir, monkeypatch):
    """The metadata comes from safetensors' safe_open; the hand-made header checks run before it,
    so a file that claims a giant header, or is a pickle, never reaches safetensors."""
    opened = []
    real = ckpt_module.safe_open
    monkeypatch.setattr(ckpt_module, "safe_open", lambda path, **kw: opened.append(Path(path).name) or real(path, **kw))
    path = save_checkpoint(models_dir / "m", small_model(), train_config(), DATASET_INFO, pair="p")
    assert peek_metadata(path)["pair"] == "p" and opened == ["m.safetensors"]
    huge = models_dir / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", ckpt_module.MAX_HEADER_BYTES + 1) + b"{}")
    lies = models_dir / "lies.safetensors"
    lies.write_bytes(struct.pack("<Q", 1000) + b"{}")
    pickled = models_dir / "pickled.safetensors"
    pickled.write_bytes(pickle.dumps({"a": 1}, protocol=5))
    for bad, message in ((huge, "header too large"), (lies, "truncated"), (pickled, "header too large|pickle")):
        with pytest.raises(CheckpointError, match=message):
            peek_metadata(bad)
    assert opened == ["m.safetensors"]


def test_peek_metadata_refuses_a_file_whose_tensors_are_cut_off(models_dir):
    """safe_open checks the tensors' offsets against the file, which the header alone cannot."""
    path = save_checkpoint(models_dir / "m", small_model(), train_config(), DATASET_INFO)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        peek_metadata(path)

