"""vae.services.plots.clicked_z: a click on a latent map -> the z it asks for, hit directly with the
plain dicts a chart selection holds (the pages' own click tests in tests/app drive it through
Streamlit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vae.analysis.maps import LatentMap
from vae.services import plots

N_TEST = 60
RANGES = ((-1.0, 1.0), (-1.0, 1.0))


def codes(dim: int) -> np.ndarray:
    """Stand-in test-set means: row i is the code of test image i."""
    return np.random.default_rng(0).uniform(-0.9, 0.9, size=(N_TEST, dim)).astype(np.float32)


def clicked_point(fig: Any, trace_name: str, i: int) -> dict:
    """The selection point Plotly reports for a click on point i of one trace of `fig`."""
    (c, trace) = next((c, t) for c, t in enumerate(fig.data) if t.name == trace_name)
    return {"x": float(trace.x[i]), "y": float(trace.y[i]), "customdata": int(trace.customdata[i]),
            "curve_number": c, "point_number": i, "point_index": i}


class Recorder:
    """lift and encode that record what they were asked."""

    def __init__(self, dim: int) -> None:
        self.mu = codes(dim)
        self.lifted: list[np.ndarray] = []
        self.encoded: list[int] = []

    def lift(self, p: np.ndarray) -> np.ndarray:
        self.lifted.append(p)
        return np.full((len(p), self.mu.shape[1]), 7.0, np.float32)

    def encode(self, i: int) -> np.ndarray:
        self.encoded.append(i)
        return self.mu[i]


def test_a_click_on_a_grid_cell_decodes_that_spot_of_the_map() -> None:
    mu = codes(2)
    lmap = LatentMap("identity").fit(mu)
    grid = plots.click_grid(RANGES, 20)
    fig = plots.latent_map(lmap.points_, np.arange(N_TEST) % 3, ["a", "b", "c"], np.arange(N_TEST),
                           click_grid=grid, ranges=RANGES)
    point = clicked_point(fig, "empty space", 123)
    assert point["customdata"] == -1

    click = plots.clicked_z([point], lift=lmap.lift, encode=lambda i: mu[i], n_test=N_TEST)

    assert click is not None and click.test_index is None
    np.testing.assert_allclose(click.z, grid[123], atol=1e-6)  # the identity map: z is the spot itself
    assert click.z.dtype == np.float32 and click.z.shape == (2,)


def test_a_click_on_a_grid_cell_of_a_pca_map_lifts_through_the_map() -> None:
    mu = codes(5)
    lmap = LatentMap("pca").fit(mu)
    click = plots.clicked_z([{"x": 0.25, "y": -0.5, "customdata": -1}], lift=lmap.lift, encode=lambda i: mu[i], n_test=N_TEST)
    assert click is not None and click.test_index is None
    np.testing.assert_allclose(click.z, lmap.lift(np.array([[0.25, -0.5]], np.float32))[0], atol=1e-6)
    np.testing.assert_allclose(lmap.locate(click.z)[0], [0.25, -0.5], atol=1e-5)  # it sits where it was clicked


def test_a_click_on_a_data_point_takes_that_test_image_s_code() -> None:
    rec = Recorder(2)
    lmap = LatentMap("identity").fit(rec.mu)
    labels = np.arange(N_TEST) % 3
    fig = plots.latent_map(lmap.points_, labels, ["a", "b", "c"], np.arange(N_TEST), click_grid=plots.click_grid(RANGES, 20))
    point = clicked_point(fig, "b", 4)  # the 5th dot of class b: test image 13
    assert point["customdata"] == 13

    click = plots.clicked_z([point], lift=rec.lift, encode=rec.encode, n_test=N_TEST)

    assert click is not None and click.test_index == 13
    np.testing.assert_array_equal(click.z, rec.mu[13])
    assert rec.encoded == [13] and rec.lifted == []  # its code, not the map position lifted


@pytest.mark.parametrize("customdata", [13, [13], np.int64(13), 13.0])
def test_a_data_point_s_index_may_come_as_a_number_or_a_one_element_list(customdata: Any) -> None:
    rec = Recorder(3)
    click = plots.clicked_z([{"x": 0.1, "y": 0.2, "customdata": customdata}], lift=rec.lift, encode=rec.encode, n_test=N_TEST)
    assert click is not None and click.test_index == 13 and rec.encoded == [13]


def test_a_click_on_a_1d_strip_ignores_the_class_row() -> None:
    """On a 1-D map y is only the row of a class (plus jitter): the spot lifted is (x, 0)."""
    rec = Recorder(1)
    fig = plots.latent_map(np.stack([rec.mu[:, 0], np.zeros(N_TEST, np.float32)], 1), np.arange(N_TEST) % 3, ["a", "b", "c"],
                           np.arange(N_TEST), click_grid=plots.click_grid(RANGES, 20), one_d=True)
    point = clicked_point(fig, "empty space", 250)
    assert point["y"] != 0

    click = plots.clicked_z([point], lift=rec.lift, encode=rec.encode, n_test=N_TEST, one_d=True)

    assert click is not None and click.test_index is None
    (lifted,) = rec.lifted
    np.testing.assert_array_equal(lifted, [[np.float32(point["x"]), 0.0]])
    lmap = LatentMap("identity").fit(rec.mu)
    real = plots.clicked_z([point], lift=lmap.lift, encode=rec.encode, n_test=N_TEST, one_d=True)
    assert real is not None
    np.testing.assert_allclose(real.z, [point["x"]], atol=1e-6)  # z₁ is where it was clicked along the strip

    dot = clicked_point(fig, "c", 0)  # a dot on the strip: test image 2
    click = plots.clicked_z([dot], lift=rec.lift, encode=rec.encode, n_test=N_TEST, one_d=True)
    assert click is not None and click.test_index == 2
    np.testing.assert_array_equal(click.z, rec.mu[2])


def test_a_1d_strip_click_needs_no_y() -> None:
    rec = Recorder(1)
    click = plots.clicked_z([{"x": 0.5, "customdata": -1}], lift=rec.lift, encode=rec.encode, n_test=N_TEST, one_d=True)
    assert click is not None
    np.testing.assert_array_equal(rec.lifted[0], [[0.5, 0.0]])


def test_only_the_first_point_counts() -> None:
    rec = Recorder(2)
    points = [{"x": 0.0, "y": 0.0, "customdata": 4}, {"x": 0.0, "y": 0.0, "customdata": 9}]
    click = plots.clicked_z(points, lift=rec.lift, encode=rec.encode, n_test=N_TEST)
    assert click is not None and click.test_index == 4


def test_a_point_without_customdata_is_a_spot_on_the_map() -> None:
    rec = Recorder(2)
    click = plots.clicked_z([{"x": 0.3, "y": -0.2}], lift=rec.lift, encode=rec.encode, n_test=N_TEST)
    assert click is not None and click.test_index is None
    np.testing.assert_array_equal(rec.lifted[0], np.array([[0.3, -0.2]], np.float32))


@pytest.mark.parametrize("points", [
    None, [], (), "x", 5, {"x": 0.1, "y": 0.2, "customdata": 3},  # no selection, or not a list of points
    [None], ["point"], [5], [[0.1, 0.2]],  # not a point
    [{}], [{"customdata": -1}], [{"x": 0.1, "customdata": -1}], [{"y": 0.1, "customdata": -1}],  # no position
    [{"x": float("nan"), "y": 0.0, "customdata": -1}], [{"x": 0.0, "y": float("inf"), "customdata": -1}],
    [{"x": "left", "y": 0.0, "customdata": -1}], [{"x": [], "y": 0.0, "customdata": -1}],
    [{"x": 0.0, "y": 0.0, "customdata": "abc"}], [{"x": 0.0, "y": 0.0, "customdata": []}],
    [{"x": 0.0, "y": 0.0, "customdata": {"i": 3}}], [{"x": 0.0, "y": 0.0, "customdata": float("nan")}],
    [{"x": 0.0, "y": 0.0, "customdata": 2.5}],  # not an index
    [{"x": 0.0, "y": 0.0, "customdata": N_TEST}], [{"x": 0.0, "y": 0.0, "customdata": 10**9}],  # beyond the test set
])
def test_an_empty_or_garbled_selection_asks_for_nothing(points: Any) -> None:
    rec = Recorder(2)
    assert plots.clicked_z(points, lift=rec.lift, encode=rec.encode, n_test=N_TEST) is None
    assert rec.lifted == [] and rec.encoded == []
