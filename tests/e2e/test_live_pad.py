"""The Live pad in a real Chromium against a real `streamlit run app.py` (the server and the
browser come from tests/e2e/conftest.py).

The session's shared server on the default 2-D VAE + AE pair (conftest's `pair_server`; the
first run's training is tested in test_app_browser.py and test_frame_browser.py): one session at
projector size opens /live and drags, types and picks; a second session, in a touch browser
context, drags with touch events. A second server, on a folder with a tiny 4-D VAE, checks the pad
above two dimensions (PCA map, one slider per dimension). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import pad_state, python_z, run_streamlit, wait_python_z, wait_until_idle

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PROJECTOR = {"width": 1280, "height": 800}
FIRST_RUN_S = 420  # first-run training on a busy 2-core machine, with margin
READY = "() => { const s = window.__latentPadState && window.__latentPadState(); return !!(s && s.ready); }"
NEXT_FRAME = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _open_live(context, url: str, name: str):
    """A page of `context` on the server at `url`, with the Live pad ready; JS errors in `page.errors`."""
    ARTIFACTS.mkdir(exist_ok=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # "/" first: the first session trains the default pair (and a fresh server only knows
    # app.py's st.navigation pages after app.py has run once).
    pg.goto(url + "/")
    try:
        pg.get_by_text("Explore the latent space").wait_for(timeout=FIRST_RUN_S * 1000)
    except Exception:
        pg.screenshot(path=str(ARTIFACTS / f"{name}_first_run_failed.png"))
        raise
    pg.goto(url + "/live")
    try:
        pg.locator("canvas.lp-map").wait_for(timeout=120_000)
        pg.wait_for_function(READY, timeout=120_000)
    except Exception as exc:  # noqa: BLE001 - whatever kept it from getting ready: a screenshot, then a failure that says what
        pg.screenshot(path=str(ARTIFACTS / f"{name}_not_ready.png"))
        raise AssertionError(f"the Live pad did not get ready: {exc}\npage: {pg.inner_text('body')[-1500:]}\nJS errors: {errors}") from None
    pg.screenshot(path=str(ARTIFACTS / f"{name}_loaded.png"))
    pg.errors = errors  # type: ignore[attr-defined]
    return pg


@pytest.fixture(scope="module")
def pad_page(pair_server, browser):
    """One session for the module, on tests/e2e/conftest.py's shared server (the default pair)."""
    context = browser.new_context(viewport=PROJECTOR)
    yield _open_live(context, pair_server, "live_pad")
    context.close()


@pytest.fixture
def touch_page(pair_server, browser, pad_page):
    """A second session in a touch-capable context."""
    context = browser.new_context(viewport=PROJECTOR, has_touch=True)
    try:
        yield _open_live(context, pair_server, "live_pad_touch")
    finally:
        context.close()


@pytest.fixture(scope="module")
def models_4d(tmp_path_factory):
    """A models folder with one tiny 4-D VAE on digits (2 epochs: the pad needs weights, not quality)."""
    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("e2e-models-4d")
    data = load_dataset("digits")
    model_config, train_config = default_run(data, "vae", latent_dim=4)
    train_models(data, "vae", model_config, replace(train_config, epochs=2, snapshot_points=0), folder, "digits-4d")
    return folder


@pytest.fixture(scope="module")
def pad4_page(models_4d, browser, tmp_path_factory):
    """A second server, on the 4-D folder, and one session on its Live pad."""
    work = tmp_path_factory.mktemp("e2e-server-4d")
    with run_streamlit(models_4d, work / "cache", work / "streamlit.log") as url:
        context = browser.new_context(viewport=PROJECTOR)
        try:
            yield _open_live(context, url, "live_pad_4d")
        finally:
            context.close()


@pytest.fixture(scope="module")
def checkpoints(pair_models_dir, pad_page):
    from vae.core.checkpoint import load_checkpoint

    return {kind.upper(): load_checkpoint(pair_models_dir / f"mnist-2d-{kind}.safetensors") for kind in ("vae", "ae")}




def _decoded_pixels(page, label: str) -> list[int]:
    """The painted decoded canvas (native size) of one decoder, red channel."""
    return page.locator(f'canvas.lp-decoded[data-label="{label}"]').evaluate(
        "(c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((_, i) => i % 4 === 0)"
    )






