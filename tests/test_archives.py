"""ZIP uploads: unpacked safely into a private temporary folder, kept as an npz the name points at."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vae.core.archives as archives
from vae.core.data import _load_cached, load_dataset
from vae.core.errors import DatasetError

rng = np.random.default_rng(0)


def png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


CLASSES = {f"pics/{c}/{i}.png": png() for c in ("cats", "dogs") for i in range(8)}


def refused(data: bytes) -> str:
    with pytest.raises(DatasetError) as info, archives.extracted_zip(data):
        pass
    assert "\n" not in str(info.value)
    return str(info.value)


def test_an_upload_becomes_a_dataset_that_loads_again_by_name(tmp_path: Path) -> None:
    data = make_zip({**CLASSES, "__MACOSX/pics/._0.png": b"resource fork", "pics/notes.txt": b"hello"})
    name = archives.import_zip(data, image_size=4, dest=tmp_path)
    assert name.startswith(f"npz:{tmp_path}") and archives.import_zip(data, image_size=4, dest=tmp_path) == name
    _load_cached.cache_clear()
    ds = load_dataset(name)
    assert ds.class_names == ("cats", "dogs") and ds.image_shape == (3, 4, 4) and len(ds.x_train) + len(ds.x_test) == 16
    assert sorted(torch.cat([ds.y_train, ds.y_test]).tolist()) == [0] * 8 + [1] * 8
    assert "an uploaded ZIP file: 16 images from 2 class folders" in ds.description  # the resource fork was not read as an image
    assert archives.import_zip(data, image_size=8, dest=tmp_path) != name  # other options, another file


def test_the_folder_is_private_and_removed_afterwards() -> None:
    with archives.extracted_zip(make_zip(CLASSES)) as folder:
        root = folder.parent
        assert folder.name == "pics" and sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert not root.exists()
    with pytest.raises(DatasetError), archives.extracted_zip(make_zip(CLASSES)) as folder:
        root = folder.parent
        raise DatasetError("reading failed")
    assert not root.exists()  # removed on an error too


@pytest.mark.parametrize("entry", ["/etc/evil.png", "../evil.png", "pics/../../evil.png", "C:\\evil.png", "pics\\..\\..\\evil.png"])
def test_entries_outside_the_folder_refuse_the_archive(entry: str, tmp_path: Path) -> None:
    assert "points outside the folder" in refused(make_zip({**CLASSES, entry: png()}))
    assert not (tmp_path.parent / "evil.png").exists()


def test_a_zip_bomb_is_refused_by_its_ratio() -> None:
    assert "as a ZIP bomb does" in refused(make_zip({**CLASSES, "pics/cats/bomb.png": bytes(4 * 1024 * 1024)}))


def test_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_zip(CLASSES)
    monkeypatch.setattr(archives, "MAX_ZIP_BYTES", len(data) - 1)
    assert "can be uploaded" in refused(data)
    monkeypatch.setattr(archives, "MAX_ZIP_BYTES", len(data))
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", sum(map(len, CLASSES.values())) - 1)
    assert "unpack to" in refused(data)
    monkeypatch.setattr(archives, "MAX_ENTRIES", len(CLASSES) - 1)
    assert "entries" in refused(data)


def test_sizes_that_lie_stop_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before unpacking trusts the declared sizes; the bytes really written are counted too:
    with that check passing everything (as a forged header would make it), the unpacking still stops."""
    monkeypatch.setattr(archives, "check_zip", lambda archive, size: [(i, archives._entry_path(i.filename)) for i in archive.infolist()])
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 100)
    assert "more than" in refused(make_zip(CLASSES))


@pytest.mark.parametrize(("data", "says"), [(b"PK\x03\x04 not really", "not a readable ZIP file"), (make_zip({"a.txt": b"x"}), "holds no images")])
def test_not_a_zip_of_images_is_one_line(data: bytes, says: str) -> None:
    assert says in refused(data)
