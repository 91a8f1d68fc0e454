"""Atomic file writes: a reader sees the old file or the complete new one, never half of it.

The one home for writing files that others may read at the same moment: checkpoints, cached
maps, the pinned default. A temp file in the same folder, fsync, rename, fsync of the folder.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from vae.core.errors import CheckpointError

TEMP_SUFFIX = ".tmp"  # temp files are ".<name>.<random>.tmp": never matched by the "*.safetensors" glob
WRITE_HINT = "check that the folder is writable and the disk has free space (or set VAE_MODELS_DIR)"


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write bytes so that `path` is either the old file or the complete new one, never half."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write to {path.parent}: {exc.strerror or exc}; {WRITE_HINT}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged; {WRITE_HINT}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every OS or file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | Path, max_age_s: float = 600.0, suffix: str = ".safetensors") -> list[Path]:
    """Delete temp files that a killed writer left behind (older than `max_age_s`, so a save in
    progress in another session is never touched). Returns what was removed."""
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(f".*{suffix}.*{TEMP_SUFFIX}"):
        try:
            if now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone already, or not ours to delete
    return removed
