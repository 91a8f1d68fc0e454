"""Explore's and Compare's map layers and hole meter (issue 11, items 5 and 6): each layer's
toggle adds its trace to the map's figure (and nothing else: the axes stay put), a slider move
leaves the figure as it is, the meter reads the decode at z and follows the sliders, and a
dataset without a judge says why there is no landscape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_explore_compare import MeanJudge, chart_of, chart_spec, current_marker, prefix_of, three_d_models, use_models
from test_pages import compare_prefix, compare_sliders, explore_prefix, explore_sliders, open_compare, run_app

import pages.ui.widgets as widgets

__all__ = ["three_d_models"]  # the session fixture, imported to be found here

LANDSCAPE_TRACE = ("image", "decoded landscape")
PRIOR_TRACE = ("scatter", "prior 1-3σ")
Q_TRACE = ("contour", "q(z)")
ELLIPSE_TRACE = ("scatter", "q(z|x) 1σ")
AE_POINTS_TRACE = ("scatter", "q(z|x): points")


@pytest.fixture
def stand_in_judge(monkeypatch: pytest.MonkeyPatch) -> MeanJudge:
    """The pages' judge is a quick stand-in (no classifier to train, so none pending in the background)."""
    judge = MeanJudge()
    monkeypatch.setattr(widgets, "dataset_judge", lambda name, data: judge)
    monkeypatch.setattr(widgets, "judge_pending", lambda data: False)
    return judge


def layer_traces(spec: dict) -> set[tuple[str, str]]:
    """(type, name) of the figure's traces that are not the map's own (click layer, class dots)."""
    return {(t.get("type", "scatter"), t.get("name", "")) for t in spec["data"]
            if t.get("customdata") is None and t.get("name") != "empty space"}


def pills(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    (found,) = [b for b in at.get("button_group") if b.key == key]
    return found


def meter_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("judge:")]


def test_explore_each_layer_adds_its_trace_and_keeps_the_axes(app_env: Path, stand_in_judge: MeanJudge) -> None:
    at = run_app()
    key = f"{explore_prefix(app_env)}_map"
    assert layer_traces(chart_spec(at, key)) == set()  # the default: the map as it was, no layers
    axes = {a: chart_spec(at, key)["layout"][a]["range"] for a in ("xaxis", "yaxis")}
    expected = {widgets.LANDSCAPE: LANDSCAPE_TRACE, widgets.PRIOR: PRIOR_TRACE,
                widgets.Q_CONTOURS: Q_TRACE, widgets.ELLIPSES: ELLIPSE_TRACE}
    for option, trace in expected.items():
        pills(at, "explore_layers").set_value([option]).run()
        assert not at.exception, [e.value for e in at.exception]
        spec = chart_spec(at, key)
        assert layer_traces(spec) == {trace}, option
        assert {a: spec["layout"][a]["range"] for a in axes} == axes, option
    pills(at, "explore_layers").set_value(list(expected)).run()
    assert layer_traces(chart_spec(at, key)) == set(expected.values())
    pills(at, "explore_layers").set_value([]).run()
    assert layer_traces(chart_spec(at, key)) == set()


def test_explore_a_slider_move_keeps_the_layered_map_and_moves_the_meter(app_env: Path, stand_in_judge: MeanJudge) -> None:
    at = run_app()
    prefix = explore_prefix(app_env)
    key = f"{prefix}_map"
    pills(at, "explore_layers").set_value(list(widgets.LAYERS)).run()
    spec = chart_of(at, key).proto.spec
    (before,) = meter_lines(at)
    assert "judge: **" in before and "%** sure" in before and "q(z)/p(z): **" in before and "round trip: **" in before
    x0, x1 = chart_spec(at, key)["layout"]["xaxis"]["range"]
    inside = round(0.5 * x1, 1) if x1 > 0.2 else round(0.5 * x0, 1)
    explore_sliders(at, prefix)[0].set_value(inside).run()
    assert not at.exception, [e.value for e in at.exception]
    assert chart_of(at, key).proto.spec == spec  # the figure is not resent on a slider move
    assert current_marker(at, key) == {"kind": "cross", "x": inside, "y": 0.0}  # the marker still sits on z
    (after,) = meter_lines(at)
    assert after != before


