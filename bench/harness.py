"""What every benchmark shares, and what the browser tests (tests/e2e/conftest.py) share with them.

- results:   `write_section` replaces one `## ` section of bench/RESULTS.md and keeps the others;
             `publish` prints a section and writes it on `--write` (writing is opt-in: without
             `--write` a benchmark only prints).
- machine:   `machine()`, one line: cores, CPU model, RAM, OS, Python, torch and Streamlit versions.
- numbers:   `percentile` and `summary` (p50/p95/p99) by `statistics.quantiles(method="inclusive")`,
             the same linear interpolation as `numpy.percentile`'s default; `spread` (median, min, max).
- server:    `serve` runs `streamlit run` in its own process group until healthy and stops it
             after; `run_streamlit` is the app on a given models folder (what the tests use).
- browser:   Debian's Chromium (never `playwright install`) through Playwright: `launch_chromium`,
             `chromium_missing_reason`; `wait_until_idle` for a page's script runs to end.
- JS:        `DECODED_IMAGE_JS`, the Explore page's decoded <img>.

Run the benchmarks from the repository root as modules: `python -m bench.<name>`.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "RESULTS.md"


# --- bench/RESULTS.md ----------------------------------------------------------------------


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section that starts with the line `heading` (a `## ` title) by `text`, which
    starts with that line too; append it if the file has no such section yet. The other
    sections stay as they are; sections are separated by one blank line."""
    if not text.startswith(heading + "\n"):
        raise ValueError(f"the section must start with its heading line {heading!r}")
    from vae.core.files import atomic_write

    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    body = text.rstrip("\n") + "\n\n"
    new = pattern.sub(lambda _: body, old, count=1) if pattern.search(old) else old.rstrip("\n") + "\n\n" + body
    atomic_write(path, (new.rstrip("\n") + "\n").encode())


def publish(heading: str, text: str, write: bool, path: Path = RESULTS) -> None:
    """Print a benchmark's section; with `write` (the `--write` flag) also put it in `path`."""
    print(text)
    if write:
        write_section(heading, text, path)
        print(f"wrote the '{heading}' section of {path}", file=sys.stderr)


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command as a reader would type it again, for the section's first line."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join(["python", "-m", module, *args])


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_gib() -> float | None:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, IndexError, ValueError):
        return None


def machine() -> str:
    """One line on where the numbers come from: cores, CPU, RAM, OS, Python, torch (and its GPU, if
    any), Streamlit (where installed: a GPU machine running only the engine's benchmarks has none)."""
    import torch

    try:
        import streamlit
        app = f", Streamlit {streamlit.__version__}"
    except ImportError:
        app = ""
    mem = memory_gib()
    ram = f", {mem:.0f} GiB RAM" if mem is not None else ""
    gpu = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}" if torch.cuda.is_available() else "CPU"
    return (f"{os.cpu_count()} cores, {cpu_model()}{ram}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, torch {torch.__version__} ({gpu}){app}")


def load_note(before: float, after: float) -> str:
    """The 1-minute load average around a run, and what it says about contention."""
    return f"Load average {before:.2f} before, {after:.2f} after" + (
        " (other work was running on this machine; the numbers include that contention)." if before > 1.5 else
        " (nothing else was running; the figure after is this benchmark's own load).")


# --- numbers -------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: int) -> float:
    """The `q`-th percentile (1..99) with linear interpolation between the closest ranks
    (`statistics.quantiles(method="inclusive")`); nan for no values."""
    if not 1 <= q <= 99:
        raise ValueError(f"percentile {q} is outside 1..99")
    data = sorted(float(v) for v in values)
    if len(data) < 2:  # statistics.quantiles needs two points
        return data[0] if data else float("nan")
    return statistics.quantiles(data, n=100, method="inclusive")[q - 1]


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, p99, min and max (nan where there are no values)."""
    data = sorted(float(v) for v in values)
    nan = float("nan")
    return {"n": len(data), "p50": percentile(data, 50), "p95": percentile(data, 95), "p99": percentile(data, 99),
            "min": data[0] if data else nan, "max": data[-1] if data else nan}


def spread(values: Iterable[float], unit: str = "s") -> str:
    """`**median unit** (min a, max b)`, for a handful of repeats."""
    v = sorted(values)
    return f"**{statistics.median(v):.2f} {unit}** (min {v[0]:.2f}, max {v[-1]:.2f})"


# --- the server ----------------------------------------------------------------------------

# What the tests and most benchmarks pass to `streamlit run`: no file watcher (nothing edits
# the code meanwhile, and its polling costs CPU). The classroom benchmark runs without it, as a user would.
QUIET_SERVER_ARGS = ("--server.fileWatcherType", "none")


def find_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
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


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path | None
    healthy_s: float  # from starting the process to its first healthy answer


@contextmanager
def serve(
    *, cwd: Path = REPO_ROOT, app: str = "app.py", env: Mapping[str, str] | None = None, drop_env: Iterable[str] = (),
    log_path: Path | None = None, port: int | None = None, timeout: float = 60,
    server_args: Sequence[str] = QUIET_SERVER_ARGS, launcher: Sequence[str] = ("-m", "streamlit"),
) -> Iterator[Server]:
    """`streamlit run <app>` in `cwd`, in its own process group, with os.environ + `env` less
    `drop_env`; yields once it answers healthy, stops it on exit. Output goes to `log_path`
    (discarded when None). `launcher` replaces `-m streamlit`, e.g. by a profiling wrapper."""
    port = port or find_free_port()
    full_env = {**os.environ, **(env or {})}
    for name in drop_env:
        full_env.pop(name, None)
    cmd = [
        sys.executable, *launcher, "run", app, "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *server_args,
    ]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    else:
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path is not None else ""
                raise RuntimeError(f"streamlit did not become healthy on {url} (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.2)
        yield Server(url, port, proc, log_path, time.perf_counter() - started)
    finally:
        _stop(proc)


@contextmanager
def run_streamlit(
    models_dir: Path, cache_dir: Path, log_path: Path, port: int | None = None,
    extra_env: dict[str, str] | None = None, timeout: float = 60,
) -> Iterator[str]:
    """`streamlit run app.py` on `models_dir` in its own process group; yields the base URL once healthy."""
    # VAE_TEST_HOOKS=1: the Live pad's window.__latentPad* hooks, which the browser tests and bench.live_pad read
    env = {"VAE_MODELS_DIR": str(models_dir), "VAE_CACHE_DIR": str(cache_dir), "VAE_TEST_HOOKS": "1", **(extra_env or {})}
    with serve(env=env, log_path=log_path, port=port, timeout=timeout) as server:
        yield server.url


# --- the browser ---------------------------------------------------------------------------

CHROMIUM = os.environ.get("VAE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # a common classroom projector (WXGA)


def chromium_missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set VAE_CHROMIUM)"
    return None


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout.strip() or CHROMIUM
    except (OSError, subprocess.TimeoutExpired):
        return CHROMIUM


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
