"""Command line: python -m vae train | evaluate | embed | judge | animate | export-pad (see --help of each)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vae.core.config import ARCHS, LATENT_DIM_RANGE, PRECISIONS, ModelConfig, TrainConfig
from vae.core.errors import ConfigError, LatentExplorerError, TrainingDiverged

SEED_RANGE = (0, 2**32 - 1)  # what numpy's and torch's seeding both accept, as TrainConfig.seed
DIST_TIMEOUT_S = 600.0  # vae.core.distributed.DEFAULT_TIMEOUT_S, without importing torch to build the parser


def _progress_printer(stream=None):  # type: ignore[no-untyped-def]
    """A one-line progress bar on `stream` (default: sys.stderr as it is when training runs)."""
    last = [0.0]

    def show(kind: str, p) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        if p.kind == "step" and now - last[0] < 0.1 and p.step < p.total_steps:
            return
        last[0] = now
        width = 30
        filled = int(width * p.fraction)
        bar = "#" * filled + "-" * (width - filled)
        # an AE has no KL term and no ELBO: its measure is the reconstruction log p(x|z) alone
        terms = f"recon {p.recon:8.2f}" if kind == "ae" else f"recon {p.recon:8.2f}  KL {p.kl:6.2f}  ELBO {p.elbo:8.2f}"
        line = f"\r{kind.upper():3s} [{bar}] {100 * p.fraction:5.1f}%  epoch {p.epoch}/{p.epochs}  {terms}  {p.images_per_s:8.0f} img/s"
        if p.kind == "epoch" and p.record:
            line += f"  test recon {p.record['test_recon']:8.2f}" if kind == "ae" else f"  test ELBO {p.record['test_elbo']:8.2f}"
        out = stream or sys.stderr  # looked up per call, so a redirected stderr gets the bar
        out.write(line)
        if p.kind == "epoch" and p.epoch == p.epochs:
            out.write("\n")
        out.flush()

    return show


def check_seed(seed: int) -> int:
    lo, hi = SEED_RANGE
    if not lo <= seed <= hi:
        raise ConfigError(f"seed: must be an integer from {lo} to 2**32-1, got {seed}")
    return seed


def cmd_train(args: argparse.Namespace) -> int:
    from vae.core import distributed
    from vae.settings import settings

    world = settings().world_size  # > 1 under torchrun: this process is one of `world` training one model
    # the same checks on every rank, before any of them joins the others
    train_config = _train_config(args, world)
    if world == 1:
        return _train_and_save(args, train_config, args.device, main=True)
    if not 1 <= args.dist_timeout <= 86_400:
        raise ConfigError(f"dist-timeout: must be from 1 to 86400 seconds, got {args.dist_timeout}")
    device = distributed.training_device(args.device)
    group = distributed.start(device, timeout_s=args.dist_timeout)
    try:
        if group.main:
            print(f"training on {world} processes ({'nccl' if device.type == 'cuda' else 'gloo'}, {device.type}); "
                  f"global batch {train_config.batch_size}, {train_config.batch_size // world} per process", file=sys.stderr)
        return _train_and_save(args, train_config, str(device), main=group.main)
    finally:
        distributed.finish()


def _train_config(args: argparse.Namespace, world_size: int) -> TrainConfig:
    from vae.core.data import DATASET_NAMES, OWN_DATA, is_dataset_name
    from vae.core.device import check_device
    from vae.services.workflow import check_name

    check_device(args.device)
    if not is_dataset_name(args.dataset):
        raise ConfigError(f"dataset: must be one of {', '.join(DATASET_NAMES)}, {OWN_DATA}, got {args.dataset!r}")
    args.dataset = own_dataset_name(args.dataset, args.image_size, args.channels)

    train_config = TrainConfig(
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta, seed=args.seed,
        world_size=world_size, precision=args.precision,
    ).validate()
    ModelConfig(arch=args.arch, latent_dim=args.latent_dim, hidden=tuple(args.hidden or (256,))).validate()  # fail before loading data
    check_name(Path(args.out).name.removesuffix(".safetensors"))
    return train_config


def _train_and_save(args: argparse.Namespace, train_config: TrainConfig, device: str | None, main: bool) -> int:
    """Load the data (each process its own copy), train, and (rank 0 only, `main`) save and report."""
    from vae.core.data import load_dataset
    from vae.core.models import default_model_config
    from vae.services.workflow import train_models

    data = load_dataset(args.dataset, data_root=args.data_root)
    base = default_model_config(data.image_shape, arch=args.arch, latent_dim=args.latent_dim)
    if args.hidden:
        base = ModelConfig(**{**base.to_dict(), "hidden": tuple(args.hidden)})
    base.validate()
    out = Path(args.out)
    if main:
        print(f"dataset: {data.description}", file=sys.stderr)
    trained = train_models(
        data, args.model, base, train_config, out.parent if out.parent != Path("") else Path("."), out.name.removesuffix(".safetensors"),
        callback=None if args.quiet or not main else _progress_printer(), device=device,
    )
    if not main:
        return 0  # rank 0 saves and reports
    for item in trained:
        m = item.metrics
        summary = f"test ELBO {m['elbo']:.2f} nats" if m.get("elbo") is not None else f"test recon {m['recon']:.2f} nats"
        print(f"saved {item.path} ({item.kind}, {summary})")
    return 0


def own_dataset_name(dataset: str, image_size: int | None, channels: str) -> str:
    """`--image-size` / `--channels` written into a folder:/npz: name (they apply to no other dataset)."""
    from vae.core.folders import dataset_spec, is_spec

    if not is_spec(dataset):
        if image_size is not None or channels != "auto":
            raise ConfigError(f"--image-size and --channels apply to folder:<path> and npz:<file> datasets, not {dataset!r}")
        return dataset
    return dataset_spec(dataset, image_size, channels)


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))


def _percent(v: object) -> str:
    return f"{100 * v:.1f} %" if isinstance(v, float) else _fmt(v)


def _load_model_and_data(checkpoint: str, dataset: str | None, data_root: str | None):  # type: ignore[no-untyped-def]
    """The checkpoint and the dataset to run it on (default: the one it was trained on), checked to fit."""
    from vae.core.checkpoint import load_checkpoint
    from vae.core.data import load_dataset

    ckpt = load_checkpoint(checkpoint)
    data = load_dataset(dataset or ckpt.dataset.get("name", "digits"), data_root=data_root)
    if data.image_shape != tuple(ckpt.model_config.image_shape):
        raise LatentExplorerError(f"dataset {data.name!r} has {data.image_shape} images; the model needs {tuple(ckpt.model_config.image_shape)}")
    return ckpt, data


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vae.analysis.metrics import full_report, judge_or_none

    check_seed(args.seed)
    ckpt, data = _load_model_and_data(args.checkpoint, args.dataset, args.data_root)
    report = full_report(ckpt.model, data.x_test, k=args.k, seed=args.seed, judge=judge_or_none(data),
                         factors=data.factors_test, factor_names=data.factor_names)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    samples = report["prior_samples"]
    rows = [
        ("model", f"{ckpt.kind} / {ckpt.model_config.arch} / {ckpt.model_config.latent_dim}-D"),
        ("dataset", f"{data.name} ({report['n_images']} test images)"),
        ("reconstruction log p(x|z)", _fmt(report["recon"])),
        ("KL(q(z|x) || p(z))", _fmt(report["kl"])),
        ("ELBO", _fmt(report["elbo"])),
        (f"log p(x) estimate (K={report['log_px_k']})", _fmt(report["log_px"])),
        ("active dims (KL > 0.01)", "not applicable (an AE has no KL term)" if report["active_dims"] is None
         else f"{report['active_dims']} / {ckpt.model_config.latent_dim}"),
        ("KL per dim", " ".join(f"{v:.2f}" for v in report["kl_per_dim"])),
        ("interpolation: mean step", _fmt(report["interpolation"]["mean_step"])),
        ("interpolation: worst step", _fmt(report["interpolation"]["worst_step"])),
        ("interpolation: jump ratio", _fmt(report["interpolation"]["jump_ratio"])),
        ("prior lines: worst step", _fmt(report["prior"]["worst_step"])),
        ("prior lines: jump ratio", _fmt(report["prior"]["jump_ratio"])),
        ("prior samples: round trip |mu(decode(z)) - z|", _fmt(samples["round_trip"])),
    ]
    if report["judge"]["available"]:
        k = samples["n_classes"]
        rows += [
            ("prior samples: recognised by the judge", _percent(samples["recognised"])),
            ("prior samples: judge's mean confidence", _fmt(samples["mean_confidence"])),
            ("prior samples: classes covered (>= 2 %)", f"{samples['classes_covered']} / {k}"),
            ("prior samples: class entropy (1 = even)", _fmt(samples["class_entropy"])),
            ("holes: unrecognisable share of the data's region", _percent(report["holes"]["share"])),
        ]
    else:
        rows.append(("judge-based measures", report["judge"]["note"]))
    if report.get("mig") is not None:
        mig = report["mig"]
        rows.append(("MIG against the true factors (1 = disentangled)", _fmt(mig["mig"])))
        rows += [(f"  MIG of {name} (dimension {mig['best_dim'][name]})", _fmt(gap)) for name, gap in mig["per_factor"].items()]
    width = max(len(k) for k, _ in rows)
    print("nats per image; pixel distances are mean absolute differences in [0, 1]")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


MIN_MAP_POINTS = {"identity": 1, "pca": 2, "tsne": 3}  # PCA needs 2 points for 2 axes; t-SNE's perplexity (>= 2) < points


def check_map_request(method: str, latent_dim: int, n: int | None, n_test: int) -> int:
    """`embed --method/--n` against the model and its test set; returns the number of points mapped."""
    from vae.analysis.maps import DEFAULT_SAMPLE

    if method == "identity" and latent_dim > 2:
        raise ConfigError(f"method: identity draws a latent of at most 2 dimensions and this model has {latent_dim}; use --method pca or tsne")
    need = 1 if method == "identity" or (method == "pca" and latent_dim == 1) else MIN_MAP_POINTS[method]
    if n is not None and n < need:
        raise ConfigError(f"n: a {method} map needs at least {need} test points, got {n}")
    points = min(n or DEFAULT_SAMPLE[method], n_test)
    if points < need:
        raise ConfigError(f"the test set has only {n_test} images; a {method} map needs at least {need}; use --method pca")
    return points


def cmd_embed(args: argparse.Namespace) -> int:
    from vae.analysis.maps import compute_map, default_method

    ckpt, data = _load_model_and_data(args.checkpoint, None, args.data_root)
    method = args.method or default_method(ckpt.model_config.latent_dim)
    check_map_request(method, ckpt.model_config.latent_dim, args.n, data.x_test.shape[0])
    start = time.perf_counter()
    fitted, index = compute_map(ckpt.model, data.x_test, method, ckpt.sha256, n=args.n, on_status=lambda s: print(s, file=sys.stderr))
    print(f"{method} map of {len(index)} test points ready in {time.perf_counter() - start:.2f} s (cached for the app)")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from vae.analysis.judge import judge_for, judge_path
    from vae.core.data import load_dataset

    data = load_dataset(args.dataset, data_root=args.data_root)
    start = time.perf_counter()
    judge = judge_for(data)
    seconds = time.perf_counter() - start
    if judge is None:
        report: dict[str, object] = {"dataset": data.name, "judge": None, "reason": "the dataset has no labels (fewer than 2 classes)"}
    else:
        report = {
            "dataset": data.name,
            "judge": repr(judge),
            "classes": list(judge.class_names),
            "test_accuracy": judge.test_accuracy,
            "n_train": int(data.x_train.shape[0]),
            "n_test": int(data.x_test.shape[0]),
            "train_seconds": judge.train_seconds,
            "cache": str(judge.path) if judge.path else None,
            "seconds": seconds,
        }
    if args.json:
        print(json.dumps(report, indent=2))
    elif judge is None:
        print(f"{data.name}: no judge ({report['reason']})")
    else:
        where = judge.path or f"not cached ({judge_path(data).parent} is not writable)"
        print(f"{data.name}: judge test accuracy {judge.test_accuracy:.2%} on {data.x_test.shape[0]:,} test images "
              f"(trained on {data.x_train.shape[0]:,} in {judge.train_seconds:.1f} s); ready in {seconds:.2f} s; cache: {where}")
    return 0


ANIMATIONS = ("interpolation", "traversal", "replay")


def cmd_animate(args: argparse.Namespace) -> int:
    """One GIF (vae.services.animation) of one checkpoint, or of a pair side by side."""
    import numpy as np

    from vae.analysis.maps import encode_means
    from vae.core.files import atomic_write
    from vae.services import animation

    if len(args.checkpoints) > 2:
        raise ConfigError(f"checkpoints: one, or a pair (VAE and AE) side by side; got {len(args.checkpoints)}")
    loaded = [_load_model_and_data(path, None, args.data_root) for path in args.checkpoints]
    ckpts, data = [c for c, _ in loaded], loaded[0][1]
    if len({(d.name, c.model_config.latent_dim) for c, d in loaded}) > 1:
        raise ConfigError("checkpoints: a pair must share its dataset and latent size")
    models, titles = [c.model for c in ckpts], [c.kind.upper() for c in ckpts] if len(ckpts) > 1 else None
    n_test = int(data.x_test.shape[0])
    if args.what == "interpolation":
        ends = []
        for name, i in (("from", args.from_image), ("to", args.to_image)):
            if not 0 <= i < n_test:
                raise ConfigError(f"{name}: a test image number from 0 to {n_test - 1}, got {i}")
        for model in models:
            ends.append(encode_means(model, data.x_test[[args.from_image, args.to_image]]))
        gif = animation.interpolation_gif(models, [e[0] for e in ends], [e[1] for e in ends], args.steps or 20, titles)
    elif args.what == "traversal":
        if len(models) > 1:
            raise ConfigError("traversal: animates one model; give one checkpoint")
        gif = animation.traversal_gif(models[0], np.zeros(models[0].latent_dim, np.float32), args.dim - 1, args.steps or 31)
    else:
        missing = [str(p) for p, c in zip(args.checkpoints, ckpts, strict=True) if c.snapshots is None or c.snapshot_index is None]
        if missing:
            raise LatentExplorerError(f"{', '.join(missing)} holds no replay (it was trained with snapshot_points 0)")
        gif = animation.replay_gif([c.snapshots.numpy() for c in ckpts if c.snapshots is not None],
                                   [data.y_test[c.snapshot_index].numpy() for c in ckpts], [c.kind.upper() for c in ckpts], data.class_names,
                                   decodes=[c.snapshot_decodes.numpy() if c.snapshot_decodes is not None else None for c in ckpts])
    atomic_write(args.out, gif)
    print(f"saved {args.out} ({args.what}, {len(gif):,} bytes)")
    return 0


def cmd_export_pad(args: argparse.Namespace) -> int:
    from vae.core.files import atomic_write
    from vae.services.standalone_pad import export_pad

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"out: {out} is a folder; give a file name such as {out / 'pad.html'}")
    text = export_pad(args.vae, args.ae, data_root=args.data_root, test_hooks=args.test_hooks)
    try:
        atomic_write(out, text.encode("utf-8"))
        out.chmod(0o644)  # a page to publish: readable by a web server (the temp file was 0600)
    except OSError as exc:
        raise ConfigError(f"out: cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): open it in a browser, no server or network needed")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from vae.analysis.maps import METHODS
    from vae.core.data import DATASET_NAMES, DEFAULT_DATASET, OWN_DATA
    from vae.services.workflow import MODEL_CHOICES

    parser = argparse.ArgumentParser(prog="python -m vae", description="Latent Explorer engine: train, evaluate and map VAEs.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE, an AE or both and save .safetensors checkpoints")
    t.add_argument("--dataset", default=DEFAULT_DATASET, help=f"one of {', '.join(DATASET_NAMES)}, {OWN_DATA} (default: {DEFAULT_DATASET})")
    t.add_argument("--image-size", type=_positive_int, help="folder:/npz: data: resize to this square size (default: the most common, at most 64)")
    t.add_argument("--channels", choices=("auto", "1", "3"), default="auto", help="folder:/npz: data: 1 (grey), 3 (RGB) or auto (default)")
    t.add_argument("--model", choices=MODEL_CHOICES, default="vae", help="vae, ae, or both with the same nets and seed")
    t.add_argument("--arch", choices=ARCHS, default="mlp")
    t.add_argument("--latent-dim", type=int, default=2, help=f"{LATENT_DIM_RANGE[0]}..{LATENT_DIM_RANGE[1]} (default 2)")
    t.add_argument("--hidden", type=_positive_int, nargs="+", help="MLP hidden widths (default: 256 for 8x8, 400 for 28x28)")
    t.add_argument("--beta", type=float, default=1.0, help="KL weight (beta-VAE), >= 0")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="models/model", help="checkpoint path without suffix; with --model both, -vae/-ae are appended")
    t.add_argument("--data-root", help="folder for torchvision datasets (default: $VAE_DATA_ROOT or ~/.cache/latent-explorer/data)")
    t.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16: the forward pass under autocast (weights stay fp32)")
    t.add_argument("--dist-timeout", type=float, default=DIST_TIMEOUT_S,
                   help=f"under torchrun: seconds a process waits for the others before the job ends with an error (default {DIST_TIMEOUT_S:.0f})")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="print a checkpoint's test metrics")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", help="evaluate on this dataset (default: the one it was trained on)")
    e.add_argument("--data-root")
    e.add_argument("--k", type=_positive_int, default=100, help="importance samples for log p(x) (default 100)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(func=cmd_evaluate)

    m = sub.add_parser("embed", help="precompute and cache the 2-D map of a checkpoint's test set")
    m.add_argument("checkpoint")
    m.add_argument("--method", choices=METHODS, help="default: identity for a 2-D latent, else pca")
    m.add_argument("--n", type=_positive_int, help="number of test points (default depends on the method)")
    m.add_argument("--data-root")
    m.set_defaults(func=cmd_embed)

    j = sub.add_parser("judge", help="train (or load from the cache) a dataset's judge and print its test accuracy")
    j.add_argument("--dataset", default=DEFAULT_DATASET, help=f"one of {', '.join(DATASET_NAMES)}, {OWN_DATA} (default: {DEFAULT_DATASET})")
    j.add_argument("--data-root")
    j.add_argument("--json", action="store_true", help="print JSON")
    j.set_defaults(func=cmd_judge)

    a = sub.add_parser("animate", help="write a GIF: an interpolation, one dimension's traversal or the map's replay")
    a.add_argument("checkpoints", nargs="+", help="one checkpoint, or a VAE and an AE drawn side by side")
    a.add_argument("--what", choices=ANIMATIONS, required=True)
    a.add_argument("--out", required=True, help="the .gif file to write")
    a.add_argument("--steps", type=_positive_int, help="steps along the line or the sweep (default 20 / 31); played there and back")
    a.add_argument("--dim", type=_positive_int, default=1, help="traversal: which dimension, from 1 (default 1)")
    a.add_argument("--from", dest="from_image", type=int, default=0, help="interpolation: first test image (default 0)")
    a.add_argument("--to", dest="to_image", type=int, default=1, help="interpolation: last test image (default 1)")
    a.add_argument("--data-root")
    a.set_defaults(func=cmd_animate)

    x = sub.add_parser("export-pad", help="write the Live pad as one self-contained HTML file (no server, works offline)")
    x.add_argument("vae", help="the VAE's .safetensors checkpoint")
    x.add_argument("ae", nargs="?", help="optionally the AE of the same pair (same dataset and latent size)")
    x.add_argument("--out", default="pad.html", help="the HTML file to write (default pad.html)")
    x.add_argument("--data-root", help="where the dataset is, for the map's test codes")
    x.add_argument("--test-hooks", action="store_true", help="expose window.__latentPad* (for tests and benchmarks)")
    x.set_defaults(func=cmd_export_pad)
    return parser


def _said_by_rank_0(exc: LatentExplorerError) -> bool:
    """Under torchrun, errors every rank meets alike (the same arguments, a NaN agreed by all)
    are printed by rank 0 alone: one message, not one per process."""
    from vae.settings import settings

    return settings().rank > 0 and isinstance(exc, (ConfigError, TrainingDiverged))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LatentExplorerError as exc:
        # a user-caused problem: one line, exit 2 like argparse's own usage errors
        if not _said_by_rank_0(exc):
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
