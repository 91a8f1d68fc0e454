"""The frame in Chromium: no raw module name in the sidebar from the very first paint of a fresh
server (first-run training included), nothing fetched from outside the local server, and upload
errors in view at 1280x720 that belong to the latest file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import DECODED_IMAGE_JS, FIRST_RUN_TIMEOUT_S, run_streamlit, save_screenshot, wait_until_idle

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
# What Streamlit's pages-folder navigation lists: app.py and every module in pages/.
RAW_NAMES = sorted({"app"} | {p.stem.replace("_", " ") for p in (REPO_ROOT / "pages").glob("*.py")})
OUR_LINKS = ["Explore", "Live pad", "Compare AE vs VAE", "Generate", "Theory", "Fill in missing pixels", "Train"]

# From before the page's own scripts, on every animation frame: every link text seen in the
# sidebar (Streamlit's own navigation and ours), and when each first showed.
SIDEBAR_PROBE_JS = """(() => {
  window.__nav = { seen: {}, firstOurs: null, image: null };
  const tick = () => {
    const now = performance.now();
    for (const a of document.querySelectorAll('[data-testid="stSidebar"] a, [data-testid="stSidebarNav"] a')) {
      if (a.offsetParent === null) continue;  // not rendered
      const text = a.innerText.split('\\n').pop().trim();
      if (!(text in window.__nav.seen)) window.__nav.seen[text] = now;
    }
    if (window.__nav.firstOurs === null && document.querySelector('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'))
      window.__nav.firstOurs = now;
    const img = document.body ? %s : null;
    if (window.__nav.image === null && img && img.complete && img.naturalWidth > 0) window.__nav.image = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();""" % DECODED_IMAGE_JS


def open_watching_the_sidebar(browser: Any, url: str, path: str = "") -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.add_init_script(SIDEBAR_PROBE_JS)
    page = context.new_page()
    page.goto(url + path, wait_until="commit")
    return page


def assert_only_our_links(page: Any) -> dict:
    nav = page.evaluate("() => window.__nav")
    raw = [name for name in nav["seen"] if name in RAW_NAMES]  # as Streamlit shows them: "explore", "latent pad"
    assert not raw, f"raw module names were visible in the sidebar: {raw} (all links seen: {nav['seen']})"
    assert set(OUR_LINKS) <= set(nav["seen"]), nav["seen"]
    return nav


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataclasses import replace

    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("frame-models")
    data = load_dataset("digits")
    model_config, train_config = default_run(data)
    train_models(data, "both", model_config, replace(train_config, epochs=3), folder, "mnist-2d")
    return folder


def test_no_raw_module_name_from_the_first_paint_of_a_fresh_server_through_first_run_training(
    browser: Any, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()  # empty: the server trains the default pair while the page waits
    with run_streamlit(models, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        page = open_watching_the_sidebar(browser, url)
        page.wait_for_function("() => window.__nav.image !== null", timeout=FIRST_RUN_TIMEOUT_S * 1000, polling=100)
        nav = assert_only_our_links(page)
        assert nav["firstOurs"] < nav["image"]  # our navigation was there while the models trained
        save_screenshot(page, "frame-after-first-run")
        page.context.close()


def test_no_raw_module_name_on_a_deep_link_to_a_fresh_server(browser: Any, trained_pair: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_pair, models)
    with run_streamlit(models, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        page = open_watching_the_sidebar(browser, url, "/compare")
        page.get_by_role("heading", name="Compare AE vs VAE").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        assert_only_our_links(page)
        page.context.close()


def test_nothing_is_fetched_from_outside_the_local_server(browser: Any, trained_pair: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_pair, models)
    with run_streamlit(models, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.wait_for_function(f"() => {{ const img = {DECODED_IMAGE_JS}; return img !== null && img.complete; }}", timeout=60_000)
        wait_until_idle(page)
        slider = page.get_by_role("slider", name="z1")
        slider.focus()
        page.keyboard.press("ArrowRight")
        wait_until_idle(page)
        for title in ("Generate", "Theory", "Explore"):
            page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]').filter(has_text=title).click()
            wait_until_idle(page, timeout_s=90)
        icon = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        context.close()

    local = urlparse(url).netloc
    outside = sorted({u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != local})
    assert not outside, outside
    assert icon and all(urlparse(h).netloc == local for h in icon), icon  # the favicon is ours, served locally
    assert len(requests) > 10  # the recorder saw the page's traffic


def in_view(page: Any, locator: Any) -> bool:
    """The element's box lies inside the 1280x720 viewport, not clipped by a scrolled container."""
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= 720 and box["x"] + box["width"] > 0


def test_an_upload_error_is_in_view_and_belongs_to_the_latest_file(browser: Any, trained_pair: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_pair, models)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint either")
    with run_streamlit(models, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(f"() => {{ const img = {DECODED_IMAGE_JS}; return img !== null && img.complete; }}", timeout=60_000)
        wait_until_idle(page)
        uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"] input[type=file]')

        uploader.set_input_files(str(bad))
        message = page.get_by_text("bad.safetensors was refused")
        message.first.wait_for(timeout=30_000)
        wait_until_idle(page)
        save_screenshot(page, "frame-upload-error-1280x720")
        page.screenshot(path=str(REPO_ROOT / "test-artifacts" / "frame-upload-error-viewport.png"))
        visible = [in_view(page, message.nth(i)) for i in range(message.count())]
        assert any(visible), "the upload error is below the fold"

        uploader.set_input_files(str(notes))  # a file of the wrong type: the old error must go
        page.wait_for_timeout(1500)
        wait_until_idle(page)
        sidebar_errors = page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]').all_inner_texts()
        assert not [e for e in sidebar_errors if "bad.safetensors" in e], sidebar_errors
        context.close()
