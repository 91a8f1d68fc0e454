"""ModelConfig / TrainConfig: validation names the field; JSON round trip is exact."""

from __future__ import annotations

import json
import math

import pytest

from vae.core.config import ModelConfig, TrainConfig, to_json
from vae.core.errors import ConfigError


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 65}, "latent_dim"),
        ({"latent_dim": 2.0}, "latent_dim"),
        ({"kind": "gan"}, "kind"),
        ({"arch": "transformer"}, "arch"),
        ({"image_shape": (1, 8)}, "image_shape"),
        ({"hidden": ()}, "hidden"),
        ({"arch": "conv", "image_shape": (1, 10, 10), "channels": (8, 16)}, "arch"),
        ({"arch": "conv", "channels": (1, 1, 1, 1, 1)}, "channels"),
    ],
)
def test_model_config_error_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        ModelConfig(**overrides).validate()


def test_conv_error_says_what_size_is_needed():
    with pytest.raises(ConfigError) as err:
        ModelConfig(arch="conv", image_shape=(1, 10, 10), channels=(8, 16)).validate()
    assert "divisible by 4" in str(err.value) and "10x10" in str(err.value)


@pytest.mark.parametrize("latent_dim", [1, 2, 64])
def test_latent_dim_bounds_are_inclusive(latent_dim):
    assert ModelConfig(latent_dim=latent_dim).validate().latent_dim == latent_dim


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"beta": -1.0}, "beta"),
        ({"beta": math.inf}, "beta"),
        ({"lr": 0.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"dataset": ""}, "dataset"),
        ({"seed": -1}, "seed"),
        ({"snapshot_points": -1}, "snapshot_points"),
    ],
)
def test_train_config_error_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        TrainConfig(**overrides).validate()


def test_config_error_is_a_value_error():
    # callers that only know ValueError (argparse, plain Python) still catch it
    with pytest.raises(ValueError):
        TrainConfig(epochs=0).validate()


def test_model_config_json_round_trip():
    cfg = ModelConfig(kind="ae", arch="conv", image_shape=(1, 28, 28), latent_dim=16, hidden=(128,), channels=(8, 16))
    back = ModelConfig.from_dict(json.loads(to_json(cfg)))
    assert back == cfg
    assert isinstance(back.image_shape, tuple) and isinstance(back.hidden, tuple) and isinstance(back.channels, tuple)


def test_train_config_json_round_trip():
    cfg = TrainConfig(dataset="idx:/data/x", epochs=7, batch_size=32, lr=2.5e-4, beta=4.0, seed=123, snapshot_points=10)
    assert TrainConfig.from_dict(json.loads(to_json(cfg))) == cfg


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_unknown_field_is_rejected_and_named(cls):
    data = cls().to_dict()
    data["dropout"] = 0.5
    with pytest.raises(ConfigError, match="dropout"):
        cls.from_dict(data)


def test_from_dict_validates_values():
    with pytest.raises(ConfigError, match="latent_dim"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "latent_dim": 0})


@pytest.mark.parametrize("bad", [[1, 2], "vae", None])
def test_from_dict_needs_an_object(bad):
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict(bad)


def test_from_dict_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"hidden": 5})  # not iterable: a TypeError inside, a ConfigError outside
