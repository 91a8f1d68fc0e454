"""Colour images through the Python side: both architectures train, save and load; maps, grids,
traversals and fill-in keep three channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vae.analysis import images
from vae.analysis.maps import compute_map
from vae.core.checkpoint import load_checkpoint, save_checkpoint
from vae.core.config import TrainConfig
from vae.core.data import _load_cached, load_dataset
from vae.core.models import build_model, conv_channels, default_model_config
from vae.core.train import fit
from vae.services.browser_export import export_decoder


@pytest.fixture(scope="module")
def colour(tmp_path_factory: pytest.TempPathFactory):
    """40 32x32 RGB images: red squares and blue discs, labelled, from an npz."""
    rng = np.random.default_rng(0)
    x = np.zeros((40, 32, 32, 3), np.uint8)
    yy, xx = np.mgrid[:32, :32]
    for i in range(40):
        cx, cy = rng.integers(10, 22, 2)
        inside = (np.abs(xx - cx) < 6) & (np.abs(yy - cy) < 6) if i % 2 == 0 else (xx - cx) ** 2 + (yy - cy) ** 2 < 36
        x[i][inside] = (220, 30, 30) if i % 2 == 0 else (30, 30, 220)
    path = tmp_path_factory.mktemp("rgb") / "colour.npz"
    np.savez(path, x=x, y=np.arange(40) % 2)
    _load_cached.cache_clear()
    return load_dataset(f"npz:{path}")


def test_the_conv_default_for_32_to_64_px_halves_to_about_4x4() -> None:
    assert conv_channels((3, 64, 64)) == (32, 32, 64, 64) and conv_channels((3, 32, 32)) == (32, 64, 64)
    assert conv_channels((1, 28, 28)) == (32, 64) and conv_channels((1, 8, 8)) == (32, 64)  # the grey sets keep theirs


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_colour_trains_saves_loads_and_decodes_in_colour(colour, arch: str, tmp_path: Path) -> None:
    assert colour.image_shape == (3, 32, 32)
    config = default_model_config(colour.image_shape, arch=arch, latent_dim=2)
    model = build_model(config, seed=0)
    train = TrainConfig(dataset=colour.name, epochs=2, batch_size=16, snapshot_points=0)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).clone()
    result = fit(model, colour, train, device="cpu")
    assert len(result.history) == 2 and not torch.equal(before, torch.nn.utils.parameters_to_vector(model.parameters()))
    path = save_checkpoint(tmp_path / f"{arch}.safetensors", model, train, colour.info())
    ckpt = load_checkpoint(path)
    assert ckpt.model_config.image_shape == (3, 32, 32) and ckpt.dataset["image_shape"] == [3, 32, 32]
    z = np.array([[0.5, -0.5]], np.float32)
    decoded = images.decode_images(ckpt.model.eval(), z)
    np.testing.assert_allclose(decoded, images.decode_images(model.eval(), z), atol=1e-6)
    assert decoded.shape == (1, 32, 32, 3)
    assert images.manifold_grid(ckpt.model, n=3).shape == (3 * 33 - 1, 3 * 33 - 1, 3)
    assert images.traversals(ckpt.model, np.zeros(2, np.float32), steps=3).shape[-1] == 3
    fitted, index = compute_map(ckpt.model, colour.x_test, "pca", ckpt.sha256, cache=False)
    assert len(index) == len(colour.x_test)
    image = colour.x_test[0].permute(1, 2, 0).numpy()
    known = images.make_mask("top half", (32, 32))
    filled = images.fill_missing(ckpt.model, image, known, iterations=2)
    assert filled.shape == (32, 32, 3) and np.array_equal(filled[known], image[known])
    exported = export_decoder(ckpt.model)
    last = [layer for layer in exported["layers"] if "weight" in layer][-1]
    assert exported["image_shape"] == [3, 32, 32]  # its last layer makes 3 channels: a linear to 3 * 32 * 32, a convT to 3 maps
    assert (last["type"], last["shape"][0] if arch == "mlp" else last["shape"][1]) == ({"mlp": "linear", "conv": "convT"}[arch], 3072 if arch == "mlp" else 3)


def test_the_standalone_pad_exports_a_colour_pair(colour, tmp_path: Path) -> None:
    """export-pad on an RGB conv VAE + AE: one file holding both decoders for 3-channel images (the
    pad's JS decodes RGB as PyTorch does: tests/e2e/test_live_pad_rgb.py, the node fixtures)."""
    import json
    import re

    from vae.services import standalone_pad

    paths = []
    for kind, seed in (("vae", 0), ("ae", 1)):
        model = build_model(default_model_config(colour.image_shape, arch="conv", latent_dim=2, kind=kind), seed=seed)
        paths.append(save_checkpoint(tmp_path / f"rgb-{kind}.safetensors", model, TrainConfig(dataset=colour.name, epochs=1),
                                     colour.info(), pair="rgb"))
    html = standalone_pad.export_pad(*paths)
    found = re.search(r'<script type="application/json" id="latent-pad-data">(.*?)</script>', html, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert [d["label"] for d in data["decoders"]] == ["VAE", "AE"]
    for d in data["decoders"]:
        assert d["export"]["image_shape"] == [3, 32, 32]
