"""ZIP uploads of image folders, unpacked safely and kept as an .npz the dataset name points at.

`extracted_zip` checks the archive before writing a byte: at most MAX_ZIP_BYTES, no entry with
an absolute path or `..`, at most MAX_ENTRIES entries, a declared unpacked size of at most
MAX_UNPACKED_BYTES and no entry packed more than MAX_RATIO : 1 (a ZIP bomb's signature); while
unpacking it counts the bytes really written, so an archive that lies about its sizes stops at
the same limit. Only image files are written (no links, no __MACOSX resource forks), into a
private temporary folder (mode 0700) that is removed when the `with` block ends.

`import_zip` reads that folder as `folder:` data (vae.core.folders) and stores the result as
`<uploads>/<sha256 of the archive and the options>.npz` (x as uint8, y, class_names), so the
name it returns, `npz:<that file>`, loads the same images again after the folder has gone:
in the app, in `python -m vae evaluate`, in a checkpoint's metadata.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np

from vae.core import folders
from vae.core.errors import DatasetError
from vae.core.files import atomic_write

MAX_ZIP_BYTES = 200 * 1024 * 1024  # the upload itself
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024  # all its image files unpacked
MAX_RATIO = 100  # unpacked / packed size of one entry; images barely compress, ZIP bombs by 1000 and more
RATIO_FROM_BYTES = 1024 * 1024  # entries smaller than this are not held to the ratio (a tiny BMP may compress well)
MAX_ENTRIES = folders.MAX_FILES + 10_000  # folders and stray files on top of the images
CHUNK = 1024 * 1024


def _entry_path(name: str) -> PurePosixPath:
    """The entry's path inside the folder; DatasetError for an absolute path or one with `..`."""
    unified = name.replace("\\", "/")
    path = PurePosixPath(unified)
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":") or ".." in path.parts:
        raise DatasetError(f"the ZIP file is refused: its entry {name[:80]!r} points outside the folder (absolute path or '..')")
    return path


def _wanted(info: zipfile.ZipInfo, path: PurePosixPath) -> bool:
    """An image file, not a folder, a link or a macOS resource fork."""
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    junk = path.parts[:1] == ("__MACOSX",) or path.name.startswith("._")
    return not info.is_dir() and not is_link and not junk and path.suffix.lower() in _image_extensions()


def _image_extensions() -> tuple[str, ...]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


def check_zip(archive: zipfile.ZipFile, size: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries to unpack, after every check that needs no unpacking."""
    if size > MAX_ZIP_BYTES:
        raise DatasetError(f"the ZIP file is {_mib(size)}; at most {_mib(MAX_ZIP_BYTES)} can be uploaded")
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise DatasetError(f"the ZIP file has {len(infos):,} entries; at most {MAX_ENTRIES:,} are read")
    wanted = []
    total = 0
    for info in infos:
        path = _entry_path(info.filename)
        if not _wanted(info, path):
            continue
        if info.file_size > RATIO_FROM_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DatasetError(f"the ZIP file is refused: {info.filename[:80]!r} unpacks {info.file_size // max(info.compress_size, 1):,} times "
                               f"its packed size (at most {MAX_RATIO}), as a ZIP bomb does")
        total += info.file_size
        wanted.append((info, path))
    if total > MAX_UNPACKED_BYTES:
        raise DatasetError(f"the ZIP file's images unpack to {_mib(total)}; at most {_mib(MAX_UNPACKED_BYTES)} are read")
    if not wanted:
        raise DatasetError("the ZIP file holds no images (" + ", ".join(_image_extensions()) + ")")
    return wanted


@contextmanager
def extracted_zip(data: bytes) -> Iterator[Path]:
    """Unpack the images of a ZIP file (bytes) into a private temporary folder, removed on exit.

    Yields the folder to read: the archive's single top-level folder where it has one."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DatasetError(f"the upload is not a readable ZIP file ({exc})") from None
    with archive, tempfile.TemporaryDirectory(prefix="latent-explorer-upload-") as tmp:
        root = Path(tmp)  # mkdtemp: readable by this user only
        written = 0
        for info, path in check_zip(archive, len(data)):
            target = root.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:  # the declared sizes lied
                            raise DatasetError(f"the ZIP file's images unpack to more than {_mib(MAX_UNPACKED_BYTES)}; refused")
                        sink.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                target.unlink(missing_ok=True)  # a damaged entry: the folder reader counts it as missing
                if isinstance(exc, NotImplementedError):
                    raise DatasetError(f"the ZIP file uses a compression this reader lacks ({exc})") from None
        entries = [p for p in root.iterdir() if p.name != "__MACOSX"]
        yield entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def uploads_dir() -> Path:
    from vae.settings import settings

    return settings().data_root / "uploads"


def import_zip(data: bytes, image_size: int | None = None, channels: str = "auto", dest: Path | None = None) -> str:
    """Unpack a ZIP of images (ImageFolder layout or flat), read it, store it as an .npz in
    `dest` (default <data root>/uploads) and return its dataset name, `npz:<file>`.

    The same archive with the same options gives the same file and name (its hash)."""
    size = folders.check_size(image_size)
    key = hashlib.sha256(data + f"|{size}|{channels}".encode()).hexdigest()[:16]
    out = (dest or uploads_dir()) / f"upload-{key}.npz"
    if not out.is_file():
        with extracted_zip(data) as folder:
            loaded = folders.load_folder(folder, size, channels)
        x = np.rint(loaded.x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)  # (N, H, W, C) as npz: expects
        buffer = io.BytesIO()
        names = np.array(loaded.class_names, dtype=str)
        np.savez_compressed(buffer, x=x, y=loaded.y.numpy(), class_names=names, description=np.array(f"an uploaded ZIP file: {loaded.done}"))
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, buffer.getvalue())
    return f"npz:{out.resolve()}"
