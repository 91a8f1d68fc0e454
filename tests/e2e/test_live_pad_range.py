"""The Live pad's crosshair is always on its map, in a real Chromium (issue 9, Live pad follow-up).

The map's range used to come from the test codes only: for a model whose codes exclude 0 (an
AE, a briefly trained model) the crosshair started at z = 0 off the map, and a z set from
Python (z = 0, a test image picked under the other model of a pair) could land off it too.

Models (tiny trainings on digits, then shifted): the AE's codes are moved by a constant c
(encoder mu bias + c, decoder's first bias - W c: the same images, codes far from 0), so the
condition "the test codes exclude the origin" holds by construction, and each test asserts it
again in the browser. A 2-D and an 8-D (PCA map) VAE + AE pair (only the AE shifted) and a 1-D AE.
Screenshots at 1280x720 go to test-artifacts/.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import pad_state, wait_python_z, wait_until_idle

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIRST_PAGE_S = 180
VIEWPORT = {"width": 1280, "height": 720}
NEXT_FRAME = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
PAIR_2D, AE_1D, PAIR_8D = "shifted-2d (VAE + AE pair)", "shifted-ae1d", "shifted-8d (VAE + AE pair)"
DIMS = {PAIR_2D: 2, AE_1D: 1, PAIR_8D: 8}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Where the pad draws its crosshair (the pad's own geometry, toPx), the plot area, the test
# codes' bounding box on the map, and the colour painted at the crosshair's ring.
CROSSHAIR = """() => {
  const pad = window.__latentPadLast, [x, y] = pad.toPx(pad.p), pl = pad.plot(), pts = pad.map.points;
  const box = [[Infinity, -Infinity], [Infinity, -Infinity]];
  for (let i = 0; i < pts.length; i += 2) for (let a = 0; a < 2; a++) {
    box[a][0] = Math.min(box[a][0], pts[i + a]); box[a][1] = Math.max(box[a][1], pts[i + a]);
  }
  const dpr = window.devicePixelRatio || 1, c = pad.mapCanvas;
  const ring = Array.from(c.getContext('2d').getImageData(Math.round((x + 13) * dpr), Math.round(y * dpr), 1, 1).data);
  // every pure black pixel of the map (the crosshair's ring and arms: nothing else is black)
  const img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, black = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < img.length; i += 4) if (img[i] + img[i + 1] + img[i + 2] === 0 && img[i + 3] === 255) {
    const px = (i / 4) % c.width / dpr, py = Math.floor(i / 4 / c.width) / dpr;
    black[0] = Math.min(black[0], px); black[1] = Math.min(black[1], py); black[2] = Math.max(black[2], px); black[3] = Math.max(black[3], py);
  }
  return { x, y, plot: pl, p: pad.p.slice(), z: Array.from(pad.z), codes: box, ring, black,
           ranges: pad.data.map.ranges, oneD: !!pad.oneD };
}"""


def _shift_codes(path: Path) -> None:
    """Move the AE's codes away from 0 without changing what it decodes: z' = z + c."""
    from vae.analysis.maps import encode_means
    from vae.core.checkpoint import checkpoint_bytes, load_checkpoint
    from vae.core.data import load_dataset
    from vae.core.files import atomic_write

    ckpt = load_checkpoint(path)
    model = ckpt.model
    mu = encode_means(model, load_dataset("digits").x_test)
    lo, hi = mu.min(0), mu.max(0)
    c = torch.tensor(-lo + 1.0 * np.maximum(hi - lo, 0.5), dtype=torch.float32)  # codes now in [span, 2 span]
    first = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.bias -= first.weight @ c
        model.encoder.mu.bias += c
    shifted = encode_means(model, load_dataset("digits").x_test)
    assert (shifted.min(0) > 0.4 * (shifted.max(0) - shifted.min(0))).all()  # the origin is well outside every code
    atomic_write(path, checkpoint_bytes(model, ckpt.train_config, ckpt.dataset, history=ckpt.history, metrics=ckpt.metrics,
                                        snapshots=ckpt.snapshots, snapshot_index=ckpt.snapshot_index, pair=ckpt.pair))


@pytest.fixture(scope="module")
def e2e_models_dir(tmp_path_factory):
    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("e2e-models-range")
    data = load_dataset("digits")
    for which, dim, name in [("both", 2, "shifted-2d"), ("ae", 1, "shifted-ae1d"), ("both", 8, "shifted-8d")]:
        model_config, train_config = default_run(data, which, latent_dim=dim)
        train_models(data, which, model_config, replace(train_config, epochs=2, snapshot_points=0), folder, name)
    from vae.core.checkpoint import load_checkpoint

    aes = [p for p in sorted(folder.glob("*.safetensors")) if load_checkpoint(p).kind == "ae"]
    assert len(aes) == 3, sorted(folder.iterdir())
    for path in aes:
        _shift_codes(path)
    return folder



def _open_live(browser, url: str, model: str):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    pg.goto(url + "/")
    pg.get_by_text("Explore the latent space").wait_for(timeout=FIRST_PAGE_S * 1000)
    pg.goto(url + "/live")
    wait_until_idle(pg, 120)
    select = pg.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    if not select.inner_text().strip().startswith(model):
        select.click()
        pg.get_by_role("option", name=re.compile("^" + re.escape(model))).click()
        wait_until_idle(pg, 120)
    _wait_ready(pg, DIMS[model])
    return pg


def _wait_ready(pg, dim: int) -> None:
    pg.wait_for_function(
        "(d) => { const s = window.__latentPadState && window.__latentPadState(); return !!(s && s.ready && s.latentDim === d); }",
        arg=dim, timeout=120_000,
    )
    pg.evaluate(NEXT_FRAME)


def _map_of(pg, label: str) -> None:
    """Choose the pair's map ("VAE" or "AE") and wait until the pad shows it."""
    before = pg.evaluate("() => window.__latentPadLast.data.map.id")
    pg.locator("[data-testid='stRadio']", has_text="Map of").get_by_text(label, exact=True).click()
    pg.wait_for_function("(id) => window.__latentPadLast.data.map.id !== id", arg=before, timeout=60_000)
    wait_until_idle(pg, 60)
    pg.evaluate(NEXT_FRAME)


