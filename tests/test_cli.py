"""The command line end to end on digits: train, evaluate, embed; and bad arguments as one-line errors.

Most tests call `main(argv)` in-process (fast); one runs `python -m vae` to prove the real exit
code. Malformed options, train config fields and hostile checkpoint files are covered in
tests/test_failures.py and tests/test_security.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vae.core.data
from vae.__main__ import main
from vae.core.checkpoint import load_checkpoint, save_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.models import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 2


def run(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, starts: str) -> None:
    assert code == 2, err
    assert out == ""
    assert err.startswith(f"error: {starts}") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, str, str]]:
    """`train --model both` once for the module: (folder, (code, stdout, stderr))."""
    folder = tmp_path_factory.mktemp("cli")
    result = run(["train", "--dataset", "digits", "--model", "both", "--epochs", str(EPOCHS), "--hidden", "16", "--batch-size", "128",
                  "--device", "cpu", "--out", str(folder / "pair")])
    return folder, result


@pytest.fixture(scope="module")
def wide_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 3-D digits VAE: enough for argument checks that depend on the latent size."""
    path = tmp_path_factory.mktemp("wide") / "wide3.safetensors"
    model = build_model(ModelConfig(latent_dim=3, hidden=(8,)), seed=0)
    return save_checkpoint(path, model, TrainConfig(epochs=1), vae.core.data.load_dataset("digits").info())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "maps"
    monkeypatch.setenv("VAE_CACHE_DIR", str(folder))
    return folder


# ---------------------------------------------------------------- normal use


def test_train_both_saves_two_loadable_checkpoints(trained) -> None:
    folder, (code, out, err) = trained
    assert code == 0, err
    assert sorted(p.name for p in folder.glob("*.safetensors")) == ["pair-ae.safetensors", "pair-vae.safetensors"]
    for kind in ("vae", "ae"):
        ckpt = load_checkpoint(folder / f"pair-{kind}.safetensors")
        assert ckpt.kind == kind and ckpt.pair == "pair"
        assert ckpt.model_config.hidden == (16,) and ckpt.model_config.latent_dim == 2
        assert ckpt.dataset["name"] == "digits" and len(ckpt.history) == EPOCHS
        assert f"saved {folder / f'pair-{kind}.safetensors'} ({kind}, " in out
    assert "test ELBO" in out.splitlines()[0] and "test recon" in out.splitlines()[1]  # an AE has no ELBO


def test_train_shows_progress(trained) -> None:
    _, (_, _, err) = trained
    assert err.startswith("dataset: scikit-learn digits")
    for kind in ("VAE", "AE "):
        assert f"\r{kind} [" in err
    assert f"100.0%  epoch {EPOCHS}/{EPOCHS}" in err and "test ELBO" in err and "img/s" in err
    assert err.count("\n") == 3  # the dataset line, then each bar ends its line when training ends


def table(out: str) -> dict[str, str]:
    """The evaluate table: row label -> value (labels and values are separated by two spaces)."""
    rows = {}
    for line in out.splitlines()[1:]:
        key, _, value = line.partition("  ")
        rows[key.strip()] = value.strip()
    return rows


