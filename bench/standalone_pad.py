"""Benchmark: the standalone pad file (`python -m vae export-pad`) on the default 2-D MNIST pair.

Trains the first run's pair (`mnist-2d` on `mnist-bundled`, the app's recipe) unless --vae/--ae
name checkpoints, exports it, and opens the file in Chromium from file:// with every request
but the file itself aborted. In the same run it measures:

  size          the HTML file's bytes (target: at most 2 MB), and the export's time; what of the hole
                meter fits (the judge, q(z), the encoders) and the size with all of it; each packed
                net's deflated bytes and bits a weight
  first paint   performance.now() (from navigation start) when the VAE's decoded canvas first
                holds an image, polled every animation frame (target: within 1 s), per open
  drag          the mouse drags the crosshair in circles; a requestAnimationFrame counter in the
                page counts the frames in which a pointer event arrived, the pad's own stats the
                frames that decoded and painted (target: a fresh decode on every such frame)
  decode        max |browser - PyTorch| over a grid of z (the pad's test hooks)

    python -m bench.standalone_pad            # print a markdown section
    python -m bench.standalone_pad --write    # also replace the "## Standalone pad" section of bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import REPO_ROOT, RESULTS, VIEWPORT, command_line, launch_chromium, load_note, machine, percentile, publish, spread

SECTION = "## Standalone pad"
TARGET_BYTES = 2_000_000
READY = "() => { const s = window.__latentPadState && window.__latentPadState(); return !!(s && s.ready); }"
# the first decoded image: the VAE's canvas holds a pixel that is not 0 (a canvas starts transparent black)
PAINTED = """() => { const c = document.querySelector('canvas.lp-decoded'); if (!c) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) if (d[i] || d[i + 1] || d[i + 2]) return performance.now(); return false; }"""
# counts animation frames in which at least one pointer event arrived (installed before a drag)
FRAME_COUNTER = """() => { const f = window.__frameCount = { frames: 0, withInput: 0, moved: false };
  document.addEventListener('pointermove', () => { f.moved = true; }, true);
  const tick = () => { f.frames += 1; if (f.moved) { f.withInput += 1; f.moved = false; } requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""
# the RGBA pixels of decoded image i (0: the VAE's), as painted
DECODED_PIXELS = """(i) => { const c = document.querySelectorAll('canvas.lp-decoded')[i];
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


def open_offline(browser: Any, path: Path, **context: Any) -> tuple[Any, list[str]]:
    """A page on `path` from file:// where every request other than the file itself is aborted;
    returns (page, every URL the page asked for: the file alone when nothing else was tried)."""
    url = path.resolve().as_uri()
    page = browser.new_context(viewport=VIEWPORT, **context).new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page.goto(url)
    return page, asked


def canvas_center(page: Any) -> tuple[float, float, float]:
    box = page.locator("canvas.lp-map").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"])


def drag_circles(page: Any, seconds: float) -> int:
    """Drag the crosshair in circles for `seconds`; returns the number of mouse moves sent."""
    cx, cy, size = canvas_center(page)
    page.mouse.move(cx, cy)
    page.mouse.down()
    moves, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a = moves * 0.12
        page.mouse.move(cx + 0.3 * size * math.cos(a), cy + 0.3 * size * math.sin(a))
        moves += 1
    page.mouse.up()
    return moves


def train_default_pair(folder: Path) -> tuple[Path, Path]:
    from vae.core.data import load_dataset
    from vae.services.workflow import default_run, train_models

    data = load_dataset("mnist-bundled")
    model_config, train_config = default_run(data)
    train_models(data, "both", model_config, train_config, folder, "mnist-2d")
    return folder / "mnist-2d-vae.safetensors", folder / "mnist-2d-ae.safetensors"


def measure(vae: Path, ae: Path | None, opens: int, drag_seconds: float, work: Path) -> dict[str, Any]:
    import torch

    from vae.core.checkpoint import load_checkpoint
    from vae.services.standalone_pad import export_pad

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    text = export_pad(vae, ae, test_hooks=True)
    export_s = time.perf_counter() - start
    plain = export_pad(vae, ae)  # the file a teacher gets: no test hooks (same size within bytes)
    meters, packed = meter_contents(plain), packed_sizes(plain)
    everything = len(export_pad(vae, ae, max_bytes=10**9).encode("utf-8"))  # the hole meter's every part in, whatever the size
    path = work / "pad.html"
    path.write_text(text, encoding="utf-8")
    paints, asked_all, drags = [], [], []
    with launch_chromium() as browser:
        for _ in range(opens):
            page, asked = open_offline(browser, path)
            paints.append(float(page.wait_for_function(PAINTED, polling="raf", timeout=10_000).json_value()))
            asked_all.append(asked)
            page.context.close()
        page, asked = open_offline(browser, path)
        page.wait_for_function(READY, timeout=10_000)
        page.evaluate(FRAME_COUNTER)
        page.evaluate("() => window.__latentPadStats.reset()")
        moves = drag_circles(page, drag_seconds)
        page.wait_for_timeout(200)
        counts = page.evaluate("() => window.__frameCount")
        stats = page.evaluate("() => ({ frames: window.__latentPadStats.frames, decodes: window.__latentPadStats.decodes, "
                              "decodeMs: window.__latentPadStats.decodeMs })")
        drags.append({"moves": moves, **counts, "pad_frames": stats["frames"], "decodes": stats["decodes"],
                      "decode_ms": percentile(stats["decodeMs"], 50)})
        model = load_checkpoint(vae).model
        grid = [[float(a), float(b)] for a in np.linspace(-3, 3, 7) for b in np.linspace(-3, 3, 7)]
        with torch.no_grad():
            reference = model.decode(torch.tensor(grid)).reshape(len(grid), -1).numpy()
        browser_out = np.array([page.evaluate("(z) => window.__latentPadDecode(z, 0)", z) for z in grid])
        decode_gap = float(np.abs(browser_out - reference).max())
        page.context.close()
    return {"bytes": len(plain.encode("utf-8")), "bytes_hooks": path.stat().st_size, "export_s": export_s, "paints_ms": paints,
            "asked": asked_all + [asked], "url": path.resolve().as_uri(), "drags": drags, "decode_gap": decode_gap,
            "load": load_note(load_before, os.getloadavg()[0]), "meters": meters, "bytes_everything": everything,
            "packed": packed}


def embedded_data(text: str) -> dict[str, Any]:
    import json
    import re

    found = re.search(r'<script type="application/json" id="latent-pad-data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1)) if found else {}


def packed_sizes(text: str) -> str:
    """Each packed net in the file (the decoders, the judge): its deflated bytes and bits a weight."""
    data = embedded_data(text)
    parts = [(d["label"] + " decoder", d["export"]) for d in data.get("decoders", [])]
    parts += [("judge", m["judge"]["export"]) for m in data.get("meters") or [] if m.get("judge") and m["judge"].get("export")]
    out = []
    for name, export in parts:
        meta = export.get("packed") if export else None
        if meta:
            size = len(meta["data"]) * 3 // 4 - meta["data"][-2:].count("=")  # base64 -> bytes
            out.append(f"{name} {size / 1e3:,.0f} kB ({8 * size / meta['n']:.1f} bits a weight)")
    return "; ".join(out) or "none"


def meter_contents(text: str) -> str:
    """What the file's hole meters hold and what was left out to keep it within 2 MB, in words."""
    meters = embedded_data(text).get("meters")
    if not meters:
        return "no hole meter (none of its parts fits)"
    parts = {"judge": "the judge", "posterior": "q(z)", "encoder": "the encoder"}
    return "; ".join(f"{m['kind'].upper()}: " + ", ".join([parts[k] for k in parts if m[k]] or ["nothing"])
                     + (f" (left out: {', '.join(parts[k] for k in m['absent'])})" if m["absent"] else "") for m in meters)


def report(r: dict[str, Any], argv: list[str] | None, source: str) -> str:
    d = r["drags"][0]
    nothing_else = all(a == [r["url"]] for a in r["asked"])
    paints = r["paints_ms"]
    lines = [
        SECTION, "",
        f"`{command_line('bench.standalone_pad', argv)}` on {machine()}; {source}. {r['load']}", "",
        "| measure | value | target |", "|---|---|---|",
        f"| file size (no test hooks) | {r['bytes']:,} bytes ({r['bytes'] / 1e6:.2f} MB) | at most 2 MB: {'met' if r['bytes'] <= TARGET_BYTES else 'MISSED'} |",
        f"| the hole meter in the file | {r['meters']} | the judge and q(z), where they fit |",
        f"| packed weights (integer codes of measured steps, deflated) | {r['packed']} | |",
        f"| the file with every part of the meter (judge, q(z), encoders) | {r['bytes_everything']:,} bytes "
        f"({r['bytes_everything'] / 1e6:.2f} MB) | |",
        f"| export time (load, map, pack) | {r['export_s']:.2f} s | |",
        f"| first decoded image painted, from navigation start | {spread([p / 1000 for p in paints])}, {len(paints)} opens "
        f"| within 1 s: {sum(p <= 1000 for p in paints)} of {len(paints)} opens |",
        f"| requests other than the file itself | {'none' if nothing_else else 'SOME'} (every one aborted by the test route) | none |",
        f"| drag: animation frames / with a pointer event / decoded and painted | {d['frames']} / {d['withInput']} / {d['pad_frames']} "
        f"({d['moves']} mouse moves) | a fresh decode on every frame with input: {'met' if d['pad_frames'] >= d['withInput'] else 'MISSED'} |",
        f"| decode time per decoder (median, in the drag) | {d['decode_ms']:.2f} ms | |",
        f"| max \\|browser - PyTorch\\| over a 7 × 7 grid of z in [-3, 3]² | {r['decode_gap']:.1e} | at most 1e-4 |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.standalone_pad", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of {RESULTS.relative_to(REPO_ROOT)}")
    ap.add_argument("--vae", type=Path, help="the VAE checkpoint (default: train the default pair, about a minute)")
    ap.add_argument("--ae", type=Path, help="the AE checkpoint of the same pair")
    ap.add_argument("--opens", type=int, default=5, help="times the file is opened for the first paint (default 5)")
    ap.add_argument("--drag-seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.vae is None:
            vae, ae = train_default_pair(work)
            source = "the default pair (`mnist-2d`, trained here on `mnist-bundled` with the app's recipe)"
        else:
            vae, ae = args.vae, args.ae
            source = f"`{vae.name}`" + (f" + `{ae.name}`" if ae else "")
        result = measure(vae, ae, args.opens, args.drag_seconds, work)
    publish(SECTION, report(result, argv, source), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
