"""One model on one process or two (torchrun, DDP over gloo) on this CPU: images/s and the
bytes all-reduced per step.

    python -m bench.distributed [--epochs 2] [--repeats 3] [--write]

Every run trains the 784-400-20 MLP VAE on the bundled MNIST split (8,000 train images) with
global batch 128, Adam lr 1e-3, seed 0, through `vae.core.train.fit` (the same path as
`python -m vae train`), in a fresh Python process:

- 1 process, 1 thread and 1 process, 2 threads: plain `python -m bench.distributed --worker`;
- 2 processes, 1 thread each: `python -m torch.distributed.run --standalone --nproc_per_node 2`
  on the same worker (each process trains on 64 images of every global batch of 128).

images/s is fit()'s own per-epoch figure (global images over the epoch's training time, test
evaluation left out), the median epoch of each run; the runs alternate, `--repeats` times, so a
burst of load from other work hits every configuration. The bytes all-reduced per step are
counted, not computed: the two-process worker wraps the model with DDP the way fit() does
(`vae.core.distributed.wrap`), registers a communication hook that adds up the size of every
gradient bucket it all-reduces, and runs a few steps; the table sets that against the
parameter count x 4 bytes. With 2 cores, 2 processes can at best match 1 process on 2 threads:
the point of the run is the overhead of DDP, not a speed-up. No GPU here: CPU vs GPU is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import REPO_ROOT, command_line, load_note, machine, publish

SECTION = "## Training on several processes"
HIDDEN, LATENT, BATCH, LR = 400, 20, 128, 1e-3
COUNT_STEPS = 5  # DDP steps whose all-reduced bytes are counted

CONFIGS = (  # (label, processes, threads per process, device)
    ("1 process, 1 thread", 1, 1, "cpu"),
    ("1 process, 2 threads", 1, 2, "cpu"),
    ("2 processes (torchrun, gloo), 1 thread each", 2, 1, "cpu"),
)
GPU_CONFIGS = (  # --gpu: on a machine with CUDA, the same model on one GPU beside the CPU rows
    ("1 process, 1 GPU (cuda)", 1, 1, "cuda"),
)
GPU_SECTION = "### The same on a GPU machine"


def worker(epochs: int, out: Path, device_name: str = "cpu") -> None:
    """One training process (one rank under torchrun): fit(), then count DDP's all-reduced bytes."""
    import torch

    from vae.core import distributed
    from vae.core.config import ModelConfig, TrainConfig
    from vae.core.data import load_dataset
    from vae.core.models import build_model
    from vae.core.train import fit
    from vae.settings import settings

    world = settings().world_size
    group = distributed.start(torch.device("cpu")) if world > 1 else None
    data = load_dataset("mnist-bundled")
    config = ModelConfig(image_shape=data.image_shape, latent_dim=LATENT, hidden=(HIDDEN,))
    model = build_model(config, seed=0)
    train = TrainConfig(dataset=data.name, epochs=epochs, batch_size=BATCH, lr=LR, seed=0, snapshot_points=0, world_size=world)
    result = fit(model, data, train, device=device_name)
    report: dict[str, object] = {
        "device": torch.cuda.get_device_name() if device_name == "cuda" else "cpu",
        "images_per_s": [row["images_per_s"] for row in result.history],
        "test_elbo": result.history[-1]["test_elbo"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
    }
    if group is not None:
        report.update(count_allreduced_bytes(build_model(config, seed=0), data, group))
        distributed.finish()
    if group is None or group.main:
        out.write_text(json.dumps(report))


def count_allreduced_bytes(model, data, group) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Run COUNT_STEPS training steps under DDP with a hook that adds up every bucket it all-reduces."""
    import torch
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from vae.core import distributed
    from vae.core.losses import elbo_terms

    counted = {"bytes": 0, "buckets": 0}

    def counting(state, bucket):  # type: ignore[no-untyped-def]
        counted["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
        counted["buckets"] += 1
        return allreduce_hook(None, bucket)  # the default: average the bucket over the ranks

    ddp = distributed.wrap(model, torch.device("cpu"))
    ddp.register_comm_hook(None, counting)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    lo, hi = distributed.local_rows(group, BATCH)
    for i in range(COUNT_STEPS):
        ddp.module.take(BATCH, lo, hi)
        loss = elbo_terms(ddp, data.x_train[i * BATCH + lo : i * BATCH + hi], gen).loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"bytes_per_step": counted["bytes"] / COUNT_STEPS, "buckets_per_step": counted["buckets"] / COUNT_STEPS}


def run(processes: int, threads: int, epochs: int, device: str = "cpu") -> dict:
    """One configuration in fresh processes; rank 0's report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT)}
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            env.pop(name, None)
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
        cmd = [*launcher, "-m", "bench.distributed", "--worker", "--epochs", str(epochs), "--report", str(out),
                               "--device", device]
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        return dict(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"write the '{SECTION}' section of bench/RESULTS.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--gpu", action="store_true",
                        help=f"also one process on the GPU (CUDA); prints the '{GPU_SECTION}' subsection instead")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.epochs, args.report, args.device)
        return 0
    configs = CONFIGS + (GPU_CONFIGS if args.gpu else ())

    load_before = os.getloadavg()[0]
    rates: dict[str, list[float]] = {label: [] for label, *_ in configs}
    reports: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for label, processes, threads, device in configs:
            report = run(processes, threads, args.epochs, device)
            rates[label].append(statistics.median(report["images_per_s"]))
            reports[label] = report
            print(f"repeat {repeat + 1}: {label}: {rates[label][-1]:,.0f} images/s", file=sys.stderr)
    load_after = os.getloadavg()[0]

    base = statistics.median(rates[CONFIGS[0][0]])
    lines = [
        GPU_SECTION if args.gpu else SECTION,
        "",
        *(["Run on a lent GPU machine (no Streamlit there; its own torch build):"] if args.gpu else []),
        f"`{command_line('bench.distributed', argv)}` — MLP VAE 784-{HIDDEN}-{LATENT}, bundled MNIST split "
        f"(8,000 train), global batch {BATCH}, Adam lr {LR}, {args.epochs} epochs, seed 0, through fit(); "
        f"each run a fresh process (or two, under torchrun), {args.repeats} alternating repeats.",
        "",
        f"Machine: {machine()}. {load_note(load_before, load_after)}",
        "",
        "| configuration | images/s: median run (min, max) | vs 1 process, 1 thread | test ELBO (nats) |",
        "|---|---:|---:|---:|",
    ]
    for label, *_ in configs:
        v = sorted(rates[label])
        lines.append(f"| {label} | **{statistics.median(v):,.0f}** ({v[0]:,.0f}, {v[-1]:,.0f}) | "
                     f"{statistics.median(v) / base:.2f}x | {reports[label]['test_elbo']:.2f} |")
    two = reports[CONFIGS[2][0]]
    params = int(two["parameters"])
    lines += [
        "",
        f"All-reduced per step (2 processes), counted by a DDP communication hook over {COUNT_STEPS} steps: "
        f"**{two['bytes_per_step']:,.0f} bytes** in {two['buckets_per_step']:.0f} bucket(s); the model has "
        f"{params:,} parameters x 4 bytes (fp32 gradients) = {params * 4:,} bytes. Besides the gradients fit() "
        f"all-reduces 4 floats (the running sums and the stop flag) every 10 steps and broadcasts the test "
        f"numbers and the noise generator's state once per epoch.",
        "",
        "Notes: images/s is fit()'s per-epoch figure (global images over the epoch's training time; the test "
        "evaluation is left out), the median epoch of each run. The test ELBO is the same for every configuration "
        "up to float rounding: two processes train the weights one process trains with the same global batch "
        "(tests/test_distributed.py). "
        + (f"Two processes on {os.cpu_count()} cores compete with each other and with every other process for the same cores; "
           if (os.cpu_count() or 1) <= 2 else "")
        + "Each of the two processes pays an all-reduce of the whole gradient every step. "
        + (f"The GPU row trains on {reports[GPU_CONFIGS[0][0]]['device']} (fit(device='cuda')), the same small MLP at batch "
           f"{BATCH} (GPU utilisation was not measured); one GPU means one "
           "nccl process at most (two processes would need two GPUs), so the 2-process row runs gloo on the CPU there too."
           if args.gpu else "CPU vs one GPU is measured on a GPU machine, below (`--gpu`)."),
    ]
    if args.gpu:  # measured on another machine: printed, to be placed under the CPU section by hand
        print("\n".join(lines))
        return 0
    publish(SECTION, "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
