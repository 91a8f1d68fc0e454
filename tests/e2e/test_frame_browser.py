"""The frame in Chromium: no raw module name in the sidebar on a deep link to a fresh server
(from the very first paint through first-run training: tests/e2e/test_app_browser.py), nothing
fetched from outside the local server, and upload errors in view at 1280x720 that belong to the
latest file."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import DECODED_IMAGE_JS, run_streamlit, save_screenshot, wait_until_idle

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


def test_no_raw_module_name_on_a_deep_link_to_a_fresh_server(browser: Any, default_pair_dir: Path, tmp_path: Path) -> None:
    """The first request after a start is a deep link (/compare): the page shows our frame (on a
    real server Streamlit's pages-folder mode is still on for it; see tests/app/conftest.py)."""
    with run_streamlit(default_pair_dir, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        page = open_watching_the_sidebar(browser, url, "/compare")
        page.get_by_role("heading", name="Compare AE vs VAE").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        save_screenshot(page, "deep-link-compare-fresh-server")
        assert_only_our_links(page)
        assert page.get_by_text("Model or pair").count() == 1
        assert page.locator("h1").first.inner_text().strip() == "Compare AE vs VAE"
        page.context.close()


def test_nothing_is_fetched_from_outside_the_local_server(browser: Any, pair_server: str) -> None:
    url = pair_server  # the session's shared server on the default pair
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


def test_an_upload_error_is_in_view_and_belongs_to_the_latest_file(browser: Any, pair_server: str, tmp_path: Path) -> None:
    url = pair_server  # the session's shared server on the default pair
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint either")
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
