"""The Streamlit app without a browser (streamlit.testing.v1.AppTest): every page renders on
the embedded default, sliders and map clicks drive the decoder, bad uploads are messages,
and the first run trains the default pair."""

from __future__ import annotations

import json
import pickle
import re
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from streamlit.testing.v1 import AppTest

import vae.analysis.maps
import vae.services.workflow
from vae.analysis.maps import encode_means
from vae.core.checkpoint import load_checkpoint, save_checkpoint
from vae.core.config import ModelConfig
from vae.core.data import load_dataset
from vae.core.models import build_model
from vae.services.jobs import TrainingRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = str(REPO_ROOT / "app.py")
NOT_PAGES = {"__init__.py"}  # modules in pages/ that are not pages (shared helpers live in pages/ui/)
TIMEOUT = 60  # seconds per script run: generous, the CI machine may be busy


def page_files() -> list[str]:
    """Every page file in pages/, discovered, so pages added later are covered too."""
    return sorted(p.name for p in (REPO_ROOT / "pages").glob("*.py") if p.name not in NOT_PAGES)


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def image_by_caption(at: AppTest, caption: str):  # type: ignore[no-untyped-def]
    found = [img for img in at.image if caption in img.captions]
    assert len(found) == 1, f"expected one image captioned {caption!r}, got {[i.captions for i in at.image]}"
    return found[0]


def decoded_url(at: AppTest) -> str:
    """The media URL of the Explore page's decoded image; Streamlit names media by a hash of its bytes."""
    return image_by_caption(at, "decoded image").value[0]


def explore_sliders(at: AppTest, prefix: str):  # type: ignore[no-untyped-def]
    sliders = [s for s in at.slider if (s.key or "").startswith(f"{prefix}_z")]
    return sorted(sliders, key=lambda s: s.key)


def explore_prefix(models_dir: Path) -> str:
    """The Explore page's widget-key prefix for the pair's VAE (the pair's primary model)."""
    ckpt = load_checkpoint(models_dir / "mnist-2d-vae.safetensors")
    return f"explore_{ckpt.sha256[:12]}"


def select_on_chart(at: AppTest, key: str, point: dict) -> AppTest:
    """Rerun as if the user clicked `point` on the Plotly chart with this key.

    AppTest has no interaction for st.plotly_chart and its selection state is read-only in
    session_state, so this adds the JSON widget state the browser would send for a click
    (a JSON string, as PlotlyChartSelectionSerde reads it) to the widget states of the next run.
    """
    charts = [c for c in at.get("plotly_chart") if c.key == key]
    assert len(charts) == 1, f"no plotly chart with key {key!r}"
    chart = charts[0]
    selection = {"selection": {"points": [point], "point_indices": [point.get("point_index", 0)], "box": [], "lasso": []}}
    state = WidgetState(id=chart.proto.id, string_value=json.dumps(selection))  # value_type of plotly_chart
    tree = chart.root
    collect = tree.get_widget_states

    def with_click() -> WidgetStates:
        states = collect()
        states.widgets.append(state)
        return states

    tree.get_widget_states = with_click  # this tree only; the next run builds a new one
    return tree.run()


# --- every page renders --------------------------------------------------------------------


@pytest.mark.parametrize("page", page_files())
def test_page_renders_on_the_default_pair(app_env: Path, page: str) -> None:
    at = run_app()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"
    assert not at.main.error, [e.value for e in at.main.error]
    assert at.sidebar.selectbox(key="model_choice").value == "mnist-2d (VAE + AE pair)"  # the frame ran too


@pytest.mark.parametrize("page", page_files())
def test_page_renders_with_a_single_autoencoder(app_env: Path, page: str) -> None:
    """A lone AE (no VAE, no pair): pages that need a VAE or a pair explain instead of failing."""
    at = run_app()
    choice = at.sidebar.selectbox(key="model_choice")
    ae_label = next(o for o in choice.options if "(AE," in o)
    choice.set_value(ae_label).run()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="model_choice").value == ae_label


# --- Explore: sliders and clicks drive the decoder -----------------------------------------


