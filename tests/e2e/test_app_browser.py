"""The real app in Chromium, one server for the module on an empty models folder: from the very
first paint through the first run's training the sidebar shows only our links (the frame); the
first run trains and decodes, a slider redraws the decoded image, and every page in the sidebar
renders without an exception (screenshots in test-artifacts/). The tests run in this order: the
first one needs the server fresh. (A deep link as the first request to a fresh server:
tests/e2e/test_frame_browser.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DECODED_IMAGE_JS, FIRST_RUN_TIMEOUT_S, save_screenshot, wait_until_idle
from tests.e2e.test_frame_browser import assert_only_our_links, open_watching_the_sidebar

pytestmark = pytest.mark.e2e

PAIR_FILES = ["mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]


def decoded_image(page: Any) -> Any:
    return page.locator('[data-testid="stImage"]').filter(has_text="decoded image").locator("img")


def open_explore(page: Any, url: str) -> str:
    """Load the app (training the default pair if the folder is empty); returns the decoded image's src."""
    page.goto(url)
    decoded_image(page).wait_for(state="visible", timeout=FIRST_RUN_TIMEOUT_S * 1000)
    wait_until_idle(page)
    return decoded_image(page).get_attribute("src")


def no_exceptions(page: Any) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def test_no_raw_module_name_from_the_first_paint_of_a_fresh_server_through_first_run_training(
    browser: Any, streamlit_server: str, e2e_models_dir: Path
) -> None:
    assert not any(e2e_models_dir.iterdir())  # empty: the server trains the default pair while the page waits
    page = open_watching_the_sidebar(browser, streamlit_server)
    page.wait_for_function("() => window.__nav.image !== null", timeout=FIRST_RUN_TIMEOUT_S * 1000, polling=100)
    nav = assert_only_our_links(page)
    assert nav["firstOurs"] < nav["image"]  # our navigation was there while the models trained
    save_screenshot(page, "frame-after-first-run")
    page.context.close()


def test_first_run_trains_and_a_slider_redraws_the_decoded_image(streamlit_server: str, e2e_models_dir: Path, page: Any) -> None:
    src = open_explore(page, streamlit_server)
    assert sorted(p.name for p in e2e_models_dir.iterdir()) == PAIR_FILES
    assert not no_exceptions(page)
    before = page.request.get(src).body()

    slider = page.get_by_role("slider", name="z1")
    value = slider.input_value()
    slider.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"(old) => {{ const img = {DECODED_IMAGE_JS}; return img !== null && img.src !== old && img.complete; }}",
        arg=src, timeout=30_000,
    )
    wait_until_idle(page)

    new_src = decoded_image(page).get_attribute("src")
    after = page.request.get(new_src).body()
    assert float(slider.input_value()) > float(value)
    assert new_src != src and after != before and after[:3] in (b"\xff\xd8\xff", b"\x89PN")  # a new JPEG/PNG
    assert not no_exceptions(page)
    save_screenshot(page, "explore-after-slider")


def test_every_page_in_the_sidebar_renders(streamlit_server: str, page: Any) -> None:
    open_explore(page, streamlit_server)
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
    pages = [(links.nth(i).get_attribute("href"), links.nth(i).inner_text().split("\n")[-1].strip()) for i in range(links.count())]
    assert len(pages) >= 6, pages

    problems = []
    for href, label in pages:
        page.locator(f'[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"][href="{href}"]').click()
        page.wait_for_url(re.compile(re.escape(href) + "$"))  # st.page_link hrefs are relative ("live")
        wait_until_idle(page, timeout_s=90)
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        save_screenshot(page, f"page-{slug}")
        title = page.locator("h1").first.inner_text().strip() if page.locator("h1").count() else ""
        if errors := no_exceptions(page):
            problems.append(f"{label}: exception {errors[0][:300]}")
        if not all(word.lower() in title.lower() for word in label.split()):
            problems.append(f"{label}: title is {title!r}")
    assert not problems, problems
