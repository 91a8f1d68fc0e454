"""Your own images: loading and training speed on a folder of 10,000 32x32 RGB PNGs, and the memory.

    python -m bench.folder_data [--images 10000] [--repeats 3] [--epochs 1] [--train-repeats 2] [--write]

The folder is written first into a temporary directory (removed at the end): the `shapes`
generator's images (vae.core.shapes, 32x32, seed 0), each shape painted in a random colour on a
random dark background, saved as PNG with Pillow in two class folders (the shape's class
halves). Then, alternately `--repeats` times:

- load, ours: `load_dataset("folder:<dir>")` (vae.core.folders: header pass, Pillow decode,
  one float32 tensor), cache cleared before each run; images/s = images / seconds.
- load, reference: torchvision's `ImageFolder` with `transforms.ToTensor()` iterated once
  through `DataLoader(batch_size=128, num_workers=0)`: the conventional path, decoding only.

Training: `vae.core.train.fit()` on the loaded dataset (8,000 train images), the default MLP and
the default conv for (3, 32, 32) (`default_model_config`), latent 8, batch 128, `--epochs`
epochs, `--train-repeats` runs each; images/s is the rate fit() reports for its training steps (the test evaluation is
excluded). Memory: the dataset's tensors (x and y, train and test) in bytes, the PNG folder on
disk, and the growth of the process's resident memory over the first load, with the dataset held.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import REPO_ROOT, RESULTS, command_line, load_note, machine, publish, spread
from vae.core.config import TrainConfig
from vae.core.data import _load_cached, load_dataset
from vae.core.models import build_model, default_model_config
from vae.core.train import Progress, fit

SECTION = "## Your own images (folder of PNGs)"
SIZE = 32
BATCH = 128


def write_pngs(folder: Path, n: int, seed: int = 0) -> int:
    """n coloured 32x32 shapes as PNGs in two class folders; returns the bytes on disk."""
    from PIL import Image

    from vae.core import shapes

    masks, factors = shapes.generate(n, SIZE, seed=seed)
    rng = np.random.default_rng(seed)
    fg = rng.integers(96, 256, (n, 1, 1, 3))
    bg = rng.integers(0, 64, (n, 1, 1, 3))
    rgb = (masks[..., None] * fg + (1 - masks[..., None]) * bg).round().astype(np.uint8)
    total = 0
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
    for i in range(n):
        path = folder / ("a" if factors[i, 0] < 1.5 else "b") / f"{i:05d}.png"
        Image.fromarray(rgb[i], "RGB").save(path)
        total += path.stat().st_size
    return total


def resident_bytes() -> int:
    """The process's resident memory now (Linux /proc/self/statm; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def load_ours(folder: Path) -> tuple[float, object]:
    _load_cached.cache_clear()
    start = time.perf_counter()
    data = load_dataset(f"folder:{folder}")
    return time.perf_counter() - start, data


def load_reference(folder: Path) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    start = time.perf_counter()
    loader = DataLoader(datasets.ImageFolder(str(folder), transform=transforms.ToTensor()), batch_size=BATCH, num_workers=0)
    for _x, _y in loader:
        pass
    return time.perf_counter() - start


def train_rate(data, arch: str, epochs: int) -> float:  # type: ignore[no-untyped-def]
    config = default_model_config(data.image_shape, arch=arch, latent_dim=8)
    model = build_model(config, seed=0)
    rates: list[float] = []

    def on_progress(p: Progress) -> None:
        if p.kind == "epoch":
            rates.append(p.images_per_s)

    fit(model, data, TrainConfig(dataset=data.name, epochs=epochs, batch_size=BATCH, snapshot_points=0), callback=on_progress, device="cpu")
    return float(np.mean(rates))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.folder_data", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per run (default 1)")
    parser.add_argument("--train-repeats", type=int, default=2, help="training runs per architecture (default 2)")
    parser.add_argument("--write", action="store_true", help=f"replace the '{SECTION}' section of {RESULTS.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    if min(args.images, args.repeats, args.epochs, args.train_repeats) < 1:
        parser.error("--images, --repeats, --epochs and --train-repeats must be >= 1")
    import PIL.PngImagePlugin  # noqa: F401  the imports both loaders need, before any clock starts
    import torchvision.datasets  # noqa: F401

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        folder = Path(tmp) / "pngs"
        start = time.perf_counter()
        disk = write_pngs(folder, args.images)
        write_s = time.perf_counter() - start
        print(f"wrote {args.images:,} PNGs ({disk / 1e6:.1f} MB) in {write_s:.1f} s", file=sys.stderr)
        rss_before = resident_bytes()
        ours: list[float] = []
        reference: list[float] = []
        data = None
        for r in range(args.repeats):
            seconds, data = load_ours(folder)
            ours.append(seconds)
            if r == 0:
                rss_growth = resident_bytes() - rss_before  # with the dataset held (in `data` and the loader's cache)
            reference.append(load_reference(folder))
            print(f"load {r + 1}: ours {ours[-1]:.2f} s, reference {reference[-1]:.2f} s", file=sys.stderr)
    assert data is not None
    tensors = sum(t.numel() * t.element_size() for t in (data.x_train, data.y_train, data.x_test, data.y_test))  # type: ignore[attr-defined]
    training = {arch: [train_rate(data, arch, args.epochs) for _ in range(args.train_repeats)] for arch in ("mlp", "conv")}
    for arch, rates in training.items():
        print(f"train {arch}: {', '.join(f'{v:,.0f}' for v in rates)} images/s", file=sys.stderr)
    n = args.images
    conv = default_model_config(data.image_shape, arch="conv", latent_dim=8)  # type: ignore[attr-defined]
    rows = [
        ("load, ours: `folder:` → one float32 tensor", spread([n / s for s in ours], "images/s"), spread(ours)),
        ("load, reference: ImageFolder + ToTensor + DataLoader (decode only)", spread([n / s for s in reference], "images/s"), spread(reference)),
        *[(f"train, fit(), {arch.upper()}" + (f" (channels {conv.channels})" if arch == "conv" else f" (hidden {conv.hidden})"),
           spread(rates, "images/s"), "") for arch, rates in training.items()],
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    text = f"""{SECTION}

`{command_line("bench.folder_data", argv)}` — {n:,} 32×32 RGB PNGs in two class folders
({disk / 1e6:.1f} MB on disk, written in {write_s:.1f} s), loaded {args.repeats} times alternately with the
conventional torchvision path; training {args.train_repeats} run(s) of {args.epochs} epoch(s) on the {len(data.x_train):,} train images,
batch {BATCH}, latent 8, {torch.get_num_threads()} torch threads. Median (min, max).

| measurement | rate | seconds |
|---|---|---|
{table}

Memory: the dataset's tensors take **{tensors / 2**20:.1f} MiB** (float32 {tuple(data.image_shape)}, 4 bytes per value: {n:,} × 3 × 32 × 32 × 4);
the process's resident memory grew by {rss_growth / 2**20:.0f} MiB over the first load, with the dataset held afterwards
(the tensors plus what the allocator keeps of the decoded uint8 images).

Machine: {machine()}. {load_note(load_before, os.getloadavg()[0])}"""
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
