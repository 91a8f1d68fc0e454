"""Dataset registry: digits, IDX folders (files written here), torchvision layout, errors."""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.core.data import _load_cached, load_dataset
from vae.core.errors import DatasetError

REPO_ROOT = Path(__file__).resolve().parent.parent

N_IMAGES = 50  # tiny IDX pair: 50 -> 40 train / 10 test
H, W = 12, 12


@pytest.fixture(autouse=True)
def _fresh_dataset_cache():
    _load_cached.cache_clear()
    yield
    _load_cached.cache_clear()


def idx_images(images: np.ndarray) -> bytes:
    """IDX3 ubyte: magic 0x00000803, then N, H, W as big-endian uint32, then the pixels."""
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    """IDX1 ubyte: magic 0x00000801, then N, then one byte per label."""
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def tiny_pair(n: int = N_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """Images whose first pixel is their index, so the image-label pairing can be checked after a shuffle."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, H, W), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_pair(folder: Path, images: np.ndarray, labels: np.ndarray, gz: bool, prefix: str = "t10k") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in ((f"{prefix}-images-idx3-ubyte", idx_images(images)), (f"{prefix}-labels-idx1-ubyte", idx_labels(labels))):
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder


def assert_pairs_intact(x: torch.Tensor, y: torch.Tensor) -> None:
    index = torch.round(x[:, 0, 0, 0] * 255).long()
    assert torch.equal(y, index % 10)


# --- digits ---------------------------------------------------------------------------


def test_digits_shapes_and_ranges():
    ds = load_dataset("digits")
    assert ds.x_train.shape[1:] == (1, 8, 8) and ds.x_test.shape[1:] == (1, 8, 8)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert len(ds.x_test) == round(1797 * 0.2)
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == torch.int64
        assert y.min() >= 0 and y.max() <= 9
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert ds.image_shape == (1, 8, 8)


@pytest.mark.parametrize("name", ["digits", "mnist-bundled"])
def test_the_split_is_deterministic(name: str) -> None:
    a = load_dataset(name)
    _load_cached.cache_clear()
    b = load_dataset(name)
    assert a is not b
    for part in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, part), getattr(b, part))


def test_digits_split_is_disjoint_and_complete():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    original = torch.from_numpy(load_digits().images.astype(np.float32) / 16).flatten(1)
    both = torch.cat([ds.x_train, ds.x_test]).flatten(1)
    # same multiset of rows: sort rows lexicographically via a stable key
    key = lambda t: t[torch.from_numpy(np.lexsort(t.T.numpy()[::-1].copy()))]  # noqa: E731
    assert torch.equal(key(both), key(original))


def test_info_is_json_summary():
    info = load_dataset("digits").info()
    assert info["name"] == "digits" and info["image_shape"] == [1, 8, 8]
    assert info["n_train"] + info["n_test"] == 1797


# --- IDX folders ------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_folder_test_pair_is_split(tmp_path, gz):
    images, labels = tiny_pair()
    folder = write_pair(tmp_path / "idx", images, labels, gz=gz)
    ds = load_dataset(f"idx:{folder}")
    assert ds.x_train.shape == (40, 1, H, W) and ds.x_test.shape == (10, 1, H, W)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert_pairs_intact(ds.x_train, ds.y_train)
    assert_pairs_intact(ds.x_test, ds.y_test)
    # every image lands exactly once, with its exact pixels
    idx = torch.round(torch.cat([ds.x_train, ds.x_test])[:, 0, 0, 0] * 255).long()
    assert sorted(idx.tolist()) == list(range(N_IMAGES))
    expected = torch.from_numpy(images[idx.numpy()]).float().div(255).unsqueeze(1)
    assert torch.equal(torch.cat([ds.x_train, ds.x_test]), expected)
    assert "split" in ds.description and "40 train / 10 test" in ds.description


def test_idx_folder_split_is_deterministic(tmp_path):
    images, labels = tiny_pair()
    folder = write_pair(tmp_path / "idx", images, labels, gz=True)
    a = load_dataset(f"idx:{folder}")
    _load_cached.cache_clear()
    b = load_dataset(f"idx:{folder}")
    assert a is not b
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)


def test_idx_folder_with_train_pair_uses_standard_split(tmp_path):
    images, labels = tiny_pair(30)
    folder = write_pair(tmp_path / "idx", images[:20], labels[:20], gz=False, prefix="train")
    write_pair(folder, images[20:], labels[20:], gz=True)
    ds = load_dataset(f"idx:{folder}")
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(images[:20]).float() / 255)
    assert torch.equal(ds.y_test, torch.from_numpy(labels[20:]).long())
    assert "standard split" in ds.description


def test_mnist_name_reads_raw_folder_under_data_root(tmp_path):
    images, labels = tiny_pair()
    write_pair(tmp_path / "MNIST" / "raw", images, labels, gz=True)
    ds = load_dataset("mnist", data_root=tmp_path, download=False)
    assert ds.name == "mnist"
    assert ds.x_train.shape == (40, 1, H, W) and ds.x_test.shape == (10, 1, H, W)
    assert_pairs_intact(ds.x_train, ds.y_train)
    assert "split" in ds.description
    _load_cached.cache_clear()
    again = load_dataset("mnist", data_root=tmp_path, download=False)
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_test, again.y_test)


def test_fashion_mnist_raw_folder_keeps_its_class_names(tmp_path):
    images, labels = tiny_pair()
    write_pair(tmp_path / "FashionMNIST" / "raw", images, labels, gz=False)
    ds = load_dataset("fashion-mnist", data_root=tmp_path, download=False)
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10


def test_missing_idx_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"idx:{tmp_path / 'nowhere'}")


def test_idx_folder_without_test_pair(tmp_path):
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load_dataset(f"idx:{tmp_path}")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_garbage_idx_files(tmp_path, gz):
    rnd = random.Random(0)
    suffix = ".gz" if gz else ""
    (tmp_path / f"t10k-images-idx3-ubyte{suffix}").write_bytes(rnd.randbytes(1000))
    (tmp_path / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(rnd.randbytes(100))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"idx:{tmp_path}")
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte" in msg and "not a valid IDX" in msg
    assert "\n" not in msg


def test_labels_in_place_of_images(tmp_path):
    _, labels = tiny_pair()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_labels(labels))  # 1-D data where images belong
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(labels))
    with pytest.raises(DatasetError, match="not a valid IDX images file"):
        load_dataset(f"idx:{tmp_path}")


def test_image_label_count_mismatch(tmp_path):
    images, labels = tiny_pair()
    folder = write_pair(tmp_path / "idx", images, labels[:-5], gz=False)
    with pytest.raises(DatasetError, match="do not match") as err:
        load_dataset(f"idx:{folder}")
    assert "(50, 12, 12)" in str(err.value) and "(45,)" in str(err.value)


def test_truncated_idx_file(tmp_path):
    images, labels = tiny_pair()
    folder = write_pair(tmp_path / "idx", images, labels, gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetError, match="not a valid IDX images file"):
        load_dataset(f"idx:{folder}")


# --- torchvision names: failure messages ---------------------------------------------


def test_download_failure_says_where_to_put_files(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", data_root=tmp_path, download=True)
    msg = str(err.value)
    assert "could not be downloaded" in msg
    assert str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "VAE_DATA_ROOT" in msg
    assert "digits" in msg
    assert "\n" not in msg and "Traceback" not in msg and "File \"" not in msg


def test_missing_data_without_download(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("kmnist", data_root=tmp_path, download=False)
    msg = str(err.value)
    assert "download disabled" in msg and str(tmp_path / "KMNIST" / "raw") in msg and "digits" in msg


def test_unknown_dataset_lists_choices():
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar")
    msg = str(err.value)
    assert "'cifar'" in msg
    for name in ("digits", "mnist", "fashion-mnist", "kmnist", "idx:<folder>"):
        assert name in msg


# --- real data --------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist_test_pair_split(mnist_raw):
    root = mnist_raw.parent.parent
    ds = load_dataset("mnist", data_root=root, download=False)
    assert ds.x_train.shape == (8000, 1, 28, 28) and ds.x_test.shape == (2000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.y_train.dtype == torch.int64 and set(ds.y_test.unique().tolist()) == set(range(10))
    assert "8,000 train / 2,000 test" in ds.description
    _load_cached.cache_clear()
    again = load_dataset("mnist", data_root=root, download=False)
    assert torch.equal(ds.x_test, again.x_test) and torch.equal(ds.y_train, again.y_train)


# --- torchvision names: the raw folder is read directly, torchvision only downloads -------


@pytest.fixture
def no_torchvision_class(monkeypatch):
    """Constructing torchvision's MNIST class (its existence check or a download) fails the test."""
    import torchvision.datasets as tvd

    def refuse(*args, **kwargs):
        raise AssertionError("torchvision's dataset class was used although the files are on disk")

    monkeypatch.setattr(tvd, "MNIST", refuse)


def write_full_set(raw: Path, gz: bool) -> tuple[np.ndarray, np.ndarray]:
    """A train pair (first 30 images) and a t10k pair (last 20) in a torchvision raw folder."""
    images, labels = tiny_pair()
    write_pair(raw, images[:30], labels[:30], gz=gz, prefix="train")
    write_pair(raw, images[30:], labels[30:], gz=gz)
    return images, labels


@pytest.mark.parametrize("download", [False, True])
def test_full_gz_set_in_raw_folder_uses_the_standard_split(tmp_path, download, no_torchvision_class):
    raw = tmp_path / "MNIST" / "raw"
    images, labels = write_full_set(raw, gz=True)
    assert all(p.suffix == ".gz" for p in raw.iterdir())  # nothing uncompressed: torchvision's check would fail
    ds = load_dataset("mnist", data_root=tmp_path, download=download)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(images[:30]).float() / 255)
    assert torch.equal(ds.y_train, torch.from_numpy(labels[:30]).long())
    assert torch.equal(ds.x_test[:, 0], torch.from_numpy(images[30:]).float() / 255)
    assert torch.equal(ds.y_test, torch.from_numpy(labels[30:]).long())
    assert "standard split: 30 train / 20 test" in ds.description
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{s}.gz" for s in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))  # nothing extracted


