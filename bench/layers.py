"""The map's layers: compute time of each on a 64 × 64 grid, on the CPU, cold and cached.

    python -m bench.layers [--models DIR] [--dataset digits] [--latent-dim 2] [--repeats 5] [--grid 64] [--write]

The pair: the default pair for the dataset (`vae.services.workflow.default_run`, trained here
into a temporary folder), or the first VAE + AE pair of that dataset and latent size found in
`--models`. The box: the map's ranges over both models' test codes (`plots.axis_ranges`), as
Compare draws them; the plane: the identity for a 2-D latent, the PCA map's plane above.

The judge: `vae.analysis.judge.judge_for(data)` where that exists; otherwise a stand-in (a
one-hidden-layer MLP, 128 units, trained here on the training split for a few seconds), named
in the section so the two are never confused.

Per model and layer (vae.analysis.layers):
  cold    a new, empty cache folder: everything computed (the aggregate and the ellipses
          include encoding their test images) and the entry written
  cached  the same call again: the entry read back from disk
  prior   the circles (not cached: computed each time)
`--repeats` cold/cached pairs each; the table gives the median (min, max). Target: under 1 s
per layer (issue 11).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.harness import REPO_ROOT, RESULTS, command_line, load_note, machine, publish, spread
from vae.analysis import layers
from vae.analysis.judge import Judges, Verdict
from vae.analysis.maps import compute_map, default_method
from vae.core.checkpoint import Checkpoint, load_checkpoint
from vae.core.data import Dataset, load_dataset
from vae.services.plots import axis_ranges

SECTION = "## Map layers"
TARGET_S = 1.0


class StandInJudge:
    """An MLP classifier (pixels -> 128 -> classes), trained on the training split: the bench's
    judge until vae.analysis.judge ships `judge_for`."""

    def __init__(self, data: Dataset, epochs: int = 5, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.class_names = data.class_names
        d = int(np.prod(data.image_shape))
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 128), torch.nn.ReLU(),
                                       torch.nn.Linear(128, len(data.class_names)))
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        x, y = data.x_train, data.y_train
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0])
            for i in range(0, x.shape[0], 128):
                idx = perm[i : i + 128]
                loss = torch.nn.functional.cross_entropy(self.net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        with torch.no_grad():
            self.accuracy = float((self.net(data.x_test).argmax(1) == data.y_test).float().mean())

    @torch.no_grad()
    def judge(self, images: torch.Tensor) -> Verdict:
        probs = torch.softmax(self.net(images), 1).numpy()
        return Verdict(probs.argmax(1).astype(np.int64), probs.max(1).astype(np.float32), probs.astype(np.float32))


def get_judge(data: Dataset) -> tuple[Judges, str]:
    from vae.analysis import judge as judge_module

    judge_for = getattr(judge_module, "judge_for", None)
    if judge_for is not None:
        found = judge_for(data)
        if found is not None:
            return found, f"the dataset's judge (`vae.analysis.judge.judge_for`, {type(found).__name__})"
    t0 = time.perf_counter()
    stand_in = StandInJudge(data)
    pixels = int(np.prod(data.image_shape))
    return stand_in, (f"a stand-in judge ({pixels} -> 128 -> {len(data.class_names)} MLP trained here in {time.perf_counter() - t0:.1f} s, "
                      f"test accuracy {stand_in.accuracy:.3f}; `vae.analysis.judge.judge_for` is not there yet)")


def get_pair(data: Dataset, latent_dim: int, models: Path | None, work: Path) -> dict[str, Checkpoint]:
    from vae.services.workflow import default_run, find_pairs, list_models, train_models

    if models is not None:
        entries = [e for e in list_models(models) if e.dataset == data.name and e.latent_dim == latent_dim]
        for pair in find_pairs(entries).values():
            if {"vae", "ae"} <= set(pair):
                return {k: load_checkpoint(pair[k].path) for k in ("vae", "ae")}
        raise SystemExit(f"no {latent_dim}-D {data.name} VAE + AE pair in {models}")
    model_config, train_config = default_run(data, latent_dim=latent_dim)
    t0 = time.perf_counter()
    trained = train_models(data, "both", model_config, train_config, work, f"bench-{latent_dim}d")
    print(f"trained the default pair in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return {t.kind: load_checkpoint(t.path) for t in trained}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_model(ckpt: Checkpoint, data: Dataset, judge: Judges, plane: layers.Plane, box: layers.Box,
                n: int, repeats: int, work: Path) -> dict[str, tuple[list[float], list[float]]]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    calls: dict[str, Callable[[Path], object]] = {
        "landscape": lambda c: layers.compute_landscape(ckpt.model, judge, ckpt.sha256, plane, box, n=n, cache=c),
        "q(z) density": lambda c: layers.compute_aggregate(ckpt.model, data.x_test, ckpt.sha256, plane, box, n=n, cache=c),
        "q(z∣x) ellipses": lambda c: layers.compute_ellipses(ckpt.model, data.x_test, ckpt.sha256, plane, cache=c),
        "prior circles": lambda c: layers.prior_circles(plane),
    }
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, call in calls.items():
        cold, cached = [], []
        for r in range(repeats):
            folder = work / f"cache-{ckpt.kind}-{name.replace(' ', '_')}-{r}"
            cold.append(timed(lambda: call(folder)))  # noqa: B023 - called at once
            cached.append(timed(lambda: call(folder)))  # noqa: B023
        out[name] = (cold, cached)
    return out


def ms(seconds: list[float]) -> str:
    return spread([1000 * s for s in seconds], "ms")


def report(results: dict[str, dict[str, tuple[list[float], list[float]]]], data: Dataset, latent_dim: int, plane: layers.Plane,
           box: layers.Box, n: int, n_q: int, judge_note: str, cmd: str, load: tuple[float, float]) -> str:
    (x0, x1), (y0, y1) = box
    lines = [
        SECTION, "", f"`{cmd}`", "",
        f"{data.name} ({data.image_shape[1]}×{data.image_shape[2]}), the default {latent_dim}-D pair; plane: {plane.kind}; "
        f"box x {x0:.2f}..{x1:.2f}, y {y0:.2f}..{y1:.2f}; grid {n} × {n}; q(z) over {n_q:,} test images, "
        f"ellipses for {min(layers.DEFAULT_ELLIPSES, data.x_test.shape[0])}. Judge: {judge_note}. "
        f"Milliseconds per call, median (min, max); target < {TARGET_S * 1000:.0f} ms per layer.", "",
        "| model | layer | cold (computed, written) | cached (read back) |", "|---|---|---|---|",
    ]
    for kind, per_layer in results.items():
        for name, (cold, cached) in per_layer.items():
            lines.append(f"| {kind.upper()} | {name} | {ms(cold)} | {ms(cached)} |")
    lines += ["", f"Machine: {machine()}. {load_note(*load)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="a models folder holding a pair (default: train the default pair)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grid", type=int, default=layers.GRID)
    parser.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of {RESULTS.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, data_root=args.data_root, download=False)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pair = get_pair(data, args.latent_dim, args.models, work)
        judge, judge_note = get_judge(data)
        maps = {k: compute_map(c.model, data.x_test, default_method(args.latent_dim), c.sha256, cache=False)[0] for k, c in pair.items()}
        box = axis_ranges(*(m.points_ for m in maps.values()))
        results = {}
        for kind, ckpt in pair.items():
            plane = layers.plane_of(maps[kind])
            results[kind] = bench_model(ckpt, data, judge, plane, box, args.grid, args.repeats, work)
        n_q = min(layers.DEFAULT_Q_SAMPLE, data.x_test.shape[0])
        text = report(results, data, args.latent_dim, plane, box, args.grid, n_q, judge_note,
                      command_line("bench.layers", argv), (load_before, os.getloadavg()[0]))
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