def _to_client(page, p: list[float]) -> tuple[float, float]:
    box = page.locator("canvas.lp-map").bounding_box()
    s = pad_state(page)
    (x0, x1), (y0, y1) = s["ranges"]
    pl = s["plot"]
    return (box["x"] + pl["left"] + (p[0] - x0) / (x1 - x0) * pl["width"], box["y"] + pl["top"] + (y1 - p[1]) / (y1 - y0) * pl["height"])


def test_drag_morphs_the_image_and_python_gets_the_final_z(pad_page):
    s = pad_state(pad_page)
    assert s["labels"] == ["VAE", "AE"] and s["latentDim"] == 2  # the default pair: compare mode
    (x0, x1), (y0, y1) = s["ranges"]
    start = [x0 + 0.25 * (x1 - x0), y0 + 0.7 * (y1 - y0)]
    end = [x0 + 0.75 * (x1 - x0), y0 + 0.3 * (y1 - y0)]
    sx, sy = _to_client(pad_page, start)
    ex, ey = _to_client(pad_page, end)
    pad_page.mouse.move(sx, sy)
    pad_page.mouse.down()
    pad_page.evaluate(NEXT_FRAME)
    first = {label: _decoded_pixels(pad_page, label) for label in ("VAE", "AE")}
    pad_page.screenshot(path=str(ARTIFACTS / "live_pad_drag_start.png"))
    pad_page.mouse.move((sx + ex) / 2, (sy + ey) / 2, steps=8)
    pad_page.evaluate(NEXT_FRAME)
    middle = _decoded_pixels(pad_page, "VAE")
    pad_page.mouse.move(ex, ey, steps=8)
    pad_page.evaluate(NEXT_FRAME)
    last = {label: _decoded_pixels(pad_page, label) for label in ("VAE", "AE")}
    for label in ("VAE", "AE"):
        assert first[label] != last[label], f"the {label} image did not change while dragging"
    assert middle != first["VAE"] and middle != last["VAE"]
    # what is painted is the decode of the current z (round(255 p))
    z_now = pad_state(pad_page)["z"]
    painted = np.array(last["VAE"])
    expected = np.round(255 * np.array(pad_page.evaluate("(z) => window.__latentPadDecode(z, 0)", z_now)))
    assert np.abs(painted - expected).max() <= 1
    pad_page.mouse.up()

    released = pad_state(pad_page)
    assert released["seq"] >= 1
    span = np.array([x1 - x0, y1 - y0])
    px_size = span / np.array([released["plot"]["width"], released["plot"]["height"]])
    assert np.all(np.abs(np.array(released["p"]) - end) <= px_size), (released["p"], end)
    assert released["z"] == released["p"]  # a 2-D latent: the crosshair position is z
    got = wait_python_z(pad_page, released["z"])
    np.testing.assert_allclose(got, end, atol=float(px_size.max()))
    pad_page.get_by_text("browser vs PyTorch").first.wait_for(timeout=30_000)
    pad_page.screenshot(path=str(ARTIFACTS / "live_pad_released.png"))


def test_browser_decoder_equals_pytorch(pad_page, checkpoints):
    labels = pad_state(pad_page)["labels"]
    z = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32) * 2
    for which, label in enumerate(labels):
        model = checkpoints[label].model
        js = np.array(pad_page.evaluate("([zs, w]) => zs.map((z) => window.__latentPadDecode(z, w))", [z.tolist(), which]))
        with torch.no_grad():
            ref = model.decode(torch.from_numpy(z)).reshape(len(z), -1).numpy()
        assert js.shape == ref.shape
        assert np.abs(js - ref).max() < 1e-4, f"{label}: browser and PyTorch differ by {np.abs(js - ref).max():.2e}"


def test_browser_conv_and_wide_mlp_decoders_equal_pytorch(pad_page):
    from vae.core.config import ModelConfig
    from vae.core.models import build_model
    from vae.services import browser_export

    configs = [
        ModelConfig(kind="vae", arch="conv", image_shape=(1, 16, 16), latent_dim=3, hidden=(24,), channels=(8, 6)),
        ModelConfig(kind="ae", arch="conv", image_shape=(3, 8, 8), latent_dim=2, hidden=(16,), channels=(5,)),
        ModelConfig(kind="vae", arch="mlp", image_shape=(1, 28, 28), latent_dim=5, hidden=(64, 32)),
    ]
    for cfg in configs:
        model = build_model(cfg, seed=1).eval()
        z = np.random.default_rng(1).standard_normal((4, cfg.latent_dim)).astype(np.float32) * 2
        js = np.array(pad_page.evaluate("([e, zs]) => window.__latentPadTest.decodeExport(e, zs)", [browser_export.export_decoder(model), z.tolist()]))
        with torch.no_grad():
            ref = model.decode(torch.from_numpy(z)).reshape(len(z), -1).numpy()
        assert np.abs(js - ref).max() < 1e-4, f"{cfg.arch} {cfg.image_shape}: differs by {np.abs(js - ref).max():.2e}"


