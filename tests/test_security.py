"""Hostile and broken checkpoints: every one is a one-line message, nothing is ever unpickled.

The same files go through the three doors a user has: `vae.core.checkpoint.load_checkpoint`, the
CLI (`python -m vae evaluate FILE`: one `error: ...` line, exit 2) and the sidebar upload of
the real app (AppTest), which must stay usable afterwards. A fuzzer (hypothesis) mutates a
valid checkpoint and checks that the loader only ever returns a Checkpoint or raises the
project's own error type.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from vae.__main__ import main as cli_main
from vae.core.checkpoint import MAX_HEADER_BYTES, Checkpoint, checkpoint_bytes, load_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import load_dataset
from vae.core.errors import CheckpointError, LatentExplorerError
from vae.core.models import build_model
from vae.services.workflow import list_models

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
HISTORY_ROW = {"epoch": 1, "train_recon": -30.0, "train_kl": 2.0, "train_elbo": -32.0, "test_recon": -31.0,
               "test_kl": 2.0, "test_elbo": -33.0, "seconds": 0.1, "images_per_s": 1e4}


# ---------------------------------------------------------------- building the files


class Armed:
    """Unpickling this object writes `marker`: proof that code ran, if the marker ever appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def split(data: bytes) -> tuple[dict, bytes]:
    """safetensors bytes -> (header dict, tensor bytes)."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def with_meta(data: bytes, **fields: str) -> bytes:
    header, body = split(data)
    header["__metadata__"].update(fields)
    return join(header, body)


@pytest.fixture(scope="module")
def digits_info() -> dict:
    return load_dataset("digits").info()


@pytest.fixture(scope="module")
def valid(digits_info: dict) -> bytes:
    """A small, valid checkpoint (with a replay and a history) as bytes."""
    model = build_model(TINY, seed=0)
    return checkpoint_bytes(
        model, TrainConfig(epochs=1, snapshot_points=5), digits_info, history=[HISTORY_ROW],
        snapshots=torch.zeros(2, 5, 2), snapshot_index=torch.arange(5), pair="",
    )


def hostile_files(valid: bytes, marker: Path) -> dict[str, bytes]:
    """Name -> bytes of every kind of wrong file the issue lists (and a few more)."""
    header, body = split(valid)
    files: dict[str, bytes] = {}
    files["random bytes"] = random.Random(0).randbytes(4096)
    files["empty file"] = b""
    files["seven bytes"] = b"\x10\x00\x00\x00\x00\x00\x00"
    files["truncated in the header"] = valid[:40]
    files["truncated in the tensors"] = valid[: len(valid) - 100]
    # the 8-byte length lies: more than the file holds, and a huge header
    raw = json.dumps(header).encode()
    files["header length lies"] = struct.pack("<Q", len(raw) + 1000) + raw + body
    files["huge header"] = struct.pack("<Q", 2**40) + raw
    files["header over the limit"] = struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{" + b" " * (MAX_HEADER_BYTES - 1) + b"}"
    # tensor entries that lie about offsets and sizes
    name = next(k for k in header if k.startswith("model."))
    h = copy.deepcopy(header)
    h[name]["data_offsets"] = [0, len(body) * 10]
    files["offsets past the end"] = join(h, body)
    h = copy.deepcopy(header)
    h[name]["shape"] = [4096, 4096]
    files["shape bigger than its bytes"] = join(h, body)
    h = copy.deepcopy(header)
    other = [k for k in header if k.startswith("model.") and k != name][0]
    h[name]["data_offsets"] = h[other]["data_offsets"]
    files["overlapping offsets"] = join(h, body)
    h = copy.deepcopy(header)
    h["model.not.a.weight"] = h.pop(name)
    files["wrong tensor name"] = join(h, body)
    # a well-formed file whose weights belong to another config
    other_model = build_model(replace(TINY, hidden=(24,)), seed=0)
    wrong = checkpoint_bytes(other_model, TrainConfig(), {"name": "digits"})
    files["wrong tensor shapes"] = with_meta(wrong, model_config=json.dumps(TINY.to_dict()))
    files["float16 weights"] = st_save(
        {f"model.{k}": v.half() for k, v in build_model(TINY, seed=0).state_dict().items()}, metadata=header["__metadata__"]
    )
    files["NaN weights"] = st_save(
        {f"model.{k}": torch.full_like(v, float("nan")) for k, v in build_model(TINY, seed=0).state_dict().items()},
        metadata=header["__metadata__"],
    )
    files["unknown format version"] = with_meta(valid, format_version="99")
    files["foreign safetensors file"] = st_save({"weight": torch.zeros(3)})
    files["config out of range"] = with_meta(valid, model_config=json.dumps({**TINY.to_dict(), "latent_dim": 1000}))
    files["config describes a giant model"] = with_meta(
        valid, model_config=json.dumps({**TINY.to_dict(), "hidden": [8192] * 8, "image_shape": [16, 512, 512]})
    )
    files["metadata not JSON"] = with_meta(valid, train_config="{not json")
    files["number with 5000 digits"] = with_meta(valid, model_config='{"latent_dim": ' + "9" * 5000 + "}")
    files["deeply nested JSON"] = with_meta(valid, history="[" * 100_000 + "]" * 100_000)
    # PyTorch pickles: plain, legacy and armed to run code when unpickled
    buf = tempfile.SpooledTemporaryFile()
    torch.save(build_model(TINY, seed=0).state_dict(), buf)
    buf.seek(0)
    files["torch.save state_dict"] = buf.read()
    buf = tempfile.SpooledTemporaryFile()
    torch.save({"model.x": Armed(marker)}, buf)
    buf.seek(0)
    files["armed torch.save (zip)"] = buf.read()
    buf = tempfile.SpooledTemporaryFile()
    torch.save({"model.x": Armed(marker)}, buf, _use_new_zipfile_serialization=False)
    buf.seek(0)
    files["armed torch.save (legacy)"] = buf.read()
    files["armed pickle protocol 0"] = pickle.dumps(Armed(marker), protocol=0)
    files["armed pickle protocol 5"] = pickle.dumps(Armed(marker), protocol=5)
    return files


CASES = [
    "random bytes", "empty file", "seven bytes", "truncated in the header", "truncated in the tensors",
    "header length lies", "huge header", "header over the limit", "offsets past the end", "shape bigger than its bytes",
    "overlapping offsets", "wrong tensor name", "wrong tensor shapes", "float16 weights", "NaN weights",
    "unknown format version", "foreign safetensors file", "config out of range", "config describes a giant model",
    "metadata not JSON", "number with 5000 digits", "deeply nested JSON", "torch.save state_dict",
    "armed torch.save (zip)", "armed torch.save (legacy)", "armed pickle protocol 0", "armed pickle protocol 5",
]


@pytest.fixture(scope="module")
def hostile(valid: bytes, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Path]:
    marker = tmp_path_factory.mktemp("marker") / "code-ran"
    files = hostile_files(valid, marker)
    assert sorted(files) == sorted(CASES)
    return files, marker


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call into pickle or torch.load fails the test (on top of the marker-file proof)."""

    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the loader tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 400, message


