"""Generate on a 1-D latent (issue 9, item 6): one honest strip along z1 and one traversal,
never an n x n grid that uses z1 twice. AppTest on a tiny 1-D VAE + AE pair."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from vae.analysis import images
from vae.core.data import load_dataset
from vae.core.models import build_model
from vae.services.workflow import default_run, train_models

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="session")
def one_d_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding only a 1-D digits VAE + AE pair (2 epochs: the views need weights, not quality)."""
    folder = tmp_path_factory.mktemp("app-models-1d")
    data = load_dataset("digits")
    model_config, train_config = default_run(data, latent_dim=1)
    train_models(data, "both", model_config, replace(train_config, epochs=2, snapshot_points=0), folder, "digits-1d")
    return folder


@pytest.fixture
def one_d_env(one_d_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAE_MODELS_DIR", str(one_d_models_dir))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_NO_FRAGMENT", raising=False)
    return one_d_models_dir


def generate_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/generate.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_manifold_strip_decodes_z1_at_inverse_cdf_spacing() -> None:
    from vae.analysis.images import manifold_strip

    model = build_model(default_run(load_dataset("digits"), latent_dim=1)[0], seed=0).eval()
    strip = manifold_strip(model, n=7)
    cells = images.decode_images(model, images.gaussian_grid(7)[:, None])
    assert strip.shape == (8, 7 * 9 - 1, 1)  # one row of 7 images, 1 px apart
    np.testing.assert_allclose(strip, images.tile(cells, 1, 7), atol=0)
    assert len({cells[k].tobytes() for k in range(7)}) == 7  # every cell a different z1
    with pytest.raises(ValueError, match="1-D"):
        manifold_strip(build_model(default_run(load_dataset("digits"), latent_dim=2)[0], seed=0), n=5)


def test_generate_on_a_1d_latent_draws_one_strip_along_z1(one_d_env: Path) -> None:
    at = generate_page()
    assert [t.label for t in at.tabs] == ["Manifold strip", "Traversals", "Samples from the prior"]
    shown = captions(at)
    assert not [c for c in shown if "→ up" in c or "z2" in c or "×" in c], shown  # no second axis, no n x n grid
    assert [s.label for s in at.selectbox if "dimension" in s.label] == []  # nothing to choose: one dimension
    strip = [c for c in shown if c.startswith("1-D manifold")]
    assert strip == ["1-D manifold: 15 images along z1 (left to right: low to high)"], shown
    before = [img for img in at.image if strip[0] in img.captions][0].value[0]

    at.slider(key="gen_n").set_value(7).run()

    assert not at.exception, [e.value for e in at.exception]
    after = [img for img in at.image if "1-D manifold: 7 images along z1 (left to right: low to high)" in img.captions]
    assert len(after) == 1 and after[0].value[0] != before


def test_generate_on_a_1d_latent_shows_one_traversal(one_d_env: Path) -> None:
    at = generate_page()
    shown = captions(at)
    assert "one row, the only latent dimension: z1 from −3 to +3" in shown, shown
    assert not [c for c in shown if c.startswith("rows:")], shown
    assert any("one dimension" in m.value for m in at.markdown), [m.value for m in at.markdown]
