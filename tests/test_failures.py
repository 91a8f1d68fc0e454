"""Failures a user can cause or suffer: bad configuration, a diverging run, a kill during a
save, a full disk or read-only folder, missing or wrong data. Each one is a message that
names what went wrong and what to do, and nothing that was saved before is lost."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

import vae.services.workflow
from vae.__main__ import main as cli_main
from vae.core.checkpoint import checkpoint_bytes, load_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import load_dataset
from vae.core.errors import CheckpointError, ConfigError, DatasetError, TrainingDiverged
from vae.core.files import atomic_write, remove_stale_temp_files
from vae.core.models import build_model
from vae.services.jobs import TrainingJob, TrainingRequest
from vae.services.workflow import list_models, train_models

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(32,))


def quick(**overrides) -> TrainConfig:  # type: ignore[no-untyped-def]
    return TrainConfig(**{"dataset": "digits", "epochs": 1, "batch_size": 128, "lr": 3e-3, "snapshot_points": 0, **overrides})


def digests(folder: Path) -> dict[str, str]:
    """Every file in the folder (temp files included) -> sha256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run_cli(args: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    try:
        code = cli_main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, err


@pytest.fixture
def pair_dir(tmp_path: Path, digits) -> Path:
    """A models folder holding a trained pair named "run" (run-vae / run-ae)."""
    folder = tmp_path / "models"
    train_models(digits, "both", TINY, quick(), folder, "run")
    return folder


# ---------------------------------------------------------------- 2. bad configuration


@pytest.mark.parametrize(
    "args, field, allowed",
    [
        (["--latent-dim", "0"], "latent_dim", "from 1 to 64"),
        (["--latent-dim", "65"], "latent_dim", "from 1 to 64"),
        (["--beta", "-0.5"], "beta", "from 0 to 1000"),
        (["--beta", "inf"], "beta", "from 0 to 1000"),
        (["--lr", "0"], "lr", "(0, 10]"),
        (["--lr=-1e-3"], "lr", "(0, 10]"),
        (["--lr", "nan"], "lr", "(0, 10]"),
        (["--lr", "11"], "lr", "(0, 10]"),
        (["--epochs", "0"], "epochs", "from 1 to 10000"),
        (["--batch-size", "0"], "batch_size", "from 1 to 65536"),
        (["--seed=-1"], "seed", "from 0 to 2**32-1"),
        (["--dataset", "cifar"], "dataset",
         "mnist-bundled, digits, mnist, fashion-mnist, kmnist, shapes, shapes-64, idx:<folder>, folder:<path> or npz:<file>"),
        (["--out", "models/../.hidden"], "name", "letters, digits"),
    ],
)
def test_cli_train_names_the_field_and_the_allowed_range(args, field, allowed, tmp_path: Path, capsys) -> None:
    code, err = run_cli(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "m"), *args], capsys)
    assert code == 2
    assert err.startswith(f"error: {field}: ") and err.count("\n") == 1, err
    assert allowed in err
    assert not list(tmp_path.glob("*.safetensors"))


@pytest.mark.parametrize("args, option", [(["--latent-dim", "two"], "--latent-dim"), (["--hidden", "0"], "--hidden"),
                                          (["--arch", "transformer"], "--arch"), (["--model", "gan"], "--model")])
def test_cli_train_rejects_malformed_options(args, option, capsys) -> None:
    code, err = run_cli(["train", *args], capsys)
    assert code == 2 and option in err.splitlines()[-1]


def write_idx(folder: Path, n: int, h: int, w: int) -> None:
    """A tiny MNIST-format test pair (uncompressed IDX) with n images of h x w."""
    folder.mkdir(parents=True, exist_ok=True)
    images = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + h.to_bytes(4, "big") + w.to_bytes(4, "big")
    images += bytes(random.Random(0).randrange(256) for _ in range(n * h * w))
    labels = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(i % 10 for i in range(n))
    (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)