def test_browser_lift_and_locate_equal_latent_map(pad_page):
    from vae.analysis.maps import LatentMap
    from vae.services import browser_export

    rng = np.random.default_rng(2)
    mu = (rng.standard_normal((80, 4)) * [2, 1, 0.5, 0.25]).astype(np.float32)
    maps = [LatentMap("pca").fit(mu), LatentMap("tsne", n_neighbors=6).fit(mu, points=rng.standard_normal((80, 2)).astype(np.float32) * 5)]
    p = rng.standard_normal((6, 2)).astype(np.float32) * 3
    for lmap in maps:
        exp = browser_export.export_map(lmap)
        lifted = np.array(pad_page.evaluate("([e, ps]) => window.__latentPadTest.lift(e, ps)", [exp, p.tolist()]))
        located = np.array(pad_page.evaluate("([e, zs]) => window.__latentPadTest.locate(e, zs)", [exp, mu[:6].tolist()]))
        np.testing.assert_allclose(lifted, lmap.lift(p), atol=1e-5, err_msg=lmap.method)
        np.testing.assert_allclose(located, lmap.locate(mu[:6]), atol=1e-5, err_msg=lmap.method)


def test_arrow_keys_nudge_the_crosshair(pad_page):
    canvas = pad_page.locator("canvas.lp-map")
    assert canvas.get_attribute("tabindex") == "0"
    assert canvas.evaluate("(c) => getComputedStyle(c).touchAction") == "none"
    before = pad_state(pad_page)
    (x0, x1), (y0, y1) = before["ranges"]
    canvas.focus()
    pad_page.keyboard.press("ArrowLeft")
    pad_page.keyboard.press("ArrowDown")
    pad_page.evaluate(NEXT_FRAME)
    after = pad_state(pad_page)
    np.testing.assert_allclose(after["p"], [max(x0, before["p"][0] - 0.01 * (x1 - x0)), max(y0, before["p"][1] - 0.01 * (y1 - y0))], atol=1e-9)
    assert after["seq"] > before["seq"]  # each key release reports to Python
    wait_python_z(pad_page, after["z"])


def test_a_picked_test_image_moves_the_pad_to_its_mean(pad_page, checkpoints):
    from vae.analysis.maps import encode_means
    from vae.core.data import load_dataset

    nonce = pad_state(pad_page)["nonce"]
    pad_page.locator("[data-testid='stSelectbox']", has_text="Jump to a test image").click()
    option = pad_page.get_by_role("option").nth(3)
    text = option.inner_text()
    option.click()
    index = int(text.split("·")[0].strip().lstrip("#"))
    pad_page.wait_for_function("(n) => window.__latentPadState().nonce !== n", arg=nonce, timeout=30_000)
    pad_page.evaluate(NEXT_FRAME)
    x = load_dataset("digits").x_test[index : index + 1]
    mu = encode_means(checkpoints["VAE"].model, x)[0]
    s = pad_state(pad_page)
    np.testing.assert_allclose(s["z"], mu, atol=1e-5)
    np.testing.assert_allclose(s["p"], mu, atol=1e-5)
    wait_python_z(pad_page, mu.tolist())
    pad_page.screenshot(path=str(ARTIFACTS / "live_pad_picked.png"))


def test_weights_are_sent_once_and_again_when_the_browser_lost_them(pad_page):
    pad_page.get_by_role("button", name="z = 0").click()
    pad_page.wait_for_function("() => window.__latentPadState().z.every((v) => v === 0)", timeout=30_000)
    wait_python_z(pad_page, [0.0, 0.0])
    # a rerun sends only ids: the weights the browser decoded the first time are reused
    # two decoders, one map and the hole meter's parts: the judge, two encoders, two q(z) samples
    # (the judge once it is trained: on a fresh cache it trains in the background and the page
    # reruns by itself when it is there)
    pad_page.wait_for_function("() => window.__latentPadCache.size === 8", timeout=300_000)
    pad_page.evaluate("() => window.__latentPadCache.clear()")
    pad_page.get_by_role("button", name="z = 0").click()  # a rerun without the weights: the pad asks for them
    pad_page.wait_for_function("() => window.__latentPadCache.size === 8", timeout=30_000)
    pad_page.wait_for_function(
        "() => { const p = window.__latentPadLast; return p.decoders.every((d) => window.__latentPadCache.get(d.id) === d.dec); }",
        timeout=30_000,
    )  # the pad now decodes with the weights sent again


