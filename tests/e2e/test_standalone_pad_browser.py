"""The standalone pad file in Chromium, opened from file:// with every other request aborted:
it asks for nothing else, decodes like PyTorch (within 1e-4), and arrow keys, a mouse drag and
a touch change the decoded image. The file is exported once, with the test hooks
(`export-pad --test-hooks`), from the session's default pair (digits, 8x8). The real default
pair (MNIST 28x28, trained here: slow) gets its own file within 2 MB, the judge in it. Last, the
Live pad page's download button on the session's shared server gives a file that works the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.harness import VIEWPORT
from bench.standalone_pad import DECODED_PIXELS, PAINTED, READY, open_offline
from vae.core.checkpoint import load_checkpoint
from vae.services.standalone_pad import export_pad

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pad_file(default_pair_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("standalone") / "pad.html"
    path.write_text(export_pad(default_pair_dir / "mnist-2d-vae.safetensors", default_pair_dir / "mnist-2d-ae.safetensors",
                               test_hooks=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def models(default_pair_dir: Path) -> list[Any]:
    return [load_checkpoint(default_pair_dir / f"mnist-2d-{kind}.safetensors").model for kind in ("vae", "ae")]


@pytest.fixture
def offline(browser: Any, pad_file: Path) -> Iterator[tuple[Any, list[str]]]:
    page, asked = open_offline(browser, pad_file)
    try:
        page.wait_for_function(READY, timeout=15_000)
        yield page, asked
    finally:
        page.context.close()


def state(page: Any) -> dict:
    return page.evaluate("() => window.__latentPadState()")


def crosshair(page: Any) -> tuple[float, float]:
    """The crosshair's position on the page (CSS pixels)."""
    box = page.locator("canvas.lp-map").bounding_box()
    x, y, _ = state(page)["crosshair"]
    return box["x"] + x, box["y"] + y


def plot_point(page: Any, fx: float, fy: float) -> tuple[tuple[float, float], list[float]]:
    """The page position (CSS pixels) at the fractions fx, fy of the plot's width and height, from
    its top left, and the z the 2-D (identity) map has there."""
    box, s = page.locator("canvas.lp-map").bounding_box(), state(page)
    pl, ((x0, x1), (y0, y1)) = s["plot"], s["ranges"]
    return (box["x"] + pl["left"] + fx * pl["width"], box["y"] + pl["top"] + fy * pl["height"]), [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)]


def pixels(page: Any, which: int = 0) -> list[int]:
    return page.evaluate(DECODED_PIXELS, which)


def assert_decodes_like_pytorch(page: Any, models: list[Any], zs: list[list[float]]) -> None:
    with torch.no_grad():
        for which, model in enumerate(models):
            expected = model.decode(torch.tensor(zs, dtype=torch.float32)).reshape(len(zs), -1).numpy()
            got = np.array([page.evaluate("([z, k]) => window.__latentPadDecode(z, k)", [z, which]) for z in zs])
            assert np.abs(got - expected).max() <= 1e-4, (which, float(np.abs(got - expected).max()))


def test_the_file_asks_for_nothing_but_itself_and_decodes_like_pytorch(offline, pad_file, models):
    page, asked = offline
    assert asked == [pad_file.resolve().as_uri()]
    s = state(page)
    assert s["labels"] == ["VAE", "AE"] and s["z"] == [0, 0]
    (x0, x1), (y0, y1) = s["ranges"]
    corners = [[x0, y0], [x1, y1], [x0, y1], [0.0, 0.0], [0.5 * (x0 + x1), 0.3 * y1]]
    assert_decodes_like_pytorch(page, models, corners)
    assert any(pixels(page))  # the first image is painted without any input