def test_explore_without_a_judge_says_why_there_is_no_landscape(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "dataset_judge", lambda name, data: None)
    at = run_app()
    assert widgets.LANDSCAPE not in pills(at, "explore_layers").options
    assert any("no judge" in c.value for c in at.caption), [c.value for c in at.caption]
    (meter,) = meter_lines(at)
    assert meter.startswith("judge: none")


def test_explore_above_2d_draws_the_layers_on_the_pca_plane(three_d_models: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, stand_in_judge: MeanJudge) -> None:
    use_models(three_d_models, monkeypatch, tmp_path)
    at = run_app()
    prefix = prefix_of(three_d_models, "three-d-vae")
    pills(at, "explore_layers").set_value([widgets.LANDSCAPE, widgets.Q_CONTOURS]).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = chart_spec(at, f"{prefix}_map")
    assert spec["layout"]["xaxis"]["title"]["text"] == "PCA 1"
    assert layer_traces(spec) == {LANDSCAPE_TRACE, Q_TRACE}


def test_compare_layers_on_both_maps_and_a_meter_under_each_decode(app_env: Path, stand_in_judge: MeanJudge) -> None:
    at = open_compare()
    prefix = compare_prefix(app_env)
    keys = {kind: f"{prefix}_{kind}_map" for kind in ("VAE", "AE")}
    pills(at, "compare_layers").set_value(list(widgets.LAYERS)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert layer_traces(chart_spec(at, keys["VAE"])) == {LANDSCAPE_TRACE, PRIOR_TRACE, Q_TRACE, ELLIPSE_TRACE}
    # the AE's q(z) is a set of points: no density contours, its q(z|x) are points
    assert layer_traces(chart_spec(at, keys["AE"])) == {LANDSCAPE_TRACE, PRIOR_TRACE, AE_POINTS_TRACE}
    specs = {kind: chart_of(at, k).proto.spec for kind, k in keys.items()}
    vae_meter, ae_meter = meter_lines(at)
    assert "q(z)/p(z): **" in vae_meter and "n/a (AE codes are points)" in ae_meter
    compare_sliders(at, prefix)[0].set_value(1.0).run()
    assert not at.exception, [e.value for e in at.exception]
    for kind, k in keys.items():
        assert chart_of(at, k).proto.spec == specs[kind], kind
        assert current_marker(at, k) == {"kind": "cross", "x": 1.0, "y": 0.0}, kind
    assert meter_lines(at) != [vae_meter, ae_meter]
    assert json.loads(specs["VAE"])["layout"]["xaxis"]["range"] == json.loads(specs["AE"])["layout"]["xaxis"]["range"]


def test_explore_on_t_sne_says_the_layers_need_a_plane(three_d_models: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, stand_in_judge: MeanJudge) -> None:
    import vae.analysis.maps

    use_models(three_d_models, monkeypatch, tmp_path)
    monkeypatch.setitem(vae.analysis.maps.DEFAULT_SAMPLE, "tsne", 150)  # a small t-SNE
    at = run_app()
    prefix = prefix_of(three_d_models, "three-d-vae")
    pills(at, "explore_layers").set_value([widgets.PRIOR]).run()
    at.radio(key="explore_method").set_value("t-SNE (slower, cached)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert pills(at, "explore_layers").disabled
    assert any("t-SNE map has no plane" in c.value for c in at.caption), [c.value for c in at.caption]
    assert layer_traces(chart_spec(at, f"{prefix}_map")) == set()
    (meter,) = meter_lines(at)  # the meter does not need a plane
    assert "judge: **" in meter