def test_evaluate_prints_the_elbo_and_its_terms(trained) -> None:
    folder, _ = trained
    code, out, err = run(["evaluate", str(folder / "pair-vae.safetensors"), "--k", "5"])
    assert code == 0 and err == ""
    assert out.startswith("nats per image")
    rows = table(out)
    recon, kl, elbo = (float(rows[k]) for k in ("reconstruction log p(x|z)", "KL(q(z|x) || p(z))", "ELBO"))
    assert elbo == pytest.approx(recon - kl, abs=2e-4)  # printed to 4 decimals
    assert kl > 0 and elbo < 0
    assert math.isfinite(float(rows["log p(x) estimate (K=5)"]))
    assert rows["dataset"] == "digits (359 test images)" and rows["model"] == "vae / mlp / 2-D"


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_evaluate_json_has_the_report_keys_and_finite_numbers(trained, kind: str) -> None:
    folder, _ = trained
    code, out, _ = run(["evaluate", str(folder / f"pair-{kind}.safetensors"), "--k", "5", "--json"])
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"kind", "n_images", "recon", "kl", "elbo", "kl_per_dim", "active_dims", "log_px", "log_px_k",
                           "interpolation", "prior", "prior_samples", "holes", "judge", "mig"}
    assert report["mig"] is None  # digits has no known factors
    assert set(report["interpolation"]) == {"mean_step", "worst_step", "jump_ratio"}
    assert set(report["prior"]) == {"mean_step", "worst_step", "jump_ratio"}
    assert set(report["prior_samples"]) == PRIOR_SAMPLE_KEYS and set(report["holes"]) == {"share", "points", "plane", "region"}
    assert set(report["judge"]) == {"available", "note"}
    assert report["kind"] == kind and report["n_images"] == 359 and len(report["kl_per_dim"]) == 2
    numbers = [report["recon"], *report["kl_per_dim"], *report["interpolation"].values(), *report["prior"].values(),
               report["prior_samples"]["round_trip"]]
    if kind == "vae":
        numbers += [report["kl"], report["elbo"], report["log_px"]]
        assert report["log_px_k"] == 5
        assert report["elbo"] == pytest.approx(report["recon"] - report["kl"], abs=1e-4)
    else:  # an AE has no posterior: no KL, no ELBO, no log p(x), no active units
        assert report["kl"] is report["elbo"] is report["log_px"] is report["active_dims"] is None
        assert report["kl_per_dim"] == [0.0, 0.0]
    assert all(isinstance(v, float) and math.isfinite(v) for v in numbers)
    if report["judge"]["available"]:  # digits has labels: once the judge exists, its measures are numbers
        samples = report["prior_samples"]
        assert 0 <= samples["recognised"] <= 1 and 0 <= samples["class_entropy"] <= 1 and 0 <= report["holes"]["share"] <= 1
        assert 1 <= samples["classes_covered"] <= samples["n_classes"] == 10
    else:
        assert report["judge"]["note"] == "no judge: the dataset has no labels" and report["holes"]["share"] is None


PRIOR_SAMPLE_KEYS = {"n_samples", "recognised", "mean_confidence", "n_classes", "class_share", "classes_covered",
                     "class_entropy", "round_trip"}


class BrightestPixelJudge:
    """A stand-in judge: the class is which of the first ten pixels is brightest, always 0.8 sure."""

    class_names = tuple(str(i) for i in range(10))

    def judge(self, images: torch.Tensor):  # type: ignore[no-untyped-def]
        from vae.analysis.judge import Verdict

        classes = images.flatten(1)[:, :10].argmax(1).numpy()
        probs = np.full((len(classes), 10), 0.2 / 9, np.float32)
        probs[np.arange(len(classes)), classes] = 0.8
        return Verdict(classes=classes, confidence=np.full(len(classes), 0.8, np.float32), probs=probs)


@pytest.mark.parametrize("with_judge", [True, False])
def test_evaluate_json_and_table_show_the_judge_measures(trained, monkeypatch, with_judge: bool) -> None:
    """The dataset's judge (stand-in here) reaches the report through judge_or_none; without one
    the judged numbers are null and both outputs say why."""
    import vae.analysis.metrics

    monkeypatch.setattr(vae.analysis.metrics, "judge_or_none", lambda data: BrightestPixelJudge() if with_judge else None)
    folder, _ = trained
    code, out, _ = run(["evaluate", str(folder / "pair-vae.safetensors"), "--k", "2", "--json"])
    assert code == 0
    report = json.loads(out)
    samples = report["prior_samples"]
    if with_judge:
        assert report["judge"] == {"available": True, "note": None}
        assert samples["recognised"] == 1.0 and samples["mean_confidence"] == pytest.approx(0.8)
        assert samples["n_classes"] == 10 and sum(samples["class_share"]) == pytest.approx(1.0)
        assert report["holes"]["share"] == 0.0 and report["holes"]["points"] == 32 * 32
    else:
        assert report["judge"] == {"available": False, "note": "no judge: the dataset has no labels"}
        assert samples["recognised"] is samples["class_entropy"] is report["holes"]["share"] is None
    code, out, _ = run(["evaluate", str(folder / "pair-vae.safetensors"), "--k", "2"])
    rows = table(out)
    assert float(rows["prior samples: round trip |mu(decode(z)) - z|"]) == pytest.approx(samples["round_trip"], abs=1e-4)
    if with_judge:
        assert rows["prior samples: recognised by the judge"] == "100.0 %"
        assert rows["holes: unrecognisable share of the data's region"] == "0.0 %"
        assert rows["prior samples: classes covered (>= 2 %)"] == f"{samples['classes_covered']} / 10"
    else:
        assert rows["judge-based measures"] == "no judge: the dataset has no labels"


def test_evaluate_is_repeatable_with_a_seed(trained) -> None:
    folder, _ = trained
    path = str(folder / "pair-vae.safetensors")
    first, second = (run(["evaluate", path, "--k", "3", "--json", "--seed", "7"])[1] for _ in range(2))
    assert json.loads(first) == json.loads(second)


