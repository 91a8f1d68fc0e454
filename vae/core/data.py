"""Dataset registry: every dataset comes back as tensors `(N, C, H, W)` float32 in [0, 1].

Names:
  digits          scikit-learn's `load_digits` (8x8, embedded, works offline; the tiny option)
  mnist-bundled   the MNIST test pair shipped in vae/core/bundled/mnist (28x28, offline, never
                  downloads), split deterministically into 8,000 train / 2,000 test; the default
  mnist           torchvision MNIST  (28x28)
  fashion-mnist   torchvision FashionMNIST
  kmnist          torchvision KMNIST
  idx:<folder>    any folder with MNIST-format IDX files (t10k pair, optionally the train pair)
  folder:<path>   your images in torchvision's ImageFolder layout; npz:<path> arrays x (and y):
                  resized, grey or colour, options in the name (vae.core.folders)
  shapes          dSprites-style shapes drawn from a seed (vae.core.shapes), 32x32, with their
                  true factors (shape, scale, rotation, x, y) beside the images; shapes-64: 64x64

The torchvision sets live under a data root: `--data-root`, else `$VAE_DATA_ROOT`, else
`~/.cache/latent-explorer/data`, in torchvision's layout (`<root>/MNIST/raw/...`). The raw
folder is read like an IDX folder (plain or .gz files); torchvision's class is used only to
download into it. A raw folder that holds only the 10,000-image test pair (or lacks one of the
train files) is split deterministically into train and test, and the description says so.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from vae.core import folders
from vae.core.errors import DatasetError
from vae.settings import settings

DEFAULT_DATASET = "mnist-bundled"  # the CLI's, the Train page's and the first run's
SPLIT_SEED = 0  # fixed, so the test split is the same whatever the training seed
TEST_FRACTION = 0.2  # share of a single file pair held out as test set
MIN_IMAGES = 10  # fewer cannot be split into a train and a test part
TORCHVISION_SETS = {
    # name: (torchvision class name, class names)
    "mnist": ("MNIST", [str(i) for i in range(10)]),
    "fashion-mnist": (
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
    "kmnist": ("KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
}
BUNDLED_MNIST = "mnist-bundled"
# Found beside this module, not from the working directory. MNIST is by Yann LeCun and Corinna
# Cortes, CC BY-SA 3.0 (NOTICE.md in the folder); the MD5s are the ones torchvision checks.
BUNDLED_MNIST_DIR = Path(__file__).resolve().parent / "bundled" / "mnist"
BUNDLED_MNIST_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SHAPES_SETS = {"shapes": 32, "shapes-64": 64}  # name: image side
SHAPES_COUNT = 12_000  # images drawn (split 80/20 like the others); ~0.5 s at 32x32, ~1.5 s at 64x64
SHAPES_SEED = 0
DATASET_NAMES = (BUNDLED_MNIST, "digits", *TORCHVISION_SETS, *SHAPES_SETS)  # the default first
IDX_FILES = {
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Dataset:
    """A train/test pair of image tensors with labels.

    x_*: (N, C, H, W) float32 in [0, 1]; y_*: (N,) int64 class indices into `class_names`.
    factors_*: (N, K) float32 ground-truth factors named by `factor_names` (generated data such
    as `shapes`), or None where they are not known.
    """

    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    factors_train: torch.Tensor | None = None
    factors_test: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    def info(self) -> dict[str, object]:
        """JSON-able summary stored in checkpoints."""
        return {
            "name": self.name,
            "description": self.description,
            "image_shape": list(self.image_shape),
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "class_names": list(self.class_names),
            **({"factor_names": list(self.factor_names)} if self.factor_names else {}),
        }


def default_data_root() -> Path:
    return settings().data_root


def load_dataset(name: str = DEFAULT_DATASET, data_root: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a dataset by registry name (see module doc). Raises DatasetError with what to do."""
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    if folders.is_spec(name):
        name = folders.dataset_spec(name)  # the absolute path, so the name loads the same data from anywhere
    return _load_cached(name, str(root.resolve()), download)


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, root: str, download: bool) -> Dataset:
    if name == "digits":
        return _load_digits()
    if name == BUNDLED_MNIST:
        return _load_bundled_mnist()
    if name.startswith("idx:"):
        folder = Path(name[4:]).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"IDX folder {folder} does not exist; it must hold t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
        return _load_idx_folder(name, folder, [str(i) for i in range(10)])
    if name in TORCHVISION_SETS:
        return _load_torchvision(name, Path(root), download)
    if name in SHAPES_SETS:
        return _load_shapes(name, SHAPES_SETS[name])
    if folders.is_spec(name):
        return _load_own(name)
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}, {OWN_DATA}")


OWN_DATA = "idx:<folder>, folder:<path> or npz:<file>"  # the names that take a path


def is_dataset_name(name: str) -> bool:
    """A registry name or a path-taking one (the CLI's and the Train page's check before loading)."""
    return name in DATASET_NAMES or name.startswith("idx:") or folders.is_spec(name)


