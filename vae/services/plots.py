"""Plotly figure builders: pure functions, data in, figure out (no Streamlit)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.D3 + qualitative.Plotly  # ten well separated colours first
FONT = dict(size=16)
AXIS_FONT = dict(tickfont=dict(size=15), title_font=dict(size=17))  # set on the axes too: Streamlit's theme overrides layout fonts


def _readable(fig: go.Figure) -> go.Figure:
    """Projector-sized text everywhere."""
    fig.update_xaxes(**AXIS_FONT)
    fig.update_yaxes(**AXIS_FONT)
    fig.update_layout(font=FONT, legend=dict(font=dict(size=15)), title_font=dict(size=19))
    fig.update_annotations(font_size=16)
    return fig


def class_color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


DOT_OPACITY = 0.75
CURRENT = "current z"


def strip_rows(labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """y of each point in a 1-D map: its class's row (0, 1, ...) plus a fixed jitter in ±0.35
    (from its test index, so the same point sits in the same place every time)."""
    jitter = (np.asarray(index, np.float64) * 0.6180339887) % 1.0 - 0.5
    return np.asarray(labels, np.float64) + 0.7 * jitter


def click_grid(ranges: tuple[tuple[float, float], tuple[float, float]], n: int) -> np.ndarray:
    """(n * n, 2) positions spread over the map (inside its ranges), for latent_map's click layer."""
    (x0, x1), (y0, y1) = ranges
    gx, gy = np.meshgrid(np.linspace(x0, x1, n + 2)[1:-1], np.linspace(y0, y1, n + 2)[1:-1])
    return np.stack([gx.ravel(), gy.ravel()], 1)


class ClickedZ(NamedTuple):
    """What a click on a latent_map asks for: the latent vector to show, and the test image
    whose dot was clicked (None: empty space, decoded where it was clicked)."""

    z: np.ndarray
    test_index: int | None


def _number(value: Any) -> float | None:
    """A finite float from a selection field (a number or a one-element list), else None."""
    try:
        v = float(np.ravel(np.asarray(value, dtype=np.float64))[0])
    except (TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) else None


def clicked_z(
    points: object,
    lift: Callable[[np.ndarray], np.ndarray],
    encode: Callable[[int], np.ndarray],
    n_test: int,
    one_d: bool = False,
) -> ClickedZ | None:
    """The z a click on a latent_map (`points`: the chart selection's points, plain dicts with
    "x", "y" and "customdata") asks for, or None where the selection holds no usable click.

    A dot (customdata = its test index, in [0, n_test)) gives `encode(index)`, that image's
    code; the click layer (customdata -1, see click_grid) gives `lift` of the clicked map
    position ((1, 2) -> (1, D)). On a 1-D map (`one_d`) y is only the class row, so the
    position lifted is (x, 0). Only the first point counts (a click selects one)."""
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        return None
    p = points[0]
    if not isinstance(p, Mapping):
        return None
    index = -1.0 if p.get("customdata") is None else _number(p["customdata"])
    if index is None:
        return None
    if index >= 0:
        if index != int(index) or index >= n_test:
            return None
        return ClickedZ(np.asarray(encode(int(index)), np.float32).ravel(), int(index))
    x = _number(p.get("x"))
    y = 0.0 if one_d else _number(p.get("y"))
    if x is None or y is None:
        return None
    return ClickedZ(np.asarray(lift(np.array([[x, y]], np.float32)), np.float32)[0], None)


def map_margin(title: str = "") -> dict[str, int]:
    """The latent map's fixed margins (px): the plot area is then known without a browser, so the
    "current z" marker can be placed over it in CSS (marker_css). The legend lives in the right one."""
    return dict(l=66, r=104, t=46 if title else 12, b=56)


