"""The GIF download buttons (issue 12, item 2) on Compare, Generate, Train and the Live pad: each
is there, states its bound, and its data, made on click, is a GIF of the promised frames; a
request over the bound gets the message instead of a button. AppTest on the shared default pair."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.conftest import DEFAULT_PAIR
from vae.core.checkpoint import load_checkpoint
from vae.services import animation

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Callable[[], Any], str | None, str | None]]:
    """The download buttons' data callables (with mime type and file name) by file id: Streamlit
    calls them only on a click in a browser, and AppTest drops its media manager after each run,
    so they are kept here."""
    kept: dict[str, tuple[Callable[[], Any], str | None, str | None]] = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self: MediaFileManager, data_callable: Callable[[], Any], mimetype: str | None, coordinates: str,
                     file_name: str | None = None, **kwargs: Any) -> str:
        file_id = original(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        kept[file_id] = (data_callable, mimetype, file_name)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return kept


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def gif_of(at: AppTest, label: str, deferred: dict[str, tuple[Callable[[], Any], str | None, str | None]]) -> Image.Image:
    """Click `label`'s download (call its data callable) and open the GIF it gives."""
    buttons = [b for b in at.get("download_button") if b.proto.label == label]
    assert len(buttons) == 1, [b.proto.label for b in at.get("download_button")]
    make, mime, file_name = deferred[buttons[0].proto.deferred_file_id]  # made on click, not on every rerun
    assert mime == "image/gif" and file_name is not None and file_name.endswith(".gif")
    data = make()
    assert isinstance(data, bytes) and data[:6] == b"GIF89a"
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF"
    return im


def states_the_bound(at: AppTest) -> bool:
    return any(animation.LIMIT in c.value for c in at.caption)


def test_compare_downloads_the_interpolation_and_refuses_too_many_steps(app_env: Path, deferred) -> None:  # type: ignore[no-untyped-def]
    at = page("compare")
    im = gif_of(at, "Download the interpolation as GIF", deferred)
    assert getattr(im, "n_frames", 1) == 2 * 20 - 2  # 20 steps there and back
    assert im.size == (2 * 224 + animation.GAP, 224 + animation.TITLE_PX)  # VAE and AE side by side, 8 px x 28
    assert states_the_bound(at)

    at.number_input(key="compare_gif_steps").set_value(animation.MAX_STEPS + 1).run()
    assert not [b for b in at.get("download_button") if b.proto.label == "Download the interpolation as GIF"]
    assert any(f"at most {animation.MAX_STEPS} steps" in w.value for w in at.warning), [w.value for w in at.warning]


def test_generate_downloads_one_dimensions_traversal(app_env: Path, deferred) -> None:  # type: ignore[no-untyped-def]
    at = page("generate")
    at.selectbox(key="gen_gif_dim").set_value(1)
    at.number_input(key="gen_gif_steps").set_value(5).run()
    im = gif_of(at, "Download the z2 traversal as GIF", deferred)
    assert getattr(im, "n_frames", 1) == 8 and im.size == (224, 224)
    assert states_the_bound(at)


def test_train_downloads_the_replay(app_env: Path, deferred) -> None:  # type: ignore[no-untyped-def]
    at = page("train")
    im = gif_of(at, "Download the replay as GIF", deferred)
    assert getattr(im, "n_frames", 1) == 5 + 1  # the map before training and after each of the pair's 5 epochs
    assert im.size[0] == 2 * animation.MAP_PX + animation.GAP  # VAE and AE side by side
    im.seek(getattr(im, "n_frames", 1) - 1)
    assert im.info["duration"] == animation.HOLD_MS
    assert states_the_bound(at)


def test_live_downloads_the_path_drawn_on_the_pad(app_env: Path, deferred) -> None:  # type: ignore[no-untyped-def]
    at = page("live")
    assert not [b for b in at.get("download_button") if b.proto.label == "Download the path as GIF"]  # nothing drawn yet
    assert any("Drag on the pad" in c.value for c in at.caption)
    shas = [load_checkpoint(app_env / f"{DEFAULT_PAIR}-{kind}.safetensors").sha256[:10] for kind in ("vae", "ae")]
    path_key = f"live_{shas[0]}_{shas[1]}_path"  # pages/live.py's key of the last drag's z's
    at.session_state[path_key] = np.stack([np.linspace(-1, 1, 7), np.zeros(7)], 1).astype(np.float32)  # as on_release stores it
    at.run()
    im = gif_of(at, "Download the path as GIF", deferred)
    assert getattr(im, "n_frames", 1) == 7 and im.size == (2 * 224 + animation.GAP, 224 + animation.TITLE_PX)
    assert states_the_bound(at)