def _outside(value: float, box: list[float]) -> bool:
    return value < box[0] or value > box[1]


def _assert_on_the_map(ch: dict, what: str) -> None:
    pl = ch["plot"]
    assert pl["left"] + 13 <= ch["x"] <= pl["left"] + pl["width"] - 13, (what, ch)  # the whole ring is inside
    assert pl["top"] + 13 <= ch["y"] <= pl["top"] + pl["height"] - 13, (what, ch)
    assert ch["ring"][:3] == [0, 0, 0], (what, ch)  # the crosshair is painted there
    (x0, x1), (y0, y1) = ch["ranges"]  # and the test codes are still all on the map
    assert x0 <= ch["codes"][0][0] and ch["codes"][0][1] <= x1, (what, ch)
    assert ch["oneD"] or (y0 <= ch["codes"][1][0] and ch["codes"][1][1] <= y1), (what, ch)


@pytest.mark.parametrize("model", [AE_1D, PAIR_2D, PAIR_8D], ids=["1d", "2d-pair-ae-map", "8d-pair-ae-pca-map"])
def test_the_crosshair_starts_on_the_map_when_the_codes_exclude_0(streamlit_server, browser, model):
    pg = _open_live(browser, streamlit_server, model)
    try:
        if "pair" in model:
            _map_of(pg, "AE")  # the shifted model's map
        ch = pg.evaluate(CROSSHAIR)
        assert ch["z"] == [0] * DIMS[model]  # the pad starts at the prior's mean
        # the condition: the origin's map position is outside the test codes' box
        assert _outside(ch["p"][0], ch["codes"][0]) or (not ch["oneD"] and _outside(ch["p"][1], ch["codes"][1])), ch
        pg.evaluate("() => window.__latentPadLast.mapCanvas.scrollIntoView({ block: 'center' })")
        pg.evaluate(NEXT_FRAME)
        pg.screenshot(path=str(ARTIFACTS / f"live_range_start_{model.split(' ')[0]}.png"))
        _assert_on_the_map(ch, "z = 0 at start")
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


def _drawn_inside(ch: dict, whole: bool = False) -> bool:
    """The crosshair's black pixels are there and centred inside the plot area, the ring included
    (`whole`: every black pixel, the arms and an edge arrow too, is inside)."""
    pl, (left, top, right, bottom) = ch["plot"], ch["black"]
    if right < left:
        return False
    m = 0 if whole else 13
    x, y = ((left, right), (top, bottom)) if whole else (((left + right) / 2,) * 2, ((top + bottom) / 2,) * 2)
    return pl["left"] + m <= x[0] and x[1] <= pl["left"] + pl["width"] - m and pl["top"] + m <= y[0] and y[1] <= pl["top"] + pl["height"] - m








