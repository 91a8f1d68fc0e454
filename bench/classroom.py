"""Classroom load: N sessions move the Explore page's latent sliders at once while one more
session trains, against a real `streamlit run app.py` on 127.0.0.1.

    python -m bench.classroom [--sessions 30] [--browsers 4] [--seconds 60] [--repeats 3] [--write]
    python -m bench.classroom --repeats 3 --baseline /tmp/old --baseline-label "main before X"   # side by side

Sessions
  browsers  real Chromium pages (Playwright, one context each): focus a z slider, press
            ArrowRight/ArrowLeft in a burst (like holding the key), and time from the last
            keydown to the first animation frame that shows a new, loaded decoded <img>
            (performance.now() in the page).
  light     the rest: Streamlit websocket clients that speak the browser's protocol (a
            BackMsg rerun of the slider fragment with the new widget value) and time from
            the send to the new decoded image fetched over HTTP (or to the end of the
            fragment run when the image is byte-identical, so its URL did not change).
  trainer   one more Chromium page starts a long training on the Train page (its default
            dataset, VAE + AE, 10,000 epochs) before the sliders start, and stops it at the end.
Each mover repeats: move, wait for the image, think for a random 0.5-1.5 s.

Priorities: the teacher's page (trainer) and the websocket clients run at the server's
priority; the students' Chromium pages run at `--student-nice` (one full run per value,
default 0 and 10). At 0 the four students' Chromium renderers compete with the server for
the same 2 cores as equals (about one core between them); at 10 their rendering yields to
the server, as it would if they were on their own machines. The training worker is the
app's own: nice 19 and SCHED_IDLE. Every Chromium starts through a wrapper that keeps it from
raising its own priority (see user_chromium), as a browser run by a user cannot.

The server starts on empty temp models/cache folders, so its first session trains the
default 2-D pair (timed as "first start"; then the 16-D pair trains in the background), unless
`--models-dir` / `--cache-dir` give folders to copy (a busy machine can take minutes to train
the judge). The first session's Explore page starts the dataset's judge training (once per
dataset, cached on disk); the window waits until it is cached (timed as "judge ready"), so it
measures the steady state of a class, unless `--during-judge`. Server memory is the RSS of its
process (/proc/PID/status), sampled every 0.5 s.

`--repeats N` runs each priority N times; with `--baseline DIR` (another checkout of the app)
each repeat runs that one too, just before this one, so the two see the same machine. The
section pools each group's moves over the repeats (p50/p95/p99) and lists each run's p95.
`--write` replaces the "## Classroom load" section of bench/RESULTS.md; `--json` keeps the
raw results, and `--from-json FILE` prints (or writes) the section from them again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    Server,
    find_free_port,
    machine,
    publish,
    serve,
    summary,
)

SECTION = "## Classroom load"
TARGET_P95_MS = 500
MOVE_TIMEOUT_S = 15.0
FIRST_START_TIMEOUT_S = 600.0  # the first session waits for first-run training (28x28 default: ~13 s quiet, minutes on a busy machine)
EXTRA_SERVER_ARGS: list[str] = os.environ.get("CLASSROOM_SERVER_ARGS", "").split()  # e.g. "--runner.postScriptGC false"

# In-page probe: a keydown on a slider starts a sample; the first animation frame whose
# decoded image has a new src that has finished loading ends it.
PROBE_JS = """
(() => {
  let found = null;
  const decoded = () => {  // cached while it stays in the page: innerText forces a layout, every frame
    if (found && found.isConnected) return found;
    found = null;
    for (const img of document.querySelectorAll('img')) {
      const box = img.closest('[data-testid="stElementContainer"]');
      if (box && box.innerText.includes('decoded image')) { found = img; break; }
    }
    return found;
  };
  window.__probe = {start: null, src: null, done: null};
  let polling = false;
  const tick = () => {  // runs only while a sample is open, so an idle page costs nothing
    const p = window.__probe;
    if (p.start === null || p.done !== null) { polling = false; return; }
    const img = decoded();
    if (img && img.getAttribute('src') !== p.src && img.complete && img.naturalWidth > 0) p.done = performance.now();
    requestAnimationFrame(tick);
  };
  document.addEventListener('keydown', () => {
    const img = decoded();
    window.__probe = {start: performance.now(), src: img ? img.getAttribute('src') : null, done: null};
    if (!polling) { polling = true; requestAnimationFrame(tick); }
  }, true);
  window.__decodedSrc = () => { const img = decoded(); return img ? img.getAttribute('src') : null; };
})();
"""


@dataclass
class Mover:
    name: str
    kind: str  # "browser" or "light"
    latencies_ms: list[float] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)  # time.time() of each move's start
    unchanged: int = 0  # light moves whose image was byte-identical (no new URL): timed to the end of the run
    phases_ms: list[tuple[float, float, float]] = field(default_factory=list)  # light moves: see LightSession.phases
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the server


@contextmanager
def serve_app(models: Path, cache: Path, log: Path, port: int | None = None, app_dir: Path = REPO_ROOT) -> Iterator[Server]:
    """`streamlit run app.py` as a teacher starts it (the file watcher on, so no QUIET_SERVER_ARGS;
    st.fragment on), on `models`, until the block ends; `app_dir`: the checkout whose app runs."""
    with serve(cwd=app_dir, env={"VAE_MODELS_DIR": str(models), "VAE_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"},
               # the defaults, whatever this shell sets for tests: the first run's own dataset and its 16-D follow-up
               drop_env=("VAE_NO_FRAGMENT", "VAE_FIRST_RUN_DATASET", "VAE_FIRST_RUN_FOLLOW_UP"), log_path=log, port=port, server_args=EXTRA_SERVER_ARGS,
               launcher=os.environ.get("CLASSROOM_LAUNCHER", "-m streamlit").split()) as server:
        yield server


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants_cpu_seconds(root: int, exclude: int = -1) -> float:
    """CPU time of the live descendants of `root` (not `root` itself), skipping the subtree of `exclude`."""
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    total = 0.0
    for pid in parents:
        node, hops = pid, 0
        while node not in (None, 0, 1, root, exclude) and hops < 32:
            node, hops = parents.get(node), hops + 1
        if node == root and pid != root:
            try:
                total += cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                continue
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_rss(pid: int, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    start = time.perf_counter()
    while not stop.is_set():
        try:
            samples.append((time.perf_counter() - start, rss_mib(pid)))
        except OSError:
            return
        await asyncio.sleep(0.5)


# ---------------------------------------------------------------- light clients (websocket)


class LightSession:
    """One Streamlit session over the websocket, as the browser drives it, minus the rendering."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ws = None
        self.page_hash = ""
        self.sliders: dict[str, tuple] = {}  # widget id -> (Slider proto, fragment id)
        self.values: dict[str, float] = {}
        self.decoded_url = ""
        # where a move's time goes, ms from the send: (the decoded image's delta arrived,
        # script_finished arrived, the image fetched); -1 where there was none
        self.phases: tuple[float, float, float] = (-1, -1, -1)

    async def _run(self, msg, timeout: float = MOVE_TIMEOUT_S) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
        """Send a BackMsg and read until the run finishes (at most `timeout` s between messages).
        Returns (status, error messages)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        sent = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        errors = []
        image = -1.0
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fm.new_session.page_script_hash
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                which = el.WhichOneof("type")
                if which == "slider" and "_z" in el.slider.id:
                    self.sliders[el.slider.id] = (el.slider, fm.delta.fragment_id)
                    current = el.slider.value or el.slider.default
                    self.values[el.slider.id] = float(current[0])
                elif which == "imgs" and el.imgs.imgs and el.imgs.imgs[0].caption == "decoded image":
                    self.decoded_url = el.imgs.imgs[0].url
                    image = (time.perf_counter() - sent) * 1000
                elif which == "exception":
                    errors.append(el.exception.message.splitlines()[0] if el.exception.message else "exception")
            elif kind == "script_finished":
                self.phases = (image, (time.perf_counter() - sent) * 1000, -1)
                return fm.script_finished, errors

    async def open(self, timeout: float = MOVE_TIMEOUT_S) -> None:
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg

        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                                           max_size=None, open_timeout=60, ping_interval=None)
        for _ in range(5):  # the very first run after a server start may render without the page
            msg = BackMsg()
            msg.rerun_script.query_string = ""
            msg.rerun_script.page_script_hash = self.page_hash
            _, errors = await self._run(msg, timeout)
            if errors:
                raise RuntimeError(f"script error on open: {errors[0]}")
            if self.sliders and self.decoded_url:
                return
        raise RuntimeError("the Explore page showed no sliders")

    async def fetch(self, url: str) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        body = await asyncio.wait_for(reader.read(), MOVE_TIMEOUT_S)
        writer.close()
        if not body.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"media fetch failed: {body[:40]!r}")
        return len(body)

    async def move(self, rng: random.Random) -> tuple[float, bool]:
        """Move one slider by 5-10 steps (bouncing at its ends); returns (ms, image changed)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        sid = rng.choice(sorted(self.sliders))
        slider, fragment = self.sliders[sid]
        step = slider.step * rng.randint(5, 10) * rng.choice((-1, 1))
        value = self.values[sid] + step
        if not slider.min <= value <= slider.max:
            value = self.values[sid] - step
        msg = BackMsg()
        state = msg.rerun_script
        state.page_script_hash = self.page_hash
        state.fragment_id = fragment
        widget = state.widget_states.widgets.add()
        widget.id = sid
        widget.double_array_value.data.append(value)
        before = self.decoded_url
        start = time.perf_counter()
        _, errors = await self._run(msg)
        if errors:
            raise RuntimeError(f"script error: {errors[0]}")
        self.values[sid] = value
        changed = self.decoded_url != before
        if changed:
            await self.fetch(self.decoded_url)
        elapsed = (time.perf_counter() - start) * 1000
        self.phases = (*self.phases[:2], elapsed)
        return elapsed, changed

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def light_mover(mover: Mover, session: LightSession, seed: int, start: float, deadline: float,
                      think: tuple[float, float]) -> None:
    rng = random.Random(seed)
    try:
        await asyncio.sleep(max(0.0, start - time.perf_counter()) + rng.uniform(0, think[1]))  # staggered start
        while time.perf_counter() < deadline:
            try:
                ms, changed = await session.move(rng)
                mover.latencies_ms.append(ms)
                mover.started_at.append(time.time() - ms / 1000)
                mover.unchanged += not changed
                mover.phases_ms.append(session.phases)
            except (TimeoutError, RuntimeError, OSError) as exc:
                mover.errors.append(f"{type(exc).__name__}: {exc}")
                if len(mover.errors) > 5:
                    return
            await asyncio.sleep(rng.uniform(*think))
    finally:
        await session.close()


