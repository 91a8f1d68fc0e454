"""One model trained by two processes (torch.distributed, gloo on localhost), on the CPU.

The in-process tests fork two ranks that join through a file store and call fit() directly
(a second or two each); the torchrun tests start the real launcher on the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vae.__main__ import main
from vae.core import distributed
from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import Dataset, load_dataset
from vae.core.errors import ConfigError, LatentExplorerError, TrainingDiverged
from vae.core.models import build_model
from vae.core.train import fit
from vae.settings import Settings

REPO = Path(__file__).resolve().parent.parent
MODEL = ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(32,))
DIGITS_ARGS = ["--dataset", "digits", "--hidden", "32", "--batch-size", "64", "--device", "cpu", "--quiet"]


def _config(**overrides: object) -> TrainConfig:
    fields: dict[str, object] = dict(dataset="digits", epochs=2, batch_size=64, lr=3e-3, seed=0, snapshot_points=0)
    fields.update(overrides)
    return TrainConfig(**fields).validate()  # type: ignore[arg-type]


def _digits(n_train: int | None) -> Dataset:
    data = load_dataset("digits")
    return data if n_train is None else replace(data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train])


# --- two ranks in forked processes --------------------------------------------------------


def _rank(rank: int, folder: str, scenario: str, kind: str, n_train: int | None, timeout_s: float) -> None:
    """One training process: join the group, load the data itself, fit, write what happened."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    out = Path(folder)
    distributed.start(torch.device("cpu"), timeout_s=timeout_s, init_method=f"file://{out / 'store'}")
    model = build_model(replace(MODEL, kind=kind), seed=0)
    should_stop = None
    if scenario == "stop" and rank == 1:
        calls = iter(range(10**6))
        should_stop = lambda: next(calls) >= 4  # noqa: E731  # rank 1 alone asks to stop, at its 5th step
    if scenario == "nan" and rank == 1:
        steps = iter(range(10**6))
        # rank 1's decoder outputs NaN from its 30th step (epoch 2) on; rank 0 computes finite numbers
        model.decoder.register_forward_hook(lambda m, i, o: o * float("nan") if next(steps) >= 29 else o)
    if scenario == "hang" and rank == 1:
        def should_stop() -> bool:  # rank 1 stops answering until rank 0 has given up on it
            deadline = time.monotonic() + 60
            while not (out / "result-0.json").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return False
    report: dict[str, object] = {}
    try:
        result = fit(model, _digits(n_train), _config(world_size=2), should_stop=should_stop, device="cpu")
        report = {"history": result.history, "stopped": result.stopped}
    except LatentExplorerError as exc:
        report = {"error": str(exc), "type": type(exc).__name__}
    finally:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"weights-{rank}.safetensors"))
        (out / f"result-{rank}.json").write_text(json.dumps(report))
        distributed.finish()


def _two_ranks(tmp_path: Path, scenario: str = "", kind: str = "vae", n_train: int | None = None, timeout_s: float = 60) -> list[dict]:
    # import once, before the fork, what each rank would otherwise import for itself: scikit-learn
    # and torch._dynamo (DDP's constructor imports it: seconds). Each rank still calls load_dataset
    # itself (here it finds the parent's cached copy; under torchrun below each process reads it)
    _digits(n_train)
    import torch._dynamo  # noqa: F401
    mp.start_processes(_rank, args=(str(tmp_path), scenario, kind, n_train, timeout_s), nprocs=2, start_method="fork")
    return [
        {**json.loads((tmp_path / f"result-{r}.json").read_text()), "weights": load_file(tmp_path / f"weights-{r}.safetensors")}
        for r in (0, 1)
    ]


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)


def _without_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


@pytest.mark.server
@pytest.mark.parametrize(
    ("kind", "n_train"),
    [("vae", None), ("ae", 1437)],  # 1437 images: the last global batch (29) splits 14 / 15
    ids=["vae", "ae-uneven-last-batch"],
)
def test_two_processes_learn_the_weights_of_one_process_with_the_same_global_batch(tmp_path, kind, n_train):
    ranks = _two_ranks(tmp_path, kind=kind, n_train=n_train)
    single = build_model(replace(MODEL, kind=kind), seed=0)
    alone = fit(single, _digits(n_train), _config(), device="cpu")
    expected = {k: v.detach() for k, v in single.state_dict().items()}
    for rank in ranks:
        assert _close(rank["weights"], expected)
        # the reported numbers are those of the global batch, the same on every rank
        got, want = _without_timing(rank["history"]), _without_timing(alone.history)
        assert [row.keys() for row in got] == [row.keys() for row in want]
        assert all(g[k] == pytest.approx(w[k], rel=1e-4) for g, w in zip(got, want, strict=True) for k in w)
    assert ranks[0]["weights"].keys() == ranks[1]["weights"].keys()
    assert all(torch.equal(ranks[0]["weights"][k], ranks[1]["weights"][k]) for k in ranks[0]["weights"])


@pytest.mark.server
def test_a_stop_on_one_rank_stops_both(tmp_path):
    ranks = _two_ranks(tmp_path, "stop")
    assert [r["stopped"] for r in ranks] == [True, True]
    assert ranks[0]["history"] == ranks[1]["history"] == []  # stopped inside epoch 1: no finished epoch