def _load_own(name: str) -> Dataset:
    loaded = folders.load(name)
    train, test = _split_indices(len(loaded.x))
    notes = "".join(f"; {note}" for note in loaded.notes)
    return Dataset(
        name=name,
        description=f"{loaded.done}; split (seed {SPLIT_SEED}) into {len(train):,} train / {len(test):,} test{notes}",
        x_train=loaded.x[train],
        y_train=loaded.y[train],
        x_test=loaded.x[test],
        y_test=loaded.y[test],
        class_names=loaded.class_names,
    )


def _split_indices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices: a fixed permutation (SPLIT_SEED), TEST_FRACTION of it held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = int(round(n * TEST_FRACTION))
    return perm[n_test:], perm[:n_test]


def _split(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    train, test = _split_indices(x.shape[0])
    return x[train], y[train], x[test], y[test]


def _load_shapes(name: str, size: int) -> Dataset:
    from vae.core import shapes

    images, factors = shapes.generate(SHAPES_COUNT, size, seed=SHAPES_SEED)
    x = torch.from_numpy(images).unsqueeze(1)
    f = torch.from_numpy(factors.astype(np.float32))
    train, test = _split_indices(len(x))
    return Dataset(
        name=name,
        description=(
            f"dSprites-style shapes ({', '.join(shapes.SHAPE_NAMES)}) drawn at {size}x{size} from seed {SHAPES_SEED}: "
            f"{SHAPES_COUNT:,} images whose true factors ({', '.join(shapes.FACTOR_NAMES)}) are known, "
            f"split (seed {SPLIT_SEED}) into {len(train):,} train / {len(test):,} test; the class is the shape"
        ),
        x_train=x[train],
        y_train=f[train, 0].long(),
        x_test=x[test],
        y_test=f[test, 0].long(),
        class_names=shapes.SHAPE_NAMES,
        factors_train=f[train],
        factors_test=f[test],
        factor_names=shapes.FACTOR_NAMES,
    )


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (1797, 8, 8) pixel values 0..16 and (1797,) labels.

    Read from the `digits.csv.gz` that scikit-learn ships (what `load_digits` reads), found
    without importing scikit-learn: the import takes ~1.8 s on a 2-core machine and the app's
    first decoded image waited for it (bench/RESULTS.md, "App latency", warm start). Where the
    file is not at that place, `load_digits` itself is used."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package, does not import it
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def _load_digits() -> Dataset:
    images, target = _digits_arrays()
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)  # values are 0..16
    y = torch.from_numpy(target.astype(np.int64))
    x_tr, y_tr, x_te, y_te = _split(x, y)
    return Dataset(
        name="digits",
        description=(
            f"scikit-learn digits: 1,797 8x8 handwritten digits, split (seed {SPLIT_SEED}) into "
            f"{len(x_tr)} train / {len(x_te)} test"
        ),
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        class_names=tuple(str(i) for i in range(10)),
    )


def _load_bundled_mnist() -> Dataset:
    """The shipped t10k pair, read and split exactly as `mnist` reads a raw folder holding only it."""
    for file, md5 in BUNDLED_MNIST_MD5.items():
        path = BUNDLED_MNIST_DIR / file
        try:
            found = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        except OSError as exc:
            raise DatasetError(f"the bundled MNIST file {path} cannot be read ({exc.strerror or exc}); reinstall or re-clone the package") from None
        if found != md5:
            raise DatasetError(
                f"the bundled MNIST file {path} is damaged (MD5 {found}, expected {md5}); "
                f"re-clone the repository (a Git LFS pointer or a text-mode checkout changes it)"
            )
    ds = _load_idx_folder(BUNDLED_MNIST, BUNDLED_MNIST_DIR, TORCHVISION_SETS["mnist"][1])
    return dataclasses.replace(
        ds,
        description=(
            f"MNIST test set bundled with Latent Explorer (28x28 digits by Yann LeCun and Corinna Cortes, "
            f"CC BY-SA 3.0), split deterministically (seed {SPLIT_SEED}) into "
            f"{len(ds.x_train):,} train / {len(ds.x_test):,} test"
        ),
    )


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


IDX_DIMS = {"images": 3, "labels": 1}  # an MNIST-format file: unsigned bytes, (N, H, W) images or N labels


def _read_idx(path: Path, kind: str) -> torch.Tensor:
    """Read one IDX file (optionally gzipped) of unsigned bytes: a big-endian header (two zero
    bytes, type 0x08, the number of dimensions, then each size as a 4-byte integer) and the data.

    Read here with numpy rather than with torchvision's reader: importing torchvision costs 1-3 s,
    which the first run (the bundled MNIST) would wait for before its first image."""
    ndim = IDX_DIMS[kind]
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        header = 4 + 4 * ndim
        if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
            raise ValueError(f"the header {raw[:4].hex()} is not that of {ndim}-D unsigned-byte data")
        shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
        body = np.frombuffer(raw, dtype=np.uint8, offset=header)
        if body.size != int(np.prod(shape)):
            raise ValueError(f"{body.size} data bytes where the header says {shape}")
        array = torch.from_numpy(body.reshape(shape).copy())
        return array if kind == "images" else array.long()
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is not a valid IDX {kind} file ({type(exc).__name__}: {exc})") from None