def latent_map(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    index: np.ndarray,
    title: str = "",
    click_grid: np.ndarray | None = None,
    axis_titles: tuple[str, str] = ("z₁", "z₂"),
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
    height: int = 560,
    one_d: bool = False,
    data_revision: str = "map",
    colour_by: tuple[str, np.ndarray] | None = None,
) -> go.Figure:
    """Scatter of map points coloured by class; customdata holds each point's test index.

    `colour_by` = (factor name, (N,) values of the points): one trace coloured by that factor on a
    continuous colour scale (FACTOR_SCALE) with a colour bar instead, the class in each dot's hover.

    `click_grid` (G, 2) adds an invisible layer of markers so a click on empty space still
    reports a position (Plotly only reports clicks on markers); its customdata is -1.
    `one_d`: a 1-D latent, drawn honestly: z₁ across, one row per class (points[:, 1] is
    ignored), no invented z₂ axis. A selection leaves every dot as it was (Plotly dims the
    unselected ones by default, and a click selects the clicked dot).

    The figure never shows the current z: it stays the same while z moves (Streamlit remounts
    a chart whose spec changed), and marker_css draws z over it. For that its geometry is fixed:
    margins (map_margin, no automargin), height, exactly `ranges` on the axes (equal scale shrinks
    the plot area, centred, not the ranges), and no zoom or pan (clicks still select).
    """
    fig = go.Figure()
    n_classes = len(class_names)
    ranges = ranges or axis_ranges(points)
    if one_d:
        ys = strip_rows(labels, index)
        axis_titles = (axis_titles[0], "class")
        ranges = (ranges[0], (-0.5, n_classes - 0.5))
    else:
        ys = points[:, 1]
    if click_grid is not None:
        fig.add_trace(
            go.Scatter(
                x=click_grid[:, 0], y=click_grid[:, 1], mode="markers", name="empty space",
                marker=dict(size=14, color="rgba(0,0,0,0)"), customdata=np.full(len(click_grid), -1),
                hovertemplate=("decode here: z₁ = %{x:.2f}" if one_d else "decode here: (%{x:.2f}, %{y:.2f})") + "<extra></extra>",
                showlegend=False, unselected=dict(marker=dict(opacity=0)),
            )
        )
    if colour_by is not None:
        fig.add_trace(factor_trace(points[:, 0], ys, colour_by[0], np.asarray(colour_by[1]), labels, class_names, index))
    for c, name in enumerate(class_names if colour_by is None else ()):
        sel = labels == c
        if not sel.any():
            continue
        fig.add_trace(
            go.Scatter(
                x=points[sel, 0], y=ys[sel], mode="markers", name=str(name),
                marker=dict(size=7, color=class_color(c), opacity=DOT_OPACITY, line=dict(width=0)),
                unselected=dict(marker=dict(opacity=DOT_OPACITY)),
                customdata=index[sel], hovertemplate=f"class {name}<br>test image #%{{customdata}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title, height=height, margin=dict(**map_margin(title), autoexpand=False), font=FONT,
        legend=dict(title="class", itemsizing="constant", x=1.02, xanchor="left", y=1, yanchor="top"),
        clickmode="event+select", dragmode=False, xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
        uirevision="map", datarevision=data_revision,
    )
    fig.update_xaxes(range=list(ranges[0]), fixedrange=True, automargin=False, constrain="domain")
    fig.update_yaxes(range=list(ranges[1]), fixedrange=True, automargin=False, constrain="domain")
    if one_d:
        fig.update_yaxes(tickvals=list(range(n_classes)), ticktext=[str(n) for n in class_names], showgrid=False, zeroline=False)
    else:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)  # equal scale: distances on the map are latent distances
    return _readable(fig)


FACTOR_SCALE = "Viridis"  # perceptually uniform and readable in grey: a factor's value is an ordered quantity


def factor_colours(choice: str, factor_names: Sequence[str], factors: Any, index: np.ndarray) -> tuple[str, np.ndarray] | None:
    """A "Colour by" choice -> latent_map's `colour_by`: (factor name, (N,) values of the map's
    points, factors (N_test, K) taken at `index`), or None for "class" or a factor the data lacks."""
    if choice not in factor_names or factors is None:
        return None
    values = np.asarray(factors)[np.asarray(index), list(factor_names).index(choice)]
    return choice, values.astype(np.float64)


def factor_trace(xs: np.ndarray, ys: np.ndarray, name: str, values: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str], index: np.ndarray) -> go.Scatter:
    """The map's dots (N,) coloured by one ground-truth factor's values (N,) on FACTOR_SCALE, its
    colour bar in the legend's place (the right margin); hover: the value, the class, the test index."""
    values = np.asarray(values, np.float64)
    classes = np.array([str(class_names[int(c)]) if 0 <= int(c) < len(class_names) else "" for c in labels], dtype=object)
    return go.Scatter(
        x=xs, y=ys, mode="markers", name=name, showlegend=False,
        marker=dict(size=7, color=values, colorscale=FACTOR_SCALE, cmin=float(values.min()), cmax=float(values.max()),
                    opacity=DOT_OPACITY, line=dict(width=0), showscale=True,
                    colorbar=dict(title=dict(text=name, side="top"), x=1.02, xanchor="left", thickness=14, len=0.9)),
        unselected=dict(marker=dict(opacity=DOT_OPACITY)),
        customdata=index, text=classes,  # customdata stays the bare test index: clicked_z reads it
        hovertemplate=f"{name} = %{{marker.color:.3g}}<br>class %{{text}}<br>test image #%{{customdata}}<extra></extra>",
    )