def test_arrow_keys_move_z_and_change_the_decoded_image(offline, models):
    page, asked = offline
    before, z0 = pixels(page), state(page)["z"]
    for key in ("ArrowRight", "ArrowUp"):  # the map has the focus when the file opens
        page.keyboard.press(f"Shift+{key}")
        page.keyboard.press(f"Shift+{key}")
    page.wait_for_function("(z0) => { const z = window.__latentPadState().z; return z[0] > z0[0] && z[1] > z0[1]; }", arg=z0)
    page.wait_for_timeout(100)  # the animation frame that paints the last key
    assert pixels(page) != before
    assert_decodes_like_pytorch(page, models, [state(page)["z"]])
    assert len(asked) == 1


def test_the_files_hole_meter_says_what_pytorchs_judge_says(offline, default_pair_dir):
    """The file holds the dataset's judge, the VAE's q(z) sample and (this pair is small) the
    encoders: at the z the keys move to, each image's meter equals vae.analysis.layers.hole_meter
    (class; confidence, q(z)/p(z) and round trip within 1e-4), and its text says the same."""
    from vae.analysis import layers
    from vae.analysis.judge import judge_for
    from vae.core.data import load_dataset

    page, asked = offline
    for key in ("ArrowRight", "ArrowDown", "ArrowRight"):
        page.keyboard.press(f"Shift+{key}")
    page.wait_for_function("() => window.__latentPadState().z[0] > 0")
    page.wait_for_timeout(300)  # the meter of the z the keys rest on
    s = state(page)
    data = load_dataset("digits")
    judge = judge_for(data)
    assert judge is not None
    for (kind, meter) in zip(("vae", "ae"), s["meters"], strict=True):
        ckpt = load_checkpoint(default_pair_dir / f"mnist-2d-{kind}.safetensors")
        want = layers.hole_meter(ckpt.model, judge, np.array(s["z"], np.float32), layers.posterior_sample(ckpt.model, data.x_test))
        got = meter["value"]
        assert got["cls"] == want.class_index and abs(got["confidence"] - want.confidence) <= 1e-4, (got, want)
        assert abs(got["roundTrip"] - want.round_trip) <= 1e-4, (got, want)
        assert meter["lines"][0].startswith(f"judge: {want.class_name}, ")
        assert abs(float(meter["lines"][0].split(", ")[1].split(" %")[0]) - 100 * want.confidence) <= 0.011, meter["lines"]
        if kind == "vae":
            assert want.log_q_over_p is not None and abs(got["logQOverP"] - want.log_q_over_p) <= 1e-4 * max(1, abs(want.log_q_over_p))
        else:
            assert meter["lines"][1] == "q(z)/p(z): n/a (AE codes are points)"
    assert len(asked) == 1