def _wait_nonce(pg, nonce) -> None:
    pg.wait_for_function("(n) => window.__latentPadState().nonce !== n", arg=nonce, timeout=30_000)
    wait_until_idle(pg, 60)
    pg.evaluate(NEXT_FRAME)


def test_a_z_set_from_python_is_on_the_map_and_the_map_holds_still_while_you_drag(streamlit_server, browser):
    """A test image picked under the pair's shifted AE, then the VAE's map: the AE's code is far
    from every VAE code, and the crosshair is still on the map. The map does not rescale during a
    drag or after its release; the pointer and the keys stop at the map's edges."""
    pg = _open_live(browser, streamlit_server, PAIR_2D)
    try:
        _map_of(pg, "AE")
        nonce = pad_state(pg)["nonce"]
        pg.locator("[data-testid='stSelectbox']", has_text="Jump to a test image").click()
        pg.get_by_role("option").nth(5).click()
        _wait_nonce(pg, nonce)
        picked = pg.evaluate(CROSSHAIR)
        assert picked["z"] != [0, 0]
        _assert_on_the_map(picked, "a test image picked under the AE")

        _map_of(pg, "VAE")
        # the pick was the AE's code: under the VAE's map it is no longer "its mu under the VAE"
        pick = pg.locator("[data-testid='stSelectbox']", has_text="Jump to a test image").evaluate(
            "(el) => ({ text: el.textContent, value: el.querySelector('input').value })")
        assert "#" not in pick["text"] + pick["value"], pick  # the picker is back to "pick a test image…"
        assert pg.get_by_text("z is its μ").count() == 0
        ch = pg.evaluate(CROSSHAIR)
        np.testing.assert_allclose(ch["z"], picked["z"], atol=1e-6)  # the same z, on the VAE's map
        np.testing.assert_allclose(ch["p"], ch["z"], atol=1e-6)  # a 2-D map is z itself
        assert _outside(ch["p"][0], ch["codes"][0]) or _outside(ch["p"][1], ch["codes"][1]), ch  # far from the VAE's codes
        pg.screenshot(path=str(ARTIFACTS / "live_range_ae_code_on_vae_map.png"))
        _assert_on_the_map(ch, "the AE's code on the VAE's map")
        assert _drawn_inside(ch), ch

        # a drag from the middle to beyond the top left corner: the map stays, the crosshair stops at the edge
        ranges = ch["ranges"]
        (x0, x1), (y0, y1) = ranges
        box, pl = pg.locator("canvas.lp-map").bounding_box(), ch["plot"]
        pg.mouse.move(box["x"] + pl["left"] + pl["width"] / 2, box["y"] + pl["top"] + pl["height"] / 2)
        pg.mouse.down()
        seen = []
        for k in range(1, 7):
            pg.mouse.move(box["x"] + pl["left"] + pl["width"] * (0.5 - 0.15 * k), box["y"] + pl["top"] + pl["height"] * (0.5 - 0.15 * k))
            seen.append(pad_state(pg)["ranges"])
        mid = pad_state(pg)
        pg.mouse.up()
        pg.evaluate(NEXT_FRAME)
        assert all(r == ranges for r in seen), seen
        assert mid["p"] == [x0, y1], (mid["p"], ranges)  # the pointer clamps to the corner
        released = pad_state(pg)
        wait_python_z(pg, released["z"])
        wait_until_idle(pg, 60)
        pg.evaluate(NEXT_FRAME)
        after = pg.evaluate(CROSSHAIR)
        assert after["ranges"] == ranges  # Python's rerun after the release keeps the map
        assert after["p"] == [x0, y1] and after["black"][2] >= after["black"][0], after  # still at the corner, still drawn
        assert pad_state(pg)["crosshair"][2] is False  # on the map's edge, not off it

        # the keys stop at the opposite edges
        pg.locator("canvas.lp-map").focus()
        for _ in range(25):
            pg.keyboard.press("Shift+ArrowRight")
            pg.keyboard.press("Shift+ArrowDown")
        pg.evaluate(NEXT_FRAME)
        keyed = pad_state(pg)
        assert keyed["p"] == [x1, y0] and keyed["ranges"] == ranges, (keyed["p"], ranges)
        wait_python_z(pg, keyed["z"])
        wait_until_idle(pg, 60)
        assert pad_state(pg)["ranges"] == ranges

        # "z = 0": the crosshair goes back to the origin, on the map
        nonce = pad_state(pg)["nonce"]
        pg.get_by_role("button", name="z = 0").click()
        _wait_nonce(pg, nonce)
        ch = pg.evaluate(CROSSHAIR)
        assert ch["z"] == [0, 0]
        _assert_on_the_map(ch, "z = 0 pressed")
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


