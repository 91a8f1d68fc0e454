"""Your own images: `folder:PATH` (an image folder) and `npz:PATH` (arrays), as (N, C, H, W) tensors.

A folder is read in torchvision's ImageFolder layout, one subfolder per class (found with
torchvision's `find_classes` / `make_dataset`); a folder with images and no class subfolders is
one unlabelled class. Files are decoded with Pillow. An `.npz` holds `x` (N, H, W[, C]), uint8
or float in [0, 1], and optionally `y` (N,) labels (with `class_names` and a `description`
where vae.core.archives wrote it).

Options ride in the name, so that a checkpoint's dataset name alone loads the same data again:
`folder:PATH`, `folder,size=32,channels=3:PATH` (`dataset_spec` writes them). Every image is
resized to size x size (default: the most common image's longer side, at most MAX_SIZE; a
different aspect ratio is stretched, and counted); channels: auto (3 where any image has
colour, else 1), 1 (grey, ITU-R 601 luma as Pillow's "L") or 3. Transparent pixels are laid on
black. The split into train and test is the same fixed one as the other datasets'.

Bad input is a message: an unreadable or corrupt file is skipped and counted in the
description's note, which names a few (`Loaded.notes`); an empty folder, too few images, too
many files or too many pixels raise a DatasetError of one line.
"""

from __future__ import annotations

import collections
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vae.core.errors import DatasetError

if TYPE_CHECKING:
    from PIL import Image

KINDS = ("folder", "npz")
MAX_SIZE = 64  # the default size is the most common one, at most this
SIZE_RANGE = (4, 256)  # an explicit --image-size
CHANNEL_CHOICES = ("auto", "1", "3")
MAX_FILES = 100_000  # image files in a folder
MAX_IMAGE_PIXELS = 40_000_000  # one file's pixels (a 6,000 x 6,000 photo is 36 M); larger ones are skipped
MAX_VALUES = 200_000_000  # N * C * size * size after the resize: 800 MB of float32
MIN_IMAGES = 10  # as vae.core.data: fewer cannot be split into train and test
NAMED = 3  # skipped files named in the note
UNLABELLED = "images"  # the one class of a flat folder


