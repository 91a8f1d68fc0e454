"""ModelConfig / TrainConfig: validation names the field and the allowed range; JSON round trip is exact.
(The same errors through the CLI: tests/test_failures.py.)"""

from __future__ import annotations

import json
import math

import pytest

from vae.core.config import ModelConfig, TrainConfig, to_json
from vae.core.errors import ConfigError


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"latent_dim": 0}, "latent_dim", "from 1 to 64"),
        ({"latent_dim": 65}, "latent_dim", "from 1 to 64"),
        ({"latent_dim": 2.0}, "latent_dim", "from 1 to 64"),
        ({"kind": "gan"}, "kind", "one of ('vae', 'ae')"),
        ({"arch": "transformer"}, "arch", "one of ('mlp', 'conv')"),
        ({"image_shape": (1, 8)}, "image_shape", "(C, H, W)"),
        ({"hidden": ()}, "hidden", "1 to 8 layer widths"),
        ({"hidden": (16,) * 9}, "hidden", "1 to 8 layer widths"),
        ({"arch": "conv", "image_shape": (1, 10, 10), "channels": (8, 16)}, "arch", "divisible by 4"),
        ({"arch": "conv", "image_shape": (1, 10, 10)}, "arch", "divisible by 4"),
        ({"arch": "conv", "channels": (1, 1, 1, 1, 1)}, "channels", "1 to 4 channel counts"),
    ],
)
def test_model_config_error_names_the_field_and_the_allowed_range(overrides, field, allowed):
    with pytest.raises(ConfigError, match=rf"^{field}: ") as err:
        ModelConfig(**overrides).validate()
    assert allowed in str(err.value), str(err.value)


def test_conv_error_says_what_size_is_needed():
    with pytest.raises(ConfigError) as err:
        ModelConfig(arch="conv", image_shape=(1, 10, 10), channels=(8, 16)).validate()
    assert "divisible by 4" in str(err.value) and "10x10" in str(err.value)


@pytest.mark.parametrize("latent_dim", [1, 2, 64])
def test_latent_dim_bounds_are_inclusive(latent_dim):
    assert ModelConfig(latent_dim=latent_dim).validate().latent_dim == latent_dim


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"beta": -1.0}, "beta", "from 0 to 1000"),
        ({"beta": math.inf}, "beta", "from 0 to 1000"),
        ({"lr": 0.0}, "lr", "(0, 10]"),
        ({"lr": math.nan}, "lr", "(0, 10]"),
        ({"lr": -1e-3}, "lr", "(0, 10]"),
        ({"epochs": 0}, "epochs", "from 1 to 10000"),
        ({"batch_size": 0}, "batch_size", "from 1 to 65536"),
        ({"dataset": ""}, "dataset", "dataset name"),
        ({"seed": -1}, "seed", "from 0 to 2**32-1"),
        ({"snapshot_points": -1}, "snapshot_points", "from 0 to 5000"),
    ],
)
def test_train_config_error_names_the_field_and_the_allowed_range(overrides, field, allowed):
    with pytest.raises(ConfigError, match=rf"^{field}: ") as err:
        TrainConfig(**overrides).validate()
    assert allowed in str(err.value), str(err.value)


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
    with pytest.raises(ConfigError, match=r"^ModelConfig: .*infinity"):
        ModelConfig.from_dict({"hidden": [1e999]})  # an OverflowError inside