# ---------------------------------------------------------------- the files are armed


def test_the_armed_files_really_run_code_when_unpickled(hostile, tmp_path: Path) -> None:
    """Control: the payload works, so 'marker not created' below proves that nothing unpickled it."""
    marker = tmp_path / "control"
    path = tmp_path / "armed.pt"
    torch.save({"model.x": Armed(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"
    marker.unlink()
    pickle.loads(pickle.dumps(Armed(marker), protocol=0))
    assert marker.exists()


# ---------------------------------------------------------------- door 1: the loader


@pytest.mark.parametrize("case", CASES)
def test_loader_refuses_with_one_line_and_runs_nothing(case: str, hostile, no_unpickling, tmp_path: Path) -> None:
    files, marker = hostile
    for source in (files[case], tmp_path / "file.safetensors"):
        if isinstance(source, Path):
            source.write_bytes(files[case])
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(source)
        assert_one_line(str(info.value))
    assert not marker.exists(), "unpickling ran the payload"


def test_pickles_are_named_as_such(hostile, no_unpickling, tmp_path: Path) -> None:
    """Every pickle with a protocol header (2 and up: protocol 0 has none, it fails as a bad header
    above) is refused as a pickle, from bytes and from a file, and never run."""
    files, marker = hostile
    named = {case: files[case] for case in ("torch.save state_dict", "armed torch.save (zip)", "armed torch.save (legacy)",
                                            "armed pickle protocol 5")}
    for protocol in (2, 3, 4):
        named[f"armed pickle protocol {protocol}"] = pickle.dumps(Armed(marker), protocol=protocol)
    path = tmp_path / "model.safetensors"  # the name a user would give it
    for data in named.values():
        path.write_bytes(data)
        for source in (data, path):
            with pytest.raises(CheckpointError, match="pickle") as info:
                load_checkpoint(source)
            assert_one_line(str(info.value))
    assert not marker.exists()


def test_a_giant_model_config_is_refused_before_any_allocation(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names and shapes are compared on a meta-device skeleton: no real model is built."""
    import vae.core.checkpoint as ckpt_module

    built = []  # the default device at each build: "meta" inside the skeleton's `with torch.device("meta")`
    real = ckpt_module.build_model
    monkeypatch.setattr(ckpt_module, "build_model", lambda cfg, *a, **k: built.append(torch.empty(0).device) or real(cfg, *a, **k))
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(hostile[0]["config describes a giant model"])
    assert all(d.type == "meta" for d in built), built


def test_valid_checkpoint_still_loads(valid: bytes, no_unpickling) -> None:
    ckpt = load_checkpoint(valid)
    assert isinstance(ckpt, Checkpoint) and ckpt.history == [HISTORY_ROW] and ckpt.snapshots is not None


def test_malformed_optional_extras_are_dropped_not_fatal(valid: bytes, digits_info: dict) -> None:
    """A replay pointing outside the test set, or history rows that cannot be drawn, are ignored."""
    model = build_model(TINY, seed=0)
    out_of_range = checkpoint_bytes(model, TrainConfig(), digits_info, snapshots=torch.zeros(2, 3, 2),
                                    snapshot_index=torch.tensor([0, 1, 10**6]))
    assert load_checkpoint(out_of_range).snapshots is None
    bad_history = with_meta(valid, history=json.dumps([{"epoch": "one"}]))
    assert load_checkpoint(bad_history).history == []


def test_non_regular_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_list_models_skips_hostile_files(hostile, valid: bytes, tmp_path: Path) -> None:
    """The models folder is listed from headers alone: unreadable headers are skipped, never raised;
    a listed file with broken tensors is refused later, with a message, when it is selected."""
    files, marker = hostile
    for case in CASES:
        (tmp_path / f"{case}.safetensors").write_bytes(files[case])
    (tmp_path / "good.safetensors").write_bytes(valid)
    listed = {e.path.stem for e in list_models(tmp_path)}
    assert "good" in listed
    header_broken = {"random bytes", "empty file", "huge header", "header length lies", "unknown format version",
                     "foreign safetensors file", "config out of range", "number with 5000 digits",
                     "torch.save state_dict", "armed torch.save (zip)", "armed pickle protocol 0"}
    assert not listed & header_broken
    for stem in listed - {"good"}:
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / f"{stem}.safetensors")
    assert not marker.exists()


# ---------------------------------------------------------------- door 2: the CLI


@pytest.mark.parametrize("case", CASES)
def test_cli_evaluate_prints_one_error_line_and_exits_2(case: str, hostile, tmp_path: Path, capsys) -> None:
    files, marker = hostile
    path = tmp_path / "upload.safetensors"
    path.write_bytes(files[case])
    assert cli_main(["evaluate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not marker.exists()


@pytest.mark.server
def test_cli_subprocess_on_an_armed_pickle(hostile, tmp_path: Path) -> None:
    """The real entry point, in its own process: exit 2, one line, the payload never ran."""
    files, marker = hostile
    path = tmp_path / "model.safetensors"
    path.write_bytes(files["armed torch.save (zip)"])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "vae", "evaluate", str(path)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "pickle" in proc.stderr
    assert not marker.exists()


# ---------------------------------------------------------------- door 3: the browser upload


class FakeUpload:
    """Stands in for Streamlit's UploadedFile; reading it fails the test."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.file_id = name, size, "fake"

    def getvalue(self) -> bytes:
        raise AssertionError("an oversized upload was read")

    read = getvalue


def test_oversized_upload_is_refused_before_it_is_read() -> None:
    from pages.ui import session

    message = session.handle_upload(FakeUpload("big.safetensors", session.UPLOAD_LIMIT_MB * 2**20 + 1))
    assert message is not None and f"limited to {session.UPLOAD_LIMIT_MB} MiB" in message
    assert message.startswith("big.safetensors ")  # names the file
    assert_one_line(message)


def test_server_upload_limit_matches_the_app() -> None:
    """Streamlit itself refuses bigger uploads (HTTP 413) before the app sees a byte."""
    from pages.ui import session

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == session.UPLOAD_LIMIT_MB == 64


def test_hostile_uploads_in_the_running_app(hostile, valid: bytes, app_env: Path) -> None:
    """Every hostile file through the sidebar uploader: a one-line error, the page still renders,
    the session's model is unchanged, and a good upload afterwards is accepted."""
    from streamlit.testing.v1 import AppTest

    files, marker = hostile
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    chosen = at.session_state["model_choice"]
    for case in CASES:
        at.sidebar.file_uploader(key="upload").set_value((f"{case}.safetensors", files[case], "application/octet-stream"))
        at.run()
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = [e.value for e in at.sidebar.error]
        assert len(errors) == 1 and errors[0].startswith(f"{case}.safetensors was refused: "), (case, errors)
        assert_one_line(errors[0])
        assert at.session_state["model_choice"] == chosen
        assert any("Explore" in t.value for t in at.title), case  # the page itself still works
    assert not marker.exists()
    at.sidebar.file_uploader(key="upload").set_value(("mine.safetensors", valid, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.sidebar.error
    assert at.session_state["model_choice"] == "mine (uploaded)"


# ---------------------------------------------------------------- the fuzzer

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fuzz_base(valid: bytes) -> bytes:
    return valid


def load_or_own_error(data: bytes) -> None:
    """The property: a Checkpoint, or one of our errors with a one-line message. Nothing else."""
    try:
        result = load_checkpoint(data)
    except LatentExplorerError as exc:
        assert_one_line(str(exc))
        return
    assert isinstance(result, Checkpoint)


@pytest.mark.fuzz
@given(data=st.data())
@FUZZ
def test_fuzz_bit_flips_truncations_insertions(fuzz_base: bytes, data: st.DataObject) -> None:
    blob = bytearray(fuzz_base)
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite-length"]))
    if op == "flip":
        # bias half the flips into the header, where they matter most
        n_header = 8 + struct.unpack("<Q", fuzz_base[:8])[0]
        for _ in range(data.draw(st.integers(1, 8))):
            limit = n_header if data.draw(st.booleans()) else len(blob)
            pos = data.draw(st.integers(0, limit - 1))
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif op == "insert":
        pos = data.draw(st.integers(0, len(blob)))
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        blob[:8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1)))
    load_or_own_error(bytes(blob))


@pytest.mark.fuzz
@given(data=st.data())
@FUZZ
def test_fuzz_header_json_edits(fuzz_base: bytes, data: st.DataObject) -> None:
    header, body = split(fuzz_base)
    meta = header["__metadata__"]
    where = data.draw(st.sampled_from(["tensor", "metadata", "metadata-json", "top"]))
    if where == "tensor":
        name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
        field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))
        if data.draw(st.booleans()):
            header[name][field] = data.draw(JSON_VALUES)
        else:
            header[name].pop(field, None)
    elif where == "metadata":
        key = data.draw(st.sampled_from(sorted(meta) + ["new"]))
        meta[key] = data.draw(st.text(max_size=30) | JSON_VALUES.map(json.dumps))
    elif where == "metadata-json":
        key = data.draw(st.sampled_from(["model_config", "train_config", "dataset", "history", "metrics"]))
        value = json.loads(meta[key])
        if isinstance(value, dict) and value and data.draw(st.booleans()):
            value[data.draw(st.sampled_from(sorted(value)))] = data.draw(JSON_VALUES)
        else:
            value = data.draw(JSON_VALUES)
        meta[key] = json.dumps(value)
    else:
        header[data.draw(st.text(max_size=10))] = data.draw(JSON_VALUES)
    load_or_own_error(join(header, body))


@given(edits=st.dictionaries(
    st.sampled_from(["kind", "arch", "image_shape", "latent_dim", "hidden", "channels"]),
    JSON_VALUES | st.lists(st.integers(-5, 9000) | st.floats(), max_size=10) | st.integers(-5, 600),
    min_size=1, max_size=3,
))
@pytest.mark.fuzz
@FUZZ
def test_fuzz_model_config_fields(fuzz_base: bytes, edits: dict) -> None:
    """Plausible-looking config edits (shapes, widths, depths): refused by name/shape before any build."""
    header, body = split(fuzz_base)
    config = {**json.loads(header["__metadata__"]["model_config"]), **edits}
    header["__metadata__"]["model_config"] = json.dumps(config)
    load_or_own_error(join(header, body))