@dataclass(frozen=True)
class Loaded:
    """What a folder or npz became: images (N, C, S, S) float32 in [0, 1], labels (N,), class
    names, what was done (one sentence) and notes (skipped files, stretched images), one line each."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]
    done: str
    notes: tuple[str, ...]


def parse_spec(name: str) -> tuple[str, Path, int | None, str]:
    """`kind[,size=S][,channels=C]:PATH` -> (kind, path, size or None, channels). DatasetError if malformed."""
    head, sep, path = name.partition(":")
    kind, *options = head.split(",")
    if not sep or kind not in KINDS or not path.strip():
        raise DatasetError(f"dataset {name!r}: expected folder:PATH or npz:PATH (options: folder,size=32,channels=3:PATH)")
    size: int | None = None
    channels = "auto"
    for option in options:
        key, _, value = option.partition("=")
        if key == "size" and value.isdigit():
            size = int(value)
        elif key == "channels" and value in CHANNEL_CHOICES:
            channels = value
        else:
            raise DatasetError(f"dataset {name!r}: unknown option {option!r}; allowed: size=<{SIZE_RANGE[0]}..{SIZE_RANGE[1]}>, channels=auto|1|3")
    return kind, Path(path).expanduser(), check_size(size), channels


def check_size(size: int | None) -> int | None:
    lo, hi = SIZE_RANGE
    if size is not None and not lo <= size <= hi:
        raise DatasetError(f"image size: must be from {lo} to {hi} pixels, got {size}")
    return size


def dataset_spec(name: str, image_size: int | None = None, channels: str = "auto") -> str:
    """The canonical name of `folder:`/`npz:` data with these options (absolute path, options
    that are not the default written out); any other name comes back as it is."""
    if not is_spec(name):
        return name
    kind, path, size, chans = parse_spec(name)
    size = check_size(image_size) if image_size is not None else size
    if channels not in CHANNEL_CHOICES:
        raise DatasetError(f"channels: must be one of {', '.join(CHANNEL_CHOICES)}, got {channels!r}")
    chans = channels if channels != "auto" else chans
    options = ([f"size={size}"] if size is not None else []) + ([f"channels={chans}"] if chans != "auto" else [])
    return ",".join([kind, *options]) + f":{path.resolve()}"


def spec_for_path(text: str, image_size: int | None = None, channels: str = "auto") -> str:
    """What a person typed (a folder, an .npz file, or already folder:/npz:) -> the canonical name."""
    text = text.strip()
    if not is_spec(text):
        text = f"{'npz' if text.lower().endswith('.npz') else 'folder'}:{text}"
    return dataset_spec(text, image_size, channels)


def is_spec(name: str) -> bool:
    return name.partition(":")[0].split(",")[0] in KINDS and ":" in name


def load(name: str) -> Loaded:
    kind, path, size, channels = parse_spec(name)
    return load_folder(path, size, channels) if kind == "folder" else load_npz(path, size, channels)


# ---------------------------------------------------------------- folders


def _list_images(folder: Path) -> tuple[list[tuple[str, int]], tuple[str, ...], str]:
    """(path, class index) of every image file, the class names, and the layout in words."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist or is not a folder")
    try:
        classes, class_to_idx = find_classes(str(folder))
    except FileNotFoundError:  # no subfolders: a flat folder of one class
        classes, class_to_idx = [], {}
    except OSError as exc:
        raise DatasetError(f"image folder {folder} cannot be read ({exc.strerror or exc})") from None
    if classes:
        samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        used = sorted({c for _, c in samples})
        if samples and len(used) < len(classes):  # subfolders without images are no class
            remap = {old: new for new, old in enumerate(used)}
            samples = [(p, remap[c]) for p, c in samples]
            classes = [classes[c] for c in used]
        if samples:
            return samples, tuple(classes), f"{len(classes)} class folder{'s' if len(classes) != 1 else ''}"
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise DatasetError(f"image folder {folder} holds no images ({', '.join(IMG_EXTENSIONS)}), neither at its top nor in class subfolders")
    return [(f, 0) for f in files], (UNLABELLED,), "one unlabelled folder"


def _skipped_note(skipped: list[tuple[str, str]], root: Path) -> str:
    def short(p: str) -> str:
        try:
            return str(Path(p).relative_to(root))
        except ValueError:
            return Path(p).name

    named = ", ".join(f"{short(p)} ({why})" for p, why in skipped[:NAMED])
    more = f" and {len(skipped) - NAMED} more" if len(skipped) > NAMED else ""
    return f"skipped {len(skipped)} unreadable or corrupt file{'s' if len(skipped) != 1 else ''}: {named}{more}"


def _decode(path: str, mode: str) -> Image.Image:
    """Decode one file to `mode` ("L" or "RGB") with transparency laid on black."""
    from PIL import Image

    with Image.open(path) as opened:
        opened.load()
        img: Image.Image = opened
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            img = Image.alpha_composite(black, rgba)
        return img.convert(mode)