def _release_from_browser(page, report) -> None:
    """Send `report` as the pad's release state, as a crafted component message would, and wait for the rerun."""
    page.evaluate("(r) => window.__latentPadLast.setStateValue('release', r)", report)
    wait_until_idle(page)


def _exceptions(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def test_a_crafted_release_is_ignored_and_python_keeps_its_z(pad_page):
    pad_page.get_by_role("button", name="z = 0").click()
    wait_python_z(pad_page, [0.0, 0.0])
    wait_until_idle(pad_page)
    crafted = [
        {"z": [1.0, 2.0, 3.0], "p": [0, 0], "seq": 900, "pixels": []},  # a 3-D z for a 2-D latent
        {"z": [1.0], "seq": 901},
        {"z": ["1", 2.0], "seq": 902},
        {"z": [1.0, None], "seq": 903},  # NaN and Infinity arrive as null in JSON
        {"z": 7, "seq": 904},
        {"z": [[1.0], [2.0]], "seq": 905},
        "release",
        [1.0, 2.0],
    ]
    for report in crafted:
        _release_from_browser(pad_page, report)
        assert not _exceptions(pad_page), (report, _exceptions(pad_page))
        assert python_z(pad_page) == [0.0, 0.0], report
    # a good z with pixels of the wrong size: z is taken, the pixels are not
    _release_from_browser(pad_page, {"z": [0.5, -0.5], "p": [0.5, -0.5], "seq": 910, "pixels": [[0.5] * 3, "x"]})
    wait_python_z(pad_page, [0.5, -0.5])
    assert not _exceptions(pad_page), _exceptions(pad_page)
    assert pad_page.get_by_text("browser vs PyTorch").count() == 0  # no browser pixels to compare with


def test_an_error_message_is_text_not_markup(pad_page):
    message = '<img src=x onerror="window.__injected = 1"><b>bold</b>'
    note = pad_page.evaluate(
        """(m) => { const p = window.__latentPadLast; p.showError(m);
                    return { text: p.note.textContent, elements: p.note.querySelectorAll('img, b').length,
                             cls: p.note.firstElementChild.className }; }""",
        message,
    )
    assert note == {"text": message, "elements": 0, "cls": "lp-error"}
    pad_page.wait_for_timeout(200)
    assert pad_page.evaluate("() => window.__injected") is None


def test_no_javascript_errors(pad_page):
    assert not pad_page.errors, pad_page.errors  # type: ignore[attr-defined]


def _touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]})


def test_touch_drag_morphs_the_image_and_python_gets_the_final_z(touch_page):
    pg = touch_page
    assert pg.evaluate("() => navigator.maxTouchPoints") > 0
    s = pad_state(pg)
    (x0, x1), (y0, y1) = s["ranges"]
    start = [x0 + 0.7 * (x1 - x0), y0 + 0.25 * (y1 - y0)]
    end = [x0 + 0.3 * (x1 - x0), y0 + 0.8 * (y1 - y0)]
    (sx, sy), (ex, ey) = _to_client(pg, start), _to_client(pg, end)
    cdp = pg.context.new_cdp_session(pg)
    _touch(cdp, "touchStart", [(sx, sy)])
    pg.evaluate(NEXT_FRAME)
    first = {label: _decoded_pixels(pg, label) for label in ("VAE", "AE")}
    for i in range(1, 13):
        _touch(cdp, "touchMove", [(sx + (ex - sx) * i / 12, sy + (ey - sy) * i / 12)])
    pg.evaluate(NEXT_FRAME)
    moving = pad_state(pg)
    assert moving["seq"] == s["seq"]  # still down: nothing reported yet
    last = {label: _decoded_pixels(pg, label) for label in ("VAE", "AE")}
    for label in ("VAE", "AE"):
        assert first[label] != last[label], f"the {label} image did not change while dragging with a finger"
    painted = np.array(last["VAE"])
    assert np.abs(painted - np.round(255 * np.array(pg.evaluate("(z) => window.__latentPadDecode(z, 0)", moving["z"])))).max() <= 1
    _touch(cdp, "touchEnd", [])
    pg.evaluate(NEXT_FRAME)

    released = pad_state(pg)
    assert released["seq"] == s["seq"] + 1  # one release, one report
    px_size = np.array([x1 - x0, y1 - y0]) / np.array([released["plot"]["width"], released["plot"]["height"]])
    assert np.all(np.abs(np.array(released["p"]) - end) <= px_size), (released["p"], end)
    assert released["z"] == released["p"]
    got = wait_python_z(pg, released["z"])
    np.testing.assert_allclose(got, end, atol=float(px_size.max()))
    pg.get_by_text("browser vs PyTorch").first.wait_for(timeout=30_000)
    pg.screenshot(path=str(ARTIFACTS / "live_pad_touch_released.png"))
    assert not pg.errors, pg.errors  # type: ignore[attr-defined]


