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
    """("cross", x, y), ("line", x, None) or ("arrow", annotation) from the figure's "current z" marks."""
    shapes = [s for s in fig.layout.shapes if s.name == "current z"]
    notes = [a for a in fig.layout.annotations if a.name == "current z"]
    if notes:
        assert not shapes and len(notes) == 1
        return ("arrow", notes[0])
    if len(shapes) == 1:
        (v,) = shapes
        assert v.x0 == v.x1
        return ("line", v.x0, (v.y0, v.y1))
    h, v = sorted(shapes, key=lambda s: s.x0 == s.x1)  # horizontal arm, then vertical arm
    assert h.y0 == h.y1 and v.x0 == v.x1
    return ("cross", v.x0, h.y0)


def test_unselected_dots_keep_their_opacity() -> None:
    fig = small_map(current=np.zeros(2))
    dots = [t for t in fig.data if t.name in ("a", "b", "c")]
    assert len(dots) == 3
    for t in dots:
        assert t.unselected.marker.opacity == t.marker.opacity
        assert t.selected.marker.opacity is None  # the selected style is Plotly's own


def test_current_z_inside_the_map_is_marked_where_it_is() -> None:
    fig = small_map(current=np.array([0.25, -0.5]))
    assert marker_of(fig) == ("cross", 0.25, -0.5)
    plots.mark_current(fig, np.array([-0.1, 0.3]), RANGES)  # moved in place, the old mark gone
    assert marker_of(fig) == ("cross", -0.1, 0.3)
    assert fig.layout.datarevision == "map"  # fixed, so the browser does not redraw the dots for a move


@pytest.mark.parametrize("z, direction", [((5.0, 0.0), (1, 0)), ((-5.0, 0.0), (-1, 0)), ((0.0, 5.0), (0, 1)), ((0.0, -5.0), (0, -1))])
def test_current_z_off_the_map_is_an_arrow_at_the_edge_pointing_to_it(z, direction) -> None:  # type: ignore[no-untyped-def]
    kind, note = marker_of(small_map(current=np.array(z)))
    assert kind == "arrow" and note.showarrow
    assert -1 < note.x < 1 and -1 < note.y < 1
    assert max(abs(note.x), abs(note.y)) > 0.95  # at the edge, towards z
    # the arrow's tail is offset by (ax, ay) pixels from its head (ay downwards): it points along direction
    assert np.sign(-note.ax) == direction[0] and np.sign(note.ay) == direction[1]
    assert "off the map" in note.hovertext


def test_one_d_map_is_a_strip_per_class_without_a_z2_axis() -> None:
    fig = small_map(current=np.array([0.3, 0.0]), one_d=True)
    assert fig.layout.yaxis.title.text == "class"
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "c"]
    assert fig.layout.yaxis.scaleanchor is None
    for c, name in enumerate("abc"):
        (t,) = [t for t in fig.data if t.name == name]
        assert all(abs(y - c) < 0.5 for y in t.y)
    assert marker_of(fig) == ("line", 0.3, (-0.5, 2.5))


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
