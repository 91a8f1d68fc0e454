"""vae.plots.latent_map (selection style, the current-z marker, 1-D strips) and the thumbnail's
marker in vae.images (fully visible at the edges, an arrow when z is off the map)."""

from __future__ import annotations

import numpy as np
import pytest

from vae import images, plots

RANGES = ((-1.0, 1.0), (-1.0, 1.0))


def small_map(current=None, one_d=False, ranges=RANGES):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.9, 0.9, size=(60, 2)).astype(np.float32)
    if one_d:
        points[:, 1] = 0
    labels = np.arange(60) % 3
    return plots.latent_map(points, labels, ["a", "b", "c"], np.arange(60), current=current, ranges=ranges,
                            click_grid=np.zeros((4, 2), np.float32), one_d=one_d)


def marker_of(fig):  # type: ignore[no-untyped-def]
    (trace,) = [t for t in fig.data if (t.name or "").startswith("current z")]
    return trace


def test_unselected_dots_keep_their_opacity() -> None:
    fig = small_map(current=np.zeros(2))
    dots = [t for t in fig.data if t.name in ("a", "b", "c")]
    assert len(dots) == 3
    for t in dots:
        assert t.unselected.marker.opacity == t.marker.opacity
        assert t.selected.marker.opacity is None  # the selected style is Plotly's own
    assert marker_of(fig).unselected.marker.opacity == 1


def test_current_z_inside_the_map_is_marked_where_it_is() -> None:
    m = marker_of(small_map(current=np.array([0.25, -0.5])))
    assert (tuple(m.x), tuple(m.y)) == ((0.25,), (-0.5,))
    assert m.name == "current z"


@pytest.mark.parametrize("z, angle", [((5.0, 0.0), 90), ((-5.0, 0.0), -90), ((0.0, 5.0), 0), ((0.0, -5.0), 180)])
def test_current_z_off_the_map_is_an_arrow_at_the_edge_pointing_to_it(z, angle) -> None:  # type: ignore[no-untyped-def]
    m = marker_of(small_map(current=np.array(z)))
    x, y = m.x[0], m.y[0]
    assert -1 < x < 1 and -1 < y < 1
    assert max(abs(x), abs(y)) > 0.9  # at the edge, towards z
    assert m.marker.symbol == "arrow"
    assert ((m.marker.angle - angle) + 180) % 360 - 180 == pytest.approx(0)  # Plotly keeps angles in [-180, 180)
    assert "off the map" in m.hovertemplate and m.name == "current z"


def test_one_d_map_is_a_strip_per_class_without_a_z2_axis() -> None:
    fig = small_map(current=np.array([0.3, 0.0]), one_d=True)
    assert fig.layout.yaxis.title.text == "class"
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "c"]
    assert fig.layout.yaxis.scaleanchor is None
    for c, name in enumerate("abc"):
        (t,) = [t for t in fig.data if t.name == name]
        assert all(abs(y - c) < 0.5 for y in t.y)
    m = marker_of(fig)
    assert list(m.x) == [0.3, 0.3] and m.mode == "lines"


def black_pixels(img: np.ndarray) -> int:
    return int((img.sum(-1) == 0).sum())


@pytest.mark.parametrize("corner", [(-1, -1), (-1, 1), (1, -1), (1, 1), (1, 0)])
def test_thumbnail_crosshair_is_whole_at_the_edges(corner) -> None:  # type: ignore[no-untyped-def]
    thumb = images.scatter_thumbnail(np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint8), RANGES)
    centre = black_pixels(images.mark_position(thumb, np.array([0.0, 0.0]), RANGES))
    assert centre > 0
    assert black_pixels(images.mark_position(thumb, np.array(corner, float), RANGES)) == centre


def test_thumbnail_dots_stay_inside_the_frame_the_marker_uses() -> None:
    colors = np.array([[255, 0, 0]], np.uint8)
    thumb = images.scatter_thumbnail(np.array([[1.0, 1.0]], np.float32), colors, RANGES)
    ys, xs = np.nonzero((thumb == [255, 0, 0]).all(-1))
    marked = images.mark_position(np.full_like(thumb, 255), np.array([1.0, 1.0]), RANGES)
    my, mx = np.nonzero(marked.sum(-1) == 0)
    assert abs(xs.mean() - mx.mean()) <= 2 and abs(ys.mean() - my.mean()) <= 2  # the dot sits under the crosshair's centre


def test_thumbnail_marks_z_off_the_map_with_an_arrow_at_the_edge() -> None:
    thumb = images.scatter_thumbnail(np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint8), RANGES)
    inside = images.mark_position(thumb, np.array([1.0, 0.0]), RANGES)  # z exactly on the edge
    outside = images.mark_position(thumb, np.array([9.0, 0.0]), RANGES)
    assert black_pixels(outside) > 0
    assert not np.array_equal(inside, outside)  # not the same crosshair as at the edge: z is elsewhere
    ys, xs = np.nonzero(outside.sum(-1) < 3 * 255)
    assert xs.min() > thumb.shape[1] // 2  # drawn at the right edge, where z is