def test_moving_a_latent_slider_changes_the_decoded_image(app_env: Path) -> None:
    at = run_app()
    prefix = explore_prefix(app_env)
    z1, z2 = explore_sliders(at, prefix)
    start_value, start_url, start_code = z1.value, decoded_url(at), at.code[0].value

    z1.set_value(z1.max).run()
    assert not at.exception
    assert decoded_url(at) != start_url
    assert at.code[0].value != start_code
    assert at.code[0].value.startswith(f"z = [{z1.max:+.2f}")

    explore_sliders(at, prefix)[0].set_value(start_value).run()  # back: the same image again
    assert decoded_url(at) == start_url
    assert at.code[0].value == start_code


def test_clicking_a_test_point_loads_its_code_into_the_sliders(app_env: Path) -> None:
    at = run_app()
    prefix = explore_prefix(app_env)
    ckpt = load_checkpoint(app_env / "mnist-2d-vae.safetensors")
    x_test = load_dataset("digits").x_test
    index = 7
    mu = encode_means(ckpt.model, x_test[index : index + 1])[0]
    point = {"x": float(mu[0]), "y": float(mu[1]), "customdata": index, "curve_number": 1, "point_number": 0, "point_index": 0}
    before = decoded_url(at)

    select_on_chart(at, f"{prefix}_map", point)

    assert not at.exception, [e.value for e in at.exception]
    sliders = explore_sliders(at, prefix)
    expected = np.clip(mu, [s.min for s in sliders], [s.max for s in sliders])
    np.testing.assert_allclose([s.value for s in sliders], expected, atol=1e-5)
    assert any(c.startswith(f"test image #{index} ") for img in at.image for c in img.captions)
    assert decoded_url(at) != before


def test_clicking_empty_space_decodes_that_spot(app_env: Path) -> None:
    at = run_app()
    prefix = explore_prefix(app_env)
    lo = np.array([s.min for s in explore_sliders(at, prefix)])
    hi = np.array([s.max for s in explore_sliders(at, prefix)])
    spot = lo + 0.2 * (hi - lo)  # identity map of a 2-D latent: the map position is z itself
    point = {"x": float(spot[0]), "y": float(spot[1]), "customdata": -1, "curve_number": 0, "point_number": 3, "point_index": 3}

    select_on_chart(at, f"{prefix}_map", point)

    assert not at.exception, [e.value for e in at.exception]
    np.testing.assert_allclose([s.value for s in explore_sliders(at, prefix)], spot, atol=1e-5)
    assert at.code[0].value == "z = [" + ", ".join(f"{v:+.2f}" for v in spot) + "]"
    assert not any(c.startswith("test image #") for img in at.image for c in img.captions)


def test_vae_sliders_cover_the_priors_three_sigma(app_env: Path) -> None:
    """The fixture's briefly trained VAE keeps its test means in a narrow band; its sliders
    still reach ±3, where samples from the prior come from."""
    at = run_app()
    sliders = explore_sliders(at, explore_prefix(app_env))
    assert len(sliders) == 2 and all(s.min <= -3 and s.max >= 3 for s in sliders), [(s.min, s.max) for s in sliders]


def test_slider_ranges_cover_the_prior_only_when_asked() -> None:
    from pages.ui.widgets import slider_ranges

    mu = np.array([[0.0, 10.0], [0.2, 10.2]], np.float32)  # mean (0.1, 10.1), std 0.1
    np.testing.assert_allclose(slider_ranges(mu), [(-0.2, 0.4), (9.8, 10.4)], atol=1e-5)
    np.testing.assert_allclose(slider_ranges(mu, cover_prior=True), [(-3.0, 3.0), (-3.0, 10.4)], atol=1e-5)


