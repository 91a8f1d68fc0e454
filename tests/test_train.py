"""fit(): learns, is repeatable, reports progress, stops on request, survives divergence."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from vae.core.config import ModelConfig
from vae.core.errors import ConfigError, TrainingDiverged
from vae.core.models import build_model
from vae.core.train import FitResult, Progress, evaluate_elbo, fit

TIMING_KEYS = {"seconds", "images_per_s"}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_timing(history):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in history]


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_training_lowers_the_test_loss(digits, tiny_model_config, tiny_train_config, kind):
    model = build_model(tiny_model_config(kind), seed=0)
    untrained = evaluate_elbo(model, digits.x_test, generator=torch.Generator().manual_seed(0))
    result = fit(model, digits, tiny_train_config(epochs=4), device="cpu")
    assert isinstance(result, FitResult) and len(result.history) == 4
    first, last = result.history[0], result.history[-1]
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    # -ELBO in nats per 8x8 image: untrained is about 44 (64 pixels near p = 0.5)
    assert last["test_elbo"] > first["test_elbo"]
    assert last["test_elbo"] > untrained["elbo"] + 5
    assert last["train_elbo"] > first["train_elbo"]
    assert not model.training  # fit hands the model back in eval mode


def test_history_rows_are_consistent(digits, tiny_model_config, tiny_train_config):
    result = fit(build_model(tiny_model_config("vae"), seed=0), digits, tiny_train_config(epochs=2), device="cpu")
    for row in result.history:
        assert set(row) == {"epoch", "train_recon", "train_kl", "train_elbo", "test_recon", "test_kl", "test_elbo", *TIMING_KEYS}
        assert all(math.isfinite(v) for v in row.values())
        assert row["test_elbo"] == pytest.approx(row["test_recon"] - row["test_kl"], abs=1e-3)
        assert row["test_kl"] >= 0 and row["seconds"] > 0


def test_evaluate_elbo_restores_training_mode(digits, tiny_model_config):
    model = build_model(tiny_model_config("vae"), seed=0).train()
    out = evaluate_elbo(model, digits.x_test, batch_size=100)
    assert set(out) == {"recon", "kl", "elbo"} and model.training
    assert out["elbo"] == pytest.approx(out["recon"] - out["kl"], abs=1e-3)


def test_ae_has_zero_kl(digits, tiny_model_config, tiny_train_config):
    result = fit(build_model(tiny_model_config("ae"), seed=0), digits, tiny_train_config(epochs=1), device="cpu")
    row = result.history[0]
    assert row["train_kl"] == 0 and row["test_kl"] == 0 and row["test_elbo"] == row["test_recon"]


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_same_seed_same_weights_and_history(digits, tiny_model_config, tiny_train_config, kind):
    runs = []
    for _ in range(2):
        model = build_model(tiny_model_config(kind), seed=3)
        result = fit(model, digits, tiny_train_config(epochs=2, seed=3, snapshot_points=20), device="cpu")
        runs.append((weights(model), without_timing(result.history), result.snapshots))
    (w1, h1, s1), (w2, h2, s2) = runs
    assert same_weights(w1, w2)
    assert h1 == h2
    assert torch.equal(s1, s2)


def test_different_seed_different_weights(digits, tiny_model_config, tiny_train_config):
    a = build_model(tiny_model_config(), seed=0)
    b = build_model(tiny_model_config(), seed=0)
    fit(a, digits, tiny_train_config(epochs=1, seed=0), device="cpu")
    fit(b, digits, tiny_train_config(epochs=1, seed=1), device="cpu")  # same init, other shuffle and noise
    assert not same_weights(weights(a), weights(b))


def test_callback_reports_steps_and_epochs(digits, tiny_model_config, tiny_train_config):
    reports: list[Progress] = []
    cfg = tiny_train_config(epochs=3, batch_size=100, snapshot_points=30)
    result = fit(build_model(tiny_model_config(), seed=0), digits, cfg, callback=reports.append, device="cpu", report_every=5)
    steps_per_epoch = math.ceil(len(digits.x_train) / 100)  # 15
    total = 3 * steps_per_epoch
    step_reports = [r for r in reports if r.kind == "step"]
    epoch_reports = [r for r in reports if r.kind == "epoch"]
    assert {r.kind for r in reports} == {"step", "epoch"}
    assert [r.epoch for r in epoch_reports] == [1, 2, 3]
    assert [r.step for r in epoch_reports] == [steps_per_epoch, 2 * steps_per_epoch, total]
    assert all(r.total_steps == total and r.epochs == 3 for r in reports)
    steps = [r.step for r in step_reports]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # strictly increasing
    assert all(r.step % 5 == 0 or r.step % steps_per_epoch == 0 for r in step_reports)
    assert 0 < reports[0].fraction and reports[-1].fraction == 1.0
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions)
    for r, row in zip(epoch_reports, result.history, strict=True):
        assert r.record == row
        assert r.snapshot is not None and r.snapshot.shape == (30, 2)
        assert r.elbo == row["train_elbo"]
    assert all(r.record is None and math.isfinite(r.elbo) and r.images_per_s > 0 for r in step_reports)


def test_should_stop_ends_training_early(digits, tiny_model_config, tiny_train_config):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    reports: list[Progress] = []
    cfg = tiny_train_config(epochs=50, batch_size=64)
    result = fit(build_model(tiny_model_config(), seed=0), digits, cfg, reports.append, should_stop, device="cpu")
    assert result.stopped is True
    assert calls["n"] == 5
    assert result.history == []  # stopped inside epoch 1: no finished epoch
    assert reports[-1].kind == "step" and reports[-1].step == 5  # the stop is reported at once


def test_should_stop_keeps_finished_epochs(digits, tiny_model_config, tiny_train_config):
    reports: list[Progress] = []
    result = fit(
        build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=10),
        callback=reports.append,
        should_stop=lambda: any(r.kind == "epoch" and r.epoch == 2 for r in reports),
        device="cpu",
    )
    assert result.stopped and len(result.history) == 2


def test_a_stop_on_the_last_step_of_an_epoch_keeps_that_epoch(digits, tiny_model_config, tiny_train_config):
    """The epoch completed, so it gets its row and snapshot (the same as an unstopped run's), then training stops."""
    steps_per_epoch = math.ceil(len(digits.x_train) / 64)  # 23
    calls = {"n": 0}

    def stop_at_end_of_epoch_2() -> bool:
        calls["n"] += 1
        return calls["n"] == 2 * steps_per_epoch

    reports: list[Progress] = []
    cfg = tiny_train_config(epochs=5, batch_size=64, snapshot_points=20)
    stopped_model = build_model(tiny_model_config(), seed=0)
    result = fit(stopped_model, digits, cfg, reports.append, stop_at_end_of_epoch_2, device="cpu")
    assert result.stopped is True and calls["n"] == 2 * steps_per_epoch
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.snapshots.shape == (3, 20, 2)  # before training and after epochs 1 and 2
    assert reports[-1].kind == "epoch" and reports[-1].epoch == 2 and reports[-1].record == result.history[-1]

    full_model = build_model(tiny_model_config(), seed=0)
    full = fit(full_model, digits, replace(cfg, epochs=2), device="cpu")
    assert without_timing(result.history) == without_timing(full.history)
    assert torch.equal(result.snapshots, full.snapshots)
    assert same_weights(weights(stopped_model), weights(full_model))


def test_not_stopped_when_finished(digits, tiny_model_config, tiny_train_config):
    result = fit(build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=1), should_stop=lambda: False, device="cpu")
    assert result.stopped is False and len(result.history) == 1 and result.seconds > 0