def current_marker(
    current: np.ndarray, ranges: tuple[tuple[float, float], tuple[float, float]], one_d: bool = False,
) -> dict[str, Any]:
    """How map position `current` is marked on a latent_map with these `ranges`: {"kind": "cross"}
    at (x, y), {"kind": "line"} (1-D map) at x, or where it is off the map {"kind": "arrow"}
    with its tip at the edge point (x, y), pointing `angle` degrees clockwise from screen-right
    towards the position; "text" says where z is."""
    (x0, x1), (y0, y1) = ranges
    x = float(current[0])
    y = float(current[1]) if not one_d and len(current) > 1 else (y0 + y1) / 2
    where = f"z₁ = {x:.2f}" if one_d else f"({x:.2f}, {y:.2f})"
    if x0 <= x <= x1 and y0 <= y <= y1:
        return {"kind": "line" if one_d else "cross", "x": x, "y": None if one_d else y, "text": f"current z at {where}"}
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = (x - cx) / max(x1 - x0, 1e-9), (y - cy) / max(y1 - y0, 1e-9)  # screen directions (dy upwards)
    inset_x, inset_y = 0.01 * (x1 - x0), 0.01 * (y1 - y0)
    ex, ey = min(max(x, x0 + inset_x), x1 - inset_x), min(max(y, y0 + inset_y), y1 - inset_y)
    return {"kind": "arrow", "x": ex, "y": ey, "angle": float(np.degrees(np.arctan2(-dy, dx))),
            "text": f"current z is off the map at {where}"}


_ARROW_SVG = (  # 46 x 20 px, pointing right, its tip at the right edge's middle; < and > encoded (a
    # <style> whose text holds "<svg" is dropped by the HTML sanitiser of st.html)
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='46' height='20'%3E"
    "%3Cpath d='M0 10H32' stroke='black' stroke-width='4'/%3E%3Cpath d='M46 10L28 1V19Z' fill='black'/%3E%3C/svg%3E"
)


def _px(v: float) -> str:
    return f"{v:.4f}px"


def marker_css(
    box: str, marker: dict[str, Any], ranges: tuple[tuple[float, float], tuple[float, float]], height: int,
    title: str = "", one_d: bool = False,
) -> str:
    """CSS that draws `marker` (current_marker) over a latent_map figure (same ranges, height,
    title, one_d) shown alone, at the container's full width, in the element with class `box`
    (st.container(key=K) has class "st-key-K"): its ::after pseudo-element, which takes no
    pointer events. The plot area is known from the fixed margins; its width from the
    container's width (container query units, cqw); with equal scale both axes use the smaller
    of the two scales, centred (Plotly's constrain="domain")."""
    m = map_margin(title)
    (x0, x1), (y0, y1) = ranges
    sx, sy = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    ph = height - m["t"] - m["b"]
    pw = f"(100cqw - {m['l'] + m['r']}px)"
    sx_px = f"({pw} / {sx:.9g})"  # px per data unit across
    sy_px = f"{ph / sy:.9g}px"
    if not one_d:
        sx_px = sy_px = f"min({sx_px}, {sy_px})"
    x, y = marker["x"], marker["y"] if marker["y"] is not None else (y0 + y1) / 2
    left = f"({m['l']}px + {pw} / 2 + {sx_px} * {x - (x0 + x1) / 2:.9g})"
    top = f"({_px(m['t'] + ph / 2)} - {sy_px} * {y - (y0 + y1) / 2:.9g})"
    if marker["kind"] == "cross":
        shape = ("width: 36px; height: 36px; left: calc(%s - 18px); top: calc(%s - 18px); background: "
                 "linear-gradient(#000, #000) center / 100%% 4px no-repeat, linear-gradient(#000, #000) center / 4px 100%% no-repeat;"
                 % (left, top))
    elif marker["kind"] == "line":
        shape = f"width: 3px; height: {ph}px; left: calc({left} - 1.5px); top: {m['t']}px; background: #000;"
    else:
        shape = (f'width: 46px; height: 20px; left: calc({left} - 46px); top: calc({top} - 10px); '
                 f'background: url("{_ARROW_SVG}") no-repeat; transform-origin: 100% 50%; transform: rotate({marker["angle"]:.3f}deg);')
    return (f".{box} {{ position: relative; container-type: inline-size; }}\n"
            f".{box}::after {{ content: \"\"; position: absolute; z-index: 5; pointer-events: none; {shape} }}")