def test_raw_folder_reads_the_same_tensors_as_torchvision(tmp_path):
    """The uncompressed set torchvision itself accepts: our reading gives exactly its tensors."""
    import torchvision.datasets as tvd

    write_full_set(tmp_path / "MNIST" / "raw", gz=False)
    ds = load_dataset("mnist", data_root=tmp_path, download=False)
    for train, x, y in ((True, ds.x_train, ds.y_train), (False, ds.x_test, ds.y_test)):
        reference = tvd.MNIST(str(tmp_path), train=train, download=False)
        assert torch.equal(x, reference.data.float().div(255).unsqueeze(1))
        assert torch.equal(y, reference.targets.long())


def test_train_images_without_train_labels_split_the_test_pair(tmp_path, no_torchvision_class):
    raw = tmp_path / "MNIST" / "raw"
    images, labels = tiny_pair()
    write_pair(raw, images, labels, gz=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(images[:5])))  # labels never arrived
    ds = load_dataset("mnist", data_root=tmp_path, download=True)  # no download: the test pair is there
    assert ds.x_train.shape == (40, 1, H, W) and ds.x_test.shape == (10, 1, H, W)
    assert_pairs_intact(ds.x_train, ds.y_train)
    assert "train-labels-idx1-ubyte[.gz] is missing" in ds.description and "40 train / 10 test" in ds.description


