"""Shared fixtures for the engine tests: real-data location, temp models dir, tiny configs."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import IDX_FILES, default_data_root, load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent


TIER_MARKERS = {
    "e2e": "drives the real Streamlit app in a browser (Chromium)",
    "server": "starts a real Streamlit server, a training worker process or another process (Python, Node, a fork)",
    "fuzz": "property-based fuzzing (hypothesis, hundreds of examples)",
    "slow": "real data, longer training, soak runs or built-in waits (still run in CI)",
}


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pytest.ini; repeated here so the markers exist under any rootdir.
    for name, text in TIER_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    # The test models are tiny: on a busy 2-core runner a second intra-op thread mostly spins
    # and waits (measured here: 3 digits epochs took 0.2 s on 1 thread, 1.3-4.5 s on 2).
    torch.set_num_threads(int(os.environ.get("VAE_TEST_THREADS", "1")))
    # The suite never writes into the user's own cache (~/.cache/latent-explorer): the maps and
    # judges it computes go to a folder of this run (each xdist worker its own), unless the caller
    # names one. Tests that need a particular cache still set VAE_CACHE_DIR themselves.
    if not os.environ.get("VAE_CACHE_DIR"):
        os.environ["VAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="latent-explorer-tests-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A browser test starts a server as well: `-m "not server"` leaves the browser tests out too."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("server"):
            item.add_marker(pytest.mark.server)


def _data_root() -> Path:
    """$VAE_DATA_ROOT (a relative value is taken from the repo root, as CI sets it), else the app's default."""
    env = os.environ.get("VAE_DATA_ROOT")
    if not env:
        return default_data_root()
    root = Path(env).expanduser()
    return root if root.is_absolute() else (REPO_ROOT / root).resolve()


@pytest.fixture(scope="session")
def mnist_raw() -> Path:
    """The folder that holds the real MNIST test pair: `<data root>/MNIST/raw`."""
    raw = _data_root() / "MNIST" / "raw"
    stems = (IDX_FILES["test_images"], IDX_FILES["test_labels"])
    found = all((raw / s).is_file() or (raw / f"{s}.gz").is_file() for s in stems)
    if not found:
        reason = (
            f"real MNIST test pair not found in {raw}: set VAE_DATA_ROOT to a folder holding "
            f"MNIST/raw/t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
        )
        if os.environ.get("VAE_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"VAE_REQUIRE_REAL_DATA=1 but the {reason}", pytrace=False)
        pytest.skip(reason)
    return raw


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty folder to save checkpoints in."""
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits: 1,438 train / 359 test, (N, 1, 8, 8)."""
    return load_dataset("digits")


@pytest.fixture(scope="session")
def tiny_model_config():
    """Factory: a model config small enough to train on digits in well under a second."""

    def make(kind: str = "vae", arch: str = "mlp", latent_dim: int = 2, image_shape=(1, 8, 8)) -> ModelConfig:
        return ModelConfig(
            kind=kind, arch=arch, image_shape=image_shape, latent_dim=latent_dim, hidden=(32,), channels=(4, 8)
        )

    return make


@pytest.fixture(scope="session")
def tiny_train_config():
    """Factory: a short seeded digits run; keyword arguments override fields."""

    def make(**overrides) -> TrainConfig:
        fields = dict(dataset="digits", epochs=3, batch_size=64, lr=3e-3, seed=0, snapshot_points=0)
        fields.update(overrides)
        return TrainConfig(**fields).validate()

    return make


# --- the default pair: trained once per session, shared by every test that needs it --------

DEFAULT_PAIR = "mnist-2d"  # the first-run default's name (trained here on digits, fast), so the app behaves as after a first run
DEFAULT_PAIR_EPOCHS = 5  # the first run trains 60; the tests need weights that decode digits, not quality


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="session")
def default_pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A models folder holding the app's default 2-D VAE + AE pair ("mnist-2d"), trained once per
    session for 5 epochs: an app on it starts without first-run training.

    READ-ONLY: AppTest runs, servers and tests only read it. A test that writes into a models
    folder works on a copy (`default_pair_copy`, or shutil.copytree). Checked at the end of
    the session: a test that changed the folder turns into an error here."""
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("default-pair")
    data = load_dataset("digits")
    model_config, train_config = default_run(data)
    train_models(data, "both", model_config, replace(train_config, epochs=DEFAULT_PAIR_EPOCHS), folder, DEFAULT_PAIR)
    before = _digests(folder)
    yield folder
    assert _digests(folder) == before, f"a test changed the shared default pair in {folder}: copy it first"


@pytest.fixture
def default_pair_copy(default_pair_dir: Path, tmp_path: Path) -> Path:
    """This test's own writable copy of the default pair."""
    return Path(shutil.copytree(default_pair_dir, tmp_path / "models-copy"))


@pytest.fixture(scope="session")
def digits_judge_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the digits judge (the default pair's dataset in tests), trained once per session."""
    from vae.analysis.judge import judge_for

    cache = tmp_path_factory.mktemp("digits-judge-cache")
    assert judge_for(load_dataset("digits"), cache) is not None
    return cache


@pytest.fixture
def app_env(default_pair_dir: Path, digits_judge_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Env for AppTest runs of app.py on the shared default pair (read-only) and a map cache that
    holds only the dataset's judge (an AppTest run does not wait for the background training a
    fresh cache starts: tests/app/test_judge_pending.py covers that); keeps st.navigation mode
    across runs (see tests/app/conftest.py). Returns the models folder."""
    from pages.ui.frame import keep_navigation_mode  # the one place that touches the private flag

    keep_navigation_mode(monkeypatch)
    monkeypatch.setenv("VAE_MODELS_DIR", str(default_pair_dir))
    shutil.copytree(digits_judge_cache, tmp_path / "cache")
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_NO_FRAGMENT", raising=False)
    return default_pair_dir


# --- the bundled MNIST split's judge (tests/test_real_claims.py) -----------------------------


@pytest.fixture(scope="session")
def mnist_bundled_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder (VAE_CACHE_DIR) holding the bundled MNIST split's judge, trained once per
    session (~10-15 s on a 2-core CPU)."""
    from vae.analysis.judge import judge_for

    cache = tmp_path_factory.mktemp("mnist-bundled-cache")
    assert judge_for(load_dataset("mnist-bundled"), cache) is not None
    return cache