def test_a_slider_that_takes_z_off_the_map_pins_the_crosshair_to_its_edge(streamlit_server, browser):
    """Above 2-D the sliders can take z anywhere: where the map places z outside its range, the
    crosshair is drawn at the plot's edge (with an arrow toward z), not off the canvas."""
    pg = _open_live(browser, streamlit_server, PAIR_8D)
    try:
        _map_of(pg, "AE")
        sliders = pg.locator(".lp-slider input[type=range]")
        for k in range(8):
            sliders.nth(k).focus()
            pg.keyboard.press("End" if k % 2 == 0 else "Home")
        pg.evaluate(NEXT_FRAME)
        ch = pg.evaluate(CROSSHAIR)
        pl = ch["plot"]
        off = not (pl["left"] <= ch["x"] <= pl["left"] + pl["width"] and pl["top"] <= ch["y"] <= pl["top"] + pl["height"])
        assert off, ch  # the condition: this z's map position is off the map
        pg.screenshot(path=str(ARTIFACTS / "live_range_8d_pinned.png"))
        assert _drawn_inside(ch, whole=True), ch
        assert pad_state(pg)["crosshair"][2] is True
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


def test_another_map_of_the_same_z_places_the_crosshair_on_that_map(streamlit_server, browser):
    """Above 2-D each model of a pair has its own PCA map: switching "Map of" keeps z and puts the
    crosshair where the new map places z (not at the old map's coordinates), on the map."""
    pg = _open_live(browser, streamlit_server, PAIR_8D)
    try:
        _map_of(pg, "AE")
        nonce = pad_state(pg)["nonce"]
        pg.locator("[data-testid='stSelectbox']", has_text="Jump to a test image").click()
        pg.get_by_role("option").nth(2).click()
        _wait_nonce(pg, nonce)
        before = pg.evaluate(CROSSHAIR)
        _map_of(pg, "VAE")
        ch = pg.evaluate(CROSSHAIR)
        np.testing.assert_allclose(ch["z"], before["z"], atol=1e-6)  # z is kept
        # the VAE's PCA map places z at (z - mean) . components
        expected = pg.evaluate("""(z) => { const m = window.__latentPadLast.map, p = [0, 0];
            for (let d = 0; d < m.D; d++) { p[0] += (z[d] - m.mean[d]) * m.comp[d]; p[1] += (z[d] - m.mean[d]) * m.comp[m.D + d]; }
            return p; }""", ch["z"])
        np.testing.assert_allclose(ch["p"], expected, atol=1e-4)
        assert _outside(ch["p"][0], ch["codes"][0]) or _outside(ch["p"][1], ch["codes"][1]), ch  # far from the VAE's codes
        _assert_on_the_map(ch, "the AE's code on the VAE's PCA map")
        assert _drawn_inside(ch), ch
        pg.screenshot(path=str(ARTIFACTS / "live_range_8d_ae_code_on_vae_map.png"))
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        pg.context.close()


@pytest.mark.parametrize("method,dim", [("identity", 1), ("identity", 2), ("pca", 8), ("tsne", 8)])
def test_map_ranges_cover_the_codes_the_origin_and_the_z_from_python(method, dim):
    """Without a browser: `map_ranges` on codes in [0.3, 0.94] (every dimension)."""
    from pages.ui.latent_pad import map_ranges
    from vae.analysis.maps import LatentMap

    mu = np.random.default_rng(0).uniform(0.3, 0.94, (200, dim)).astype(np.float32)
    lmap = LatentMap(method).fit(mu, points=mu[:, :2] * 10 if method == "tsne" else None)
    far = np.full(dim, -3.0, np.float32)
    for z in (None, far, np.full(dim, np.nan, np.float32)):
        (x0, x1), (y0, y1) = map_ranges(lmap, dim, z)
        inside = np.concatenate([lmap.points_, lmap.locate(np.zeros((1, dim), np.float32))] + ([lmap.locate(far[None])] if z is far else []))
        assert (x0 < inside[:, 0]).all() and (inside[:, 0] < x1).all(), (method, z, (x0, x1))  # with a margin
        if dim == 1:
            assert (y0, y1) == (-1.0, 1.0)
        else:
            assert (y0 < inside[:, 1]).all() and (inside[:, 1] < y1).all(), (method, z, (y0, y1))
    if method != "tsne":  # a t-SNE map places any z among the codes
        assert map_ranges(lmap, dim, far)[0][0] < map_ranges(lmap, dim)[0][0]
