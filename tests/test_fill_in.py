"""Filling in missing pixels (vae.analysis.images fill_batch / fill_samples, vae.analysis.metrics
fill_in_report / compare_fill_reports): known answers on linear and constant decoders read by a
stand-in judge, the VAE's sampled fills with sigma > 0 and sigma -> 0, seeds, image counts, and the
sentences built from the numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.test_metrics import StandInJudge
from vae.analysis import images
from vae.analysis.metrics import (
    FILL_MIN_IMAGES,
    NO_JUDGE,
    compare_fill_reports,
    fill_in_report,
    fill_indices,
    paired_difference,
)
from vae.core.config import ModelConfig
from vae.core.models import AE, VAE

SHAPE = (1, 4, 4)  # "bottom half" hides pixels 8..15; the code is read from the known top row
D = 2
HIDDEN = slice(8, 16)


class LinearVAE(VAE):
    """encode(x) = (the first D pixels, a constant logvar); decode(z) = z W + c: the mean fill of
    the bottom half is known after one iteration, and sigma = exp(logvar / 2) is ours to set."""

    def __init__(self, weight: torch.Tensor, offset: torch.Tensor, logvar: float) -> None:
        super().__init__(ModelConfig(kind="vae", latent_dim=D, image_shape=SHAPE, hidden=(1,)))
        self.weight, self.offset, self.logvar = nn.Parameter(weight), nn.Parameter(offset), logvar

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu = x.flatten(1)[:, :D]
        return mu, torch.full_like(mu, self.logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight + self.offset).reshape(-1, *SHAPE)


class LinearAE(AE):
    """The same encoder's mean and decoder, without a sigma."""

    def __init__(self, weight: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__(ModelConfig(kind="ae", latent_dim=D, image_shape=SHAPE, hidden=(1,)))
        self.weight, self.offset = nn.Parameter(weight), nn.Parameter(offset)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return x.flatten(1)[:, :D], None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight + self.offset).reshape(-1, *SHAPE)