def test_tsne_on_request_shows_its_steps_then_is_instant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3-D VAE: asking for t-SNE opens a status that names each step and closes complete; the
    map is then cached, so the next run (and another session) shows no status at all."""
    import pages.ui.session

    models = tmp_path / "models"
    data = load_dataset("digits")
    model_config, train_config = vae.services.workflow.default_run(data, which="vae", latent_dim=3)
    vae.services.workflow.train_models(data, "vae", model_config, replace(train_config, epochs=1), models, "three-d")
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(vae.analysis.maps.DEFAULT_SAMPLE, "tsne", 150)  # a smaller t-SNE, same path
    pages.ui.session._map_slot.clear()
    at = run_app()
    assert not at.status  # PCA: instant

    at.radio(key="explore_method").set_value("t-SNE (slower, cached)").run()

    assert not at.exception, [e.value for e in at.exception]
    (status,) = at.status
    assert (status.state, status.label) == ("complete", "t-SNE map of 150 test images: done (cached from now on)")
    assert [m.value for m in status.markdown] == ["encoding 150 test images", "running t-SNE on 150 points"]
    assert image_by_caption(at, "decoded image")

    at.run()
    assert not at.status and not at.exception
    other = run_app()
    other.radio(key="explore_method").set_value("t-SNE (slower, cached)").run()
    assert not other.status and not other.exception


# --- Compare: one z, two decoders ---------------------------------------------------------


def compare_prefix(models_dir: Path, pair: str = "mnist-2d") -> str:
    vae_sha = load_checkpoint(models_dir / f"{pair}-vae.safetensors").sha256
    ae_sha = load_checkpoint(models_dir / f"{pair}-ae.safetensors").sha256
    return f"compare_{vae_sha[:8]}_{ae_sha[:8]}"


def compare_sliders(at: AppTest, prefix: str):  # type: ignore[no-untyped-def]
    """The shared z sliders, whichever range ("vae" or "both") they follow now."""
    return sorted((s for s in at.slider if re.fullmatch(rf"{prefix}_(vae|both)_z\d+", s.key or "")), key=lambda s: s.key)


def compare_decodes(at: AppTest) -> tuple[str, str]:
    return image_by_caption(at, "VAE decodes z").value[0], image_by_caption(at, "AE decodes z").value[0]


def open_compare(models_dir: Path | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> AppTest:
    if models_dir is not None and monkeypatch is not None:
        monkeypatch.setenv("VAE_MODELS_DIR", str(models_dir))
    at = run_app()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_compare_a_shared_slider_changes_both_decoded_images(app_env: Path) -> None:
    at = open_compare()
    prefix = compare_prefix(app_env)
    z1, z2 = compare_sliders(at, prefix)
    start = compare_decodes(at)

    z1.set_value(z1.max).run()

    assert not at.exception, [e.value for e in at.exception]
    after = compare_decodes(at)
    assert after[0] != start[0] and after[1] != start[1]
    assert compare_sliders(at, prefix)[0].value == pytest.approx(z1.max)


@pytest.mark.parametrize("kind", ["VAE", "AE"])
def test_compare_clicking_a_test_point_puts_its_code_into_the_shared_sliders(app_env: Path, kind: str) -> None:
    at = open_compare()
    prefix = compare_prefix(app_env)
    ckpt = load_checkpoint(app_env / f"mnist-2d-{kind.lower()}.safetensors")
    index = 11
    mu = encode_means(ckpt.model, load_dataset("digits").x_test[index : index + 1])[0]
    point = {"x": float(mu[0]), "y": float(mu[1]), "customdata": index, "curve_number": 1, "point_number": 0, "point_index": 0}
    start = compare_decodes(at)

    select_on_chart(at, f"{prefix}_{kind}_map", point)

    assert not at.exception, [e.value for e in at.exception]
    sliders = compare_sliders(at, prefix)
    np.testing.assert_allclose([s.value for s in sliders], np.clip(mu, [s.min for s in sliders], [s.max for s in sliders]), atol=1e-5)
    after = compare_decodes(at)
    assert after[0] != start[0] and after[1] != start[1]


def save_wide_pair(source: Path, folder: Path, scale: float = 20.0) -> Path:
    """The fixture's pair as pair "wide", its AE rescaled so that its codes spread `scale` times
    wider (decoder weights divided back: it decodes the same images from the wider codes)."""
    folder.mkdir()
    for kind in ("vae", "ae"):
        ckpt = load_checkpoint(source / f"mnist-2d-{kind}.safetensors")
        model = ckpt.model
        if kind == "ae":
            with torch.no_grad():
                model.encoder.mu.weight.mul_(scale)
                model.encoder.mu.bias.mul_(scale)
                model.decoder.body[0][0].weight.div_(scale)
        save_checkpoint(folder / f"wide-{kind}.safetensors", model, ckpt.train_config, ckpt.dataset,
                        history=ckpt.history, metrics=ckpt.metrics, pair="wide")
    return folder


def test_compare_sliders_follow_the_vae_when_the_ae_spreads_far(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slider spanning an AE's far-flung codes would squeeze the VAE's region into a sliver:
    the sliders follow the VAE (and the prior's ±3σ) by default, a click on a far AE code widens
    them to hold it, and switching back keeps z (clipped)."""
    models = save_wide_pair(app_env, tmp_path / "models")
    at = open_compare(models, monkeypatch)
    prefix = compare_prefix(models, "wide")
    span = at.radio(key=f"{prefix}_span")
    assert span.value == "vae"
    sliders = compare_sliders(at, prefix)
    assert all(s.key.startswith(f"{prefix}_vae_z") and -3.5 <= s.min <= -3 and 3 <= s.max <= 3.5 for s in sliders), \
        [(s.key, s.min, s.max) for s in sliders]

    ae = load_checkpoint(models / "wide-ae.safetensors")
    mu = encode_means(ae.model, load_dataset("digits").x_test)
    index = int(np.argmax(np.abs(mu).max(1) * (np.abs(mu - mu.mean(0)) < 2.5 * mu.std(0)).all(1)))  # far out, inside 3σ
    assert np.abs(mu[index]).max() > 3.5
    point = {"x": float(mu[index, 0]), "y": float(mu[index, 1]), "customdata": index, "curve_number": 1, "point_number": 0, "point_index": 0}

    select_on_chart(at, f"{prefix}_AE_map", point)

    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key=f"{prefix}_span").value == "both"
    sliders = compare_sliders(at, prefix)
    assert all(s.key.startswith(f"{prefix}_both_z") for s in sliders)
    np.testing.assert_allclose([s.value for s in sliders], mu[index], atol=1e-4)

    at.radio(key=f"{prefix}_span").set_value("vae").run()

    assert not at.exception, [e.value for e in at.exception]
    sliders = compare_sliders(at, prefix)
    np.testing.assert_allclose([s.value for s in sliders], np.clip(mu[index], [s.min for s in sliders], [s.max for s in sliders]), atol=1e-4)