def test_torchvision_class_only_downloads_into_the_raw_folder(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    images, labels = tiny_pair()
    calls = []

    class FakeKMNIST:  # stands in for the download: writes the gz files where torchvision puts them
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            raw = Path(root) / "KMNIST" / "raw"
            write_pair(raw, images[:30], labels[:30], gz=True, prefix="train")
            write_pair(raw, images[30:], labels[30:], gz=True)

    monkeypatch.setattr(tvd, "KMNIST", FakeKMNIST)
    ds = load_dataset("kmnist", data_root=tmp_path, download=True)
    assert calls == [(str(tmp_path.resolve()), False, True)]
    assert torch.equal(ds.y_train, torch.from_numpy(labels[:30]).long()) and ds.class_names[0] == "o"
    assert "standard split" in ds.description


def test_a_download_that_leaves_no_files_is_a_message(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd, "KMNIST", lambda root, train, download: None)
    with pytest.raises(DatasetError) as err:
        load_dataset("kmnist", data_root=tmp_path, download=True)
    assert "could not be downloaded" in str(err.value) and str(tmp_path / "KMNIST" / "raw") in str(err.value)


@pytest.mark.server
def test_digits_equal_scikit_learns_load_digits_without_importing_scikit_learn() -> None:
    """The embedded default is read from the file scikit-learn ships, byte for byte what
    load_digits gives, and loading it (like encoding a 2-D model's map) imports no
    scikit-learn: that import delayed the app's first decoded image by seconds."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from vae.core.data import _digits_arrays

    images, target = _digits_arrays()
    bunch = load_digits()
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(target, bunch.target)
    probe = (
        "import sys, numpy as np, torch\n"
        "from vae.core.data import load_dataset\n"
        "from vae.analysis.maps import compute_map\n"
        "from vae.core.models import build_model\n"
        "from vae.core.config import ModelConfig\n"
        "d = load_dataset('digits')\n"
        "m = build_model(ModelConfig(kind='vae', image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), seed=0)\n"
        "compute_map(m, d.x_test, 'identity', 'probe', cache=False)\n"
        "print(sorted(n for n in sys.modules if n == 'sklearn' or n.startswith('sklearn.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


# --- the bundled MNIST test pair (offline) ---------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network (urllib, torchvision's download helpers, a socket) fails the test."""
    import socket
    import urllib.request

    import torchvision.datasets as tvd
    import torchvision.datasets.utils as tvu

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    for module, name in ((urllib.request, "urlopen"), (urllib.request, "urlretrieve"), (tvu, "download_url"),
                         (tvu, "download_and_extract_archive"), (tvd, "MNIST")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_bundled_mnist_loads_offline_from_any_working_directory(tmp_path, monkeypatch, no_network):
    monkeypatch.chdir(tmp_path)  # found beside the module, not from the CWD
    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path / "empty"))  # nor from the data root
    ds = load_dataset("mnist-bundled", download=True)
    assert ds.name == "mnist-bundled"
    assert ds.x_train.shape == (8000, 1, 28, 28) and ds.x_test.shape == (2000, 1, 28, 28)
    assert ds.y_train.shape == (8000,) and ds.y_test.shape == (2000,)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert 0 <= ds.x_train.min() and ds.x_train.max() == 1
    assert set(ds.y_train.unique().tolist()) == set(range(10)) == set(ds.y_test.unique().tolist())
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.image_shape == (1, 28, 28)
    assert "8,000 train / 2,000 test" in ds.description and "CC BY-SA 3.0" in ds.description
    assert not (tmp_path / "empty").exists()


