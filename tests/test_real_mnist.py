"""Real data: a Kingma & Welling sized VAE learns the MNIST test pair in a few CPU epochs."""

from __future__ import annotations

import pytest
import torch

from vae.core.config import ModelConfig, TrainConfig
from vae.core.data import load_dataset
from vae.core.models import build_model
from vae.core.train import evaluate_elbo, fit

# Measured 2026-11-21 on the 2-core CPU dev box (torch 2.14.1, 1 intra-op thread as conftest sets):
#   VAE_DATA_ROOT=/work/shared/datasets python -m pytest -q tests/test_real_mnist.py -p no:cacheprovider -s
# printed "test -ELBO 137.81 nats; history [204.08, 169.48, 153.95, 144.37, 137.57]" (three runs, the
# same each time; about 6 s for the test). The threshold is that value + 5%: room for other CPUs'
# rounding and thread counts (it still fails a model that stalls after its first epochs: 204, 169).
MEASURED_TEST_NEG_ELBO = 137.81
NEG_ELBO_THRESHOLD = 144.7  # 137.81 * 1.05


@pytest.mark.slow
def test_mlp_vae_learns_mnist_test_pair(mnist_raw):
    data = load_dataset("mnist", data_root=mnist_raw.parent.parent, download=False)
    assert data.x_train.shape == (8000, 1, 28, 28)
    model = build_model(ModelConfig(kind="vae", arch="mlp", image_shape=(1, 28, 28), latent_dim=20, hidden=(400,)), seed=0)
    config = TrainConfig(dataset="mnist", epochs=5, batch_size=128, lr=1e-3, seed=0, snapshot_points=0)
    result = fit(model, data, config, device="cpu")
    neg_elbo = -evaluate_elbo(model, data.x_test, generator=torch.Generator().manual_seed(0))["elbo"]
    print(f"test -ELBO {neg_elbo:.2f} nats; history {[round(-row['test_elbo'], 2) for row in result.history]}")
    curve = [-row["test_elbo"] for row in result.history]
    assert curve == sorted(curve, reverse=True)  # the test loss falls every epoch
    assert neg_elbo < NEG_ELBO_THRESHOLD
