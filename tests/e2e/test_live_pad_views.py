"""The Live pad's views in a real Chromium (issue 9: items 6, 8 and the Live pad part of 12).

One server on a models folder with a 2-D VAE + AE pair, a 2-D AE alone, a 1-D pair, an 8-D pair,
an 8-D AE and a 64-D VAE (tiny trainings on digits: the views need weights, not quality); each test picks its model
in the sidebar. Checked: nothing on the page overflows its column at 1280x720 and 1920x1080;
a 1-D latent gets a 1-D strip (no invented z2 axis); a 64-D latent keeps the pad, the images
and the sliders together in one screen, and z starts at exactly 0. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.conftest import pad_state, python_z, wait_python_z, wait_until_idle

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIRST_PAGE_S = 180
NEXT_FRAME = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
PAIR_2D, AE_2D, PAIR_1D, VAE_64D, AE_8D = "mnist-2d (VAE + AE pair)", "digits-ae2d", "digits-1d (VAE + AE pair)", "digits-64d", "digits-ae8d"
PAIR_8D = "digits-8d (VAE + AE pair)"
DIMS = {PAIR_2D: 2, AE_2D: 2, PAIR_1D: 1, VAE_64D: 64, AE_8D: 8, PAIR_8D: 8}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def e2e_models_dir(default_pair_dir, tmp_path_factory):
    """A copy of the session's default pair ("mnist-2d") and five more tiny models."""
    import shutil

    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("e2e-models-views") / "models"
    shutil.copytree(default_pair_dir, folder)
    data = load_dataset("digits")
    for which, dim, name in [("ae", 2, "digits-ae2d"), ("both", 1, "digits-1d"), ("vae", 64, "digits-64d"), ("ae", 8, "digits-ae8d"), ("both", 8, "digits-8d")]:
        model_config, train_config = default_run(data, which, latent_dim=dim)
        train_models(data, which, model_config, replace(train_config, epochs=2, snapshot_points=0), folder, name)
    return folder



