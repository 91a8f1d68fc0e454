"""Issue 13: maps coloured by a true factor (plots.factor_colours, latent_map's colour_by) and which
factor each latent dimension moves (metrics.factor_information, dimension_labels, mig_comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from vae.analysis import metrics
from vae.services import plots

NAMES = ("shape", "scale", "x")


def grid_factors(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 3, n), rng.choice(np.linspace(0.5, 1, 6), n), rng.choice(np.linspace(0, 1, 16), n)], axis=1)


def test_factor_colours_takes_the_chosen_factor_at_the_maps_points() -> None:
    factors = grid_factors(50)
    index = np.array([4, 0, 7])
    assert plots.factor_colours("class", NAMES, factors, index) is None
    assert plots.factor_colours("scale", NAMES, None, index) is None
    name, values = plots.factor_colours("x", NAMES, factors, index)  # type: ignore[misc]
    assert name == "x" and np.array_equal(values, factors[index, 2])


def test_a_map_coloured_by_a_factor_is_one_trace_on_a_colour_scale_and_clicks_still_find_the_image() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]], np.float32)
    labels, index = np.array([0, 1, 0]), np.array([10, 11, 12])
    fig = plots.latent_map(points, labels, ("a", "b"), index, click_grid=plots.click_grid(((0, 2), (0, 1)), 3),
                           colour_by=("scale", np.array([0.5, 0.75, 1.0])))
    dots = [t for t in fig.data if t.name == "scale"]
    assert [t.name for t in fig.data if t.name in ("a", "b")] == []  # no per-class traces
    assert len(dots) == 1
    marker = dots[0].marker
    assert marker.showscale and marker.colorbar.title.text == "scale" and marker.colorscale is not None
    assert list(marker.color) == [0.5, 0.75, 1.0] and (marker.cmin, marker.cmax) == (0.5, 1.0)
    assert list(dots[0].text) == ["a", "b", "a"]  # the class in the hover
    clicked = plots.clicked_z([{"x": 2.0, "y": 0.5, "customdata": int(dots[0].customdata[2])}], lift=lambda p: p, n_test=20,
                              encode=lambda i: np.array([float(i), 0.0], np.float32))
    assert clicked is not None and clicked.test_index == 12


def test_the_class_colouring_is_unchanged_without_colour_by() -> None:
    points = np.zeros((4, 2), np.float32)
    fig = plots.latent_map(points, np.array([0, 1, 1, 0]), ("a", "b"), np.arange(4))
    assert [t.name for t in fig.data] == ["a", "b"] and all(not t.marker.showscale for t in fig.data)


def test_factor_information_of_copied_factors_is_a_diagonal_and_of_noise_near_zero() -> None:
    factors = grid_factors()
    copied = metrics.factor_information(factors + 0.0, factors)
    assert np.diag(copied) == pytest.approx(1.0, abs=0.02)
    assert copied[~np.eye(3, dtype=bool)].max() < 0.05
    noise = metrics.factor_information(np.random.default_rng(1).normal(size=(2000, 4)), factors)
    assert noise.shape == (3, 4) and noise.max() < 0.1  # only the estimator's small positive bias


def test_a_constant_factor_has_no_row_and_mig_matches_the_matrix() -> None:
    factors = np.column_stack([grid_factors(), np.ones(2000)])
    codes = np.column_stack([factors[:, 2], np.random.default_rng(2).normal(size=2000)])
    shares = metrics.factor_information(codes, factors)
    assert np.isnan(shares[3]).all()
    report = metrics.mig_score(codes, factors, (*NAMES, "const"))
    top2 = np.sort(shares[2])[::-1]
    assert report["per_factor"]["x"] == pytest.approx(top2[0] - top2[1]) and report["per_factor"]["const"] is None


def test_dimension_labels_name_the_factor_a_dimension_carries_most_of() -> None:
    shares = np.array([[0.9, 0.02, 0.05], [0.1, 0.03, 0.6], [0.12, 0.01, 0.3], [np.nan, np.nan, np.nan]])
    assert metrics.dimension_labels(shares, ("shape", "x", "y", "const")) == [
        "z1: shape 0.90, y 0.12", "z2: no factor above 0.10", "z3: x 0.60, y 0.30"]


@pytest.mark.parametrize(
    ("migs", "says", "never"),
    [
        ({"β = 1": 0.035, "β = 4": 0.057}, ["β = 4 is higher by 0.022", "Both are below 0.2"], ["of their own ("]),
        ({"β = 1": 0.05, "β = 4": 0.45},
         ["β = 4 is higher by 0.400", "β = 4 gives some factors a dimension of their own", "β = 1 (below 0.2) mostly does not"], ["Both"]),
        ({"β = 1": 0.30, "β = 4": 0.31}, ["about the same", "Both models give"], ["higher by"]),
        ({"β = 1": None, "β = 4": 0.3}, ["not measured"], ["higher"]),
    ],
)
def test_mig_comparison_says_what_the_numbers_show(migs: dict, says: list[str], never: list[str]) -> None:
    sentence = metrics.mig_comparison(migs)
    assert all(s in sentence for s in says), sentence
    assert not any(s in sentence for s in never), sentence