def test_embed_writes_a_cache_file_and_reuses_it(trained, cache: Path) -> None:
    folder, _ = trained
    path = str(folder / "pair-vae.safetensors")
    code, out, err = run(["embed", path])
    assert code == 0, err
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and "-identity-359-" in files[0].name  # 2-D latent: identity over the whole test set
    assert "encoding 359 test images" in err and out.startswith("identity map of 359 test points ready")
    written = files[0].stat().st_mtime_ns
    code, out, err = run(["embed", path])
    assert code == 0 and out.startswith("identity map of 359 test points ready")
    assert err == ""  # nothing encoded: the cached map was used
    assert list(cache.glob("*.npz")) == files and files[0].stat().st_mtime_ns == written


# ---------------------------------------------------------------- bad arguments: one line, exit 2


@pytest.fixture
def no_dataset_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arguments are checked before any data is loaded: loading fails the test."""

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the dataset was loaded before the arguments were checked")

    monkeypatch.setattr(vae.core.data, "load_dataset", refuse)


@pytest.mark.parametrize("device", ["bogus", "meta", "cuda:x", "gpu"])
def test_train_unknown_device(device: str, no_dataset_loading, tmp_path: Path) -> None:
    code, out, err = run(["train", "--device", device, "--out", str(tmp_path / "m")])
    assert_one_line_error(code, out, err, "device: must be cpu, cuda, cuda:<index> or mps")
    assert repr(device) in err


def test_train_cuda_without_a_gpu(no_dataset_loading, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = run(["train", "--device", "cuda", "--out", str(tmp_path / "m")])
    assert_one_line_error(code, out, err, "device: cuda was asked for, but torch finds no CUDA GPU")
    assert "--device cpu" in err


def test_train_cuda_index_beyond_the_gpus(no_dataset_loading, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, out, err = run(["train", "--device", "cuda:3", "--out", str(tmp_path / "m")])
    assert_one_line_error(code, out, err, "device: 'cuda:3' does not exist; this machine has cuda:0 to cuda:0")


def test_train_mps_without_mps(no_dataset_loading, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, out, err = run(["train", "--device", "mps", "--out", str(tmp_path / "m")])
    assert_one_line_error(code, out, err, "device: mps was asked for")


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(10**30)])
def test_evaluate_seed_out_of_range(seed: str, wide_checkpoint: Path) -> None:
    code, out, err = run(["evaluate", str(wide_checkpoint), "--seed", seed])
    assert_one_line_error(code, out, err, "seed: must be an integer from 0 to 2**32-1")


@pytest.mark.parametrize(
    "args, starts",
    [
        (["--method", "identity"], "method: identity draws a latent of at most 2 dimensions and this model has 3; use --method pca or tsne"),
        (["--method", "pca", "--n", "1"], "n: a pca map needs at least 2 test points, got 1"),
        (["--n", "1"], "n: a pca map needs at least 2 test points, got 1"),  # pca is the default above 2-D
        (["--method", "tsne", "--n", "2"], "n: a tsne map needs at least 3 test points, got 2"),
    ],
)
def test_embed_method_and_n_the_model_cannot_map(args: list[str], starts: str, wide_checkpoint: Path, cache: Path) -> None:
    code, out, err = run(["embed", str(wide_checkpoint), *args])
    assert_one_line_error(code, out, err, starts)
    assert not cache.exists()


def test_embed_identity_and_single_point_still_work_where_they_can(trained, cache: Path) -> None:
    folder, _ = trained
    code, out, err = run(["embed", str(folder / "pair-ae.safetensors"), "--method", "identity", "--n", "1"])
    assert code == 0 and out.startswith("identity map of 1 test points"), err


def test_embed_on_data_of_another_image_size(tmp_path: Path, cache: Path) -> None:
    """A checkpoint whose recorded dataset no longer fits the model: a message, not a shape error."""
    model = build_model(ModelConfig(image_shape=(1, 12, 12), hidden=(8,)), seed=0)
    path = save_checkpoint(tmp_path / "m12.safetensors", model, TrainConfig(epochs=1), vae.core.data.load_dataset("digits").info())
    code, out, err = run(["embed", str(path)])
    assert_one_line_error(code, out, err, "dataset 'digits' has (1, 8, 8) images; the model needs (1, 12, 12)")


@pytest.mark.server
def test_real_exit_code_of_a_bad_device(tmp_path: Path) -> None:
    """`python -m vae` itself: exit status 2, one line on stderr, no traceback, nothing written."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "vae", "train", "--device", "bogus", "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: device: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
