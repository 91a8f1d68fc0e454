"""Issue 13 on the pages: maps coloured by a true factor (Explore, Compare), Compare with two VAEs
on the same data (β = 1 beside β = 4: traversals labelled by the factor each dimension moves, the
MI table, the measured MIGs), and every page with an RGB model showing colour images.

The models are saved untrained (seeded weights): what is tested is the pages, not the training."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_pages import page_files, run_app  # tests/app is on sys.path (rootdir-relative imports)

import pages.ui.session
import pages.ui.widgets
from vae.core.checkpoint import save_checkpoint
from vae.core.config import TrainConfig
from vae.core.data import _load_cached, load_dataset
from vae.core.models import build_model, default_model_config


def save_untrained(folder: Path, name: str, dataset: str, kind: str = "vae", beta: float = 1.0, latent_dim: int = 3,
                   pair: str = "", seed: int = 0) -> None:
    data = load_dataset(dataset)
    config = replace(default_model_config(data.image_shape, kind=kind, latent_dim=latent_dim), hidden=(32,))
    save_checkpoint(folder / name, build_model(config, seed=seed), TrainConfig(dataset=dataset, beta=beta, epochs=1), data.info(), pair=pair)


@pytest.fixture(scope="module")
def beta_vaes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 3-D MLP VAEs on `shapes`, labelled β = 1 and β = 4."""
    folder = tmp_path_factory.mktemp("beta-vaes")
    save_untrained(folder, "shapes-b1", "shapes", beta=1.0, seed=0)
    save_untrained(folder, "shapes-b4", "shapes", beta=4.0, seed=1)
    return folder


@pytest.fixture(scope="module")
def rgb_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB VAE + AE pair (MLP) on 40 16x16 colour images from an npz the test writes."""
    root = tmp_path_factory.mktemp("rgb-data")
    rng = np.random.default_rng(0)
    x = (rng.random((40, 16, 16, 3)) * 255).astype(np.uint8)
    x[::2, ..., 0] = 250  # red-ish and blue-ish halves: two classes
    x[1::2, ..., 2] = 250
    np.savez(root / "colour.npz", x=x, y=np.arange(40) % 2)
    _load_cached.cache_clear()
    name = f"npz:{root / 'colour.npz'}"
    folder = tmp_path_factory.mktemp("rgb-models")
    save_untrained(folder, "rgb-vae", name, kind="vae", latent_dim=2, pair="rgb")
    save_untrained(folder, "rgb-ae", name, kind="ae", latent_dim=2, pair="rgb")
    return folder


def open_on(folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str) -> AppTest:
    monkeypatch.setenv("VAE_MODELS_DIR", str(folder))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_NO_FRAGMENT", raising=False)
    pages.ui.session._map_slot.clear()
    at = run_app()
    choice = at.sidebar.selectbox(key="model_choice")
    choice.set_value(next(o for o in choice.options if o.startswith(model))).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow  # shapes' 2,400 test images through two models, on a busy 2-core machine ~50 s
def test_compare_sets_a_beta_1_and_a_beta_4_vae_side_by_side(beta_vaes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = open_on(beta_vaes, monkeypatch, tmp_path, "shapes-b1 ")
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    with_ = at.selectbox(key="compare_with")
    assert with_.options == ["shapes-b4 (β = 4)"]  # no AE: the other VAE is the only choice, and chosen
    assert at.title[0].value == "Compare two VAEs"
    captions = [c for img in at.image for c in img.captions]
    for j in (1, 2, 3):  # a row per dimension for each model, each labelled by its dimension
        assert sum(c.startswith(f"z{j}:") for c in captions) == 2, captions
    assert len(at.dataframe) == 2  # the MI table of each model
    text = " ".join(m.value for m in at.markdown)
    assert "Measured MIG" in text and "shapes-b1 (β = 1)" in text and "shapes-b4 (β = 4)" in text
    assert "Both are below 0.2" in text  # untrained codes: no claim of disentanglement


def test_explore_colours_the_map_by_a_chosen_factor(beta_vaes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = open_on(beta_vaes, monkeypatch, tmp_path, "shapes-b1 ")
    at.switch_page("pages/explore.py").run()
    colour = at.selectbox(key="explore_colour")
    assert colour.options == ["class", "shape", "scale", "rotation", "x", "y"]
    colour.set_value("scale").run()
    assert not at.exception, [e.value for e in at.exception]
    (chart,) = at.get("plotly_chart")
    dots = [t for t in json.loads(chart.proto.spec)["data"] if t.get("name") == "scale"]
    assert len(dots) == 1 and dots[0]["marker"]["showscale"] and dots[0]["marker"]["colorbar"]["title"]["text"] == "scale"
    colours = dots[0]["marker"]["color"]  # Plotly sends a typed array as base64
    values = np.frombuffer(base64.b64decode(colours["bdata"]), colours["dtype"]) if isinstance(colours, dict) else np.array(colours)
    assert set(np.round(values, 6)) == set(np.round(np.linspace(0.5, 1.0, 6), 6))  # the true scales


@pytest.mark.parametrize("page", page_files())
def test_every_page_renders_an_rgb_model_in_colour(rgb_pair: Path, page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    modes: list[str] = []
    to_pil = pages.ui.widgets.to_pil

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        pil = to_pil(*args, **kwargs)
        modes.append(pil.mode)
        return pil

    monkeypatch.setattr(pages.ui.widgets, "to_pil", spy)
    at = open_on(rgb_pair, monkeypatch, tmp_path, "rgb (VAE + AE pair)")
    modes.clear()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.main.error, [e.value for e in at.main.error]
    if page in {"explore.py", "compare.py", "generate.py", "inpaint.py", "theory.py"}:  # the pages that draw images
        assert modes and set(modes) == {"RGB"}, modes


@pytest.mark.slow  # ~20 s on the busy machine
def test_compare_two_vaes_without_known_factors_shows_traversals_and_claims_no_mig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    save_untrained(folder, "digits-b1", "digits", beta=1.0, latent_dim=2, seed=0)
    save_untrained(folder, "digits-b4", "digits", beta=4.0, latent_dim=2, seed=1)
    save_untrained(folder, "digits-3d", "digits", beta=4.0, latent_dim=3, seed=2)  # another latent size: not offered
    at = open_on(folder, monkeypatch, tmp_path, "digits-b4 ")
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="compare_with").options == ["digits-b1 (β = 1)"]
    captions = [c for img in at.image for c in img.captions]
    assert sorted(captions) == ["z1", "z1", "z2", "z2"]
    assert not at.dataframe and "no MIG is measured" in " ".join(c.value for c in at.caption)
    assert "Measured MIG" not in " ".join(m.value for m in at.markdown)