def test_huge_learning_rate_diverges_and_keeps_initial_weights(digits, tiny_model_config, tiny_train_config):
    model = build_model(tiny_model_config("vae"), seed=0)
    before = weights(model)
    with pytest.raises(TrainingDiverged) as err:
        fit(model, digits, tiny_train_config(epochs=3, lr=10.0), device="cpu")  # diverges in epoch 1 (measured)
    msg = str(err.value)
    assert "lr=10.0" in msg and "smaller learning rate" in msg and "\n" not in msg
    assert same_weights(weights(model), before)  # no epoch finished: the last good weights are the initial ones


def test_nan_mid_training_restores_last_good_epoch(digits, tiny_model_config, tiny_train_config):
    model = build_model(tiny_model_config("vae"), seed=0)
    saved: dict[str, dict[str, torch.Tensor]] = {}

    def poison_after_epoch_2(p: Progress) -> None:
        if p.kind == "epoch" and p.epoch == 2:
            saved["good"] = weights(model)
            with torch.no_grad():
                model.decoder.body[-1].weight[0, 0] = float("nan")

    with pytest.raises(TrainingDiverged, match="epoch 3"):
        fit(model, digits, tiny_train_config(epochs=4), callback=poison_after_epoch_2, device="cpu")
    restored = weights(model)
    assert same_weights(restored, saved["good"])
    assert all(torch.isfinite(v).all() for v in restored.values())


def test_snapshots_have_one_map_per_epoch_plus_start(digits, tiny_model_config, tiny_train_config):
    result = fit(build_model(tiny_model_config(latent_dim=5), seed=0), digits, tiny_train_config(epochs=3, snapshot_points=40), device="cpu")
    assert result.snapshots is not None and result.snapshots.shape == (4, 40, 2)
    assert result.snapshots.dtype == torch.float32 and torch.isfinite(result.snapshots).all()
    assert torch.equal(result.snapshot_index, torch.arange(40))
    assert not torch.equal(result.snapshots[0], result.snapshots[-1])  # the map moves while training


