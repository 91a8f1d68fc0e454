"""ELBO pieces: closed-form KL, Bernoulli log-likelihood, importance-sampled log p(x)."""

from __future__ import annotations

import math

import pytest
import torch

from vae.core.config import ModelConfig, TrainConfig
from vae.core.losses import elbo_terms, kl_per_dim, log_px_importance, reconstruction_log_likelihood
from vae.core.models import build_model
from vae.core.train import fit


def log_normal(z, mu, var):
    return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (z - mu) ** 2 / var)


def test_kl_closed_form_matches_monte_carlo():
    mu = torch.tensor([[0.0, 1.5, -0.7, 0.3]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0, 0.8, -2.5]], dtype=torch.float64)
    n = 200_000
    eps = torch.randn(n, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    var = logvar.exp()
    z = mu + var.sqrt() * eps
    log_ratio = log_normal(z, mu, var) - log_normal(z, torch.zeros_like(mu), torch.ones_like(var))  # (n, 4)
    estimate = log_ratio.mean(0)
    standard_error = log_ratio.std(0) / math.sqrt(n)
    closed = kl_per_dim(mu, logvar)[0]
    assert closed.shape == (4,)
    assert torch.all((closed - estimate).abs() < 4 * standard_error + 1e-9), (closed, estimate, standard_error)
    assert torch.all(standard_error < 0.01)  # the check above is not vacuous


def test_kl_is_zero_at_the_prior():
    kl = kl_per_dim(torch.zeros(3, 5), torch.zeros(3, 5))
    assert kl.shape == (3, 5)
    assert torch.equal(kl, torch.zeros(3, 5))


def test_kl_is_positive_away_from_the_prior():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(100, 3, generator=gen), torch.randn(100, 3, generator=gen)
    assert torch.all(kl_per_dim(mu, logvar) > 0)


def test_kl_known_value():
    # mu = 1, sigma^2 = e: 1/2 (1 + e - 1 - 1) = (e - 1) / 2
    kl = kl_per_dim(torch.tensor([[1.0]]), torch.tensor([[1.0]]))
    assert torch.allclose(kl, torch.tensor([[(math.e - 1) / 2]]))


def test_reconstruction_log_likelihood_is_bernoulli_sum():
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4, 1, 5, 6, generator=gen, dtype=torch.float64)
    x = torch.rand(4, 1, 5, 6, generator=gen, dtype=torch.float64)
    x[0] = (x[0] > 0.5).double()  # binary and grey-level targets both work
    p = torch.sigmoid(logits)
    manual = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)
    got = reconstruction_log_likelihood(logits, x)
    assert got.shape == (4,)
    assert torch.allclose(got, manual, rtol=1e-10, atol=1e-10)


def test_reconstruction_log_likelihood_is_stable_for_extreme_logits():
    logits = torch.tensor([[[[200.0, -200.0]]]])
    assert torch.allclose(reconstruction_log_likelihood(logits, torch.tensor([[[[1.0, 0.0]]]])), torch.zeros(1))
    assert torch.isfinite(reconstruction_log_likelihood(logits, torch.tensor([[[[0.0, 1.0]]]]))).all()


def test_elbo_terms_add_up(tiny_model_config):
    model = build_model(tiny_model_config("vae"), seed=0)
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = elbo_terms(model, x, torch.Generator().manual_seed(1))
    assert t.recon.shape == t.kl.shape == t.elbo.shape == (8,)
    assert torch.allclose(t.elbo, t.recon - t.kl)
    assert torch.allclose(t.loss(0.5), -(t.recon - 0.5 * t.kl).mean())
    assert torch.all(t.kl >= 0)


def test_ae_elbo_has_no_kl(tiny_model_config):
    model = build_model(tiny_model_config("ae"), seed=0)
    t = elbo_terms(model, torch.rand(4, 1, 8, 8))
    assert torch.equal(t.kl, torch.zeros(4)) and torch.equal(t.elbo, t.recon)


def test_log_px_refuses_an_ae(tiny_model_config):
    model = build_model(tiny_model_config("ae"), seed=0)
    with pytest.raises(ValueError, match="stochastic"):
        log_px_importance(model, torch.rand(2, 1, 8, 8), k=10)


def test_log_px_refuses_k_zero(tiny_model_config):
    model = build_model(tiny_model_config("vae"), seed=0)
    with pytest.raises(ValueError, match="k must be"):
        log_px_importance(model, torch.rand(2, 1, 8, 8), k=0)


# --- importance sampling on a briefly trained digits VAE ------------------------------


@pytest.fixture(scope="module")
def trained_vae(digits):
    # 8-D latent: a 2-D posterior is so tight that K = 100 and K = 1000 barely differ
    model = build_model(ModelConfig(latent_dim=8, hidden=(64,)), seed=0)
    fit(model, digits, TrainConfig(epochs=10, batch_size=64, lr=3e-3, seed=0, snapshot_points=0), device="cpu")
    return model


def test_log_px_with_one_sample_is_the_elbo(trained_vae, digits):
    x = digits.x_test.repeat(20, 1, 1, 1)  # 20 draws for each of the 359 test images
    torch.manual_seed(0)
    k1 = log_px_importance(trained_vae, x, k=1)
    with torch.no_grad():
        elbo = elbo_terms(trained_vae, x, torch.Generator().manual_seed(1)).elbo
    diff = k1 - elbo  # paired by image, so image-to-image spread cancels
    standard_error = diff.std() / math.sqrt(len(diff))
    assert standard_error < 0.05
    assert diff.mean().abs() < 4 * standard_error, (diff.mean(), standard_error)


def test_log_px_bound_tightens_with_k(trained_vae, digits):
    x = digits.x_test  # 359 images
    torch.manual_seed(0)
    means = {k: log_px_importance(trained_vae, x, k=k, chunk=250).mean().item() for k in (1, 10, 100, 1000)}
    with torch.no_grad():
        elbo = torch.stack([elbo_terms(trained_vae, x).elbo for _ in range(20)]).mean().item()
    # measured gaps (2026-11-21, five seeds): 1->10 about 0.25 nats, 10->100 about 0.05, 100->1000 about 0.008
    assert means[1] + 0.1 < means[10]
    assert means[10] + 0.02 < means[100]
    assert means[1000] > means[100] - 0.01  # the seed-to-seed spread at K >= 100 is about 0.003
    assert means[1000] > elbo + 0.2