# ---------------------------------------------------------------- browsers


async def open_explore(context, url: str):  # type: ignore[no-untyped-def]
    page = await context.new_page()
    await page.add_init_script(PROBE_JS)
    await page.goto(url, timeout=120_000)
    await page.wait_for_selector("[data-testid=stSlider] input[type=range]", state="attached", timeout=120_000)
    await page.wait_for_function("() => window.__decodedSrc && window.__decodedSrc()", timeout=120_000)
    return page


async def browser_mover(mover: Mover, page, seed: int, start: float, deadline: float, think: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    try:
        await asyncio.sleep(max(0.0, start - time.perf_counter()) + rng.uniform(0, think[1]))
        sliders = page.get_by_role("slider")
        n = await sliders.count()
        while time.perf_counter() < deadline:
            slider = sliders.nth(rng.randrange(n))
            await slider.focus()
            value, low, high, step = await slider.evaluate("e => [+e.value, +e.min, +e.max, +e.step]")
            presses = rng.randint(5, 10)
            key = rng.choice(("ArrowRight", "ArrowLeft"))
            if key == "ArrowRight" and value + presses * step > high:
                key = "ArrowLeft"
            elif key == "ArrowLeft" and value - presses * step < low:
                key = "ArrowRight"
            for _ in range(presses):  # a held key: Streamlit sends the value the burst ends on
                await page.keyboard.press(key)
            try:
                await page.wait_for_function("() => window.__probe.done !== null", timeout=MOVE_TIMEOUT_S * 1000)
                ms = await page.evaluate("() => window.__probe.done - window.__probe.start")
                mover.latencies_ms.append(ms)
                mover.started_at.append(time.time() - ms / 1000)
            except Exception as exc:  # noqa: BLE001 - a timeout is an error sample
                mover.errors.append(f"no new image within {MOVE_TIMEOUT_S} s ({type(exc).__name__})")
                if len(mover.errors) > 5:
                    return
            await asyncio.sleep(rng.uniform(*think))
    except Exception as exc:  # noqa: BLE001
        mover.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


async def start_training(context, url: str, epochs: int):  # type: ignore[no-untyped-def]
    page = await context.new_page()
    await page.goto(f"{url}/train", timeout=120_000)
    epochs_input = page.locator("[data-testid=stNumberInput]").filter(has_text="Epochs").locator("input")
    await epochs_input.wait_for(timeout=120_000)
    await epochs_input.fill(str(epochs))
    await epochs_input.press("Tab")
    name = page.locator("[data-testid=stTextInput]").filter(has_text="Save as").locator("input")
    await name.fill("classroom-train")
    await name.press("Tab")
    await page.get_by_role("button", name="Train", exact=True).click()
    await page.locator("[data-testid=stProgress]").filter(has_text="ELBO").first.wait_for(timeout=120_000)
    return page


async def training_progress(page) -> str:  # type: ignore[no-untyped-def]
    bars = page.locator("[data-testid=stProgress]")
    return (await bars.first.inner_text()).strip() if await bars.count() else ""


# ---------------------------------------------------------------- the run


def user_chromium(folder: Path, nice: int) -> Path:
    """An executable that starts Chromium as a user's browser runs: at `nice`, and unable to
    raise its own priority. Run as root (CI, this machine) Chromium renices its browser, IO and
    GPU threads to -8, above the server; a user's browser cannot (no CAP_SYS_NICE), so the
    wrapper drops that capability (setpriv, util-linux) before starting it."""
    wrapper = folder / f"chromium-nice{int(nice)}"
    drop = "setpriv --bounding-set -sys_nice --inh-caps -sys_nice " if shutil.which("setpriv") and os.geteuid() == 0 else ""
    wrapper.write_text(f'#!/bin/sh\nexec {drop}nice -n {int(nice)} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


async def wait_for_judge(cache: Path, models: Path, elapsed: float, launched: float) -> float | None:
    """Seconds from the server's launch until the judge of the dataset of the models in `models`
    (the first run's pair) is in `cache` (the first session's Explore page started its training),
    or None for a dataset without labels."""
    from vae.analysis.judge import has_labels, judge_path
    from vae.core.data import load_dataset
    from vae.services.workflow import list_models

    data = load_dataset(sorted({m.dataset for m in list_models(models)})[0])
    if not has_labels(data):
        return None
    path = judge_path(data, cache_dir=cache)  # any key: a --baseline checkout may key its judge otherwise
    pattern = path.name.rsplit("-", 1)[0] + "-*.safetensors"
    deadline = time.perf_counter() + FIRST_START_TIMEOUT_S - elapsed
    while not any(path.parent.glob(pattern)):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the judge was not trained within {FIRST_START_TIMEOUT_S:.0f} s of the server's launch")
        await asyncio.sleep(0.5)
    return round(time.perf_counter() - launched, 1)


async def run(args: argparse.Namespace, student_nice: int = 0, app_dir: Path = REPO_ROOT) -> dict:
    from playwright.async_api import async_playwright

    port = args.port or find_free_port()
    work = Path(tempfile.mkdtemp(prefix="classroom-"))
    models, cache = work / "models", work / "cache"
    if args.models_dir:
        shutil.copytree(args.models_dir, models)
    if args.cache_dir:
        shutil.copytree(args.cache_dir, cache)
    log = work / "server.log"
    result: dict = {"models_copied": str(args.models_dir or ""), "cache_copied": str(args.cache_dir or ""),
                    "sessions": args.sessions, "browsers": args.browsers, "seconds": args.seconds, "think_s": args.think,
                    "student_nice": student_nice}
    launched = time.perf_counter()
    with serve_app(models, cache, log, port, app_dir) as server:
        result["healthy_after_s"] = round(server.healthy_s, 2)
        url = server.url
        first = LightSession(port)  # the first session: triggers first-run training on an empty folder
        await first.open(FIRST_START_TIMEOUT_S)
        await first.close()
        result["first_start_s"] = round(time.perf_counter() - launched, 1)
        if not args.during_judge:  # the judge trains once per dataset (cached on disk): the window is the steady state
            result["judge_ready_s"] = await wait_for_judge(cache, models, time.perf_counter() - launched, launched)
        from vae.services.workflow import list_models

        result["dataset"] = ", ".join(sorted({f"{m.dataset} ({m.latent_dim}-D)" for m in list_models(models)})) or "none"

        rss: list[tuple[float, float]] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server.proc.pid, rss, stop))
        async with async_playwright() as pw:
            # The teacher's browser (the Train page) runs beside the server at the same priority, as it
            # would on the teacher's laptop. The students' pages get a Chromium of their own, at
            # `student_nice`: > 0 stands for their own machines (their rendering yields to the server).
            browser = await pw.chromium.launch(executable_path=str(user_chromium(work, 0)), args=CHROMIUM_ARGS)
            students = browser
            if student_nice:
                students = await pw.chromium.launch(executable_path=str(user_chromium(work, student_nice)), args=CHROMIUM_ARGS)
            viewport = {"width": 1400, "height": 1000}
            trainer = None
            if not args.no_train:
                trainer = await start_training(await browser.new_context(viewport=viewport), url, args.train_epochs)
                result["training_at_start"] = await training_progress(trainer)
                if args.trainer_leaves:  # the job keeps running in the server without its page
                    await trainer.close()
                    trainer = None
            load_before = os.getloadavg()
            rss_before = rss_mib(server.proc.pid)
            movers = [Mover(f"browser-{i}", "browser") for i in range(args.browsers)]
            movers += [Mover(f"light-{i}", "light") for i in range(args.sessions - args.browsers)]
            # every session opens the Explore page first; then all move together for the window
            contexts = [await students.new_context(viewport=viewport) for _ in range(args.browsers)]
            pages = await asyncio.gather(*(open_explore(c, url) for c in contexts))
            lights = [LightSession(port) for m in movers if m.kind == "light"]
            for batch in range(0, len(lights), 5):
                await asyncio.gather(*(s.open() for s in lights[batch : batch + 5]))
            result["opened"] = f"{len(pages)} pages and {len(lights)} websocket sessions"
            start = time.perf_counter() + 1.0
            deadline = start + args.seconds
            cpu_before, machine_before = cpu_seconds(server.proc.pid), machine_busy_seconds()
            chromium_before, bench_before = descendants_cpu_seconds(os.getpid(), server.proc.pid), cpu_seconds(os.getpid())
            trainer_before = descendants_cpu_seconds(server.proc.pid)
            result["window_epoch"] = [round(time.time() + 1.0, 1), round(time.time() + 1.0 + args.seconds, 1)]
            tasks = []
            for i, mover in enumerate(movers):
                if mover.kind == "browser":
                    coro = browser_mover(mover, pages[i], seed=i, start=start, deadline=deadline, think=args.think)
                else:
                    coro = light_mover(mover, lights[i - args.browsers], seed=i, start=start, deadline=deadline, think=args.think)
                tasks.append(asyncio.create_task(coro))
            await asyncio.gather(*tasks)
            result["window_s"] = round(time.perf_counter() - start, 1)
            machine_after = machine_busy_seconds()
            result["server_cpu_s"] = round(cpu_seconds(server.proc.pid) - cpu_before, 1)
            result["chromium_cpu_s"] = round(descendants_cpu_seconds(os.getpid(), server.proc.pid) - chromium_before, 1)
            result["trainer_cpu_s"] = round(descendants_cpu_seconds(server.proc.pid) - trainer_before, 1)
            result["bench_cpu_s"] = round(cpu_seconds(os.getpid()) - bench_before, 1)
            result["machine_busy_pct"] = round(
                100 * (machine_after[0] - machine_before[0]) / max(1e-9, machine_after[1] - machine_before[1]), 1)
            if trainer is not None:
                result["training_at_end"] = await training_progress(trainer)
                stop_button = trainer.get_by_role("button", name="Stop training")
                if await stop_button.count():
                    await stop_button.click()
            load_after = os.getloadavg()
            if students is not browser:
                await students.close()
            await browser.close()
        stop.set()
        await sampler
    result["rss_mib"] = {"before_window": round(rss_before, 1), "peak": round(max(r for _, r in rss), 1),
                         "end": round(rss[-1][1], 1)}
    result["load_avg_1min"] = {"before": round(load_before[0], 2), "after": round(load_after[0], 2)}
    for kind in ("browser", "light", "all"):
        group = [m for m in movers if kind == "all" or m.kind == kind]
        lat = [v for m in group for v in m.latencies_ms]
        stats = summary(lat)
        result[kind] = {
            "sessions": len(group), "moves": len(lat), "errors": sum(len(m.errors) for m in group),
            "p50_ms": round(stats["p50"], 1), "p95_ms": round(stats["p95"], 1),
            "p99_ms": round(stats["p99"], 1), "max_ms": round(stats["max"], 1) if lat else None,
            "moves_per_s": round(len(lat) / args.seconds, 1),
        }
    result["latencies_ms"] = {kind: [round(v, 1) for m in movers if kind == "all" or m.kind == kind for v in m.latencies_ms]
                              for kind in ("browser", "light", "all")}
    result["light"]["unchanged_images"] = sum(m.unchanged for m in movers if m.kind == "light")
    result["error_samples"] = [f"{m.name}: {e}" for m in movers for e in m.errors][:10]
    slow = sorted(((ms, t, m.name) for m in movers for ms, t in zip(m.latencies_ms, m.started_at, strict=True)), reverse=True)[:5]
    result["samples"] = sorted([round(t, 3), round(ms, 1), m.name] for m in movers for ms, t in zip(m.latencies_ms, m.started_at, strict=True))
    result["light_phases_ms"] = [[round(v, 1) for v in ph] for m in movers for ph in m.phases_ms]
    result["slowest_moves"] = [{"ms": round(ms), "started": round(t, 2), "session": name} for ms, t, name in slow]
    result["server_log_tail"] = log.read_text()[-2000:] if any(m.errors for m in movers) or os.environ.get("CLASSROOM_LAUNCHER") else ""
    shutil.rmtree(work, ignore_errors=True)
    return result


