"""The Theory page's numbers (vae/analysis/theory.py): the ELBO breakdown and log p(x) against K."""

from __future__ import annotations

import pytest
import torch

from vae.analysis.theory import K_VALUES, elbo_breakdown, log_px_versus_k
from vae.core.losses import kl_per_dim, log_px_importance
from vae.core.models import build_model
from vae.core.train import fit


@pytest.fixture(scope="module")
def trained_vae(digits, tiny_model_config, tiny_train_config):
    model = build_model(tiny_model_config("vae"), seed=0)
    fit(model, digits, tiny_train_config(epochs=5), device="cpu")
    return model


def test_every_k_is_at_least_the_elbo_and_the_bound_tightens(trained_vae, digits) -> None:
    """What the page draws: no K's estimate below the ELBO line (the curve used to dip under it
    at K = 5 with independent draws), and K = 1000 clearly above it."""
    for i in range(5):
        estimates, elbo = log_px_versus_k(trained_vae, digits.x_test[i : i + 1])
        assert len(estimates) == len(K_VALUES)
        assert estimates[0] == pytest.approx(elbo, abs=1e-4)  # K = 1 is the ELBO of the same samples
        assert min(estimates) >= elbo - 1e-4, (i, estimates, elbo)
        assert estimates[-1] > elbo + 0.01, (i, estimates, elbo)


def test_the_curve_agrees_with_independent_estimates(trained_vae, digits) -> None:
    """Sharing samples across K changes the noise, not what is estimated: K = 1000 from the pool
    matches log_px_importance with fresh samples, and the ELBO matches recon - KL in expectation."""
    x = digits.x_test[:1]
    estimates, elbo = log_px_versus_k(trained_vae, x)
    torch.manual_seed(1)
    fresh = log_px_importance(trained_vae, x.repeat(20, 1, 1, 1), k=1000).mean().item()
    assert estimates[-1] == pytest.approx(fresh, abs=0.1)
    torch.manual_seed(2)
    independent_elbo = log_px_importance(trained_vae, x.repeat(20_000, 1, 1, 1), k=1).mean().item()
    assert elbo == pytest.approx(independent_elbo, abs=0.1)


def test_seeded_and_validated(trained_vae, digits) -> None:
    x = digits.x_test[3:4]
    assert log_px_versus_k(trained_vae, x, seed=7) == log_px_versus_k(trained_vae, x, seed=7)
    assert log_px_versus_k(trained_vae, x, seed=7) != log_px_versus_k(trained_vae, x, seed=8)
    with pytest.raises(ValueError, match="divide"):
        log_px_versus_k(trained_vae, x, ks=(1, 3, 10))


def test_elbo_breakdown_terms_add_up(trained_vae, digits) -> None:
    x = digits.x_test[:1]
    b = elbo_breakdown(trained_vae, x, seed=3)
    assert torch.allclose(torch.from_numpy(b.z), torch.from_numpy(b.mu + b.sigma * b.eps), atol=1e-6)
    mu, logvar = trained_vae.encode(x)
    assert torch.allclose(torch.from_numpy(b.kl_per_dim), kl_per_dim(mu, logvar)[0].detach(), atol=1e-5)
    assert b.kl == pytest.approx(float(b.kl_per_dim.sum()), abs=1e-4)
    assert b.elbo == pytest.approx(b.recon - b.kl, abs=1e-5)
    assert (b.kl_per_dim >= 0).all() and b.reconstruction.shape == (8, 8, 1)
    assert elbo_breakdown(trained_vae, x, seed=3).eps.tolist() == b.eps.tolist()
    assert elbo_breakdown(trained_vae, x, seed=4).eps.tolist() != b.eps.tolist()
