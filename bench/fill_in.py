"""Filling in missing pixels, measured: every mask on a VAE + AE pair, and the time it takes.

    python -m bench.fill_in --pair PREFIX [--dataset NAME] [--images 500] [--samples 4] [--iterations 30] [--seed 0]

PREFIX is the pair's checkpoint path without "-vae.safetensors" / "-ae.safetensors" (as
`python -m vae train --model both --out PREFIX` writes them); the dataset defaults to the one the
checkpoints were trained on. Per mask (vae.analysis.images.MASKS): `vae.analysis.metrics.fill_in_report`
for both models on the same seeded test images, `compare_fill_reports`' headline and rows, and
the seconds both reports took (the judge loaded beforehand, not counted). Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from vae.analysis.images import MASKS
from vae.analysis.metrics import FILL_IMAGES, FILL_ITERATIONS, FILL_SAMPLES, compare_fill_reports, fill_in_report, judge_or_none
from vae.core.checkpoint import load_checkpoint
from vae.core.data import load_dataset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fill_in", description=__doc__.splitlines()[0])
    parser.add_argument("--pair", required=True, help="checkpoint prefix: PREFIX-vae.safetensors and PREFIX-ae.safetensors")
    parser.add_argument("--dataset", default=None, help="default: the checkpoints' dataset")
    parser.add_argument("--images", type=int, default=FILL_IMAGES)
    parser.add_argument("--samples", type=int, default=FILL_SAMPLES)
    parser.add_argument("--iterations", type=int, default=FILL_ITERATIONS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    vae_ckpt = load_checkpoint(f"{args.pair}-vae.safetensors")
    ae_ckpt = load_checkpoint(f"{args.pair}-ae.safetensors")
    data = load_dataset(args.dataset or vae_ckpt.dataset.get("name", "digits"))
    judge = judge_or_none(data)
    models = {"vae": vae_ckpt.model.eval(), "ae": ae_ckpt.model.eval()}
    print(f"{data.name}: {vae_ckpt.model_config.latent_dim}-D pair {args.pair}; judge: {judge!r}")
    for mask in MASKS:
        start = time.perf_counter()
        reports = {kind: fill_in_report(m, data.x_test, data.y_test, judge, mask, n_images=args.images,
                                        n_samples=args.samples, iterations=args.iterations, seed=args.seed)
                   for kind, m in models.items()}
        seconds = time.perf_counter() - start
        compared = compare_fill_reports(reports["vae"], reports["ae"])
        print(f"\n[{mask}] {seconds:.2f} s for both; sampled fills' spread {reports['vae']['spread']:.3f}")
        print(compared["headline"], compared["baseline"])
        for row in compared["rows"]:
            noise = f" (standard error {row['noise']:.3f})" if row["noise"] is not None else ""
            print(f"  {row['label']:55s} VAE {row['vae_text']:>7s}  AE {row['ae_text']:>7s}  -> {row['favours'] or 'tie'}{noise}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