def test_compare_keeps_one_range_when_the_ae_stays_close(app_env: Path) -> None:
    at = open_compare()
    prefix = compare_prefix(app_env)
    assert not at.radio  # the fixture's AE stays within twice the VAE's range: no choice to make
    assert all(s.min <= -3 and s.max >= 3 for s in compare_sliders(at, prefix))


# --- Generate and Theory: their controls change what they show ------------------------------


def test_generate_grid_size_changes_the_manifold(app_env: Path) -> None:
    at = run_app()
    at.switch_page("pages/generate.py").run()
    before = image_by_caption(at, "15×15 manifold (z1 → right, z2 → up)").value[0]

    at.slider(key="gen_n").set_value(7).run()

    assert not at.exception, [e.value for e in at.exception]
    assert image_by_caption(at, "7×7 manifold (z1 → right, z2 → up)").value[0] != before


def test_generate_new_samples_draws_other_images(app_env: Path) -> None:
    at = run_app()
    at.switch_page("pages/generate.py").run()
    before = image_by_caption(at, "32 samples from the prior").value[0]

    at.button(key="gen_resample").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert image_by_caption(at, "32 samples from the prior").value[0] != before


def theory_table(at: AppTest):  # type: ignore[no-untyped-def]
    return at.dataframe[0].value


def test_theory_another_test_image_changes_mu_and_z(app_env: Path) -> None:
    at = run_app()
    at.switch_page("pages/theory.py").run()
    before = theory_table(at)

    at.slider(key="theory_index").set_value(5).run()

    assert not at.exception, [e.value for e in at.exception]
    after = theory_table(at)
    assert image_by_caption(at, "x: test image #5")
    assert not np.allclose(after["μ"], before["μ"]) and not np.allclose(after["z = μ + σ·ε"], before["z = μ + σ·ε"])
    ckpt = load_checkpoint(app_env / "mnist-2d-vae.safetensors")
    np.testing.assert_allclose(after["μ"], encode_means(ckpt.model, load_dataset("digits").x_test[5:6])[0], atol=1e-5)


def test_theory_resampling_eps_changes_z_but_not_mu(app_env: Path) -> None:
    at = run_app()
    at.switch_page("pages/theory.py").run()
    before = theory_table(at)

    next(b for b in at.button if b.label == "Resample ε").click().run()

    assert not at.exception, [e.value for e in at.exception]
    after = theory_table(at)
    np.testing.assert_allclose(after["μ"], before["μ"])
    assert not np.allclose(after["ε"], before["ε"])
    np.testing.assert_allclose(after["z = μ + σ·ε"], after["μ"] + after["σ"] * after["ε"], atol=1e-5)