@pytest.fixture(scope="module")
def mnist_pair(mnist_bundled_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first run's default pair (`mnist-2d` on `mnist-bundled`, the app's recipe), trained here
    (about 20 s; its stored metrics read the session's MNIST judge)."""
    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("mnist-pair")
    data = load_dataset("mnist-bundled")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_CACHE_DIR", str(mnist_bundled_cache))
        train_models(data, "both", *default_run(data), folder, "mnist-2d")
    return folder / "mnist-2d-vae.safetensors", folder / "mnist-2d-ae.safetensors"


@pytest.mark.slow
def test_the_default_mnist_pairs_file_holds_the_judge_within_2_mb_and_meters_like_pytorch(
    browser, mnist_pair, mnist_bundled_cache, tmp_path, monkeypatch,
):
    """The default pair's file is at most 2 MB and holds the judge and the VAE's q(z): at the z the
    keys move to, each image's judge class equals PyTorch's (hole_meter with the same judge) and its
    confidence is within 1e-4, and the decodes equal PyTorch's within 1e-4."""
    from vae.analysis import layers
    from vae.analysis.judge import judge_for
    from vae.core.data import load_dataset
    from vae.services.standalone_pad import MAX_FILE_BYTES

    monkeypatch.setenv("VAE_CACHE_DIR", str(mnist_bundled_cache))  # the judge export-pad packs: the session's
    text = export_pad(*mnist_pair, test_hooks=True)
    assert len(text.encode("utf-8")) <= MAX_FILE_BYTES
    path = tmp_path / "mnist-pad.html"
    path.write_text(text, encoding="utf-8")
    judge = judge_for(load_dataset("mnist-bundled"), mnist_bundled_cache)
    assert judge is not None
    checkpoints = [load_checkpoint(p) for p in mnist_pair]
    page, asked = open_offline(browser, path)
    try:
        page.wait_for_function(READY, timeout=30_000)
        zs = []
        for key in ("ArrowLeft", "ArrowUp", "ArrowUp"):
            page.keyboard.press(f"Shift+{key}")
            page.wait_for_timeout(300)  # the meter of the z the key moved to
            s = state(page)
            zs.append(s["z"])
            for ckpt, meter in zip(checkpoints, s["meters"], strict=True):
                want = layers.hole_meter(ckpt.model, judge, np.array(s["z"], np.float32))
                got = meter["value"]
                assert got["cls"] == want.class_index and abs(got["confidence"] - want.confidence) <= 1e-4, (s["z"], got, want)
                assert meter["lines"][0].startswith(f"judge: {want.class_name}, ")
                assert "not in this file" not in meter["lines"][1], meter["lines"]  # the VAE's q(z) is in it; the AE's is n/a
                assert meter["lines"][2] == "round trip: not in this file"  # the encoders (float32, 1.7 MB each) are not
        assert_decodes_like_pytorch(page, [c.model for c in checkpoints], zs)
        assert asked == [path.resolve().as_uri()]
    finally:
        page.context.close()


def test_a_mouse_drag_moves_z_and_changes_both_images(offline, models):
    page, _ = offline
    before = [pixels(page, 0), pixels(page, 1)]
    (cx, cy), ((tx, ty), target) = crosshair(page), plot_point(page, 0.8, 0.7)  # from z = 0 to a spot on the map
    page.mouse.move(cx, cy)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(cx + (tx - cx) * k / 10, cy + (ty - cy) * k / 10)
    page.mouse.up()
    page.wait_for_timeout(100)  # the animation frame that paints the last move
    assert np.allclose(state(page)["z"], target, atol=0.01 * np.ptp(state(page)["ranges"], axis=1))
    assert pixels(page, 0) != before[0] and pixels(page, 1) != before[1]
    assert_decodes_like_pytorch(page, models, [state(page)["z"]])


def test_a_touch_moves_z(browser, pad_file):
    page, asked = open_offline(browser, pad_file, has_touch=True)
    try:
        page.wait_for_function(READY, timeout=15_000)
        before = pixels(page)
        (tx, ty), target = plot_point(page, 0.25, 0.4)
        page.touchscreen.tap(tx, ty)
        page.wait_for_timeout(100)
        assert np.allclose(state(page)["z"], target, atol=0.01 * np.ptp(state(page)["ranges"], axis=1))
        assert pixels(page) != before
        assert len(asked) == 1
    finally:
        page.context.close()


def test_the_live_pads_download_button_gives_the_standalone_file(pair_server, browser, tmp_path):
    """On the real app: "Download standalone pad (HTML)" on the Live pad saves a file that opens
    offline and paints both decoders' images."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(pair_server + "/")  # a fresh server knows app.py's pages after app.py has run once
        page.get_by_text("Explore the latent space").wait_for(timeout=120_000)
        page.goto(pair_server + "/live")
        button = page.get_by_role("button", name="Download standalone pad (HTML)")
        button.wait_for(timeout=120_000)
        with page.expect_download(timeout=120_000) as download:
            button.click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
    finally:
        context.close()
    assert path.suffix == ".html"
    offline, asked = open_offline(browser, path)
    try:
        offline.wait_for_function(PAINTED, timeout=15_000)
        assert offline.locator("figcaption").all_inner_texts() == ["VAE", "AE"]
        assert asked == [path.resolve().as_uri()]
        assert offline.evaluate("() => window.__latentPadState === undefined")  # no test hooks in a teacher's file
    finally:
        offline.context.close()