def test_above_two_dimensions_sliders_and_the_lifted_z(pad4_page, models_4d):
    from vae.analysis.maps import compute_map
    from vae.core.checkpoint import load_checkpoint
    from vae.core.data import load_dataset

    pg = pad4_page
    s = pad_state(pg)
    assert s["latentDim"] == 4 and s["labels"] == ["VAE"]
    sliders = pg.locator(".lp-slider input[type=range]")
    assert sliders.count() == 4  # one per dimension
    assert [sliders.nth(d).get_attribute("aria-label") for d in range(4)] == [f"latent dimension {d + 1}" for d in range(4)]
    ckpt = load_checkpoint(next(models_4d.glob("*.safetensors")))
    lmap, _ = compute_map(ckpt.model, load_dataset("digits").x_test, "pca", ckpt.sha256, cache=False)  # the page's map

    # the crosshair: drag on the PCA map, z is the lifted position (4 numbers)
    (x0, x1), (y0, y1) = s["ranges"]
    start = [x0 + 0.2 * (x1 - x0), y0 + 0.5 * (y1 - y0)]
    end = [x0 + 0.8 * (x1 - x0), y0 + 0.35 * (y1 - y0)]
    (sx, sy), (ex, ey) = _to_client(pg, start), _to_client(pg, end)
    pg.mouse.move(sx, sy)
    pg.mouse.down()
    pg.evaluate(NEXT_FRAME)
    first = _decoded_pixels(pg, "VAE")
    pg.mouse.move(ex, ey, steps=10)
    pg.evaluate(NEXT_FRAME)
    assert _decoded_pixels(pg, "VAE") != first, "the image did not change while dragging"
    pg.mouse.up()
    released = pad_state(pg)
    px_size = np.array([x1 - x0, y1 - y0]) / np.array([released["plot"]["width"], released["plot"]["height"]])
    assert np.all(np.abs(np.array(released["p"]) - end) <= px_size), (released["p"], end)
    lifted = lmap.lift(np.array([released["p"]], np.float32))[0]
    assert len(released["z"]) == 4
    np.testing.assert_allclose(released["z"], lifted, atol=1e-4)
    got = wait_python_z(pg, released["z"])
    assert len(got) == 4
    np.testing.assert_allclose(got, lifted, atol=1e-4)

    # one slider moves one coordinate of z, and the image
    wait_until_idle(pg)
    before, before_img = pad_state(pg), _decoded_pixels(pg, "VAE")
    d = 2
    slider = sliders.nth(d)
    lo, hi = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    slider.focus()
    pg.keyboard.press("End")
    pg.evaluate(NEXT_FRAME)
    after = pad_state(pg)
    assert abs(after["z"][d] - hi) <= (hi - lo) / 400 + 1e-9 and abs(after["z"][d] - before["z"][d]) > 1e-3
    assert [v for k, v in enumerate(after["z"]) if k != d] == [v for k, v in enumerate(before["z"]) if k != d]
    assert _decoded_pixels(pg, "VAE") != before_img, "the image did not change with the slider"
    assert after["seq"] > before["seq"]  # the slider's change event reports to Python
    got = wait_python_z(pg, after["z"])
    assert got[d] != before["z"][d]
    pg.screenshot(path=str(ARTIFACTS / "live_pad_4d_slider.png"))
    assert not _exceptions(pg) and not pg.errors, (_exceptions(pg), pg.errors)  # type: ignore[attr-defined]