def _open_live(browser, url: str, model: str, viewport: dict):
    """A new session at `viewport` on /live with `model` chosen in the sidebar and its pad ready."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=viewport)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    pg.goto(url + "/")  # a fresh server knows app.py's pages once app.py has run
    pg.get_by_text("Explore the latent space").wait_for(timeout=FIRST_PAGE_S * 1000)
    pg.goto(url + "/live")
    wait_until_idle(pg, 120)
    select = pg.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    if not select.inner_text().strip().startswith(model):
        select.click()
        pg.get_by_role("option", name=re.compile("^" + re.escape(model))).click()
        wait_until_idle(pg, 120)
    dim = DIMS[model]
    pg.wait_for_function(
        "(d) => { const s = window.__latentPadState && window.__latentPadState(); return !!(s && s.ready && s.latentDim === d); }",
        arg=dim, timeout=120_000,
    )
    pg.evaluate(NEXT_FRAME)
    return pg








# Every image in the main area against the column (or the pad's side panel) that holds it.
OVERFLOWS = """() => {
  const out = [];
  const check = (el, box, what) => {
    const a = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    const over = Math.max(a.right - b.right, b.left - a.left);
    if (over > 0.5) {
      out.push(`${what}: ${over.toFixed(1)} px outside (${a.left.toFixed(0)}-${a.right.toFixed(0)} in ${b.left.toFixed(0)}-${b.right.toFixed(0)})`);
    }
  };
  const main = document.querySelector('[data-testid="stMain"]');
  const imgs = [...main.querySelectorAll('[data-testid="stImage"] img')];
  for (const img of imgs) {
    const col = img.closest('[data-testid="stColumn"]') || main.querySelector('[data-testid="stMainBlockContainer"]');
    check(img, col, `image "${img.closest('[data-testid="stImage"]').innerText.trim()}"`);
  }
  const pad = window.__latentPadLast;
  for (const c of pad.root.querySelectorAll('canvas.lp-decoded')) check(c, pad.side, `pad image ${c.dataset.label}`);
  check(pad.mapCanvas, pad.root, 'pad map');
  check(pad.root, main.querySelector('[data-testid="stMainBlockContainer"]'), 'pad');
  return { problems: out, images: imgs.length };
}"""


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 720}, {"width": 1920, "height": 1080}], ids=["1280x720", "1920x1080"])
def test_no_image_overflows_its_column(streamlit_server, browser, viewport):
    for model in (PAIR_2D, AE_2D, VAE_64D, PAIR_8D, PAIR_1D):
        pg = _open_live(browser, streamlit_server, model, viewport)
        try:
            found = pg.evaluate(OVERFLOWS)
            pg.screenshot(path=str(ARTIFACTS / f"live_views_{model.split(' ')[0]}_{viewport['width']}x{viewport['height']}.png"))
            assert found["images"] >= (2 if "pair" in model else 1), found  # the PyTorch decodes are there
            assert not found["problems"], (model, viewport, found["problems"])
            assert not pg.errors, pg.errors  # type: ignore[attr-defined]
        finally:
            pg.context.close()


def test_a_1d_latent_gets_a_strip_pad(streamlit_server, browser):
    pg = _open_live(browser, streamlit_server, PAIR_1D, {"width": 1280, "height": 720})
    try:
        s = pad_state(pg)
        assert s["labels"] == ["VAE", "AE"] and s["latentDim"] == 1
        box = pg.locator("canvas.lp-map").bounding_box()
        assert box["height"] <= box["width"] / 2, box  # a strip along z1, not a square with an invented z2
        assert s["axes"]["y"] == [] and s["axes"]["titles"] == ["z₁"], s["axes"]  # no y tick labels, no z2 title
        assert len(s["axes"]["x"]) >= 3
        assert pg.get_by_text("the pad is a strip along z1").count() == 1  # the page says what it shows
        (x0, x1) = s["ranges"][0]

        canvas = pg.locator("canvas.lp-map")
        canvas.focus()
        before = pad_state(pg)
        for key in ("ArrowUp", "ArrowDown"):  # no second dimension to move along
            pg.keyboard.press(key)
        pg.evaluate(NEXT_FRAME)
        assert pad_state(pg)["z"] == before["z"] and pad_state(pg)["p"] == before["p"]
        pg.keyboard.press("ArrowRight")
        pg.evaluate(NEXT_FRAME)
        after = pad_state(pg)
        assert after["p"][0] == pytest.approx(min(max(before["p"][0] + 0.01 * (x1 - x0), x0), x1), abs=1e-9)
        assert after["z"] == [after["p"][0]] and after["p"][1] == 0
        wait_python_z(pg, after["z"])

        # a diagonal drag moves z1 only, to the pointer's x
        pl = after["plot"]
        start = (box["x"] + pl["left"] + 0.2 * pl["width"], box["y"] + pl["top"] + 0.1 * pl["height"])
        end = (box["x"] + pl["left"] + 0.8 * pl["width"], box["y"] + pl["top"] + 0.9 * pl["height"])
        pg.mouse.move(*start)
        pg.mouse.down()
        pg.mouse.move(*end, steps=6)
        pg.mouse.up()
        pg.evaluate(NEXT_FRAME)
        released = pad_state(pg)
        assert released["p"][1] == 0 and len(released["z"]) == 1
        assert released["z"][0] == pytest.approx(x0 + 0.8 * (x1 - x0), abs=(x1 - x0) / pl["width"])
        wait_python_z(pg, released["z"])
        pg.screenshot(path=str(ARTIFACTS / "live_views_1d_strip.png"))
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


def test_a_64d_latent_keeps_pad_images_and_sliders_in_one_screen_and_starts_at_0(streamlit_server, browser):
    viewport = {"width": 1280, "height": 720}
    pg = _open_live(browser, streamlit_server, VAE_64D, viewport)
    try:
        s = pad_state(pg)
        assert s["z"] == [0] * 64  # exactly 0, not the nearest slider step
        values = pg.eval_on_selector_all(".lp-slider input[type=range]", "(els) => els.map((e) => e.valueAsNumber)")
        assert len(values) == 64 and values == [0] * 64, values
        assert python_z(pg) == [0.0] * 64

        pg.evaluate("() => window.__latentPadLast.root.scrollIntoView({ block: 'start' })")
        pg.evaluate(NEXT_FRAME)
        geo = pg.evaluate(
            """() => { const p = window.__latentPadLast, r = (el) => { const b = el.getBoundingClientRect(); return [b.top, b.bottom]; };
                       return { root: r(p.root), map: r(p.mapCanvas), images: [...p.root.querySelectorAll('canvas.lp-decoded')].map(r),
                                sliders: r(p.sliderBox), scroll: [p.sliderBox.scrollHeight, p.sliderBox.clientHeight],
                                overflowY: getComputedStyle(p.sliderBox).overflowY }; }"""
        )
        h = viewport["height"]
        assert geo["root"][1] - geo["root"][0] <= h, geo  # pad, images and sliders fit one screen together
        for top, bottom in [geo["map"], *geo["images"], geo["sliders"]]:
            assert -1 <= top and bottom <= h + 1, geo
        assert geo["overflowY"] == "auto" and geo["scroll"][0] > geo["scroll"][1], geo  # the 64 sliders scroll in their box
        pg.screenshot(path=str(ARTIFACTS / "live_views_64d_in_view.png"))

        # a slider still moves its coordinate, and Python hears it
        slider = pg.locator(".lp-slider input[type=range]").nth(40)
        slider.scroll_into_view_if_needed()
        slider.focus()
        pg.keyboard.press("End")
        pg.evaluate(NEXT_FRAME)
        after = pad_state(pg)
        assert after["z"][40] == pytest.approx(float(slider.get_attribute("max")))
        assert [v for k, v in enumerate(after["z"]) if k != 40] == [0] * 63
        wait_python_z(pg, after["z"])
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


def test_an_ae_above_2d_starts_at_exactly_0_on_every_slider(streamlit_server, browser):
    """An AE's slider ranges are its codes' mean ± 3 std, not symmetric about 0: the sliders'
    step grid must still hold 0, or the thumbs start a step off the z they show."""
    pg = _open_live(browser, streamlit_server, AE_8D, {"width": 1280, "height": 720})
    try:
        assert pad_state(pg)["z"] == [0] * 8
        values = pg.eval_on_selector_all(".lp-slider input[type=range]", "(els) => els.map((e) => e.valueAsNumber)")
        assert values == [0] * 8, values
        shown = pg.eval_on_selector_all(".lp-slider label span:last-child", "(els) => els.map((e) => e.textContent)")
        assert shown == ["+0.00"] * 8, shown
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()
