"""VAE and AE: shapes, output range, deterministic vs stochastic codes, seeded construction."""

from __future__ import annotations

import pytest
import torch

from vae.core.config import ModelConfig
from vae.core.models import AE, VAE, build_model, default_model_config

ARCH_SHAPES = [("mlp", (1, 8, 8)), ("conv", (1, 8, 8)), ("mlp", (1, 28, 28)), ("conv", (1, 28, 28))]


def small(kind: str, arch: str, image_shape, latent_dim: int) -> ModelConfig:
    return ModelConfig(kind=kind, arch=arch, image_shape=image_shape, latent_dim=latent_dim, hidden=(16,), channels=(4, 8))


@pytest.mark.parametrize("kind", ["vae", "ae"])
@pytest.mark.parametrize(("arch", "image_shape"), ARCH_SHAPES)
@pytest.mark.parametrize("latent_dim", [1, 2, 64])
def test_shapes(kind, arch, image_shape, latent_dim):
    model = build_model(small(kind, arch, image_shape, latent_dim), seed=0)
    x = torch.rand(5, *image_shape, generator=torch.Generator().manual_seed(0))
    logits, mu, logvar, z = model(x)
    assert logits.shape == (5, *image_shape)
    assert mu.shape == z.shape == (5, latent_dim)
    if kind == "vae":
        assert logvar is not None and logvar.shape == (5, latent_dim)
    else:
        assert logvar is None
    assert model.decode(z).shape == (5, *image_shape)
    assert model.latent_dim == latent_dim


@pytest.mark.parametrize(("arch", "image_shape"), ARCH_SHAPES)
def test_decode_outputs_probabilities(arch, image_shape):
    model = build_model(small("vae", arch, image_shape, 2), seed=0)
    z = 10 * torch.randn(200, 2, generator=torch.Generator().manual_seed(1))  # far from the prior, too
    with torch.no_grad():
        p = model.decode(z)
        logits = model.decode_logits(z)
    assert p.dtype == torch.float32
    assert p.min() >= 0 and p.max() <= 1
    assert torch.allclose(p, torch.sigmoid(logits))


def test_build_model_picks_the_class():
    assert isinstance(build_model(small("vae", "mlp", (1, 8, 8), 2)), VAE)
    assert isinstance(build_model(small("ae", "mlp", (1, 8, 8), 2)), AE)
    assert VAE.stochastic and not AE.stochastic


def test_ae_and_vae_share_architecture_except_logvar_head():
    vae_keys = set(build_model(small("vae", "conv", (1, 8, 8), 3)).state_dict())
    ae_keys = set(build_model(small("ae", "conv", (1, 8, 8), 3)).state_dict())
    assert ae_keys < vae_keys
    assert vae_keys - ae_keys == {"encoder.logvar.weight", "encoder.logvar.bias"}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_ae_code_is_deterministic(arch):
    model = build_model(small("ae", arch, (1, 8, 8), 4), seed=0)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, mu1, logvar, z1 = model(x)
        _, _, _, z2 = model(x)
    assert logvar is None
    assert torch.equal(z1, mu1)
    assert torch.equal(z1, z2)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_vae_code_is_stochastic_but_seedable(arch):
    model = build_model(small("vae", arch, (1, 8, 8), 4), seed=0)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, mu, _, z1 = model(x)
        _, _, _, z2 = model(x)
        _, _, _, za = model(x, torch.Generator().manual_seed(7))
        _, _, _, zb = model(x, torch.Generator().manual_seed(7))
    assert not torch.equal(z1, z2)
    assert not torch.equal(z1, mu)
    assert torch.equal(za, zb)


def test_sample_z_is_the_reparameterization():
    model = build_model(small("vae", "mlp", (1, 8, 8), 3), seed=0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.0, 2.0, -2.0]])
    z = model.sample_z(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(z, mu + torch.exp(0.5 * logvar) * eps)
    assert torch.equal(model.sample_z(mu, None), mu)


@pytest.mark.parametrize("kind", ["vae", "ae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_seeded_build_gives_identical_weights(kind, arch):
    cfg = small(kind, arch, (1, 8, 8), 2)
    a, b = build_model(cfg, seed=5).state_dict(), build_model(cfg, seed=5).state_dict()
    c = build_model(cfg, seed=6).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seeded_build_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(small("vae", "mlp", (1, 8, 8), 2), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_build_model_validates():
    from vae.core.errors import ConfigError

    with pytest.raises(ConfigError, match="latent_dim"):
        build_model(ModelConfig(latent_dim=0))


@pytest.mark.parametrize(("image_shape", "hidden"), [((1, 8, 8), (256,)), ((1, 28, 28), (400,))])
def test_default_model_config_is_valid(image_shape, hidden):
    for arch in ("mlp", "conv"):
        cfg = default_model_config(image_shape, arch=arch).validate()
        assert cfg.hidden == hidden and cfg.image_shape == image_shape
