"""App latency, measured in Chromium against a real `streamlit run app.py`, in one run.

    python -m bench.app_latency [--changes 30] [--write]

(c) cold start: a server on an EMPTY models folder; seconds from launching the process to
    the first decoded image on screen (includes first-run training of the default pair).
(a) slider -> image: on that server, press ArrowRight/ArrowLeft on the focused z1 slider
    `--changes` times; each sample is from the keydown (performance.now() in the page) to
    the first animation frame on which the decoded <img> shows a new, fully loaded src.
(b) the same, on a second server started with VAE_NO_FRAGMENT=1 (pages/explore.py then
    does not wrap the decode panel in st.fragment, so every slider change reruns the whole
    page, map included). Same models folder and map cache, so only the fragment differs.
(e) warm start: a fresh server on the models folder (c) filled, then the first browser opens
    the page, `--warm-repeats` times (a new server each time; the map cache on disk stays, as
    on a teacher's laptop). From the page's navigation start (performance.now() = 0): the
    first frame with text in the main area (the start-up screen or the page itself), the
    page's title, and the first decoded image on screen. Spread: min, median, max.
(d) t-SNE map: vae.analysis.maps.compute_map on an 8-D VAE trained on digits for a few epochs, at
    the default sample size (DEFAULT_SAMPLE['tsne'], capped by the test-set size: digits has
    359 test images), with cache=False, then a cold disk-cached call and a second call that
    reads the cache; and the same on the MNIST test-pair split (2,000 test images, so the
    full default sample of 1,000) when MNIST is under the data root (VAE_DATA_ROOT).

Targets: slider -> image p95 <= 250 ms; cold start <= 20 s; a cached map <= 1 s; warm start:
something meaningful painted <= 1 s, the first decoded image <= 3 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    DECODED_IMAGE_JS,
    REPO_ROOT,
    RESULTS,
    VIEWPORT,
    chromium_missing_reason,
    chromium_version,
    command_line,
    launch_chromium,
    load_note,
    machine,
    percentile,
    publish,
    run_streamlit,
    serve,
    spread,
    wait_until_idle,
)

SECTION = "## App latency"
TARGET_SLIDER_P95_MS = 250
TARGET_COLD_START_S = 20
TARGET_CACHED_MAP_S = 1.0
TARGET_WARM_PAINT_S = 1.0
TARGET_WARM_IMAGE_S = 3.0

# Timestamps stay in the page: keydown on the slider starts a sample, the first animation
# frame that shows a new, loaded decoded image ends it. WebSocket sends are stamped too, so a
# sample splits into "browser -> rerun request" and "request -> new image on screen".
WS_HOOK_JS = """(() => {
  window.__wsSends = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) { window.__wsSends.push(performance.now()); return send.call(this, data); };
})();"""

INSTALL_PROBE_JS = f"""() => {{
  const first = {DECODED_IMAGE_JS};
  window.__lat = {{ t0: null, samples: [], lastSrc: first ? first.src : null, late: 0 }};
  document.addEventListener('keydown', (e) => {{
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') window.__lat.t0 = performance.now();
  }}, true);
  const tick = () => {{
    const img = {DECODED_IMAGE_JS};
    if (img && img.src !== window.__lat.lastSrc && img.complete && img.naturalWidth > 0) {{
      const t1 = performance.now();
      if (window.__lat.t0 !== null) {{
        const sent = window.__wsSends.find((t) => t >= window.__lat.t0 && t <= t1);
        window.__lat.samples.push([t1 - window.__lat.t0, sent === undefined ? null : sent - window.__lat.t0]);
      }} else window.__lat.late += 1;
      window.__lat.lastSrc = img.src;
      window.__lat.t0 = null;
    }}
    requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}}"""


# Installed before the page's own scripts: stamps (ms from navigation start) the first frame
# with text in the main area, with the page's h1, and with the decoded image loaded.
PAINT_PROBE_JS = f"""(() => {{
  window.__paint = {{ text: null, title: null, image: null }};
  const tick = () => {{
    const p = window.__paint, now = performance.now();
    const main = document.querySelector('[data-testid="stMain"]');
    if (p.text === null && main && main.innerText.trim()) p.text = now;
    if (p.title === null && main && main.querySelector('h1')) p.title = now;
    const img = document.body ? {DECODED_IMAGE_JS} : null;
    if (p.image === null && img && img.complete && img.naturalWidth > 0) p.image = now;
    if (p.image === null) requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}})();"""


def bench_warm_start(browser, models: Path, cache: Path, work: Path, repeats: int) -> dict:  # type: ignore[no-untyped-def]
    """(e): `repeats` fresh servers on a filled models folder; the first page opened on each."""
    runs = []
    for i in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(PAINT_PROBE_JS)
        page = context.new_page()
        start = time.perf_counter()
        with run_streamlit(models, cache, work / f"warm-{i}.log", timeout=120) as url:
            healthy = time.perf_counter() - start
            page.goto(url, wait_until="commit")
            page.wait_for_function("() => window.__paint && window.__paint.image !== null", timeout=120_000, polling=100)
            p = page.evaluate("() => window.__paint")
            runs.append({"healthy_s": healthy, **{k: (v / 1000 if v is not None else float("nan")) for k, v in p.items()}})
            print(f"warm start {i + 1}/{repeats}: {runs[-1]}", file=sys.stderr)
        context.close()
    return {"runs": runs}


def bench_floor(browser, work: Path, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    """(e) reference: the same probe on a one-line Streamlit script (`st.title`), i.e. what the
    browser and Streamlit's own front end take before any app can paint anything."""
    folder = work / "one-line"
    folder.mkdir()
    (folder / "app.py").write_text('import streamlit as st\nst.title("Hello")\n')
    times = []
    with serve(cwd=folder, server_args=()) as server:
        for _ in range(repeats):
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(PAINT_PROBE_JS)
            page = context.new_page()
            page.goto(server.url, wait_until="commit")
            page.wait_for_function("() => window.__paint && window.__paint.text !== null", timeout=60_000, polling=100)
            times.append(page.evaluate("() => window.__paint.text") / 1000)
            context.close()
    print(f"one-line script, first text: {times}", file=sys.stderr)
    return times


@dataclass
class SliderRun:
    samples_ms: list[float]  # keydown -> new decoded image on screen
    request_ms: list[float]  # keydown -> the rerun request leaves the browser
    presses: int  # key presses needed (a press whose image is byte-identical to the last shows no change)

    def pct(self, q: int, values: list[float] | None = None) -> float:
        return percentile(self.samples_ms if values is None else values, q)


def wait_for_decoded_image(page, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        f"() => {{ const img = {DECODED_IMAGE_JS}; return img !== null && img.complete && img.naturalWidth > 0; }}",
        timeout=timeout_s * 1000, polling="raf",
    )


def measure_slider(page, changes: int, settle_ms: int = 250, timeout_s: float = 3) -> SliderRun:  # type: ignore[no-untyped-def]
    """Single ArrowRight presses on the focused z1 slider (ArrowLeft once it reaches its end)
    until `changes` of them have produced a new decoded image. Each press is one step (1/200
    of the range), so every sample shows a value the page has not shown before."""
    wait_until_idle(page)
    page.evaluate(INSTALL_PROBE_JS)
    slider = page.get_by_role("slider", name="z1")
    slider.focus()
    key, presses = "ArrowRight", 0
    while page.evaluate("() => window.__lat.samples.length") < changes and presses < 3 * changes:
        done = page.evaluate("() => window.__lat.samples.length")
        if key == "ArrowRight" and float(slider.input_value()) >= float(slider.get_attribute("max")):
            key = "ArrowLeft"
        page.keyboard.press(key)
        presses += 1
        try:
            page.wait_for_function(f"() => window.__lat.samples.length > {done}", timeout=timeout_s * 1000, polling="raf")
        except Exception:  # noqa: BLE001 - no visible change (same image bytes) or slower than timeout_s
            page.evaluate("() => { window.__lat.t0 = null; }")
        page.wait_for_timeout(settle_ms)
    samples = page.evaluate("() => window.__lat.samples")
    return SliderRun([s[0] for s in samples], [s[1] for s in samples if s[1] is not None], presses)


def bench_browser(changes: int, work: Path, warm_repeats: int) -> dict:
    models, cache = work / "models", work / "cache"
    models.mkdir()
    out: dict = {}
    with launch_chromium() as browser:
        # (c) cold start, then (a) on the same server
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(WS_HOOK_JS)
        page = context.new_page()
        start = time.perf_counter()
        with run_streamlit(models, cache, work / "fragment.log", timeout=120) as url:
            out["healthy_s"] = time.perf_counter() - start
            page.goto(url)
            wait_for_decoded_image(page, timeout_s=600)
            out["cold_start_s"] = time.perf_counter() - start
            print(f"cold start: {out['cold_start_s']:.1f} s (server healthy after {out['healthy_s']:.1f} s)", file=sys.stderr)
            page.reload()  # a fresh session on the now-trained server, as a second visitor gets it
            wait_for_decoded_image(page, timeout_s=60)
            out["fragment"] = measure_slider(page, changes)
            print(f"with fragment: {out['fragment']}", file=sys.stderr)
        context.close()
        # (b) without the fragment: a second server, same models and map cache
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(WS_HOOK_JS)
        page = context.new_page()
        with run_streamlit(models, cache, work / "no-fragment.log", extra_env={"VAE_NO_FRAGMENT": "1"}, timeout=120) as url:
            page.goto(url)
            wait_for_decoded_image(page, timeout_s=120)
            out["no_fragment"] = measure_slider(page, changes)
            print(f"without fragment: {out['no_fragment']}", file=sys.stderr)
        context.close()
        # (e) warm starts: fresh servers on the models (c) trained
        out["warm"] = bench_warm_start(browser, models, cache, work, warm_repeats)
        out["floor"] = bench_floor(browser, work, warm_repeats)
    return out


def bench_tsne(work: Path, dataset: str = "digits", epochs: int = 5) -> dict:
    """(d): t-SNE of an 8-D MLP VAE's test means at the default sample size (or the whole test
    set where it is smaller), uncached and disk-cached."""
    from vae.analysis.maps import DEFAULT_SAMPLE, compute_map
    from vae.core.checkpoint import checkpoint_bytes
    from vae.core.config import TrainConfig
    from vae.core.data import load_dataset
    from vae.core.models import build_model, default_model_config
    from vae.core.train import fit

    data = load_dataset(dataset)
    config = default_model_config(data.image_shape, arch="mlp", latent_dim=8)
    model = build_model(config, seed=0)
    train_config = TrainConfig(dataset=dataset, epochs=epochs, batch_size=128, seed=0, snapshot_points=0)
    fit(model, data, train_config, device="cpu")
    sha = hashlib.sha256(checkpoint_bytes(model, train_config, data.info())).hexdigest()

    n = min(DEFAULT_SAMPLE["tsne"], data.x_test.shape[0])
    t = time.perf_counter()
    compute_map(model, data.x_test, "tsne", sha, cache=False)
    uncached = time.perf_counter() - t
    t = time.perf_counter()
    compute_map(model, data.x_test, "tsne", sha, cache=work / "maps")  # computes and writes the cache
    first_cached = time.perf_counter() - t
    t = time.perf_counter()
    compute_map(model, data.x_test, "tsne", sha, cache=work / "maps")  # reads it back
    cached = time.perf_counter() - t
    return {"dataset": dataset, "description": data.description, "n": n, "default_n": DEFAULT_SAMPLE["tsne"],
            "n_test": int(data.x_test.shape[0]), "uncached_s": uncached, "first_cached_s": first_cached,
            "cached_s": cached, "epochs": epochs}


def mnist_available() -> bool:
    """The MNIST test pair under the data root (CI and this repo's machines: ../shared/datasets)."""
    from vae.core.data import DatasetError, load_dataset

    try:
        load_dataset("mnist", download=False)
        return True
    except DatasetError:
        return False


def verdict(ok: bool) -> str:
    return "meets" if ok else "**misses**"


def report(b: dict, tsne: list[dict], changes: int, command: str, load: tuple[float, float]) -> str:
    fr, nf = b["fragment"], b["no_fragment"]
    def split(r: SliderRun) -> str:
        return (f"p50 **{r.pct(50):.0f} ms**, p95 **{r.pct(95):.0f} ms** ({len(r.samples_ms)} changes, {r.presses} presses); "
                f"of which keydown → rerun request sent: p50 {r.pct(50, r.request_ms):.0f} ms")

    rows = [
        f"| (a) slider → decoded image, with st.fragment | {split(fr)} | p95 ≤ {TARGET_SLIDER_P95_MS} ms: {verdict(fr.pct(95) <= TARGET_SLIDER_P95_MS)} |",
        f"| (b) the same without the fragment (VAE_NO_FRAGMENT=1) | {split(nf)} | "
        f"with the fragment: {nf.pct(50) / fr.pct(50):.1f}x faster at p50, {nf.pct(95) / fr.pct(95):.1f}x at p95 |",
        f"| (c) cold start to first decoded image (empty models folder) | {b['cold_start_s']:.1f} s "
        f"(server healthy after {b['healthy_s']:.1f} s) | ≤ {TARGET_COLD_START_S} s: {verdict(b['cold_start_s'] <= TARGET_COLD_START_S)} |",
    ]
    warm = b["warm"]["runs"]
    rows += [
        f"| (e) warm start ({len(warm)} fresh servers, models present), page open → first text in the main area "
        f"(start-up screen or page) | {spread([r['text'] for r in warm])} | ≤ {TARGET_WARM_PAINT_S:g} s: "
        f"{verdict(statistics.median(r['text'] for r in warm) <= TARGET_WARM_PAINT_S)} (by median) |",
        f"| (e) reference: the same, for a one-line Streamlit script (`st.title`) on the same machine "
        f"(the browser and Streamlit's front end alone) | {spread(b['floor'])} | — |",
        f"| (e) warm start, page open → first decoded image on screen | {spread([r['image'] for r in warm])} "
        f"(server healthy after {spread([r['healthy_s'] for r in warm]).replace('**', '')}) | ≤ {TARGET_WARM_IMAGE_S:g} s: "
        f"{verdict(statistics.median(r['image'] for r in warm) <= TARGET_WARM_IMAGE_S)} (by median) |",
    ]
    for r in tsne:
        sample = f"{r['n']:,} points" + (" (the default sample)" if r["n"] == r["default_n"]
                                          else f" (its whole test set; the default sample is {r['default_n']:,})")
        rows += [
            f"| (d) t-SNE map, {r['dataset']}, {sample}, cache=False | {r['uncached_s']:.2f} s | — |",
            f"| (d) t-SNE map, {r['dataset']}, cached on disk (second call) | {r['cached_s'] * 1000:.0f} ms "
            f"(first call, computing and writing: {r['first_cached_s']:.2f} s) | ≤ {TARGET_CACHED_MAP_S:g} s: "
            f"{verdict(r['cached_s'] <= TARGET_CACHED_MAP_S)} |",
        ]
    trained = "; ".join(f"{r['dataset']}: {r['description']}, {r['epochs']} epochs" for r in tsne)
    return "\n".join([
        SECTION,
        "",
        f"`{command}` — Chromium (Playwright, headless) against `streamlit run app.py`; "
        f"{changes} slider changes per variant (single ArrowRight steps on the focused z1 slider, 250 ms apart; a press "
        f"whose decoded image is byte-identical to the previous one shows no change and is not a sample); timestamps from "
        f"`performance.now()` in the page (keydown → first animation frame showing the new decoded image, loaded). "
        f"t-SNE on the test means of an 8-D MLP VAE ({trained}). Start times (c) and (e) count from launching "
        f"`streamlit run app.py` (c) or from opening the page (e: performance.now() in the page, whose navigation "
        f"starts right after the server reports healthy); (e)'s spread is min and max over its servers.",
        "",
        f"Machine: {machine()}; {chromium_version()} headless. {load_note(*load)}",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        *rows,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.app_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30, help="slider changes per variant (default 30, at least 30 for p95)")
    parser.add_argument("--warm-repeats", type=int, default=5, help="fresh servers for the warm start (default 5)")
    parser.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of {RESULTS.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    if args.changes < 2:
        parser.error("--changes must be >= 2")
    missing = chromium_missing_reason()
    if missing:
        parser.error(missing)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="app-latency-") as tmp:
        work = Path(tmp)
        browser_results = bench_browser(args.changes, work, args.warm_repeats)
        tsne = [bench_tsne(work, "digits")]
        if mnist_available():  # digits' test set (359) is smaller than the default t-SNE sample
            tsne.append(bench_tsne(work, "mnist", epochs=2))
        else:
            print("MNIST not under the data root (VAE_DATA_ROOT): t-SNE timed on digits only", file=sys.stderr)
    text = report(browser_results, tsne, args.changes, command_line("bench.app_latency", argv), (load_before, os.getloadavg()[0]))
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