def _images_to_float(images: torch.Tensor) -> torch.Tensor:
    return (images.to(torch.float32) / 255.0).unsqueeze(1)


def _load_idx_folder(name: str, folder: Path, class_names: list[str]) -> Dataset:
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    if paths["test_images"] is None or paths["test_labels"] is None:
        raise DatasetError(
            f"{folder} lacks the MNIST-format test pair: put t10k-images-idx3-ubyte[.gz] and "
            f"t10k-labels-idx1-ubyte[.gz] there (or use dataset 'digits', which works offline)"
        )
    x_te = _read_idx(paths["test_images"], "images")
    y_te = _read_idx(paths["test_labels"], "labels")
    if x_te.ndim != 3 or y_te.ndim != 1 or x_te.shape[0] != y_te.shape[0]:
        raise DatasetError(
            f"{folder}: images {tuple(x_te.shape)} and labels {tuple(y_te.shape)} do not match "
            f"(expected (N, H, W) images and N labels)"
        )
    if x_te.shape[0] < MIN_IMAGES or min(x_te.shape[1:]) < 1:
        raise DatasetError(
            f"{folder}: the test files hold {x_te.shape[0]} images of {tuple(x_te.shape[1:])} pixels; "
            f"at least {MIN_IMAGES} non-empty images are needed"
        )
    has_train = paths["train_images"] is not None and paths["train_labels"] is not None
    if has_train:
        x_tr = _read_idx(paths["train_images"], "images")  # type: ignore[arg-type]
        y_tr = _read_idx(paths["train_labels"], "labels")  # type: ignore[arg-type]
        if x_tr.shape[1:] != x_te.shape[1:] or x_tr.shape[0] != y_tr.shape[0]:
            raise DatasetError(f"{folder}: train and test files have different image sizes or counts")
        xtr, ytr, xte, yte = _images_to_float(x_tr), y_tr.long(), _images_to_float(x_te), y_te.long()
        how = f"the standard split: {len(xtr):,} train / {len(xte):,} test"
    else:
        xtr, ytr, xte, yte = _split(_images_to_float(x_te), y_te.long())
        missing = [IDX_FILES[k] for k in ("train_images", "train_labels") if paths[k] is None]
        found = "only the test pair was found" if len(missing) == 2 else f"{missing[0]}[.gz] is missing"
        how = (
            f"{found}, so the {x_te.shape[0]:,}-image test pair was split "
            f"deterministically (seed {SPLIT_SEED}) into {len(xtr):,} train / {len(xte):,} test"
        )
    n_classes = int(max(int(ytr.max()), int(yte.max()))) + 1
    names = class_names if n_classes <= len(class_names) else [str(i) for i in range(n_classes)]
    return Dataset(
        name=name,
        description=f"{name} from {folder}: {how}",
        x_train=xtr,
        y_train=ytr,
        x_test=xte,
        y_test=yte,
        class_names=tuple(names),
    )


def _has_test_pair(folder: Path) -> bool:
    return folder.is_dir() and all(_find_idx(folder, IDX_FILES[k]) for k in ("test_images", "test_labels"))


def _load_torchvision(name: str, root: Path, download: bool) -> Dataset:
    """Read `<root>/<Class>/raw` with the IDX readers; torchvision's class only downloads into it.

    torchvision's own existence check wants all four files uncompressed, so a raw folder of
    .gz files (or one with just the test pair) would look empty to it; reading the folder
    ourselves accepts whatever `_load_idx_folder` accepts, plain or gzipped.
    """
    cls_name, class_names = TORCHVISION_SETS[name]
    raw = root / cls_name / "raw"
    if not _has_test_pair(raw):
        if not download:
            raise _not_available(name, raw, "is not on disk (download disabled)", f"no t10k pair in {raw}")
        _download(name, cls_name, root, raw)
    return _load_idx_folder(name, raw, class_names)


def _download(name: str, cls_name: str, root: Path, raw: Path) -> None:
    """Fetch the four IDX files into `raw` with torchvision (it checks their MD5 sums)."""
    import torchvision.datasets as tvd

    try:
        getattr(tvd, cls_name)(str(root), train=False, download=True)
    except (RuntimeError, URLError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _not_available(name, raw, "could not be downloaded", first_line) from None
    if not _has_test_pair(raw):  # torchvision moved its layout: say where the files were expected
        raise _not_available(name, raw, "could not be downloaded", f"torchvision left no t10k pair in {raw}")


def _not_available(name: str, raw: Path, verb: str, reason: str) -> DatasetError:
    cls_name = raw.parent.name
    return DatasetError(
        f"dataset {name!r} {verb} ({reason}). Put its IDX files "
        f"(at least t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz) in {raw}, "
        f"or set VAE_DATA_ROOT / --data-root to a folder that has {cls_name}/raw; "
        f"the 'digits' dataset works offline"
    )
