"""The browser export of decoders and maps: shapes, exact base64 round trip, what the map
export carries, and the checks on what the browser sends back. What the browser computes from
these exports (decode, lift, locate) is held to PyTorch and LatentMap under Node:
tests/test_pad_js.py runs tests/js."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from tests.js.export_fixtures import decoder_model
from vae.analysis.maps import LatentMap
from vae.services import browser_export


def test_base64_round_trip_is_bit_exact():
    a = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    a[0, :4] = [np.float32(1e-38), -0.0, np.finfo(np.float32).max, np.float32(np.pi)]
    text = browser_export.encode_f32(a)
    back = browser_export.decode_f32(text, a.shape)
    assert back.dtype == np.float32 and back.shape == a.shape
    assert back.tobytes() == a.tobytes()
    assert base64.b64decode(text) == a.astype("<f4").tobytes()  # little-endian float32, C order


def test_decode_f32_refuses_a_partial_float():
    with pytest.raises(ValueError, match="multiple of 4"):
        browser_export.decode_f32(base64.b64encode(b"abcdef").decode())


def test_mlp_export_lists_layers_with_torch_shapes():
    model = decoder_model("mlp", latent_dim=3, hidden=(32, 16))
    exp = browser_export.export_decoder(model)
    assert [layer["type"] for layer in exp["layers"]] == ["linear", "relu", "linear", "relu", "linear", "sigmoid"]
    assert [layer["shape"] for layer in exp["layers"] if layer["type"] == "linear"] == [[16, 3], [32, 16], [64, 32]]
    assert exp["latent_dim"] == 3 and exp["image_shape"] == [1, 8, 8]
    assert exp["n_params"] == sum(p.numel() for p in model.decoder.parameters())
    first = exp["layers"][0]
    np.testing.assert_array_equal(browser_export.decode_f32(first["weight"], first["shape"]), model.decoder.body[0][0].weight.detach().numpy())
    json.dumps(exp)  # JSON-able as it is


def test_conv_export_lists_unflatten_and_transposed_convolutions():
    model = decoder_model("conv", latent_dim=2, image_shape=(1, 8, 8), hidden=(16,), channels=(4, 6))
    exp = browser_export.export_decoder(model)
    types = [layer["type"] for layer in exp["layers"]]
    assert types == ["linear", "relu", "linear", "relu", "unflatten", "convT", "relu", "convT", "sigmoid"]
    assert exp["layers"][4]["shape"] == [6, 2, 2]
    conv = [layer for layer in exp["layers"] if layer["type"] == "convT"]
    assert [c["shape"] for c in conv] == [[6, 4, 4, 4], [4, 1, 4, 4]]
    assert all(c["stride"] == [2, 2] and c["padding"] == [1, 1] and c["output_padding"] == [0, 0] for c in conv)


def test_unsupported_layer_is_a_clear_error():
    model = decoder_model("mlp")
    model.decoder.body.append(torch.nn.Tanh())
    with pytest.raises(ValueError, match="Tanh"):
        browser_export.export_decoder(model)


def _mu(n: int = 120, d: int = 4) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((n, d)) * np.linspace(2, 0.5, d)).astype(np.float32)


@pytest.mark.parametrize("method,d", [("identity", 1), ("identity", 2), ("pca", 1), ("pca", 4)])
def test_map_export_carries_points_and_labels(method, d):
    mu = _mu(d=d)
    lmap = LatentMap(method).fit(mu)
    exp = json.loads(json.dumps(browser_export.export_map(lmap, labels=np.arange(len(mu)) % 10)))
    assert exp["n"] == len(mu) and len(exp["labels"]) == len(mu)
    np.testing.assert_array_equal(browser_export.decode_f32(exp["points"], (-1, 2)), lmap.points_)
    # lift and locate from this export equal LatentMap's: tests/js/maps.test.js


def test_map_export_tsne_carries_the_idw_lift():
    mu = _mu(60, 3)
    points = np.random.default_rng(1).standard_normal((60, 2)).astype(np.float32) * 10
    lmap = LatentMap("tsne", n_neighbors=5).fit(mu, points=points)
    exp = browser_export.export_map(lmap)
    assert exp["lift"] == "idw" and exp["k"] == 5
    np.testing.assert_array_equal(browser_export.decode_f32(exp["mu"], (-1, 3)), mu)
    # the browser's IDW lift and locate from this export equal LatentMap's: tests/js/maps.test.js


def test_map_export_checks_label_count():
    lmap = LatentMap("identity").fit(_mu(d=2))
    with pytest.raises(ValueError, match="one label per map point"):
        browser_export.export_map(lmap, labels=np.zeros(3))


# ---- what the browser sends back: read_release ------------------------------------------------


def test_read_release_returns_z_and_pixels_as_float32():
    pixels = np.linspace(0, 1, 4).tolist()
    z, got = browser_export.read_release({"z": [1, -2.5, 0.25], "p": [0, 0], "seq": 3, "pixels": [pixels, None]}, 3, (1, 2, 2), 2)
    assert z.dtype == np.float32 and z.tolist() == [1.0, -2.5, 0.25]
    assert got[0].dtype == np.float32 and got[0].shape == (1, 2, 2)
    np.testing.assert_array_equal(got[0].ravel(), np.float32(pixels))
    assert got[1] is None


@pytest.mark.parametrize(
    "z",
    [
        None, "1,2", 3.0, {"0": 1, "1": 2},  # not a list
        [], [1.0], [1.0, 2.0, 3.0],  # wrong length for a 2-D latent
        [1.0, float("nan")], [float("inf"), 0.0], [1e39, 0.0], [10**400, 0],  # not finite (in float32)
        ["1", 2], [True, 0], [None, 0], [[1], 0], [{}, 0],  # not numbers
    ],
)
def test_read_release_refuses_a_malformed_z(z):
    assert browser_export.read_release({"z": z, "pixels": []}, 2, (1, 2, 2), 1) is None


@pytest.mark.parametrize("report", [None, [], "release", 7, {}, {"pixels": [[0.5] * 4]}])
def test_read_release_refuses_a_report_that_is_not_a_release(report):
    assert browser_export.read_release(report, 2, (1, 2, 2), 1) is None


@pytest.mark.parametrize(
    "pixels",
    [None, "x", 5, [None], [[0.5] * 3], [[0.5] * 5], [[[0.5, 0.5], [0.5, 0.5]]], [[0.5, 0.5, 0.5, float("nan")]], [["0.5"] * 4]],
)
def test_read_release_drops_malformed_pixels_but_keeps_z(pixels):
    z, got = browser_export.read_release({"z": [0.5, -0.5], "pixels": pixels}, 2, (1, 2, 2), 1)
    assert z.tolist() == [0.5, -0.5]
    assert got == [None]


def test_read_release_has_one_pixel_entry_per_decoder():
    ok = [0.25] * 4
    _, got = browser_export.read_release({"z": [0, 0], "pixels": [ok, ok, ok]}, 2, (1, 2, 2), 2)
    assert len(got) == 2 and all(g is not None for g in got)  # extra entries are ignored
    _, got = browser_export.read_release({"z": [0, 0], "pixels": [ok]}, 2, (1, 2, 2), 2)
    assert got[0] is not None and got[1] is None  # missing ones are None


# ---- the hole meter's and the layers' exports (issue 11, items 5 and 6) ------------------------


def test_encoder_export_is_the_mean_path():
    from tests.js.export_fixtures import decoder_model

    mlp = browser_export.export_encoder(decoder_model("mlp", latent_dim=3, hidden=(32, 16)))
    assert [layer["type"] for layer in mlp["layers"]] == ["flatten", "linear", "relu", "linear", "relu", "linear"]
    assert mlp["layers"][-1]["shape"] == [3, 16]  # the μ head; no log-variance head
    conv = browser_export.export_encoder(decoder_model("conv", latent_dim=2, image_shape=(1, 8, 8), hidden=(16,), channels=(4, 6), kind="ae"))
    assert [layer["type"] for layer in conv["layers"]] == ["conv2d", "relu", "conv2d", "relu", "flatten", "linear", "relu", "linear"]
    assert conv["layers"][0]["shape"] == [4, 1, 4, 4] and conv["layers"][0]["stride"] == [2, 2] and conv["layers"][0]["padding"] == [1, 1]
    json.dumps(conv)
    # mu from these layers equals PyTorch's encoder under Node: tests/js/meter.test.js


def test_judge_export_lists_its_net():
    from tests.js.export_fixtures import _judge

    judge = _judge((1, 28, 28))
    exp = json.loads(json.dumps(browser_export.export_judge(judge)))
    assert [layer["type"] for layer in exp["layers"]] == [
        "conv2d", "relu", "maxpool", "conv2d", "relu", "maxpool", "flatten", "linear", "relu", "linear"]
    assert exp["layers"][2] == {"type": "maxpool", "kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "ceil_mode": True}
    assert exp["class_names"] == list(judge.class_names) and exp["image_shape"] == [1, 28, 28] and exp["key"] == judge.key
    first = exp["layers"][0]
    np.testing.assert_array_equal(browser_export.decode_f32(first["weight"], first["shape"]), judge.net[0].weight.detach().numpy())


def test_posterior_export_sends_log_variances_and_none_for_an_ae():
    mu = _mu(30, 3).astype(np.float64)
    logvar = np.random.default_rng(0).uniform(-4, 1, (30, 3)).astype(np.float32)
    exp = browser_export.export_posterior(mu, np.exp(logvar.astype(np.float64)))
    assert exp["n"] == 30 and exp["latent_dim"] == 3
    np.testing.assert_array_equal(browser_export.decode_f32(exp["logvar"], (30, 3)), logvar)  # the encoder's own float32 values
    np.testing.assert_array_equal(browser_export.decode_f32(exp["mu"], (30, 3)), mu.astype(np.float32))
    assert browser_export.export_posterior(mu, None)["logvar"] is None


def test_layer_exports_carry_what_the_pad_draws():
    from vae.analysis import layers

    box = ((-2.0, 2.0), (-1.0, 3.0))
    plane = layers.identity_plane(2)
    mu, var = _mu(40, 2).astype(np.float64), np.full((40, 2), 0.09)
    agg = json.loads(json.dumps(browser_export.export_layer("aggregate", layers.aggregate_posterior(mu, var, plane, box, 16))))
    assert agg["box"] == [[-2.0, 2.0], [-1.0, 3.0]] and agg["n"] == 16 and len(agg["levels"]) == 3
    assert browser_export.decode_f32(agg["density"], (16, 16)).shape == (16, 16)
    assert browser_export.export_layer("aggregate", layers.aggregate_posterior(mu, None, plane, box, 16))["density"] is None
    xs, ys = layers.grid_axes(box, 4)
    land = layers.Landscape(xs, ys, np.array([[0, 1, 2, 3]] * 4), np.array([[1.0, 0.55, 0.1, 1.0]] * 4, np.float32))
    rgba = np.frombuffer(base64.b64decode(browser_export.export_layer("landscape", land, class_count=10)["rgba"]), np.uint8).reshape(4, 4, 4)
    assert rgba[0, 0, 3] == 115 and rgba[0, 2, 3] == 0  # 0.45 of 255 where sure; nothing at chance
    prior = browser_export.export_layer("prior", layers.prior_circles(plane))
    assert prior["centre"] == [0.0, 0.0] and prior["radii"] == [1.0, 2.0, 3.0]
    ell = browser_export.export_layer("ellipses", layers.posterior_ellipses(mu, var, plane, np.arange(5)))
    np.testing.assert_allclose(ell["semi_axes"], 0.3)
    with pytest.raises(ValueError, match="unknown layer"):
        browser_export.export_layer("heatmap", None)