def weights(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(D, 16, generator=g), torch.full((16,), 0.5)


def constant_vae(value: float = 0.8, logvar: float = 0.0) -> LinearVAE:
    """A decoder that ignores z: every pixel decodes to `value`."""
    return LinearVAE(torch.zeros(D, 16), torch.full((16,), value), logvar)


def sample_data(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *SHAPE, generator=g)
    y = (torch.arange(n) % 10 < 3).long()  # 30 % class 1, 70 % class 0
    return x, y


def bottom_judge() -> StandInJudge:
    """Class 1 where the bottom half's mean exceeds 0.5, else 0; always 0.9 sure."""
    return StandInJudge(lambda x: ((x[:, HIDDEN].mean(1) > 0.5).long().numpy(), np.full(x.shape[0], 0.9)), 2)


KNOWN = images.make_mask("bottom half", SHAPE[1:])


def test_fill_missing_is_fill_batch_of_one_image() -> None:
    model = LinearVAE(*weights(), logvar=0.0)
    x, _ = sample_data(3)
    batch = images.fill_batch(model, x, KNOWN, iterations=5)
    for i in range(3):
        one = images.fill_missing(model, x[i].permute(1, 2, 0).numpy(), KNOWN, iterations=5)
        np.testing.assert_array_equal(one, batch[i].permute(1, 2, 0).numpy())


def test_the_mean_fill_of_a_linear_model_is_known() -> None:
    weight, offset = weights()
    model = LinearVAE(weight, offset, logvar=0.0)
    x, y = sample_data()
    filled = images.fill_batch(model, x, KNOWN, iterations=3).flatten(1)
    flat = x.flatten(1)
    expected = (flat[:, :D] @ weight + offset).detach()
    torch.testing.assert_close(filled[:, HIDDEN], expected[:, HIDDEN])
    torch.testing.assert_close(filled[:, :8], flat[:, :8])  # the known pixels are the image's own
    report = fill_in_report(model, x, y, None, "bottom half", n_images=300, n_samples=0)
    assert report["mean"]["mae"] == pytest.approx(float((expected - flat)[:, HIDDEN].abs().mean()), rel=1e-5)
    assert report["grey"]["mae"] == pytest.approx(float((0.5 - flat[:, HIDDEN]).abs().mean()), rel=1e-5)
    assert report["hidden_pixels"] == 8


def test_a_decoder_that_ignores_z_fills_every_draw_alike() -> None:
    model = constant_vae(0.8, logvar=0.0)  # sigma = 1, but z does not matter
    x, y = sample_data()
    image = x[0].permute(1, 2, 0).numpy()
    draws = images.fill_samples(model, image, KNOWN, n=5, seed=3)
    assert draws.shape == (5, 4, 4, 1)
    for d in draws:
        np.testing.assert_array_equal(d, draws[0])
    np.testing.assert_allclose(draws[0][~KNOWN], 0.8, atol=1e-7)
    np.testing.assert_array_equal(draws[0][KNOWN], image[KNOWN])
    report = fill_in_report(model, x, y, None, "bottom half", n_images=250)
    assert report["spread"] == 0.0
    assert report["sampled"]["mae"] == pytest.approx(report["mean"]["mae"], abs=1e-7)
    chosen = x[torch.from_numpy(fill_indices(300, 250, 0))].flatten(1)
    assert report["mean"]["mae"] == pytest.approx(float((0.8 - chosen[:, HIDDEN]).abs().mean()), rel=1e-5)


def test_sampled_fills_differ_with_sigma_and_agree_as_sigma_vanishes() -> None:
    x, y = sample_data()
    image = x[0].permute(1, 2, 0).numpy()
    wide = LinearVAE(*weights(), logvar=0.0)
    draws = images.fill_samples(wide, image, KNOWN, n=4, seed=0)
    assert len({d[~KNOWN].tobytes() for d in draws}) == 4  # four different completions
    assert all(np.array_equal(d[KNOWN], image[KNOWN]) for d in draws)  # of the same known pixels
    narrow = LinearVAE(*weights(), logvar=-80.0)  # sigma = exp(-40)
    mean = images.fill_missing(narrow, image, KNOWN)
    for d in images.fill_samples(narrow, image, KNOWN, n=4, seed=0):
        np.testing.assert_allclose(d, mean, atol=1e-6)
    assert fill_in_report(wide, x, y, None, "bottom half")["spread"] > 0.05
    assert fill_in_report(narrow, x, y, None, "bottom half")["spread"] < 1e-6


def test_an_ae_has_one_fill() -> None:
    model = LinearAE(*weights())
    x, y = sample_data()
    image = x[1].permute(1, 2, 0).numpy()
    mean = images.fill_missing(model, image, KNOWN)
    for d in images.fill_samples(model, image, KNOWN, n=3, seed=1):
        np.testing.assert_array_equal(d, mean)
    report = fill_in_report(model, x, y, None, "bottom half")
    assert report["kind"] == "ae" and report["sampled"] is None and report["spread"] is None and report["n_samples"] is None


def test_the_report_is_seeded() -> None:
    model = LinearVAE(*weights(), logvar=0.0)
    x, y = sample_data(400)
    judge = bottom_judge()
    a = fill_in_report(model, x, y, judge, "bottom half", n_images=200, seed=5)
    b = fill_in_report(model, x, y, judge, "bottom half", n_images=200, seed=5)
    assert a == b
    c = fill_in_report(model, x, y, judge, "bottom half", n_images=200, seed=6)
    assert c["sampled"]["per_image"]["mae"] != a["sampled"]["per_image"]["mae"]
    np.testing.assert_array_equal(fill_indices(400, 200, 5), fill_indices(400, 200, 5))
    assert not np.array_equal(fill_indices(400, 200, 5), fill_indices(400, 200, 6))


def test_the_image_count_is_what_was_asked() -> None:
    model = LinearVAE(*weights(), logvar=0.0)
    x, y = sample_data(300)
    report = fill_in_report(model, x, y, bottom_judge(), "bottom half", n_images=FILL_MIN_IMAGES, n_samples=3)
    assert report["n_images"] == FILL_MIN_IMAGES >= 200
    assert len(report["mean"]["per_image"]["mae"]) == len(report["sampled"]["per_image"]["true_label"]) == 200
    assert fill_in_report(model, x, y, None, "bottom half", n_images=1000)["n_images"] == 300  # all there are
    idx = fill_indices(300, 250, 0)
    assert len(set(idx.tolist())) == 250 and idx.min() >= 0 and idx.max() < 300


def test_the_judge_shares_are_known() -> None:
    model = constant_vae(0.8)  # every fill's bottom half is 0.8: class 1
    x, y = sample_data()
    report = fill_in_report(model, x, y, bottom_judge(), "bottom half", n_images=300, n_samples=4)
    for fill in ("mean", "sampled"):
        assert report[fill]["true_label"] == pytest.approx(0.3)  # the 30 % labelled 1
        assert report[fill]["any_true_label"] == pytest.approx(0.3)
        assert report[fill]["recognised"] == 1.0
    assert report["grey"]["true_label"] == pytest.approx(0.7)  # grey 0.5 is not above 0.5: class 0
    unsure = StandInJudge(lambda t: (np.ones(t.shape[0], np.int64), np.full(t.shape[0], 0.4)), 2)
    assert fill_in_report(model, x, y, unsure, "bottom half")["mean"]["true_label"] == 0.0  # right class, not sure enough


def test_paired_difference() -> None:
    assert paired_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == (1.0, 0.0)
    mean, se = paired_difference([1.0, 3.0], [0.0, 0.0])
    assert mean == 2.0 and se == pytest.approx(1.0)  # std 1.414 / sqrt 2


def fake(kind: str, mae: list[float], true: list[float] | None, spread: float | None = None) -> dict:
    fill = {"mae": float(np.mean(mae)), "true_label": None if true is None else float(np.mean(true)),
            "recognised": None if true is None else 1.0, "any_true_label": None if true is None else float(np.mean(true)),
            "per_image": {"mae": mae, "true_label": true}}
    return {"kind": kind, "mask": "left half", "n_images": len(mae), "seed": 0, "judge": true is not None,
            "grey": {"mae": 0.4, "true_label": None if true is None else 0.5}, "mean": fill,
            "n_samples": 4 if kind == "vae" else None, "sampled": fill if kind == "vae" else None, "spread": spread}


def test_compare_fill_reports_follows_the_numbers() -> None:
    n = 200
    vae = fake("vae", [0.16] * n, [1.0] * 142 + [0.0] * 58, spread=0.05)
    ae = fake("ae", [0.14] * n, [1.0] * 128 + [0.0] * 72)
    out = compare_fill_reports(vae, ae)
    assert out["headline"] == ("Over 200 test images with the left half hidden, the AE's fills are closer to the truth "
                               "(MAE 0.140 vs 0.160); the judge recognises the true class in 71 % of the VAE's fills and 64 % of the AE's.")
    rows = {r["key"]: r for r in out["rows"]}
    assert rows["mae_mean"]["favours"] == "AE" and rows["mae_mean"]["sentence"].endswith("This one favours the AE.")
    assert rows["true_mean"]["favours"] == "VAE"
    assert out["note"] is None and out["spread"] == 0.05


def test_a_difference_within_noise_is_a_tie() -> None:
    rng = np.random.default_rng(0)
    v = (0.15 + 0.05 * rng.standard_normal(200)).tolist()
    a = (0.15 + 0.05 * rng.standard_normal(200)).tolist()  # no real difference: noise only
    out = compare_fill_reports(fake("vae", v, None), fake("ae", a, None))
    (row,) = out["rows"][:1]
    assert row["favours"] is None and "A tie within noise" in row["sentence"]
    assert "about as close to the truth" in out["headline"]
    assert [r["key"] for r in out["rows"]] == ["mae_mean", "mae_sampled"]  # no judge, no judged rows
    assert out["note"] == NO_JUDGE


def test_reports_on_different_images_are_refused() -> None:
    vae, ae = fake("vae", [0.1] * 200, None), fake("ae", [0.1] * 250, None)
    with pytest.raises(ValueError, match="same images"):
        compare_fill_reports(vae, ae)
