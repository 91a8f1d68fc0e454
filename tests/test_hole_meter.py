"""vae.analysis.layers.hole_meter (issue 11, item 6) on known answers: a constant decoder under an
encoder that gives the prior to every input (q = p), a linear decoder with its exact inverse as the
encoder (round trip 0) and an analytic judge, and q(z)/p(z) against the formula."""

from __future__ import annotations

import numpy as np
import torch
from test_layers import LinearAE, LinearVAE, SignJudge  # tests/ is on sys.path (rootdir-relative imports)

from vae.analysis import layers
from vae.core.config import ModelConfig
from vae.core.models import VAE


class PriorEncoderVAE(VAE):
    """decode(z) = a constant 1 × 1 × 4 image (0.25 everywhere); encode(x) = (0, log 1): every
    q(z|x) is the prior, so the aggregate q(z) is the prior too."""

    def __init__(self, latent_dim: int = 3) -> None:
        super().__init__(ModelConfig(image_shape=(1, 1, 4), latent_dim=latent_dim, hidden=(4,)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        zeros = torch.zeros(x.shape[0], self.latent_dim)
        return zeros, zeros

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], 1, 1, 4), 0.25)


def test_q_equals_p_when_every_posterior_is_the_prior_and_the_round_trip_is_the_norm() -> None:
    model = PriorEncoderVAE(3)
    x = torch.rand(50, 1, 1, 4)
    aggregate = layers.posterior_sample(model, x)
    judge = SignJudge(np.array([1.0, 1.0, -1.0, 0.0]))  # w·v = 0.25: class "pos", sigmoid(1)
    for z in (np.zeros(3), np.array([1.0, -2.0, 0.5]), np.array([4.0, 4.0, 4.0])):
        meter = layers.hole_meter(model, judge, z, aggregate)
        assert meter.q_over_p is not None and abs(meter.q_over_p - 1.0) < 1e-9
        assert abs(meter.round_trip - float(np.linalg.norm(z))) < 1e-5  # μ(decode(z)) = 0
        assert meter.class_name == "pos" and meter.class_index == 1
        assert abs(meter.confidence - 1 / (1 + np.exp(-1.0))) < 1e-6  # type: ignore[operator]


def test_linear_decoder_with_its_inverse_encoder_round_trips_exactly_and_the_judge_reads_its_decode() -> None:
    model = LinearVAE(2)  # decode(z) = z as pixels; encode(x) = x
    judge = SignJudge(np.array([1.0, -1.0]))
    for z, cls in ((np.array([0.5, 0.2]), "pos"), (np.array([-0.3, 0.4]), "neg")):
        meter = layers.hole_meter(model, judge, z)
        assert meter.round_trip < 1e-7
        s = z[0] - z[1]
        assert meter.class_name == cls
        assert abs(meter.confidence - max(1 / (1 + np.exp(-4 * s)), 1 / (1 + np.exp(4 * s)))) < 1e-6  # type: ignore[operator]
        assert meter.log_q_over_p is None and meter.q_over_p is None  # no aggregate given


def test_q_over_p_matches_the_formula_for_a_two_component_aggregate() -> None:
    mu = np.array([[1.0, 0.0], [-1.0, 2.0]])
    var = np.array([[0.25, 0.25], [1.0, 4.0]])
    z = np.array([0.5, 0.5])

    def normal(z: np.ndarray, m: np.ndarray, v: np.ndarray) -> float:
        return float(np.prod(np.exp(-0.5 * (z - m) ** 2 / v) / np.sqrt(2 * np.pi * v)))

    q = 0.5 * (normal(z, mu[0], var[0]) + normal(z, mu[1], var[1]))
    p = normal(z, np.zeros(2), np.ones(2))
    meter = layers.hole_meter(LinearVAE(2), None, z, (mu, var))
    assert abs(meter.q_over_p - q / p) < 1e-9 * q / p  # type: ignore[operator]
    assert meter.class_name is None and meter.confidence is None  # no judge
    far = layers.log_aggregate_over_prior(np.array([[60.0, -60.0]]), mu, var)[0]
    # far out both densities underflow a float; in log space the ratio is finite (here huge: the
    # component with σ² = 4 has heavier tails than the prior)
    assert np.isfinite(far) and far > 1000
    assert layers.hole_meter(LinearVAE(2), None, np.array([60.0, -60.0]), (mu, var)).q_over_p == float(np.exp(700.0))


def test_the_ae_has_no_density_so_no_ratio() -> None:
    model = LinearAE(2)
    x = torch.rand(20, 1, 1, 2)
    meter = layers.hole_meter(model, SignJudge(np.array([1.0, 0.0])), np.array([0.3, -0.1]), layers.posterior_sample(model, x))
    assert meter.q_over_p is None and meter.log_q_over_p is None
    assert meter.round_trip < 1e-7 and meter.class_name == "pos"