def training_curves(history: dict[str, list[dict[str, float]]], height: int = 380) -> go.Figure:
    """Per-epoch reconstruction, KL and ELBO (train solid, test dashed) for each model."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("reconstruction log p(x|z)", "KL", "ELBO (AE: recon)"))
    dashes = {"train": "solid", "test": "dash"}
    colors = {"vae": "#1f77b4", "ae": "#d62728"}
    for kind, rows in history.items():
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        for split in ("train", "test"):
            for col, key in enumerate(("recon", "kl", "elbo"), start=1):
                if kind == "ae" and key == "kl":
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=epochs, y=[r[f"{split}_{key}"] for r in rows], mode="lines+markers",
                        name=f"{kind.upper()} {split}", legendgroup=f"{kind}{split}", showlegend=col == 1,
                        line=dict(color=colors.get(kind, "#555"), dash=dashes[split]),
                    ),
                    row=1, col=col,
                )
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text="epoch")
    return _readable(fig)


def snapshot_map(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
                 ranges: tuple[tuple[float, float], tuple[float, float]] | None = None, height: int = 420) -> go.Figure:
    fig = latent_map(points, labels, class_names, np.arange(len(points)), title=title, ranges=ranges, height=height)
    fig.update_layout(clickmode="none", dragmode="pan")  # no z marker over it: zoom and pan as before
    fig.update_xaxes(fixedrange=False)
    fig.update_yaxes(fixedrange=False)
    return fig


def bar_per_dim(values: Sequence[float], title: str, y_title: str, height: int = 300) -> go.Figure:
    fig = go.Figure(go.Bar(x=[f"z{i + 1}" for i in range(len(values))], y=list(values), marker_color="#1f77b4"))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), font=FONT, yaxis_title=y_title)
    return _readable(fig)


def log_px_curve(ks: Sequence[int], estimates: Sequence[float], elbo: float, height: int = 380) -> go.Figure:
    """The importance-sampled log p(x) bound against K, with the ELBO as a horizontal line."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(ks), y=list(estimates), mode="lines+markers", name="log p(x) estimate (K samples)"))
    fig.add_trace(go.Scatter(x=[min(ks), max(ks)], y=[elbo, elbo], mode="lines", name="ELBO (mean over samples)", line=dict(dash="dash", color="#d62728")))
    fig.update_xaxes(type="log", title_text="K (importance samples)")
    fig.update_yaxes(title_text="nats")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, legend=dict(orientation="h", y=-0.25))
    return _readable(fig)


