"""Your own images: folder:PATH (ImageFolder layout or flat) and npz:PATH; bad input is a message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vae.core.folders as folders
from vae.core.data import _load_cached, load_dataset
from vae.core.errors import DatasetError

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_dataset_cache():
    _load_cached.cache_clear()
    yield
    _load_cached.cache_clear()


def write_images(folder: Path, n: int, size: tuple[int, int] = (12, 12), mode: str = "RGB", suffix: str = ".png", start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    for i in range(start, start + n):
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(folder / f"img{i:03d}{suffix}")


def one_line_error(name: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_class_per_subfolder_gives_labels_and_a_fixed_split(tmp_path: Path) -> None:
    write_images(tmp_path / "cats", 10)
    write_images(tmp_path / "dogs", 15, suffix=".jpg")
    (tmp_path / "empty-class").mkdir()
    data = load_dataset(f"folder:{tmp_path}")
    assert data.class_names == ("cats", "dogs") and data.image_shape == (3, 12, 12)
    assert len(data.x_train) + len(data.x_test) == 25 and len(data.x_test) == 5
    assert sorted(torch.cat([data.y_train, data.y_test]).tolist()) == [0] * 10 + [1] * 15
    assert "25 images from 2 class folders" in data.description and "5 test" in data.description
    _load_cached.cache_clear()
    again = load_dataset(f"folder:{tmp_path}")
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)


def test_the_images_are_the_files_pixels(tmp_path: Path) -> None:
    pixels = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    tmp_path.mkdir(exist_ok=True)
    for i, p in enumerate(pixels):
        Image.fromarray(p, "L").save(tmp_path / f"{i}.png")
    loaded = folders.load(f"folder:{tmp_path}")
    assert loaded.x.shape == (10, 1, 8, 8) and loaded.class_names == (folders.UNLABELLED,)
    assert torch.equal(loaded.x[:, 0], torch.from_numpy(pixels).float() / 255)  # sorted file order, no resize
    assert "kept at 8x8" in loaded.done and "grey (1 channel)" in loaded.done


def test_a_flat_folder_is_one_unlabelled_class(tmp_path: Path) -> None:
    write_images(tmp_path, 12, mode="L")
    data = load_dataset(f"folder:{tmp_path}")
    assert data.class_names == (folders.UNLABELLED,) and data.image_shape == (1, 12, 12)
    assert "one unlabelled folder" in data.description


def test_corrupt_files_are_skipped_and_named_in_one_note(tmp_path: Path) -> None:
    write_images(tmp_path, 12)
    for i in range(5):
        (tmp_path / f"bad{i}.png").write_bytes(b"not a png")
    good = (tmp_path / "img000.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])  # a valid header, a truncated body
    data = load_dataset(f"folder:{tmp_path}")
    assert len(data.x_train) + len(data.x_test) == 12
    note = data.description.split("; ")[-1]
    assert note.startswith("skipped 6 unreadable or corrupt files: bad0.png (not an image Pillow can read)") and note.endswith("and 3 more")


@pytest.mark.parametrize("case", ["empty", "one image", "missing", "all corrupt"])
def test_a_folder_without_enough_images_is_one_line(tmp_path: Path, case: str) -> None:
    if case == "one image":
        write_images(tmp_path, 1)
    if case == "all corrupt":
        for i in range(12):
            (tmp_path / f"{i}.jpg").write_bytes(b"\xff\xd8 nothing")
    folder = tmp_path / "nowhere" if case == "missing" else tmp_path
    message = one_line_error(f"folder:{folder}")
    expected = {"empty": "holds no images", "one image": "has 1 readable image;", "missing": "does not exist",
                "all corrupt": "has 0 readable images (skipped 12"}[case]
    assert expected in message


def test_limits_on_files_and_pixels_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path, 12, size=(40, 40))
    monkeypatch.setattr(folders, "MAX_FILES", 11)
    assert "holds 12 images; at most 11 are read" in one_line_error(f"folder:{tmp_path}")
    monkeypatch.setattr(folders, "MAX_FILES", 100)
    monkeypatch.setattr(folders, "MAX_VALUES", 12 * 3 * 40 * 40 - 1)
    assert "over the limit" in one_line_error(f"folder:{tmp_path}")
    assert load_dataset(f"folder,size=16:{tmp_path}").image_shape == (3, 16, 16)  # a smaller size fits
    monkeypatch.setattr(folders, "MAX_IMAGE_PIXELS", 40 * 40 - 1)  # each file too large: skipped, then too few
    assert "over 1,599 pixels" in one_line_error(f"folder,size=8:{tmp_path}")


def test_the_default_size_is_the_most_common_at_most_64_and_stretching_is_said(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 8, size=(20, 20))
    write_images(tmp_path / "a", 4, size=(30, 10), start=8)
    data = load_dataset(f"folder:{tmp_path}")
    assert data.image_shape == (3, 20, 20)
    assert "resized to 20x20" in data.description and "4 images with another aspect ratio" in data.description
    write_images(tmp_path / "big", 12, size=(100, 100))
    assert load_dataset(f"folder:{tmp_path / 'big'}").image_shape == (3, 64, 64)


def test_channels_auto_finds_grey_in_colour_files_and_the_choice_is_kept(tmp_path: Path) -> None:
    grey = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    for i, p in enumerate(grey):
        Image.fromarray(np.repeat(p[..., None], 3, axis=2), "RGB").save(tmp_path / f"{i}.png")
    auto = load_dataset(f"folder:{tmp_path}")
    assert auto.image_shape == (1, 8, 8) and "holding grey only" in auto.description
    rgb = load_dataset(f"folder,channels=3:{tmp_path}")
    assert rgb.image_shape == (3, 8, 8) and torch.equal(rgb.x_test[:, 0], auto.x_test[:, 0])
    write_images(tmp_path / "colour", 12)
    assert load_dataset(f"folder:{tmp_path / 'colour'}").image_shape == (3, 12, 12)
    assert load_dataset(f"folder,channels=1:{tmp_path / 'colour'}").image_shape == (1, 12, 12)


def test_transparent_pixels_are_black(tmp_path: Path) -> None:
    rgba = np.zeros((12, 6, 6, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white where transparent
    rgba[:, :3, :, 3] = 255  # the top half opaque
    for i, p in enumerate(rgba):
        Image.fromarray(p, "RGBA").save(tmp_path / f"{i}.png")
    x = folders.load(f"folder:{tmp_path}").x
    assert x.shape == (12, 1, 6, 6) and bool((x[:, :, :3] == 1).all()) and bool((x[:, :, 3:] == 0).all())


def test_the_name_carries_the_options_and_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert folders.dataset_spec("folder:pics", 32, "3") == f"folder,size=32,channels=3:{tmp_path / 'pics'}"
    assert folders.dataset_spec("npz,size=16:a.npz") == f"npz,size=16:{tmp_path / 'a.npz'}"
    assert folders.dataset_spec("digits") == "digits"
    write_images(tmp_path / "pics", 12)
    assert load_dataset("folder,size=8:pics").name == f"folder,size=8:{tmp_path / 'pics'}"
    for bad, says in [("folder,colour=1:x", "unknown option"), ("folder,size=2:x", "from 4 to 256"), ("npz:", "expected folder:PATH")]:
        assert says in one_line_error(bad)


def test_npz_uint8_and_float_with_or_without_labels(tmp_path: Path) -> None:
    x = rng.integers(0, 256, (30, 10, 10), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 10)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'a.npz'}")
    assert data.image_shape == (1, 10, 10) and data.class_names == ("0", "1", "2")
    assert torch.equal(torch.sort(torch.cat([data.x_train, data.x_test]).flatten())[0], torch.sort(torch.from_numpy(x).float().flatten() / 255)[0])
    np.savez(tmp_path / "b.npz", x=rng.random((20, 16, 16, 3)).astype(np.float32))
    data = load_dataset(f"npz,size=8:{tmp_path / 'b.npz'}")
    assert data.image_shape == (3, 8, 8) and data.class_names == (folders.UNLABELLED,)
    assert "resized from 16x16 to 8x8" in data.description and float(data.x_train.max()) <= 1


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        ({"images": np.zeros((20, 4, 4), np.uint8)}, "has no array 'x' (it has: images)"),
        ({"x": np.full((20, 4, 4), 2.0)}, "must lie in [0, 1]"),
        ({"x": np.zeros((20, 4, 4, 2), np.uint8)}, "C 1 or 3"),
        ({"x": np.zeros((20, 4, 4), np.int32)}, "uint8 or float"),
        ({"x": np.zeros((20, 4, 4), np.uint8), "y": np.zeros(19)}, "one label per image"),
        ({"x": np.zeros((1, 4, 4), np.uint8)}, "has 1 image;"),
    ],
)
def test_bad_npz_is_one_line(tmp_path: Path, arrays: dict[str, np.ndarray], says: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)  # type: ignore[arg-type]
    assert says in one_line_error(f"npz:{tmp_path / 'bad.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    assert "cannot be read" in one_line_error(f"npz:{tmp_path / 'junk.npz'}")


@pytest.mark.slow
def test_the_cli_trains_on_a_folder_and_evaluate_reloads_it_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vae.__main__ import main
    from vae.core.checkpoint import load_checkpoint

    write_images(tmp_path / "pics", 20, size=(10, 10))
    out = tmp_path / "m"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pics'}", "--image-size", "8", "--channels", "3", "--epochs", "1",
                 "--hidden", "8", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out.with_suffix(".safetensors"))
    assert ckpt.dataset["name"] == f"folder,size=8,channels=3:{tmp_path / 'pics'}" and ckpt.model_config.image_shape == (3, 8, 8)
    assert "resized to 8x8" in capsys.readouterr().err
    assert main(["evaluate", str(out.with_suffix(".safetensors")), "--k", "1"]) == 0
    assert main(["train", "--dataset", "digits", "--image-size", "8", "--quiet"]) == 2
    assert capsys.readouterr().err == "error: --image-size and --channels apply to folder:<path> and npz:<file> datasets, not 'digits'\n"


def test_a_typed_path_becomes_a_folder_or_npz_name(tmp_path: Path) -> None:
    assert folders.spec_for_path(f" {tmp_path}/pics ") == f"folder:{tmp_path / 'pics'}"
    assert folders.spec_for_path(f"{tmp_path}/a.NPZ", 32, "1") == f"npz,size=32,channels=1:{tmp_path / 'a.NPZ'}"
    assert folders.spec_for_path(f"folder,size=8:{tmp_path}", None, "3") == f"folder,size=8,channels=3:{tmp_path}"
