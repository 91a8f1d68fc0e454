"""vae.services.plots.latent_map (selection style, the current-z marker, 1-D strips) and
vae.analysis.images.tile (the image mosaics)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vae.analysis import images
from vae.services import plots

RANGES = ((-1.0, 1.0), (-1.0, 1.0))


HEIGHT = 440


def small_map(one_d=False, ranges=RANGES, title=""):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.9, 0.9, size=(60, 2)).astype(np.float32)
    if one_d:
        points[:, 1] = 0
    labels = np.arange(60) % 3
    return plots.latent_map(points, labels, ["a", "b", "c"], np.arange(60), ranges=ranges, title=title, height=HEIGHT,
                            click_grid=np.zeros((4, 2), np.float32), one_d=one_d)


def css_box(css: str, box: str, width: float) -> dict:
    """The ::after box that `css` (plots.marker_css for class `box`) draws, for a container `width`
    px wide: {"left", "top", "width", "height"} in px (CSS calc/min evaluated), "angle" (deg), "kind"."""
    rule = re.search(r"\." + re.escape(box) + r"::after \{(.*)\}", css).group(1)
    props = dict(p.strip().split(": ", 1) for p in rule.split(";") if p.strip())

    def length(v: str) -> float:
        expr = v.replace("calc(", "(").replace("100cqw", repr(float(width))).replace("px", "")
        assert re.fullmatch(r"[\d.()+\-*/ eminx,]*", expr), expr  # numbers, + - * /, min(): nothing else
        return float(eval(expr, {"__builtins__": {}, "min": min}))  # noqa: S307 - our own arithmetic

    out = {k: length(props[k]) for k in ("left", "top", "width", "height")}
    angle = re.search(r"rotate\(([-\d.]+)deg\)", props.get("transform", ""))
    out["angle"] = float(angle.group(1)) if angle else None
    out["kind"] = "arrow" if angle else "line" if out["width"] < 10 else "cross"
    assert props["pointer-events"] == "none" and props["position"] == "absolute"
    return out


def to_data(fig, x_px: float, y_px: float, width: float):  # type: ignore[no-untyped-def]
    """Pixel (x, y) in a container `width` px wide -> data coordinates of latent_map `fig`, from its own
    layout: fixed margins and height, its axis ranges, equal scale (the plot area shrinks, centred) unless 1-D."""
    m, h = fig.layout.margin, fig.layout.height
    assert m.autoexpand is False and fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    pw, ph = width - m.l - m.r, h - m.t - m.b
    sx, sy = pw / (x1 - x0), ph / (y1 - y0)
    if fig.layout.yaxis.scaleanchor == "x":
        sx = sy = min(sx, sy)
    return (x0 + x1) / 2 + (x_px - m.l - pw / 2) / sx, (y0 + y1) / 2 - (y_px - m.t - ph / 2) / sy


def marker_from_css(fig, css: str, box: str, width: float = 700.0):  # type: ignore[no-untyped-def]
    """("cross", x, y), ("line", x, (y_bottom, y_top)) or ("arrow", tip_x, tip_y, angle) in data coordinates:
    where `css` (plots.marker_css for class `box`) draws the current z over `fig`, in a container `width` px wide."""
    b = css_box(css, box, width)
    if b["kind"] == "arrow":  # rotated about its tip, the right edge's middle
        return ("arrow", *(round(v, 6) for v in to_data(fig, b["left"] + b["width"], b["top"] + b["height"] / 2, width)), b["angle"])
    cx, cy = to_data(fig, b["left"] + b["width"] / 2, b["top"] + b["height"] / 2, width)
    if b["kind"] == "line":
        y_top, y_bottom = to_data(fig, 0, b["top"], width)[1], to_data(fig, 0, b["top"] + b["height"], width)[1]
        return ("line", round(cx, 6), (round(y_bottom, 6), round(y_top, 6)))
    return ("cross", round(cx, 6), round(cy, 6))


def marker_of(fig, current, one_d=False, width=700.0):  # type: ignore[no-untyped-def]
    """marker_from_css for the CSS that plots.marker_css gives for map position `current` on `fig`."""
    ranges = (tuple(fig.layout.xaxis.range), tuple(fig.layout.yaxis.range))
    marker = plots.current_marker(np.asarray(current, float), ranges, one_d=one_d)
    css = plots.marker_css("st-key-m", marker, ranges, fig.layout.height, title=fig.layout.title.text or "", one_d=one_d)
    return marker_from_css(fig, css, "st-key-m", width)


def test_unselected_dots_keep_their_opacity() -> None:
    fig = small_map()
    dots = [t for t in fig.data if t.name in ("a", "b", "c")]
    assert len(dots) == 3
    for t in dots:
        assert t.unselected.marker.opacity == t.marker.opacity
        assert t.selected.marker.opacity is None  # the selected style is Plotly's own


@pytest.mark.parametrize("width", [520.0, 700.0, 1200.0])  # equal scale: the plot area's shape depends on the width
@pytest.mark.parametrize("title", ["", "VAE"])
def test_current_z_inside_the_map_is_marked_where_it_is(width, title) -> None:  # type: ignore[no-untyped-def]
    fig = small_map(title=title)
    assert marker_of(fig, [0.25, -0.5], width=width) == ("cross", 0.25, -0.5)
    assert marker_of(fig, [-0.1, 0.3], width=width) == ("cross", -0.1, 0.3)
    assert marker_of(fig, [1.0, -1.0], width=width) == ("cross", 1.0, -1.0)  # a corner is still on the map
    assert fig.layout.datarevision == "map"  # fixed, so the browser does not redraw the dots for a move


def test_the_map_figure_does_not_depend_on_z_and_cannot_be_zoomed() -> None:
    """The chart's spec stays the same while z moves (Streamlit remounts a chart whose spec
    changed), so z is not in it; zoom or pan would move the plot under the CSS marker."""
    fig = small_map()
    assert not fig.layout.shapes and not fig.layout.annotations
    assert fig.layout.xaxis.fixedrange and fig.layout.yaxis.fixedrange and fig.layout.dragmode is False
    assert fig.layout.yaxis.constrain == fig.layout.xaxis.constrain == "domain"  # the ranges shown are exactly these
    assert fig.layout.legend.x >= 1  # in the fixed right margin


@pytest.mark.parametrize("z, direction", [((5.0, 0.0), (1, 0)), ((-5.0, 0.0), (-1, 0)), ((0.0, 5.0), (0, 1)), ((0.0, -5.0), (0, -1)), ((5.0, 5.0), (1, 1))])
def test_current_z_off_the_map_is_an_arrow_at_the_edge_pointing_to_it(z, direction) -> None:  # type: ignore[no-untyped-def]
    kind, x, y, angle = marker_of(small_map(), z)
    assert kind == "arrow"
    assert -1 < x < 1 and -1 < y < 1
    assert max(abs(x), abs(y)) > 0.95  # at the edge, towards z
    # rotated `angle` degrees clockwise from screen-right (screen y downwards): it points along direction
    dx, dy = np.cos(np.radians(angle)), -np.sin(np.radians(angle))
    assert np.sign(np.round(dx, 6)) == direction[0] and np.sign(np.round(dy, 6)) == direction[1]
    assert "off the map" in plots.current_marker(np.array(z), RANGES)["text"]


def test_one_d_map_is_a_strip_per_class_without_a_z2_axis() -> None:
    fig = small_map(one_d=True)
    assert fig.layout.yaxis.title.text == "class"
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "c"]
    assert fig.layout.yaxis.scaleanchor is None
    for c, name in enumerate("abc"):
        (t,) = [t for t in fig.data if t.name == name]
        assert all(abs(y - c) < 0.5 for y in t.y)
    assert marker_of(fig, [0.3, 0.0], one_d=True) == ("line", 0.3, (-0.5, 2.5))


def hand_made_mosaic(cells: np.ndarray, rows: int, cols: int, pad: int, pad_value: float) -> np.ndarray:
    """What tile must give: `pad` pixels of `pad_value` between the images, none around them."""
    n, h, w, c = cells.shape
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, dtype=np.float32)
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = cells[k]
    return out


@pytest.mark.parametrize(
    "rows, cols, channels, pad, pad_value",
    [(1, 1, 1, 1, 1.0), (1, 1, 3, 2, 0.5), (2, 8, 1, 1, 1.0), (4, 8, 1, 1, 1.0), (3, 4, 3, 0, 0.0), (4, 1, 1, 3, 0.25), (1, 7, 2, 1, 1.0)],
)
def test_tile_lays_images_out_row_major_with_white_gaps_between(rows, cols, channels, pad, pad_value) -> None:  # type: ignore[no-untyped-def]
    cells = np.random.default_rng(rows * cols).random((rows * cols, 5, 6, channels)).astype(np.float32)
    mosaic = images.tile(cells, rows, cols, pad=pad, pad_value=pad_value)
    assert mosaic.dtype == np.float32 and mosaic.flags.c_contiguous and not np.shares_memory(mosaic, cells)
    np.testing.assert_array_equal(mosaic, hand_made_mosaic(cells, rows, cols, pad, pad_value))
    # the defaults: one white (1.0) pixel between the images
    np.testing.assert_array_equal(images.tile(cells, rows, cols), hand_made_mosaic(cells, rows, cols, 1, 1.0))


def test_tile_needs_rows_times_cols_images() -> None:
    with pytest.raises(ValueError, match="need 6 images for a 2x3 tile, got 5"):
        images.tile(np.zeros((5, 4, 4, 1), np.float32), 2, 3)