def test_cli_conv_on_images_it_cannot_halve_names_arch(tmp_path: Path, capsys) -> None:
    write_idx(tmp_path / "seven", n=40, h=7, w=7)
    code, err = run_cli(["train", "--quiet", "--dataset", f"idx:{tmp_path / 'seven'}", "--arch", "conv",
                         "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and err.startswith("error: arch: ") and "divisible by 2" in err and "arch='mlp'" in err, err


def test_config_messages_stay_short_for_absurd_values() -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(image_shape=(10**200, 1, 1)).validate()
    assert len(str(info.value)) <= 300 and str(info.value).startswith("image_shape: ")


# ---------------------------------------------------------------- 3. training failures


def test_divergence_keeps_the_previous_checkpoints(pair_dir: Path, digits) -> None:
    before = digests(pair_dir)
    with pytest.raises(TrainingDiverged, match="smaller learning rate"):
        train_models(digits, "both", TINY, quick(lr=10.0, epochs=3), pair_dir, "run")
    assert digests(pair_dir) == before


@pytest.mark.server
def test_divergence_through_a_training_job(pair_dir: Path) -> None:
    before = digests(pair_dir)
    job = TrainingJob(TrainingRequest("digits", "both", TINY, quick(lr=10.0, epochs=3), pair_dir, "run")).start()
    job.join(120)
    state = job.snapshot()
    assert state.status == "failed" and "non-finite" in state.error and "smaller learning rate" in state.error
    assert digests(pair_dir) == before


def test_a_pair_is_never_half_replaced(pair_dir: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:
    """The VAE trains fine, then the AE blows up: the old VAE file is kept too (saves happen last)."""
    before = digests(pair_dir)
    real_fit = vae.services.workflow.fit

    def fit_that_fails_for_the_ae(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not model.stochastic:
            raise TrainingDiverged("the loss became non-finite (test)")
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(vae.services.workflow, "fit", fit_that_fails_for_the_ae)
    with pytest.raises(TrainingDiverged):
        train_models(digits, "both", TINY, quick(), pair_dir, "run")
    assert digests(pair_dir) == before


# Two different checkpoints of ~6.5 MB, so a write takes long enough to be interrupted.
BIG = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 28, 28), latent_dim=2, hidden=(1024,))


@pytest.fixture(scope="module")
def big_blobs() -> list[bytes]:
    info = {"name": "mnist", "n_test": 10000}
    return [checkpoint_bytes(build_model(BIG, seed=s), TrainConfig(dataset="mnist"), info) for s in (1, 2)]


TEMP_NAME = re.compile(r"^\.model\.safetensors\.[^/]+\.tmp$")


def check_after_kill(folder: Path, path: Path, known: set[str]) -> None:
    """The file is one of the complete versions; anything else in the folder is a dot-temp file."""
    assert hashlib.sha256(path.read_bytes()).hexdigest() in known
    assert load_checkpoint(path).sha256 in known
    assert [e.path.name for e in list_models(folder)] == ["model.safetensors"]
    strays = [p.name for p in folder.iterdir() if p != path]
    assert all(TEMP_NAME.match(name) for name in strays), strays


@pytest.mark.server
def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path: Path, big_blobs: list[bytes]) -> None:
    """A forked writer overwrites the file in a loop and is SIGKILLed at 12 seeded random moments."""
    folder = tmp_path / "models"
    path = folder / "model.safetensors"
    atomic_write(path, big_blobs[0])
    known = {hashlib.sha256(b).hexdigest() for b in big_blobs}
    rng = random.Random(0)
    for _ in range(12):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: only file I/O, no torch, then killed
            try:
                os.close(ready_r)
                for i in range(10**6):
                    atomic_write(path, big_blobs[i % 2])
                    if i == 0:
                        os.write(ready_w, b"r")
            finally:
                os._exit(1)
        os.close(ready_w)
        os.read(ready_r, 1)  # at least one full save happened
        os.close(ready_r)
        time.sleep(rng.uniform(0, 0.12))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        check_after_kill(folder, path, known)
    # what killed writers left behind is recognisable and removable
    assert not remove_stale_temp_files(folder, max_age_s=3600)  # young temp files are left alone
    remove_stale_temp_files(folder, max_age_s=0)
    assert [p.name for p in folder.iterdir()] == ["model.safetensors"]


WRITER = """
import sys
from vae.core.checkpoint import save_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.models import build_model
cfg = ModelConfig(kind="vae", arch="mlp", image_shape=(1, 28, 28), latent_dim=2, hidden=(1024,))
models = [build_model(cfg, seed=s) for s in (1, 2)]
info = {"name": "mnist", "n_test": 10000}
for i in range(10**6):
    save_checkpoint(sys.argv[1], models[i % 2], TrainConfig(dataset="mnist"), info)
    if i == 1:
        print("ready", flush=True)
"""


@pytest.mark.server
def test_sigkill_of_a_real_writer_process(tmp_path: Path, big_blobs: list[bytes]) -> None:
    """The same through save_checkpoint in a separate Python process, killed mid-loop."""
    folder = tmp_path / "models"
    path = folder / "model.safetensors"
    atomic_write(path, big_blobs[1])
    versions = [build_model(BIG, seed=s).state_dict() for s in (1, 2)]  # what the writer saves, alternately
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for delay in (0.02,):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        # safetensors orders the metadata differently on every save, so compare weights, not bytes
        weights = load_checkpoint(path).model.state_dict()
        assert any(all(torch.equal(weights[k], v[k]) for k in v) for v in versions)
        assert [e.path.name for e in list_models(folder)] == ["model.safetensors"]
        assert all(TEMP_NAME.match(p.name) for p in folder.iterdir() if p != path)


def test_stale_temp_files_are_cleaned_when_saving(pair_dir: Path, digits) -> None:
    old = pair_dir / ".run-vae.safetensors.abc123.tmp"
    fresh = pair_dir / ".run-ae.safetensors.def456.tmp"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"a save in progress in another session")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert {e.path.name for e in list_models(pair_dir)} == {"run-vae.safetensors", "run-ae.safetensors"}
    train_models(digits, "vae", TINY, quick(), pair_dir, "single")
    assert not old.exists() and fresh.exists()


