"""Shared pieces for the browser tests: a real `streamlit run` server and Debian's Chromium.

The functions (`find_free_port`, `run_streamlit`, `launch_chromium`, `wait_until_idle`,
`save_screenshot`) are plain so bench/app_latency.py can reuse them; the fixtures wrap them.
Chromium is Debian's /usr/bin/chromium driven by Playwright's sync API (never
`playwright install`). Without it the tests skip, unless VAE_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"  # screenshots; git-ignored
CHROMIUM = os.environ.get("VAE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # a common classroom projector (WXGA)
FIRST_RUN_TIMEOUT_S = 180  # the first run trains the default pair: ~10 s idle, far more on a busy CI box


# --- the server ----------------------------------------------------------------------------


def find_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextmanager
def run_streamlit(
    models_dir: Path, cache_dir: Path, log_path: Path, port: int | None = None,
    extra_env: dict[str, str] | None = None, timeout: float = 60,
) -> Iterator[str]:
    """`streamlit run app.py` in its own process group; yields the base URL once healthy."""
    port = port or find_free_port()
    # VAE_TEST_HOOKS=1: the Live pad's window.__latentPad* hooks, which the browser tests read
    env = {**os.environ, "VAE_MODELS_DIR": str(models_dir), "VAE_CACHE_DIR": str(cache_dir), "VAE_TEST_HOOKS": "1", **(extra_env or {})}
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"streamlit did not become healthy on {url} (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# --- the browser ---------------------------------------------------------------------------


def chromium_missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set VAE_CHROMIUM)"
    return None


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Playwright's sync API driving Debian's Chromium; yields the Browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Streamlit marks the app root with data-test-script-state ("running" / "notRunning").
_IDLE_JS = """(quietMs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const now = performance.now();
  const idle = app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
  if (!idle || window.__busyAt === undefined) window.__busyAt = now;
  return idle && now - window.__busyAt >= quietMs;
}"""


# The Explore page's decoded image: the st.image captioned "decoded image" (JS expression).
DECODED_IMAGE_JS = """[...document.querySelectorAll('[data-testid="stImage"]')]
  .find(el => el.querySelector('[data-testid="stImageCaption"]')?.innerText.trim() === 'decoded image')
  ?.querySelector('img') ?? null"""


def wait_until_idle(page: Any, timeout_s: float = 60, quiet_ms: int = 600) -> None:
    """Wait until no script run has been going for `quiet_ms` (a rerun may start just after a click)."""
    page.evaluate("() => { window.__busyAt = undefined; }")
    page.wait_for_function(_IDLE_JS, arg=quiet_ms, timeout=timeout_s * 1000, polling=100)


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
def streamlit_server(e2e_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server per test module, on `e2e_models_dir` (override that fixture to pre-fill it).
    For a module that needs its own folder or a fresh server; a trained app is `pair_server`."""
    work = tmp_path_factory.mktemp("e2e-server")
    with run_streamlit(e2e_models_dir, work / "cache", work / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def pair_models_dir(default_pair_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared default pair ("digits-2d", what the app opens) plus a 3-D AE ("three-d-ae",
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
def pair_server(pair_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the whole session on `pair_models_dir`, for tests that need a trained
    app but not a fresh server (each test opens its own browser context: its own session).
    Tests of a server's start (first run, first request) start their own."""
    work = tmp_path_factory.mktemp("e2e-pair-server")
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