def test_bundled_mnist_is_the_default_and_digits_the_tiny_option():
    from vae.__main__ import build_parser
    from vae.core.data import DATASET_NAMES, DEFAULT_DATASET

    assert "digits" in DATASET_NAMES and DATASET_NAMES[0] == DEFAULT_DATASET == "mnist-bundled"
    for command in ("train", "judge"):  # the CLI's default too
        assert build_parser().parse_args([command]).dataset == DEFAULT_DATASET


def test_bundled_mnist_files_are_tracked_by_git_with_their_notice():
    """A clone gets the files: they are committed and no ignore rule drops them."""
    import subprocess

    from vae.core.data import BUNDLED_MNIST_DIR, BUNDLED_MNIST_MD5

    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [*BUNDLED_MNIST_MD5, "NOTICE.md"]
    rel = [(BUNDLED_MNIST_DIR / f).relative_to(REPO_ROOT).as_posix() for f in files]
    ignored = subprocess.run(["git", "check-ignore", *rel], cwd=REPO_ROOT, capture_output=True, text=True)
    assert ignored.stdout == "", f"ignored by git: {ignored.stdout}"
    notice = (BUNDLED_MNIST_DIR / "NOTICE.md").read_text(encoding="utf-8")
    assert "Yann LeCun and Corinna Cortes" in notice and "Creative Commons Attribution-Share Alike 3.0" in notice
    assert "https://creativecommons.org/licenses/by-sa/3.0/" in notice
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", *rel], cwd=REPO_ROOT, capture_output=True, text=True)
    assert tracked.returncode == 0, tracked.stderr


def test_a_damaged_bundled_file_is_a_message(tmp_path, monkeypatch):
    import vae.core.data as data

    for file in data.BUNDLED_MNIST_MD5:
        (tmp_path / file).write_bytes((data.BUNDLED_MNIST_DIR / file).read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # what an LFS pointer looks like
    monkeypatch.setattr(data, "BUNDLED_MNIST_DIR", tmp_path)
    with pytest.raises(DatasetError, match="damaged") as err:
        load_dataset("mnist-bundled")
    assert str(labels) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_bundled_mnist_equals_mnist_read_from_the_data_root(mnist_raw):
    """The same t10k pair, read and split by the same code with the same seed: the same tensors."""
    bundled = load_dataset("mnist-bundled")
    downloaded = load_dataset("mnist", data_root=mnist_raw.parent.parent, download=False)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(bundled, name), getattr(downloaded, name)), name
    assert bundled.class_names == downloaded.class_names
