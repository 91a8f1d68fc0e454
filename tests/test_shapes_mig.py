"""The `shapes` dataset (deterministic, factors beside the images) and MIG on known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vae.analysis.metrics import mig_score
from vae.core import shapes
from vae.core.checkpoint import save_checkpoint
from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import DATASET_NAMES, load_dataset
from vae.core.models import build_model

N = 4000
rng = np.random.default_rng(0)
FACTORS = np.stack([rng.integers(0, 3, N), rng.integers(0, 6, N), rng.integers(0, 10, N)], axis=1).astype(np.float64)
NAMES = ("shape", "scale", "x")


def test_shapes_are_the_same_bytes_for_a_seed_and_differ_for_another() -> None:
    x1, f1 = shapes.generate(300, 32, seed=3)
    x2, f2 = shapes.generate(300, 32, seed=3)
    x3, _ = shapes.generate(300, 32, seed=4)
    assert x1.tobytes() == x2.tobytes() and np.array_equal(f1, f2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (300, 32, 32) and x1.dtype == np.float32 and 0 <= x1.min() and x1.max() == 1.0


@pytest.mark.parametrize("size", shapes.SIZES)
def test_every_shape_lies_inside_the_frame_and_its_factors_move_it(size: int) -> None:
    """Extreme factors: the shape is whole (its area does not depend on x, y), and x, y, scale move it as named."""
    def one(shape: int, scale: float, angle: float, x: float, y: float) -> np.ndarray:
        return shapes.render(np.array([[shape, scale, angle, x, y]]), size)[0]

    for shape in range(3):
        for angle in shapes.ROTATIONS[::5]:
            areas = {round(float(one(shape, 1.0, angle, x, y).sum()), 3) for x in (0.0, 1.0) for y in (0.0, 1.0)}
            assert len(areas) == 1  # never clipped by an edge
    ys, xs = np.nonzero(one(0, 1.0, 0.0, 1.0, 0.0))
    assert xs.mean() > size / 2 > ys.mean()  # x = 1 is right, y = 0 is top
    assert one(1, 1.0, 0.0, 0.5, 0.5).sum() > 3 * one(1, 0.5, 0.0, 0.5, 0.5).sum()  # area grows with scale squared


def test_shapes_is_registered_with_its_factors_beside_the_images() -> None:
    assert {"shapes", "shapes-64"} <= set(DATASET_NAMES)
    data = load_dataset("shapes")
    assert data.image_shape == (1, 32, 32) and data.factor_names == shapes.FACTOR_NAMES
    assert data.factors_train is not None and data.factors_test is not None
    assert data.factors_train.shape == (len(data.x_train), 5) and data.factors_test.shape == (len(data.x_test), 5)
    assert torch.equal(data.y_test, data.factors_test[:, 0].long()) and data.class_names == shapes.SHAPE_NAMES
    # the factors belong to their images: redrawing an image from its factors gives it back
    redrawn = shapes.render(data.factors_test[:5].double().numpy(), 32)
    assert torch.equal(torch.from_numpy(redrawn), data.x_test[:5, 0])
    assert data.info()["factor_names"] == list(shapes.FACTOR_NAMES)


def test_mig_of_a_code_that_copies_the_factors_is_near_one() -> None:
    result = mig_score(FACTORS + rng.normal(0, 0.01, FACTORS.shape), FACTORS, NAMES)
    assert result["mig"] > 0.95 and result["best_dim"] == {"shape": 0, "scale": 1, "x": 2}


def test_mig_of_noise_is_near_zero() -> None:
    assert mig_score(rng.normal(size=(N, 4)), FACTORS, NAMES)["mig"] < 0.02


def test_mig_of_a_factor_spread_over_two_dimensions_is_low() -> None:
    """shape copied into two dimensions: no gap for it, so its part of the score is ~0."""
    codes = np.stack([FACTORS[:, 0], FACTORS[:, 0], FACTORS[:, 1], FACTORS[:, 2]], axis=1)
    result = mig_score(codes, FACTORS, NAMES)
    assert result["per_factor"]["shape"] < 0.02 and result["per_factor"]["scale"] > 0.95
    assert result["mig"] < 0.7
    mixed = np.stack([FACTORS[:, 0] + FACTORS[:, 1] / 6, FACTORS[:, 1] / 6 - FACTORS[:, 0], FACTORS[:, 2]], axis=1)  # rotated: both dims hold both
    assert mig_score(mixed, FACTORS, NAMES)["mig"] < 0.7


def test_evaluate_json_reports_mig_for_a_dataset_with_factors(tmp_path, monkeypatch, capsys) -> None:
    import vae.analysis.metrics
    from vae.__main__ import main

    monkeypatch.setattr(vae.analysis.metrics, "judge_or_none", lambda data: None)  # the shape judge's training is not what is tested
    data = load_dataset("shapes")
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=3, hidden=(16,)), seed=0)
    path = save_checkpoint(tmp_path / "s.safetensors", model, TrainConfig(dataset="shapes", epochs=1), data.info())
    assert main(["evaluate", str(path), "--k", "1", "--json"]) == 0
    mig = json.loads(capsys.readouterr().out)["mig"]
    assert set(mig["per_factor"]) == set(shapes.FACTOR_NAMES) and 0 <= mig["mig"] <= 1
    assert mig["n_images"] == len(data.x_test)
    assert main(["evaluate", str(path), "--k", "1"]) == 0
    assert "MIG against the true factors" in capsys.readouterr().out