def axis_ranges(*point_sets: np.ndarray, pad: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    """Common x/y ranges over several maps (so two maps share one scale)."""
    allp = np.concatenate([p for p in point_sets if len(p)], 0)
    lo, hi = allp.min(0), allp.max(0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


# --- the map's layers (vae.analysis.layers computes their data) ------------------------------

LANDSCAPE_MAX_ALPHA = 0.45  # a fully confident cell: the dots stay readable over it
PRIOR_COLOR = "rgba(60,60,60,0.8)"
Q_COLOR = "#111111"
ELLIPSE_COLOR = "rgba(30,30,30,0.55)"


def _rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' or 'rgb(r, g, b)' -> (r, g, b)."""
    if color.startswith("#"):
        return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    r, g, b = (int(float(v)) for v in color[color.index("(") + 1 : color.index(")")].split(",")[:3])
    return r, g, b


def landscape_rgba(classes: np.ndarray, confidence: np.ndarray, n_classes: int,
                   max_alpha: float = LANDSCAPE_MAX_ALPHA) -> np.ndarray:
    """(n_y, n_x) classes and confidence -> (n_y, n_x, 4) RGBA (RGB 0..255, alpha 0..1, Plotly's
    "rgba" colour model): each cell in its class's colour
    (class_color, as the map's dots), its alpha rising linearly from 0 at chance (1 / n_classes)
    to max_alpha at confidence 1, so cells the judge is unsure of fade out."""
    table = np.array([_rgb(class_color(c)) for c in range(max(n_classes, 1))], np.float64)
    rgb = table[np.clip(np.asarray(classes, np.int64), 0, len(table) - 1)]
    chance = 1.0 / max(n_classes, 1)
    alpha = max_alpha * np.clip((np.asarray(confidence, np.float64) - chance) / max(1.0 - chance, 1e-9), 0.0, 1.0)
    return np.concatenate([rgb, alpha[..., None]], -1)


def landscape_trace(xs: np.ndarray, ys: np.ndarray, classes: np.ndarray, confidence: np.ndarray,
                    class_names: Sequence[str], max_alpha: float = LANDSCAPE_MAX_ALPHA, hover: bool = False) -> go.Image:
    """The decoded landscape as an image under the dots: cell (row y, column x) in the judge's
    class colour, faded where it is unsure (landscape_rgba). xs, ys: the grid's evenly spaced
    cell centres. `hover` adds "judge: class (confidence)" per cell (off by default: an image
    under the map must not take the clicks' hover from the dots and the click layer). Plotly draws
    image traces below scatter traces whatever their order, so it can be added after the dots."""
    rgba = landscape_rgba(classes, confidence, len(class_names), max_alpha)
    dx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
    dy = float(ys[1] - ys[0]) if len(ys) > 1 else 1.0
    kwargs: dict[str, Any] = dict(hoverinfo="skip")
    if hover:
        names = np.asarray([str(n) for n in class_names], dtype=object)
        text = np.char.add(np.char.add("judge: ", names[np.clip(classes, 0, len(names) - 1)].astype(str)),
                           np.char.mod(" (%.2f)", np.asarray(confidence, np.float64)))
        kwargs = dict(hovertext=text.tolist(), hovertemplate="%{hovertext}<extra></extra>")
    return go.Image(z=rgba.tolist(), colormodel="rgba", zmin=[0, 0, 0, 0], zmax=[255, 255, 255, 1], x0=float(xs[0]), y0=float(ys[0]), dx=dx, dy=dy,
                    name="decoded landscape", **kwargs)


def circle_traces(outlines: np.ndarray, radii: Sequence[float], color: str = PRIOR_COLOR) -> list[go.Scatter]:
    """The prior's k-σ circles (outlines (K, n, 2), as layers.prior_circles): dashed (q(z)'s contours
    are solid), one legend entry for all. Legend names are short: latent_map's legend column is
    a fixed 104 px (map_margin)."""
    traces = []
    for k, (outline, r) in enumerate(zip(outlines, radii, strict=True)):
        traces.append(go.Scatter(
            x=outline[:, 0], y=outline[:, 1], mode="lines", name="prior 1-3σ",
            legendgroup="prior", showlegend=k == 0, hoverinfo="skip",
            line=dict(color=color, width=2, dash="dash"), meta=f"{r:g}σ",
        ))
    return traces


def density_contour_traces(xs: np.ndarray, ys: np.ndarray, density: np.ndarray | None, levels: Sequence[float],
                           color: str = Q_COLOR) -> list[go.Contour]:
    """q(z) as contour lines at the given density levels (layers.mass_levels: the 50 / 90 / 99 %
    regions), one trace per level (Plotly spaces a single trace's levels evenly); none for an AE
    (density None: its q(z) is the set of codes, the dots themselves)."""
    if density is None:
        return []
    traces = []
    for k, level in enumerate(sorted(float(v) for v in levels)):
        traces.append(go.Contour(
            x=xs, y=ys, z=density, name="q(z)", legendgroup="q", showlegend=k == 0,
            colorscale=[[0.0, color], [1.0, color]],  # coloring "lines" takes the colour from the scale
            contours=dict(start=level, end=level, size=max(abs(level), 1e-12), coloring="lines", showlabels=False),
            line=dict(color=color, width=2), showscale=False, hoverinfo="skip",
        ))
    return traces


def ellipse_traces(centres: np.ndarray, semi_axes: np.ndarray, angles: np.ndarray, k: float = 1.0,
                   n_points: int = 49, color: str = ELLIPSE_COLOR) -> list[go.Scatter]:
    """The σ-ellipses of q(z|x) (layers.posterior_ellipses) as one line trace, outlines separated by
    gaps; where every semi-axis is 0 (an AE: q(z|x) is a point) one marker trace at the centres."""
    centres = np.asarray(centres, np.float64)
    semi_axes = np.asarray(semi_axes, np.float64)
    if len(centres) == 0:
        return []
    if not (semi_axes > 0).any():
        return [go.Scatter(x=centres[:, 0], y=centres[:, 1], mode="markers", name="q(z|x): points",
                           marker=dict(symbol="circle-open", size=9, color=color, line=dict(width=2)), hoverinfo="skip")]
    t = np.linspace(0.0, 2 * np.pi, n_points)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for c, s, a in zip(centres, semi_axes, np.asarray(angles, np.float64), strict=True):
        ex, ey = k * s[0] * np.cos(t), k * s[1] * np.sin(t)
        ca, sa = np.cos(a), np.sin(a)
        xs += [*(c[0] + ca * ex - sa * ey).tolist(), None]
        ys += [*(c[1] + sa * ex + ca * ey).tolist(), None]
    return [go.Scatter(x=xs, y=ys, mode="lines", name=f"q(z|x) {k:g}σ", line=dict(color=color, width=1.5),
                       hoverinfo="skip")]