def test_snapshot_of_a_2d_model_is_its_means(digits, tiny_model_config, tiny_train_config):
    model = build_model(tiny_model_config(latent_dim=2), seed=0)
    result = fit(model, digits, tiny_train_config(epochs=1, snapshot_points=25), device="cpu")
    with torch.no_grad():
        mu, _ = model.encode(digits.x_test[:25])
    assert torch.allclose(result.snapshots[-1], mu)


def test_the_replay_keeps_each_epochs_reconstructions_of_the_first_test_images(digits, tiny_model_config, tiny_train_config):
    from vae.core.train import REPLAY_DECODES

    model = build_model(tiny_model_config(latent_dim=2), seed=0)
    result = fit(model, digits, tiny_train_config(epochs=2, snapshot_points=25), device="cpu")
    decodes = result.snapshot_decodes
    assert decodes is not None and decodes.dtype == torch.uint8 and decodes.shape == (3, REPLAY_DECODES, 1, 8, 8)
    with torch.no_grad():  # the last set is the trained model's reconstruction, rounded to 8 bits
        recon = model.decode(model.encode(digits.x_test[:REPLAY_DECODES])[0])
    assert (decodes[-1].float() / 255 - recon).abs().max() <= 0.5 / 255 + 1e-6
    assert not torch.equal(decodes[0], decodes[-1])  # the decoder learns between the first and last


def test_few_snapshot_points_keep_as_many_reconstructions(digits, tiny_model_config, tiny_train_config):
    result = fit(build_model(tiny_model_config(latent_dim=2), seed=0), digits, tiny_train_config(epochs=1, snapshot_points=3), device="cpu")
    assert result.snapshot_decodes is not None and result.snapshot_decodes.shape[:2] == (2, 3)


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_the_replays_last_snapshot_is_explores_map_of_the_same_means(digits, tiny_model_config, tiny_train_config, monkeypatch, latent_dim):
    """One PCA (vae.core.projection.fit_pca): the replay's final frame is the map Explore draws
    for the trained model's means of the same test images (identity up to 2-D, PCA above)."""
    import numpy as np

    from vae.analysis import maps
    from vae.core import projection

    fitted = []
    real_fit_pca = projection.fit_pca
    monkeypatch.setattr(projection, "fit_pca", lambda mu: fitted.append(len(mu)) or real_fit_pca(mu))
    monkeypatch.setattr(maps, "fit_pca", projection.fit_pca)
    model = build_model(tiny_model_config(latent_dim=latent_dim), seed=0)
    result = fit(model, digits, tiny_train_config(epochs=2, snapshot_points=30), device="cpu")
    explore = maps.LatentMap(maps.default_method(latent_dim)).fit(maps.encode_means(model, digits.x_test[:30]))
    np.testing.assert_array_equal(result.snapshots[-1].numpy(), explore.points_)
    assert fitted == ([30, 30, 30, 30] if latent_dim > 2 else [])  # 3 replay frames, then Explore's


def test_snapshot_points_capped_by_test_set_and_zero_means_none(digits, tiny_model_config, tiny_train_config):
    big = fit(build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=1, snapshot_points=5000), device="cpu")
    assert big.snapshots.shape == (2, len(digits.x_test), 2)
    none = fit(build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=1, snapshot_points=0), device="cpu")
    assert none.snapshots is None and none.snapshot_index is None


def test_model_for_other_image_size_is_a_config_error(digits, tiny_train_config):
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,)), seed=0)
    with pytest.raises(ConfigError, match="image_shape") as err:
        fit(model, digits, tiny_train_config(), device="cpu")
    assert "(1, 28, 28)" in str(err.value) and "(1, 8, 8)" in str(err.value)


def test_invalid_train_config_is_rejected(digits, tiny_model_config, tiny_train_config):
    cfg = tiny_train_config()
    cfg.epochs = 0
    with pytest.raises(ConfigError, match="epochs"):
        fit(build_model(tiny_model_config(), seed=0), digits, cfg, device="cpu")


def test_batch_larger_than_dataset_is_one_step_per_epoch(digits, tiny_model_config, tiny_train_config):
    reports: list[Progress] = []
    fit(build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=2, batch_size=65_536), callback=reports.append, device="cpu")
    assert [r.step for r in reports if r.kind == "epoch"] == [1, 2]


def test_max_threads_applies_during_training_and_is_put_back(digits, tiny_model_config, tiny_train_config):
    """torch's thread count is process-wide: a server that trains with 1 thread must not keep 1
    (or a diverging run must not leave it changed) for everything it does afterwards."""
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen: list[int] = []
    fit(build_model(tiny_model_config(), seed=0), digits, tiny_train_config(epochs=1, max_threads=wanted),
        callback=lambda p: seen.append(torch.get_num_threads()), device="cpu")
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before
    with pytest.raises(TrainingDiverged):
        fit(build_model(tiny_model_config("vae"), seed=0), digits, tiny_train_config(epochs=2, lr=10.0, max_threads=wanted), device="cpu")
    assert torch.get_num_threads() == before