def load_folder(folder: Path, size: int | None = None, channels: str = "auto", on_image: Callable[[int, int], None] | None = None) -> Loaded:
    """Read an image folder (see the module doc); `on_image(done, total)` reports progress."""
    from PIL import Image, UnidentifiedImageError

    samples, class_names, layout = _list_images(folder)
    if len(samples) > MAX_FILES:
        raise DatasetError(f"image folder {folder} holds {len(samples):,} images; at most {MAX_FILES:,} are read, so use a subset")
    # first pass: the headers only (sizes and modes), which also finds files Pillow cannot identify
    skipped: list[tuple[str, str]] = []
    headers: list[tuple[str, int, tuple[int, int], str]] = []
    for path, label in samples:
        try:
            with Image.open(path) as img:
                dims, mode = img.size, img.mode
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            skipped.append((path, _reason(exc)))
            continue
        if dims[0] * dims[1] > MAX_IMAGE_PIXELS:
            skipped.append((path, f"{dims[0]}x{dims[1]} is over {MAX_IMAGE_PIXELS:,} pixels"))
            continue
        headers.append((path, label, dims, mode))
    _check_count(len(headers), f"image folder {folder}", skipped, folder)
    sizes = collections.Counter(dims for _, _, dims, _ in headers)
    (common_w, common_h), _ = sizes.most_common(1)[0]
    side = size or min(MAX_SIZE, max(common_w, common_h))
    colour_modes = any(mode not in ("1", "L", "LA", "I", "I;16", "F") for _, _, _, mode in headers)
    decode_mode = "RGB" if colour_modes and channels != "1" else "L"
    _check_values(len(headers) * (3 if decode_mode == "RGB" or channels == "3" else 1) * side * side, side)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for i, (path, label, _, _) in enumerate(headers):
        try:
            decoded = _decode(path, decode_mode)
            if decoded.size != (side, side):
                decoded = decoded.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
            images.append(np.asarray(decoded))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            skipped.append((path, _reason(exc)))
            continue
        labels.append(label)
        if on_image is not None:
            on_image(i + 1, len(headers))
    _check_count(len(images), f"image folder {folder}", skipped, folder)
    x = torch.from_numpy(np.stack(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x, channel_words = _fit_channels(x, channels, "colour files")
    stretched = sum(n for (w, h), n in sizes.items() if abs(w / h - common_w / common_h) > 0.01)
    notes = [_skipped_note(skipped, folder)] if skipped else []
    if stretched:
        plural = "s" if stretched != 1 else ""
        notes.append(f"{stretched} image{plural} with another aspect ratio than the most common {common_w}x{common_h} stretched to square")
    kinds = ", ".join(f"{w}x{h}" for (w, h), _ in sizes.most_common(3)) + (" and others" if len(sizes) > 3 else "")
    resized = f"kept at {side}x{side}" if set(sizes) == {(side, side)} else f"resized to {side}x{side}"
    done = f"{len(images):,} images from {layout} in {folder} ({kinds}), {resized}, {channel_words}"
    return Loaded(x.contiguous(), torch.tensor(labels, dtype=torch.long), class_names, done, tuple(notes))


def _reason(exc: BaseException) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _check_count(n: int, what: str, skipped: list[tuple[str, str]], root: Path) -> None:
    if n < MIN_IMAGES:
        why = f" ({_skipped_note(skipped, root)})" if skipped else ""
        raise DatasetError(f"{what} has {n} readable image{'s' if n != 1 else ''}{why}; at least {MIN_IMAGES} are needed to split into train and test")


def _check_values(values: int, side: int) -> None:
    if values > MAX_VALUES:
        raise DatasetError(f"the images would take {values:,} values at {side}x{side}, over the limit of {MAX_VALUES:,}; "
                           f"use fewer images or a smaller --image-size")


def _fit_channels(x: torch.Tensor, channels: str, source: str) -> tuple[torch.Tensor, str]:
    """uint8 or float (N, C, S, S) with C 1 or 3 -> float32 in [0, 1] with the asked channels, and words for what was done."""
    if x.shape[1] == 3 and channels == "auto":  # colour files that hold grey only: checked before any float copy
        tolerance = 1 if x.dtype == torch.uint8 else 1.5 / 255
        if float((x.amax(1) - x.amin(1)).max()) <= tolerance:
            return _to_float(x[:, :1]), f"kept as 1 channel ({source} holding grey only)"
    x = _to_float(x)
    if x.shape[1] == 3 and channels == "1":
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R 601 luma, as Pillow's "L"
        return (x * weights).sum(1, keepdim=True), "converted to grey (1 channel)"
    if x.shape[1] == 1 and channels == "3":
        return x.expand(-1, 3, -1, -1), "grey repeated into 3 channels"
    return x, "in colour (3 channels, RGB)" if x.shape[1] == 3 else "grey (1 channel)"


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)


# ---------------------------------------------------------------- npz


def load_npz(path: Path, size: int | None = None, channels: str = "auto") -> Loaded:
    """Read `x` (N, H, W[, C]) uint8 or float in [0, 1] and optional `y` (N,) from an .npz file."""
    if not path.is_file():
        raise DatasetError(f"npz file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info.file_size for info in archive.infolist()}
        if "x.npy" not in members:
            raise DatasetError(f"npz file {path} has no array 'x' (it has: {', '.join(sorted(m.removesuffix('.npy') for m in members)) or 'nothing'})")
        if members["x.npy"] > 4 * MAX_VALUES:
            raise DatasetError(f"npz file {path}: 'x' holds {members['x.npy']:,} bytes, over the limit of {4 * MAX_VALUES:,}")
        with np.load(path, allow_pickle=False) as npz:
            x_np = npz["x"]
            y_np = npz["y"] if "y" in npz.files else None
            names_np = npz["class_names"] if "class_names" in npz.files else None
            source = str(npz["description"]) if "description" in npz.files else None
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"npz file {path} cannot be read ({_reason(exc)})") from None
    if x_np.ndim == 4 and x_np.shape[-1] not in (1, 3) or x_np.ndim not in (3, 4):
        raise DatasetError(f"npz file {path}: 'x' must be (N, H, W) or (N, H, W, C) with C 1 or 3, got {x_np.shape}")
    if x_np.dtype != np.uint8:
        if not np.issubdtype(x_np.dtype, np.floating):
            raise DatasetError(f"npz file {path}: 'x' must be uint8 or float in [0, 1], got {x_np.dtype}")
        if not np.isfinite(x_np).all() or x_np.min() < 0 or x_np.max() > 1:
            raise DatasetError(f"npz file {path}: float 'x' must lie in [0, 1], found values from {np.nanmin(x_np):.3g} to {np.nanmax(x_np):.3g}")
    n = x_np.shape[0]
    if n < MIN_IMAGES:
        raise DatasetError(f"npz file {path} has {n} image{'s' if n != 1 else ''}; at least {MIN_IMAGES} are needed to split into train and test")
    labels, class_names = _npz_labels(y_np, n, path)
    if names_np is not None and names_np.ndim == 1 and len(names_np) == len(class_names):
        class_names = tuple(str(v) for v in names_np)  # names stored beside y (an imported ZIP file's folders)
    x = torch.from_numpy(np.ascontiguousarray(x_np))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    h, w = x.shape[2:]
    side = size or min(MAX_SIZE, max(h, w))
    _check_values(n * (3 if x.shape[1] == 3 and channels != "1" or channels == "3" else 1) * side * side, side)
    x, channel_words = _fit_channels(x, channels, "colour arrays")
    resized = "kept at" if (h, w) == (side, side) else f"resized from {h}x{w} to"
    if (h, w) != (side, side):
        from torchvision.transforms.v2.functional import resize

        x = resize(x, [side, side], antialias=True).clamp(0, 1)
    labelled = f"{len(class_names)} classes from 'y'" if y_np is not None else "no labels"
    done = f"{n:,} images from {path} ({labelled}), {resized} {side}x{side}, {channel_words}"
    if source:
        done = f"{source[:300]}; kept as {path}" + ("" if (h, w) == (side, side) else f", {resized} {side}x{side}")
    return Loaded(x.contiguous(), labels, class_names, done, ())


def _npz_labels(y: np.ndarray | None, n: int, path: Path) -> tuple[torch.Tensor, tuple[str, ...]]:
    if y is None:
        return torch.zeros(n, dtype=torch.long), (UNLABELLED,)
    if y.shape != (n,):
        raise DatasetError(f"npz file {path}: 'y' must hold one label per image, shape ({n},), got {y.shape}")
    values, index = np.unique(y, return_inverse=True)
    if np.issubdtype(y.dtype, np.integer) and values.min() >= 0 and values.max() < 1000:
        return torch.from_numpy(y.astype(np.int64)), tuple(str(i) for i in range(int(values.max()) + 1))
    return torch.from_numpy(index.astype(np.int64)), tuple(str(v) for v in values)