GROUPS = (("browser", "browser: keydown → new decoded image on screen"), ("light", "light: rerun request → new image fetched"),
          ("all", "all"))


def pooled(runs: list[dict], kind: str) -> dict:
    """One group's moves over several runs, as one sample: n, p50/p95/p99/max, errors, and each run's p95."""
    lat = [v for r in runs for v in r["latencies_ms"][kind]]
    stats = summary(lat)
    return {"sessions": runs[0][kind]["sessions"], "moves": len(lat), "errors": sum(r[kind]["errors"] for r in runs),
            "p50_ms": stats["p50"], "p95_ms": stats["p95"], "p99_ms": stats["p99"], "max_ms": stats["max"],
            "moves_per_s": len(lat) / sum(r["seconds"] for r in runs), "run_p95_ms": [r[kind]["p95_ms"] for r in runs]}


def meets(group: dict) -> bool:
    return bool(group["moves"]) and group["p95_ms"] <= TARGET_P95_MS and group["errors"] == 0


def _runs_text(values: list[float], unit: str = "ms", digits: int = 0) -> str:
    v = sorted(values)
    text = ", ".join(f"{x:.{digits}f}" for x in values)
    return text + f" {unit}" + (f" (median {statistics.median(v):.{digits}f})" if len(v) > 2 else "")


