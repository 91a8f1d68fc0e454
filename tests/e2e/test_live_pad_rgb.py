"""Issue 13, RGB end to end: the Live pad, in Chromium, decodes an RGB conv VAE + AE pair (16x16
colour images from an npz this test writes) equal to PyTorch within 1e-4, three channels per pixel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import pad_state, run_streamlit

READY = "() => { const s = window.__latentPadState && window.__latentPadState(); return !!(s && s.ready); }"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def rgb_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-D conv VAE + AE pair ("rgb") on 40 16x16 RGB images, saved with seeded (untrained) weights."""
    from vae.core.checkpoint import save_checkpoint
    from vae.core.config import TrainConfig
    from vae.core.data import load_dataset
    from vae.core.models import build_model, default_model_config

    root = tmp_path_factory.mktemp("rgb-pad")
    rng = np.random.default_rng(0)
    x = (rng.random((40, 16, 16, 3)) * 255).astype(np.uint8)
    x[::2, ..., 0], x[1::2, ..., 2] = 250, 250
    np.savez(root / "colour.npz", x=x, y=np.arange(40) % 2)
    name = f"npz:{root / 'colour.npz'}"
    data = load_dataset(name)
    folder = root / "models"
    folder.mkdir()
    for kind in ("vae", "ae"):
        config = replace(default_model_config(data.image_shape, kind=kind, arch="conv", latent_dim=2), hidden=(16,), channels=(6, 8))
        save_checkpoint(folder / f"rgb-{kind}", build_model(config, seed=3), TrainConfig(dataset=name, epochs=1), data.info(), pair="rgb")
    return folder


def test_the_live_pad_decodes_an_rgb_pair_as_pytorch_does(rgb_models: Path, browser, tmp_path: Path) -> None:
    from vae.core.checkpoint import load_checkpoint

    with run_streamlit(rgb_models, tmp_path / "cache", tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")  # app.py first: a fresh server knows its st.navigation pages after one run
            page.get_by_text("Explore the latent space").wait_for(timeout=120_000)
            page.goto(url + "/live")
            page.wait_for_function(READY, timeout=120_000)
            labels = pad_state(page)["labels"]
            assert len(labels) == 2 and sum("VAE" in label for label in labels) == 1, labels
            z = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32) * 2
            models = {c.kind.upper(): c.model for c in (load_checkpoint(p) for p in sorted(rgb_models.glob("*.safetensors")))}
            for which, label in enumerate(labels):
                model = models["VAE"] if "VAE" in label else models["AE"]  # "AE" is in "VAE" too: the VAE first
                js = np.array(page.evaluate("([zs, w]) => zs.map((z) => window.__latentPadDecode(z, w))", [z.tolist(), which]))
                with torch.no_grad():
                    ref = model.decode(torch.from_numpy(z)).reshape(len(z), -1).numpy()
                assert js.shape == ref.shape == (6, 3 * 16 * 16)
                assert np.abs(js - ref).max() < 1e-4, f"{label}: browser and PyTorch differ by {np.abs(js - ref).max():.2e}"
            assert not errors, errors
        finally:
            context.close()
