"""The judge's training time and test accuracy per dataset (vae.analysis.judge, issue 11 item 3).

    python -m bench.judge [--datasets mnist-bundled digits] [--repeats 5] [--threads 0 1] [--write]

Each repeat calls `train_judge(data)` as `judge_for` does on a cache miss (the default recipe:
JudgeRecipe, seed 0, the dataset's training split only) and times it two ways: the training
loop alone (`Judge.train_seconds`, what the cache file records) and the whole call (the loop
plus scoring the test split). The recipe is seeded, so the accuracy is the same every repeat;
the table gives it once, measured on the dataset's test split (never trained on). Targets
(issue 11): trained in seconds, test accuracy >= 97 % on mnist-bundled and >= 95 % on digits.
`--threads N ...`: one row per dataset and torch intra-op thread count (0: torch's default, the
core count, which is what a server's first run trains it with). On a busy machine the one-thread
row shows what contention does to the default: two threads wait for each other at every op.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from bench.harness import command_line, load_note, machine, publish, spread
from vae.analysis.judge import DEFAULT_RECIPE, train_judge
from vae.core.data import load_dataset

SECTION = "## Judge training"
TARGET_ACCURACY = {"mnist-bundled": 0.97, "digits": 0.95}  # issue 11 item 3
DEFAULT_THREADS = torch.get_num_threads()


def bench_dataset(name: str, repeats: int, data_root: str | None, threads: int) -> dict:  # type: ignore[type-arg]
    data = load_dataset(name, data_root=data_root, download=False)
    torch.set_num_threads(threads or DEFAULT_THREADS)
    loop_s, call_s, cpu_s, accuracies = [], [], [], set()
    for r in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        judge = train_judge(data)
        call_s.append(time.perf_counter() - start)
        cpu_s.append(time.process_time() - cpu_start)
        loop_s.append(judge.train_seconds)
        accuracies.add(round(judge.test_accuracy, 6))
        print(f"{name}, {torch.get_num_threads()} threads, {r + 1}/{repeats}: loop {judge.train_seconds:.2f} s, "
              f"call {call_s[-1]:.2f} s ({cpu_s[-1]:.2f} CPU-s), test accuracy {judge.test_accuracy:.4f}", file=sys.stderr)
    return {"data": data, "threads": torch.get_num_threads(), "default": not threads, "loop_s": loop_s, "call_s": call_s, "cpu_s": cpu_s,
            "accuracies": sorted(accuracies)}


def report(results: list[dict], repeats: int, command: str, load: tuple[float, float]) -> str:  # type: ignore[type-arg]
    recipe = DEFAULT_RECIPE
    lines = [
        SECTION, "",
        f"`{command}` — `vae.analysis.judge.train_judge` (what `judge_for` runs on a cache miss) on each dataset's "
        f"training split, {repeats} repeats; the recipe: conv3x3 {recipe.channels[0]} → conv3x3 {recipe.channels[1]} "
        f"(each ReLU + 2×2 max-pool) → {recipe.hidden} → classes, Adam with a one-cycle schedule to lr {recipe.lr:g}, "
        f"{recipe.samples:,} training images seen in batches of {recipe.batch_size}, seed {recipe.seed}; one row per torch "
        f"intra-op thread count (torch's default here: {DEFAULT_THREADS}). Seconds, median (min, max); the "
        "accuracy on the dataset's test split (the same every repeat: the recipe is seeded). The CPU time (this process, "
        "all its threads) is what a busy machine inflates least: on one thread it is about the time an idle machine takes.",
        "",
        "| dataset | images (train / test) | threads | training loop | whole call (loop + test accuracy) | its CPU time | test accuracy | target |",
        "|---|---|---:|---|---|---|---:|---|",
    ]
    for r in results:
        data = r["data"]
        c, h, w = data.image_shape
        accuracy = r["accuracies"][0] if len(r["accuracies"]) == 1 else float("nan")
        target = TARGET_ACCURACY.get(data.name)
        verdict = "—" if target is None else f"≥ {target:.0%}: {'meets' if accuracy >= target else '**misses**'}"
        shown = (f"**{accuracy:.2%}**" if len(r["accuracies"]) == 1 else
                 "differs between repeats: " + ", ".join(f"{a:.2%}" for a in r["accuracies"]))
        threads = f"{r['threads']}{' (default)' if r['default'] else ''}"
        lines.append(f"| {data.name} ({h}×{w}) | {data.x_train.shape[0]:,} / {data.x_test.shape[0]:,} | {threads} | {spread(r['loop_s'])} | "
                     f"{spread(r['call_s'])} | {spread(r['cpu_s'], 'CPU-s')} | {shown} | {verdict} |")
    lines += ["", f"Machine: {machine()}. {load_note(*load)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judge", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist-bundled", "digits"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                        help="torch intra-op threads, one row each (0: torch's default). Default: 0 1")
    parser.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    load_before = os.getloadavg()[0]
    results = [bench_dataset(name, args.repeats, args.data_root, threads) for name in args.datasets for threads in args.threads]
    text = report(results, args.repeats, command_line("bench.judge", argv), (load_before, os.getloadavg()[0]))
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
