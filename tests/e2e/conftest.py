"""Shared pieces for the browser tests: a real `streamlit run` server and Debian's Chromium.

The server and browser helpers (`find_free_port`, `run_streamlit`, `launch_chromium`,
`wait_until_idle`, `DECODED_IMAGE_JS`, ...) live in bench/harness.py, which the benchmarks
share; they are imported here under the same names, and the fixtures wrap them.
Chromium is Debian's /usr/bin/chromium driven by Playwright's sync API (never
`playwright install`). Without it the tests skip, unless VAE_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Test modules import DECODED_IMAGE_JS, run_streamlit and wait_until_idle from here; `X as X`
# marks the two this file does not use itself as re-exported.
from bench.harness import DECODED_IMAGE_JS as DECODED_IMAGE_JS
from bench.harness import (
    REPO_ROOT,
    VIEWPORT,
    chromium_missing_reason,
    find_free_port,
    launch_chromium,
    run_streamlit,
)
from bench.harness import wait_until_idle as wait_until_idle

ARTIFACTS = REPO_ROOT / "test-artifacts"  # screenshots; git-ignored
FIRST_RUN_TIMEOUT_S = 180  # the first run trains the default pair: ~10 s idle, far more on a busy CI box


# --- screenshots ---------------------------------------------------------------------------


def save_screenshot(page: Any, name: str) -> Path:
    """A full-page PNG in test-artifacts/: the viewport is stretched to the scrolled content
    (Streamlit scrolls inside its main element, so Playwright's full_page alone stops at the fold)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
             ...['stMain', 'stSidebarContent'].map(id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight ?? 0))"""
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 6000))})
    page.wait_for_timeout(300)  # let Plotly relayout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


# --- the Live pad (its test hooks are on: run_streamlit sets VAE_TEST_HOOKS=1) --------------


def pad_state(page: Any) -> dict:
    """The Live pad's own report of itself (window.__latentPadState)."""
    return page.evaluate("() => window.__latentPadState()")


def python_z(page: Any) -> list[float]:
    """The z that Python shows under the pad (the released z, as JSON)."""
    return json.loads(page.locator(".st-key-live_z_report code").inner_text())


def wait_python_z(page: Any, z: list[float], timeout: float = 30) -> list[float]:
    """Wait until Python shows `z` (within 1e-5); returns what it shows."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = python_z(page)
            if len(got) == len(z) and np.allclose(got, z, atol=1e-5, rtol=0):
                return got
        except Exception:  # noqa: BLE001 - the block is being replaced during a rerun
            got = None
        if time.monotonic() > deadline:
            raise AssertionError(f"Python shows z = {got}, the pad has {z}")
        time.sleep(0.2)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@pytest.fixture(scope="module")
def e2e_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EMPTY models folder: the module's server trains the default pair on its first run."""
    return tmp_path_factory.mktemp("e2e-models")


@pytest.fixture(scope="module")
def streamlit_server(e2e_models_dir: Path, digits_judge_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server per test module, on `e2e_models_dir` (override that fixture to pre-fill it).
    For a module that needs its own folder or a fresh server; a trained app is `pair_server`. Its
    cache starts with the digits judge (the test models' dataset), as `pair_server`'s: a judge
    trained in the background (a child process, seconds) would otherwise arrive mid-test and rerun
    the page under it (the fresh-cache path: tests/app/test_judge_pending.py)."""
    work = tmp_path_factory.mktemp("e2e-server")
    shutil.copytree(digits_judge_cache, work / "cache")
    with run_streamlit(e2e_models_dir, work / "cache", work / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def pair_models_dir(default_pair_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared default pair ("mnist-2d", what the app opens) plus a 3-D AE ("three-d-ae",
    3 epochs) for the maps drawn on a PCA plane. Read-only, like the pair."""
    from dataclasses import replace

    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("e2e-pair") / "models"
    shutil.copytree(default_pair_dir, folder)
    data = load_dataset("digits")
    model_config, train_config = default_run(data, which="ae", latent_dim=3)
    train_models(data, "ae", model_config, replace(train_config, epochs=3), folder, "three-d-ae")
    return folder


@pytest.fixture(scope="session")
def pair_server(pair_models_dir: Path, digits_judge_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the whole session on `pair_models_dir`, for tests that need a trained
    app but not a fresh server (each test opens its own browser context: its own session); its
    cache holds the dataset's judge, as a server's that trained it before (a fresh cache trains
    it in the background and reruns the pages when it is there: tests/app/test_judge_pending.py).
    Tests of a server's start (first run, first request) start their own."""
    work = tmp_path_factory.mktemp("e2e-pair-server")
    shutil.copytree(digits_judge_cache, work / "cache")
    with run_streamlit(pair_models_dir, work / "cache", work / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = chromium_missing_reason()
    if reason:
        if os.environ.get("VAE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VAE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with launch_chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies, own Streamlit session) at projector size."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session", autouse=True)
def small_first_run() -> Iterator[None]:
    """Servers started by these tests (bench.harness.serve passes os.environ on) train their first
    run on the 8x8 digits, in seconds, and start no 16-D pair after it (which would add files to a
    folder the tests list). The real default's first run is bench/first_run.py's to time."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_FIRST_RUN_DATASET", "digits")
        mp.setenv("VAE_FIRST_RUN_FOLLOW_UP", "0")
        yield