@pytest.mark.server
def test_a_nan_on_one_rank_ends_both_with_the_same_message(tmp_path):
    ranks = _two_ranks(tmp_path, "nan")
    assert [r.get("type") for r in ranks] == ["TrainingDiverged", "TrainingDiverged"]
    assert ranks[0]["error"] == ranks[1]["error"]
    assert "at epoch 2" in ranks[0]["error"]
    # both went back to the weights after epoch 1, the same on both ranks and finite
    w0, w1 = ranks[0]["weights"], ranks[1]["weights"]
    assert all(torch.equal(w0[k], w1[k]) and torch.isfinite(w0[k]).all() for k in w0)


@pytest.mark.server
def test_a_rank_that_stops_answering_ends_the_other_with_an_error(tmp_path):
    ranks = _two_ranks(tmp_path, "hang", timeout_s=3)
    assert ranks[0]["type"] == "DistributedError"
    assert "rank 0: lost contact with the other training processes" in ranks[0]["error"]
    assert "Nothing was saved" in ranks[0]["error"] and "\n" not in ranks[0]["error"]
    assert ranks[1].get("type") == "DistributedError"  # and rank 1, once awake, finds rank 0 gone


# --- the checks before any process joins the others -----------------------------------------


def test_the_global_batch_must_split_evenly_over_the_processes():
    with pytest.raises(ConfigError, match="global batch of 63 must split evenly over the 2 training processes; use a multiple of 2"):
        TrainConfig(batch_size=63, world_size=2).validate()
    assert TrainConfig(batch_size=64, world_size=2).validate().world_size == 2


@pytest.mark.parametrize("rank", [0, 1])
def test_cli_refuses_an_uneven_batch_with_one_line_from_rank_0_only(monkeypatch, capsys, tmp_path, rank):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))
    args = ["train", *DIGITS_ARGS, "--batch-size", "63", "--out", str(tmp_path / "m")]
    assert main(args) == 2  # before joining: no process group, no data loaded
    err = capsys.readouterr().err
    message = "error: batch_size: the global batch of 63 must split evenly over the 2 training processes; use a multiple of 2"
    assert err.splitlines() == ([message] if rank == 0 else [])


@pytest.mark.parametrize("rank", [0, 1])
def test_a_divergence_agreed_by_all_ranks_is_printed_by_rank_0_alone(monkeypatch, capsys, rank):
    def diverges(args):  # what every rank's fit raises on an agreed NaN (the NaN test above)
        raise TrainingDiverged("the loss became non-finite at epoch 2, between steps 24 and 30 (lr=10.0)")

    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setattr("vae.__main__.cmd_train", diverges)  # the parser binds it when main() builds it
    assert main(["train"]) == 2
    assert capsys.readouterr().err.count("error: the loss became non-finite") == (1 if rank == 0 else 0)


def test_fit_refuses_a_world_size_that_is_not_running(digits):
    with pytest.raises(ConfigError, match="world_size: the config says 2 training process"):
        fit(build_model(MODEL, seed=0), digits, _config(world_size=2, epochs=1), device="cpu")


def test_launcher_variables_are_read_in_settings():
    s = Settings.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (s.rank, s.world_size, s.local_rank) == (3, 4, 1)
    plain = Settings.from_env({"WORLD_SIZE": "zero"})
    assert (plain.rank, plain.world_size, plain.local_rank) == (0, 1, 0)


def test_bf16_precision_trains_with_float32_weights(digits):
    model = build_model(MODEL, seed=0)
    result = fit(model, digits, _config(precision="bf16", epochs=2), device="cpu")
    assert result.history[-1]["test_elbo"] > result.history[0]["test_elbo"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


# --- the real launcher on the real command line ---------------------------------------------


def _torchrun(*args: str, script: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python3 -m torch.distributed.run --standalone --nproc_per_node 2` (a free port of its own)."""
    target = [script] if script else ["-m", "vae"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *target, *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.server
def test_torchrun_trains_one_checkpoint_equal_to_one_process(tmp_path):
    folder = tmp_path / "two"
    run = _torchrun("train", *DIGITS_ARGS, "--epochs", "1", "--out", str(folder / "digits"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("saved ") == 1  # rank 0 reports, once
    assert [p.name for p in folder.iterdir()] == ["digits.safetensors"]  # one file, no temp file left
    assert main(["train", *DIGITS_ARGS, "--epochs", "1", "--out", str(tmp_path / "one" / "digits")]) == 0
    two, one = folder / "digits.safetensors", tmp_path / "one" / "digits.safetensors"
    assert _close(load_file(two), load_file(one))
    with safe_open(str(two), "pt") as f:
        assert json.loads(f.metadata()["train_config"])["world_size"] == 2
    with safe_open(str(one), "pt") as f:
        assert json.loads(f.metadata()["train_config"])["world_size"] == 1


@pytest.mark.slow
@pytest.mark.server
def test_torchrun_ends_the_job_with_an_error_when_a_rank_is_killed(tmp_path):
    # the real CLI, with rank 1 killed (SIGKILL) at its 5th training step
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from vae.core import train
        from vae.settings import settings

        elbo_terms, steps = train.elbo_terms, iter(range(10**6))

        def dying(*args, **kwargs):
            if settings().rank == 1 and next(steps) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            return elbo_terms(*args, **kwargs)

        train.elbo_terms = dying
        from vae.__main__ import main
        sys.exit(main(sys.argv[1:]))
    """))
    run = _torchrun("train", *DIGITS_ARGS, "--epochs", "3", "--dist-timeout", "30", "--out", str(tmp_path / "m"), script=str(script))
    assert run.returncode != 0
    assert "Signal 9 (SIGKILL)" in run.stderr and "rank      : 1" in run.stderr
    assert not (tmp_path / "m.safetensors").exists()