def enospc(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_disk_full_is_a_message_and_the_old_file_survives(failing: str, pair_dir: Path, digits,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before = digests(pair_dir)
    monkeypatch.setattr(os, failing, enospc)
    with pytest.raises(CheckpointError) as info:
        train_models(digits, "vae", TINY, quick(), pair_dir, "run-vae")
    message = str(info.value)
    assert "No space left on device" in message and "unchanged" in message and "free space" in message, message
    monkeypatch.undo()
    assert digests(pair_dir) == before  # old file intact, no temp file left


def make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    """chmod the folder read-only; where that does not stop writes (root), make creating files
    fail instead. Returns True when it had to patch (the job must then run in this process)."""
    folder.chmod(0o555)
    try:
        probe = folder / ".probe"
        probe.write_bytes(b"")
        probe.unlink()
    except PermissionError:
        return False  # a real read-only folder

    def read_only_mkstemp(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only_mkstemp)
    return True


def test_read_only_models_folder_is_a_message(pair_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = digests(pair_dir)
    patched = make_read_only(pair_dir, monkeypatch)
    try:
        request = TrainingRequest("digits", "vae", TINY, quick(), pair_dir, "run-vae")
        job = TrainingJob(request, mode="thread" if patched else "process").start()
        job.join(120)
        state = job.snapshot()
    finally:
        pair_dir.chmod(0o755)
    assert state.status == "failed", state
    assert state.error.startswith(f"cannot write to {pair_dir}: ") and "writable" in state.error, state.error
    assert digests(pair_dir) == before


# ---------------------------------------------------------------- 4. missing data


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision cannot reach the internet (as in a classroom without it), whatever the CI has."""
    import torchvision.datasets as tvd

    def no_network(self):  # type: ignore[no-untyped-def]
        raise URLError("[Errno -3] Temporary failure in name resolution")

    for name in ("MNIST", "FashionMNIST", "KMNIST"):
        monkeypatch.setattr(getattr(tvd, name), "download", no_network)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_a_dataset_that_cannot_be_downloaded_says_what_to_do(name: str, folder: str, offline, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_root=tmp_path)
    message = str(info.value)
    assert "could not be downloaded" in message and str(tmp_path / folder / "raw") in message
    assert "VAE_DATA_ROOT" in message and "'digits' dataset works offline" in message
    assert "\n" not in message
    with pytest.raises(DatasetError, match="is not on disk"):
        load_dataset(name, data_root=tmp_path, download=False)
    assert load_dataset("digits").x_train.shape[1:] == (1, 8, 8)  # the embedded set still works


def test_cli_train_offline_is_one_line(offline, tmp_path: Path, capsys) -> None:
    code, err = run_cli(["train", "--quiet", "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                         "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and err.startswith("error: dataset 'mnist' could not be downloaded") and err.count("\n") == 1


def gz_garbage() -> bytes:
    import gzip

    good = gzip.compress(random.Random(1).randbytes(3000))
    return good[:10] + bytes(b ^ 0x55 for b in good[10:200]) + good[200:]  # valid gzip header, corrupt deflate stream


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"readme.txt": b"hello", "train.csv": b"1,2,3"}, "lacks the MNIST-format test pair: put t10k-images-idx3-ubyte"),
        ({"t10k-images-idx3-ubyte": b"\x00" * 64, "t10k-labels-idx1-ubyte": b"\x00" * 64}, "not a valid IDX"),
        ({"t10k-images-idx3-ubyte": random.Random(2).randbytes(500), "t10k-labels-idx1-ubyte": b"x"}, "not a valid IDX"),
        ({"t10k-images-idx3-ubyte.gz": gz_garbage(), "t10k-labels-idx1-ubyte.gz": gz_garbage()}, "not a valid IDX"),
        ({"t10k-images-idx3-ubyte.gz": b"not gzip at all", "t10k-labels-idx1-ubyte.gz": b"nope"}, "not a valid IDX"),
    ],
    ids=["unrelated-files", "zeros", "random", "corrupt-gzip", "not-gzip"],
)
def test_a_data_folder_with_wrong_files_says_what_is_wrong(files: dict, expected: str, tmp_path: Path, offline) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, content in files.items():
        (raw / name).write_bytes(content)
    for dataset in (f"idx:{raw}", "mnist"):
        with pytest.raises(DatasetError) as info:
            load_dataset(dataset, data_root=tmp_path)
        assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match=re.escape(expected)):
        load_dataset(f"idx:{raw}")
    model = build_model(TINY, seed=0)  # digits still trains
    vae.services.workflow.fit(model, load_dataset("digits"), quick(), device="cpu")


def test_too_few_images_is_a_message(tmp_path: Path) -> None:
    write_idx(tmp_path / "three", n=3, h=8, w=8)
    with pytest.raises(DatasetError, match="at least 10"):
        load_dataset(f"idx:{tmp_path / 'three'}")


def test_train_page_reports_bad_input_and_missing_data(app_env: Path, offline, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The form validates at the edge: an unusable name or an offline dataset is an error message,
    no job starts, and the page keeps working."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path / "no-data"))
    before = digests(app_env)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception

    def submit(dataset: str, name: str) -> list[str]:
        next(s for s in at.selectbox if s.label == "Dataset").set_value(dataset)
        next(t for t in at.text_input if t.label == "Save as").set_value(name)
        next(b for b in at.button if b.label == "Train").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert "train_job" not in at.session_state  # nothing started
        return [e.value for e in at.error]

    errors = submit("digits", "../../etc/evil")
    assert any(e.startswith("name: use 1-64 letters") for e in errors), errors
    errors = submit("mnist", "mnist-run")
    assert any("could not be downloaded" in e and "'digits' dataset works offline" in e for e in errors), errors
    assert digests(app_env) == before