def report(results: list[dict], command: str) -> str:
    """The section: per priority of the students' Chromium and per checkout, the moves of all
    repeats pooled (p50/p95/p99/max) and each run's p95; then each run's resources."""
    def row(name: str, g: dict) -> str:
        if not g["moves"]:
            return f"| {name} | {g['sessions']} | 0 | — | — | — | — | — | {g['errors']} |"
        return (f"| {name} | {g['sessions']} | {g['moves']} ({g['moves_per_s']:.1f}/s) | {g['p50_ms']:.0f} ms | "
                f"**{g['p95_ms']:.0f} ms** | {', '.join(f'{v:.0f}' for v in g['run_p95_ms'])} | {g['p99_ms']:.0f} ms | "
                f"{g['max_ms']:.0f} ms | {g['errors']} |")

    first = results[0]
    repeats = max(r["repeat"] for r in results) + 1
    codes = list(dict.fromkeys(r["code"] for r in results))
    lines = [
        SECTION,
        "",
        f"`{command}` — {first['sessions']} concurrent sessions on the Explore page of the default 2-D pair ({first['dataset']}; "
        + ("copied into the server's models folder" if first.get("models_copied") else "trained by the server's first run on its "
           "empty models folder, which then trains the 16-D pair in the background")
        + f") for {first['seconds']:g} s "
        f"({first['browsers']} real Chromium pages, {first['sessions'] - first['browsers']} websocket clients that speak Streamlit's protocol), "
        f"each moving a latent slider by 5-10 steps, waiting for the new image, then pausing {first['think_s'][0]}-{first['think_s'][1]} s; "
        + ("one more session (the teacher's Chromium page, at the server's priority) trains a VAE + AE on the Train page "
           "(its default dataset, 10,000 epochs) the whole time."
           if "training_at_start" in first else "no training.")
        + " The server, the load generator and every browser share this machine's 2 cores; one run per priority of the students' "
        "Chromium: nice 0 competes with the server as an equal, nice 10 stands for students on their own machines. "
        f"{repeats} repeat{'s' if repeats > 1 else ''} of each"
        + (f", each running {' and '.join(codes)} one after the other" if len(codes) > 1 else "")
        + "; the tables pool the moves of all repeats, and list each run's p95.",
    ]
    for nice in dict.fromkeys(r["student_nice"] for r in results):
        for code in codes:
            runs = [r for r in results if r["student_nice"] == nice and r["code"] == code]
            groups = {kind: pooled(runs, kind) for kind, _ in GROUPS}
            lines += [
                "",
                f"### Students' Chromium at nice {nice}"
                + (" (same priority as the server)" if nice == 0 else " (as if on their own machines)")
                + (f": {code}" if len(codes) > 1 else ""),
                "",
                "| sessions | n | moves | p50 | p95 | p95 of each run | p99 | max | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                *(row(name, groups[kind]) for kind, name in GROUPS),
                "",
                f"- Target p95 ≤ {TARGET_P95_MS} ms with no errors, over all sessions: **{'met' if meets(groups['all']) else 'missed'}**"
                f"; the browser sessions alone: **{'met' if meets(groups['browser']) else 'missed'}** "
                f"(pooled over {len(runs)} run{'s' if len(runs) > 1 else ''}; runs meeting it, all and browser: "
                f"{sum(r['all']['p95_ms'] <= TARGET_P95_MS and not r['all']['errors'] for r in runs)} and "
                f"{sum(r['browser']['p95_ms'] <= TARGET_P95_MS and not r['browser']['errors'] for r in runs)} of {len(runs)}).",
                "- Server CPU per move (training relay included): "
                + _runs_text([1000 * r["server_cpu_s"] / max(1, r["all"]["moves"]) for r in runs])
                + f"; the whole machine busy: {_runs_text([r['machine_busy_pct'] for r in runs], '%')}; "
                f"Chromium {_runs_text([r['chromium_cpu_s'] for r in runs], 'CPU-s')}, the training worker "
                f"{_runs_text([r['trainer_cpu_s'] for r in runs], 'CPU-s', 1)} in each {first['seconds']:g} s window.",
                "- Server memory (RSS), peak: " + _runs_text([r["rss_mib"]["peak"] for r in runs], "MiB") + ".",
                ("- First start on an empty models folder (server launch → first session has the trained default pair): "
                 if not runs[0].get("models_copied") else
                 f"- Models copied from {runs[0]['models_copied']} (no first run); server launch → first session on Explore: ")
                + _runs_text([r["first_start_s"] for r in runs], "s", 1)
                + (f"; the cache folder (the judge) copied from {runs[0]['cache_copied']}" if runs[0].get("cache_copied") else "") + ".",
                ("- The dataset's judge (trained once per dataset, in a child process, when the first page asks; cached on disk) "
                 "was ready, server launch → judge cached: " + _runs_text([r["judge_ready_s"] for r in runs], "s", 1)
                 + "; the window started then." if all(r.get("judge_ready_s") for r in runs) else
                 "- The window started at once: the dataset's judge may still have been training in it (--during-judge)."),
                "- Load average (1 min) before → after each window: "
                + ", ".join(f"{r['load_avg_1min']['before']} → {r['load_avg_1min']['after']}" for r in runs)
                + (" (other work was running on this machine: the numbers include that contention)."
                   if max(r["load_avg_1min"]["before"] for r in runs) > 6 else "."),
            ]
            if "training_at_start" in runs[0]:
                lines.append(f"- Training session (first repeat): \"{runs[0]['training_at_start']}\" at the start, "
                             f"\"{runs[0].get('training_at_end', '')}\" at the end.")
            lines.append(f"- {sum(r['light']['unchanged_images'] for r in runs)} light moves decoded a byte-identical image "
                         "(no new URL); they are timed to the end of the fragment run.")
            errors = [e for r in runs for e in r["error_samples"]]
            if errors:
                lines.append(f"- Errors: {'; '.join(errors[:10])}")
    lines += ["", f"Machine: {machine()}; Chromium headless (--disable-gpu) on the same machine."]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30, help="slider-moving sessions in all (default 30)")
    parser.add_argument("--browsers", type=int, default=4, help="how many of them are real Chromium pages (default 4)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the measured window (default 60)")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5), metavar=("MIN", "MAX"), help="pause between moves, s")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--no-train", action="store_true", help="no training session")
    parser.add_argument("--during-judge", action="store_true", help="start the window at once, while the server may still "
                        "train the dataset's judge (once per dataset; by default the window waits for it)")
    parser.add_argument("--train-epochs", type=int, default=10_000)
    parser.add_argument("--student-nice", type=int, nargs="+", default=[0, 10], metavar="N",
                        help="one run per value: the students' Chromium pages run at this nice value (0 = the same "
                             "priority as the server; 10 = as if on their own machines). Default: 0 10")
    parser.add_argument("--trainer-leaves", action="store_true", help="close the Train page once training runs (diagnostic)")
    parser.add_argument("--models-dir", type=Path, help="copy this models folder instead of starting empty (no first run, "
                                                          "so no 16-D pair training in the background either)")
    parser.add_argument("--cache-dir", type=Path, help="copy this cache folder instead of starting empty (e.g. with the "
                                                         "dataset's judge: a busy machine can take minutes to train it)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per priority (and per checkout); the section pools "
                                                                  "their moves and lists each run's p95 (default 1)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another checkout of the app (e.g. `git worktree add /tmp/old main`): each repeat runs it "
                             "too, just before this checkout, on the same machine")
    parser.add_argument("--baseline-label", help="how the section names --baseline (default: its path)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, metavar="FILE", help="no run: the section from the raw results of an earlier --json")
    parser.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of bench/RESULTS.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.browsers <= args.sessions:
        parser.error("--browsers must be between 0 and --sessions")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.baseline is not None and not (args.baseline / "app.py").is_file():
        parser.error(f"--baseline: no app.py in {args.baseline}")
    command = "python -m bench.classroom " + shlex.join(sys.argv[1:] if argv is None else argv)  # quoted: labels have spaces
    if args.from_json is not None:  # the section again from a run's raw results (e.g. after a change of wording)
        earlier = json.loads(args.from_json.read_text())
        publish(SECTION, report(earlier, earlier[0].get("command", command)), args.write)
        return 0
    codes = [("this checkout", REPO_ROOT)]
    if args.baseline is not None:
        codes.insert(0, (f"baseline ({args.baseline_label or args.baseline})", args.baseline.resolve()))
    results = []
    for repeat in range(args.repeats):
        for nice in args.student_nice:
            for code, app_dir in codes:
                print(f"run {repeat + 1}/{args.repeats}, students at nice {nice}: {code}", file=sys.stderr)
                result = asyncio.run(run(args, student_nice=nice, app_dir=app_dir))
                result.update(repeat=repeat, code=code, command=command)
                results.append(result)
                print(f"  p95 all {result['all']['p95_ms']:.0f} ms, browser {result['browser']['p95_ms']:.0f} ms, "
                      f"errors {result['all']['errors']}", file=sys.stderr)
                if result.get("server_log_tail"):
                    print("server log tail:\n" + result["server_log_tail"], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    publish(SECTION, report(results, command), args.write)
    return 0 if all(r["all"]["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
