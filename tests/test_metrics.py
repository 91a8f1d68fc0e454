"""Smoothness and prior measures (vae/analysis/metrics.py): known answers on a linear decoder, invariants on
random nets, seeded repeatability, and the VAE-vs-AE claim on a briefly trained digits pair."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vae.analysis.maps import encode_means
from vae.analysis.metrics import full_report, interpolation_smoothness, path_smoothness, prior_report
from vae.core.config import ModelConfig, TrainConfig
from vae.core.losses import log_px_importance
from vae.core.models import AE, build_model
from vae.core.train import fit

PIXELS = 6
DIM = 3


class LinearModel(AE):
    """decode(z) = z W + c and encode(x) = the first D pixels: every smoothness answer is known.

    Along a straight line in z a linear decoder changes each pixel by the same amount at every
    step, so each path's worst step equals its mean step and a step is (b - a) W / steps.
    """

    def __init__(self, weight: torch.Tensor, offset: torch.Tensor | None = None) -> None:
        d, p = weight.shape
        super().__init__(ModelConfig(kind="ae", latent_dim=d, image_shape=(1, 1, p), hidden=(1,)))
        self.weight = nn.Parameter(weight)
        self.offset = nn.Parameter(torch.zeros(p) if offset is None else offset)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x.flatten(1)[:, : self.latent_dim], None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight + self.offset).reshape(-1, 1, 1, self.weight.shape[1])


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def linear() -> LinearModel:
    return LinearModel(randn(DIM, PIXELS))


# ---------------------------------------------------------------- path_smoothness


def test_linear_decoder_changes_evenly_by_a_known_amount(linear: LinearModel) -> None:
    starts, ends = randn(5, DIM, seed=1), randn(5, DIM, seed=2)
    out = path_smoothness(linear, starts, ends, steps=8)
    assert set(out) == {"mean_step", "worst_step", "jump_ratio"}
    with torch.no_grad():
        per_path = ((ends - starts) @ linear.weight).abs().mean(1) / 8  # each step is 1/8 of the whole change
    assert out["mean_step"] == pytest.approx(float(per_path.mean()), rel=1e-5)
    assert out["worst_step"] == pytest.approx(out["mean_step"], rel=1e-5)
    assert out["jump_ratio"] == pytest.approx(1.0, rel=1e-5)


def test_twice_the_steps_halves_a_linear_step(linear: LinearModel) -> None:
    starts, ends = randn(4, DIM, seed=3), randn(4, DIM, seed=4)
    coarse = path_smoothness(linear, starts, ends, steps=8)
    fine = path_smoothness(linear, starts, ends, steps=16)
    assert fine["mean_step"] == pytest.approx(coarse["mean_step"] / 2, rel=1e-5)
    assert fine["worst_step"] == pytest.approx(coarse["worst_step"] / 2, rel=1e-5)


def test_a_path_that_goes_nowhere_changes_nothing(linear: LinearModel) -> None:
    z = randn(3, DIM, seed=5)
    out = path_smoothness(linear, z, z.clone(), steps=4)
    assert out["mean_step"] == 0 and out["worst_step"] == 0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_worst_step_is_never_below_the_mean(tiny_model_config, kind: str, seed: int) -> None:
    model = build_model(tiny_model_config(kind, latent_dim=4), seed=seed).eval()
    out = path_smoothness(model, 3 * randn(16, 4, seed=seed), 3 * randn(16, 4, seed=seed + 100), steps=12)
    assert out["worst_step"] >= out["mean_step"] > 0
    assert out["jump_ratio"] >= 1 - 1e-6
    assert all(math.isfinite(v) for v in out.values())


# ---------------------------------------------------------------- interpolation_smoothness


def test_interpolation_on_a_linear_decoder_is_even(linear: LinearModel) -> None:
    x = torch.rand(30, 1, 1, PIXELS, generator=torch.Generator().manual_seed(0))
    out = interpolation_smoothness(linear, x, n_pairs=10, steps=5, seed=0)
    assert out["worst_step"] == pytest.approx(out["mean_step"], rel=1e-5) and out["mean_step"] > 0
    assert out["jump_ratio"] == pytest.approx(1.0, rel=1e-5)


def test_interpolation_is_seeded(linear: LinearModel) -> None:
    x = torch.rand(30, 1, 1, PIXELS, generator=torch.Generator().manual_seed(0))
    a = interpolation_smoothness(linear, x, n_pairs=6, seed=1)
    assert a == interpolation_smoothness(linear, x, n_pairs=6, seed=1)
    assert a["mean_step"] != interpolation_smoothness(linear, x, n_pairs=6, seed=2)["mean_step"]  # other pairs


def test_interpolation_on_a_test_set_smaller_than_the_pairs(linear: LinearModel) -> None:
    x = torch.rand(3, 1, 1, PIXELS, generator=torch.Generator().manual_seed(0))  # 64 pairs from 3 images: drawn with replacement
    out = interpolation_smoothness(linear, x, seed=0)
    assert all(math.isfinite(v) for v in out.values())


# ---------------------------------------------------------------- prior_report


def test_prior_distance_to_the_nearest_test_image_is_known_for_a_constant_decoder() -> None:
    model = LinearModel(torch.zeros(DIM, PIXELS), offset=torch.full((PIXELS,), 0.5))  # every z decodes to 0.5
    x = torch.stack([torch.full((1, 1, PIXELS), 0.8), torch.full((1, 1, PIXELS), 0.6)])
    out = prior_report(model, x, n_samples=10, steps=4)
    assert set(out) == {"nearest_test_distance", "mean_step", "worst_step", "jump_ratio"}
    assert out["nearest_test_distance"] == pytest.approx(0.1)  # the 0.6 image, |0.5 - 0.6| per pixel
    assert out["mean_step"] == 0 and out["worst_step"] == 0


def test_prior_lines_of_a_linear_decoder_are_even(linear: LinearModel) -> None:
    out = prior_report(linear, torch.rand(5, 1, 1, PIXELS), n_samples=20, steps=6)
    assert out["worst_step"] == pytest.approx(out["mean_step"], rel=1e-5) and out["mean_step"] > 0
    assert out["jump_ratio"] == pytest.approx(1.0, rel=1e-5)


def test_prior_report_is_seeded(linear: LinearModel) -> None:
    x = torch.rand(5, 1, 1, PIXELS, generator=torch.Generator().manual_seed(0))
    assert prior_report(linear, x, n_samples=8, seed=3) == prior_report(linear, x, n_samples=8, seed=3)
    assert prior_report(linear, x, n_samples=8, seed=3) != prior_report(linear, x, n_samples=8, seed=4)


# ---------------------------------------------------------------- full_report on a briefly trained pair


@pytest.fixture(scope="module")
def pair(digits) -> dict[str, torch.nn.Module]:
    """A VAE and an AE with the same nets and seed, 20 digits epochs each (about 1 s together)."""
    models = {}
    for kind in ("vae", "ae"):
        model = build_model(ModelConfig(kind=kind, latent_dim=2, hidden=(64,)), seed=0)
        fit(model, digits, TrainConfig(epochs=20, batch_size=64, lr=3e-3, seed=0, snapshot_points=0), device="cpu")
        models[kind] = model
    return models


def test_full_report_keys_and_repeatability(pair, digits) -> None:
    report = full_report(pair["vae"], digits.x_test, k=5, seed=0)
    assert set(report) >= {"recon", "kl", "elbo", "kl_per_dim", "active_dims", "log_px", "log_px_k", "interpolation", "prior"}
    assert set(report["interpolation"]) == {"mean_step", "worst_step", "jump_ratio"}
    assert set(report["prior"]) == {"nearest_test_distance", "mean_step", "worst_step", "jump_ratio"}
    assert report == full_report(pair["vae"], digits.x_test, k=5, seed=0)
    other = full_report(pair["vae"], digits.x_test, k=5, seed=1)
    assert other["interpolation"] != report["interpolation"] and other["prior"] != report["prior"]


def test_more_steps_smaller_steps_on_a_trained_decoder(pair, digits) -> None:
    mu = torch.from_numpy(encode_means(pair["vae"], digits.x_test[:40]))
    coarse = path_smoothness(pair["vae"], mu[:20], mu[20:], steps=8)
    fine = path_smoothness(pair["vae"], mu[:20], mu[20:], steps=16)
    assert fine["mean_step"] < coarse["mean_step"] and fine["worst_step"] < coarse["worst_step"]
    assert fine["mean_step"] >= coarse["mean_step"] / 2 - 1e-7  # splitting a step never shrinks the total change


def test_vae_lines_change_more_evenly_than_the_ae(pair, digits) -> None:
    """The product's claim: straight lines through the VAE's latent space change the image more
    evenly (smaller worst/mean step ratio). Measured with seeds 0..13 for the models (this
    setup): the VAE's ratio was lower for every seed, for lines between prior samples by 0.05 to
    0.18 and between test codes by 0.003 to 0.19; seed 0 gives 1.23 vs 1.37 and 1.18 vs 1.37."""
    vae, ae = (full_report(pair[k], digits.x_test, k=1, seed=0) for k in ("vae", "ae"))
    assert vae["prior"]["jump_ratio"] < ae["prior"]["jump_ratio"]
    assert vae["interpolation"]["jump_ratio"] < ae["interpolation"]["jump_ratio"]


# ---------------------------------------------------------------- log p(x) estimate (vae/core/losses.py, used by elbo_report)


def log_px_as_before(model, x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """The earlier formulation: every chunk decoded at once against `chunk` repeated copies of x."""
    mu, logvar = model.encode(x)
    log_w, done = [], 0
    while done < k:
        m = min(chunk, k - done)
        eps = torch.randn((m, *mu.shape))
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = model.decode_logits(z.reshape(-1, mu.shape[1]))
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x.repeat(m, 1, 1, 1), reduction="none").flatten(1).sum(1).reshape(m, -1)
        log_pz = -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(-1)
        log_qz = -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)
        log_w.append(log_px_z + log_pz - log_qz)
        done += m
    return torch.logsumexp(torch.cat(log_w), 0) - math.log(k)


@pytest.mark.parametrize("max_elements", [None, 50 * 64 * 3, 1])  # one pass per chunk, 3 samples at a time, 1 at a time
def test_log_px_equals_the_repeated_copies_formulation(tiny_model_config, digits, max_elements) -> None:
    model = build_model(tiny_model_config("vae", latent_dim=3), seed=0).eval()
    x = digits.x_test[:50]
    with torch.no_grad():
        torch.manual_seed(0)
        expected = log_px_as_before(model, x, k=25, chunk=10)
    torch.manual_seed(0)
    got = log_px_importance(model, x, k=25, chunk=10, **({} if max_elements is None else {"max_elements": max_elements}))
    assert got.shape == (50,)
    assert torch.allclose(got, expected, rtol=0, atol=1e-4)


def test_log_px_decodes_at_most_max_elements_pixels_at_once(tiny_model_config, digits, monkeypatch) -> None:
    model = build_model(tiny_model_config("vae"), seed=0).eval()
    rows: list[int] = []
    decode = model.decode_logits
    monkeypatch.setattr(model, "decode_logits", lambda z: (rows.append(z.shape[0]), decode(z))[1])
    x = digits.x_test[:40]  # 40 images x 64 pixels = 2,560 per sample
    log_px_importance(model, x, k=30, chunk=12, max_elements=4 * 2560)
    assert sum(rows) == 30 * 40  # every sample of every image decoded once
    assert max(rows) * 64 <= 4 * 2560 and max(rows) == 4 * 40