# --- uploads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.safetensors", np.random.default_rng(0).bytes(4096)),
        ("pickled.safetensors", pickle.dumps({"model.fc.weight": [1.0, 2.0], "__class__": "VAE"})),
        ("empty.safetensors", b""),
    ],
    ids=["random-bytes", "pickle", "empty"],
)
def test_a_bad_upload_is_an_error_message_and_the_app_keeps_working(app_env: Path, name: str, content: bytes) -> None:
    at = run_app()
    labels_before = list(at.sidebar.selectbox(key="model_choice").options)
    at.sidebar.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()

    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert any(name in e and "refused" in e for e in errors), errors
    assert list(at.sidebar.selectbox(key="model_choice").options) == labels_before

    prefix = explore_prefix(app_env)  # still working: the slider still decodes
    before = decoded_url(at)
    z1 = explore_sliders(at, prefix)[0]
    z1.set_value(z1.min).run()
    assert not at.exception
    assert decoded_url(at) != before


def test_a_good_upload_becomes_the_selected_model(app_env: Path) -> None:
    at = run_app()
    data = (app_env / "mnist-2d-ae.safetensors").read_bytes()
    at.sidebar.file_uploader(key="upload").set_value(("my-ae.safetensors", data, "application/octet-stream")).run()

    assert not at.exception, [e.value for e in at.exception]
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert at.sidebar.selectbox(key="model_choice").value == "my-ae (uploaded)"
    assert at.title[0].value == "Explore the latent space"
    assert image_by_caption(at, "decoded image")


# --- Train: replay of a checkpoint's map ---------------------------------------------------


def save_replay_checkpoint(folder: Path, name: str, n_snapshots: int, dataset_name: str = "digits") -> Path:
    """An untrained 2-D VAE on digits whose replay holds `n_snapshots` maps of 50 test images;
    `dataset_name` is what the checkpoint claims it was trained on."""
    data = load_dataset("digits")
    model_config, train_config = vae.services.workflow.default_run(data)
    config = ModelConfig(**{**model_config.to_dict(), "kind": "vae"}).validate()
    snapshots = torch.randn(n_snapshots, 50, 2, generator=torch.Generator().manual_seed(0))
    return save_checkpoint(
        folder / f"{name}.safetensors", build_model(config, seed=0), train_config, {**data.info(), "name": dataset_name},
        snapshots=snapshots, snapshot_index=torch.arange(50),
    )


def run_train_page_on(folder: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The Train page with `folder` as the models folder (its newest model selected)."""
    monkeypatch.setenv("VAE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_replay_of_a_model_whose_dataset_is_missing_is_a_message(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    save_replay_checkpoint(models, "elsewhere", 5, dataset_name=f"idx:{tmp_path / 'not-here'}")

    at = run_train_page_on(models, monkeypatch)

    assert at.title[0].value == "Train"
    assert any("not-here" in e.value and "does not exist" in e.value for e in at.main.error), [e.value for e in at.main.error]
    assert not [s for s in at.slider if (s.key or "").startswith("replay_")]


def test_replay_with_a_single_snapshot_shows_that_map_without_a_slider(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    save_replay_checkpoint(models, "one-snapshot", 1)

    at = run_train_page_on(models, monkeypatch)

    assert not at.main.error, [e.value for e in at.main.error]
    assert not [s for s in at.slider if (s.key or "").startswith("replay_")]
    assert [c.key for c in at.get("plotly_chart")] == ["replay_VAE"]
    assert any("single snapshot" in c.value for c in at.caption)


def test_replay_slider_spans_every_snapshot(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    save_replay_checkpoint(models, "three-snapshots", 3)

    at = run_train_page_on(models, monkeypatch)

    (epoch,) = [s for s in at.slider if (s.key or "").startswith("replay_")]
    assert (epoch.min, epoch.max, epoch.value) == (0, 2, 2)
    epoch.set_value(0).run()
    assert not at.exception, [e.value for e in at.exception]


# --- Train: starting a job ----------------------------------------------------------------




def submit_training(at: AppTest, name: str, overwrite: bool = False) -> AppTest:
    next(t for t in at.text_input if t.label == "Save as").set_value(name)
    at.checkbox(key="train_overwrite").set_value(overwrite)
    return next(b for b in at.button if b.label == "Train").click().run()


def test_training_under_an_existing_name_asks_before_overwriting(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    at = run_app()
    at.switch_page("pages/train.py").run()
    before = {p.name: p.stat().st_mtime_ns for p in app_env.iterdir()}

    submit_training(at, "mnist-2d")  # the default pair's name, model "VAE + AE"

    assert not at.exception, [e.value for e in at.exception]
    assert fake_jobs == []
    (warning,) = at.main.warning
    assert "mnist-2d-vae.safetensors" in warning.value and "mnist-2d-ae.safetensors" in warning.value
    assert "Overwrite existing files" in warning.value

    submit_training(at, "mnist-2d", overwrite=True)

    assert not at.exception, [e.value for e in at.exception]
    assert not at.main.warning
    assert [(r.which, r.name) for r in fake_jobs] == [("both", "mnist-2d")]
    assert {p.name: p.stat().st_mtime_ns for p in app_env.iterdir()} == before  # a FakeJob trains nothing


def test_training_under_a_new_name_starts_without_asking(app_env: Path, fake_jobs: list[TrainingRequest]) -> None:
    at = run_app()
    at.switch_page("pages/train.py").run()

    submit_training(at, "brand-new")

    assert not at.exception, [e.value for e in at.exception]
    assert not at.main.warning and not at.main.error
    assert [(r.which, r.name) for r in fake_jobs] == [("both", "brand-new")]


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> list[list[float]]:
    """Per AppTest run, the intervals of the fragment timers (st.fragment(run_every=...)) the
    run asked the browser for; AppTest itself never fires them."""
    import streamlit.testing.v1.local_script_runner as runner

    seen: list[list[float]] = []
    parse = runner.parse_tree_from_messages

    def recording(messages):  # type: ignore[no-untyped-def]
        seen.append(sorted(m.auto_rerun.interval for m in messages if m.WhichOneof("type") == "auto_rerun"))
        return parse(messages)

    monkeypatch.setattr(runner, "parse_tree_from_messages", recording)
    return seen


def test_train_page_polls_only_while_a_job_runs(app_env: Path, fake_jobs: list[TrainingRequest], timers: list[list[float]]) -> None:
    at = run_app()
    at.switch_page("pages/train.py").run()
    assert timers[-1] == []  # no job: no timers

    submit_training(at, "brand-new")
    job = at.session_state["train_job"]
    assert timers[-1] == pytest.approx([0.7, 3.0])  # progress and curves refresh while it trains
    assert "VAE epoch 1/4" in at.get("progress")[0].proto.text

    job.state.history = {"vae": [{"epoch": 1.0, "train_elbo": -90.0, "test_elbo": -95.0, "train_recon": -80.0, "train_kl": 10.0,
                                  "test_recon": -85.0, "test_kl": 10.0}]}
    job.state.status, job.state.fraction, job.state.message = "done", 1.0, "saved brand-new-vae.safetensors, brand-new-ae.safetensors"
    at.run()  # what the fragment's st.rerun() does once it sees the end

    assert not at.exception, [e.value for e in at.exception]
    assert timers[-1] == []
    assert "saved brand-new-vae.safetensors" in at.success[0].value
    assert [c.key for c in at.get("plotly_chart")][:1] == ["train_curves"]
    assert next(b for b in at.button if b.label == "Train").proto.disabled is False


# --- first run -----------------------------------------------------------------------------


def test_first_run_trains_and_saves_the_default_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty models folder: app.py trains the default VAE + AE, saves both, then shows Explore.

    The default's 60 epochs are cut to 3 here to keep the test short; everything else is the
    real first-run path (the browser test runs the full default)."""
    models = tmp_path / "models"
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    default_run = vae.services.workflow.default_run

    def short_default_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        model_config, train_config = default_run(*args, **kwargs)
        return model_config, replace(train_config, epochs=3)

    monkeypatch.setattr(vae.services.workflow, "default_run", short_default_run)  # app.py imports it on each run

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run(timeout=120)

    assert not at.exception, [e.value for e in at.exception]
    assert sorted(p.name for p in models.iterdir()) == ["mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]
    assert [s.state for s in at.status] == ["complete"]
    assert at.status[0].label == "Trained and saved the default VAE + AE pair"
    assert at.sidebar.selectbox(key="model_choice").value == "mnist-2d (VAE + AE pair)"
    assert image_by_caption(at, "decoded image")

    at.run()  # the second run finds the models and trains nothing
    assert not at.status
    assert sorted(p.name for p in models.iterdir()) == ["mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]


@pytest.mark.slow
def test_first_run_trains_once_while_sessions_come_and_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default pair trains in the background, not in a script run: a session that stops
    waiting (a rerun, a closed tab) does not abort or restart it, and a second session sees the
    same progress until it is done, then its page."""
    models = tmp_path / "models"
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    train_models, gate, calls = vae.services.workflow.train_models, threading.Event(), []

    def gated_short_training(data, which, model_config, train_config, out_dir, name, callback=None, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(name)

        def progress(kind, p):  # type: ignore[no-untyped-def]
            gate.wait(60)  # held until the test lets it go on
            callback(kind, p)

        return train_models(data, which, model_config, replace(train_config, epochs=3), out_dir, name, callback=progress, **kwargs)

    monkeypatch.setattr(vae.services.workflow, "train_models", gated_short_training)

    first = AppTest.from_file(APP, default_timeout=TIMEOUT)
    with pytest.raises(RuntimeError, match="timed out"):  # the first session gives up waiting: its run is stopped
        first.run(timeout=3)
    assert calls == ["mnist-2d"] and not models.exists()

    threading.Timer(2.0, gate.set).start()
    second = AppTest.from_file(APP, default_timeout=TIMEOUT).run(timeout=120)  # waits, then shows its page

    assert not second.exception, [e.value for e in second.exception]
    assert calls == ["mnist-2d"]  # trained once: not restarted by the stopped run nor by the second session
    assert [(s.state, s.label) for s in second.status] == [("complete", "Trained and saved the default VAE + AE pair")]
    assert any("Every open page goes on by itself" in m.value for m in second.markdown)
    assert image_by_caption(second, "decoded image")

    first.run()  # the first session comes back: the models are there
    assert not first.exception, [e.value for e in first.exception]
    assert not first.status and image_by_caption(first, "decoded image")
    assert sorted(p.name for p in models.iterdir()) == ["mnist-2d-ae.safetensors", "mnist-2d-vae.safetensors"]


def test_a_failed_first_run_is_a_message_and_the_next_run_tries_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    calls = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise vae.services.workflow.ConfigError("disk on fire")

    monkeypatch.setattr(vae.services.workflow, "train_models", failing)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()

    assert not at.exception, [e.value for e in at.exception]
    assert [(s.state, s.label) for s in at.status] == [("error", "First-run training failed: disk on fire")]
    assert any("No model yet" in i.value for i in at.info)  # the app goes on without models: Train and upload work

    at.run()
    assert len(calls) == 2 and at.status[0].state == "error"


@pytest.mark.parametrize("module", ["session.py", "widgets.py"])
def test_pages_folder_check_runs_before_the_heavy_imports_of_the_shared_helpers(module: str) -> None:
    """pages/ui/session.py and widgets.py (every page imports them first) raise st.rerun() inside
    their own import on a fresh server; that must happen before they import torch (seconds), or a
    second browser importing them meanwhile gets an ImportError (seen in Chromium: a reload or a
    second tab during the first second of a server)."""
    import ast

    body = ast.parse((REPO_ROOT / "pages" / "ui" / module).read_text()).body
    check = next(i for i, node in enumerate(body) if isinstance(node, ast.Expr) and "leave_pages_folder_mode" in ast.unparse(node))
    heavy = [i for i, node in enumerate(body) if isinstance(node, ast.ImportFrom)
             and (node.module or "").startswith(("vae", "PIL", "pages.ui.widgets", "pages.ui.session"))]
    heavy += [i for i, node in enumerate(body) if isinstance(node, ast.Import) and any(a.name == "numpy" for a in node.names)]
    assert heavy and check < min(heavy)


def test_the_pages_folder_holds_the_app_pages_only() -> None:
    """Every module in pages/ is one of app.py's st.Page entries (shared helpers live in pages/ui/)."""
    import ast

    listed = sorted(
        Path(node.args[0].value).name for node in ast.walk(ast.parse(Path(APP).read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "st.Page"
        and node.args and isinstance(node.args[0], ast.Constant)
    )
    assert listed and page_files() == listed
    assert sorted(p.name for p in (REPO_ROOT / "pages").glob("*.py")) == listed

