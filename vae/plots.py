"""Plotly figure builders: pure functions, data in, figure out (no Streamlit)."""

from __future__ import annotations

from typing import Sequence

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


def latent_map(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    index: np.ndarray,
    title: str = "",
    current: np.ndarray | None = None,
    click_grid: np.ndarray | None = None,
    axis_titles: tuple[str, str] = ("z₁", "z₂"),
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
    height: int = 560,
) -> go.Figure:
    """Scatter of map points coloured by class; customdata holds each point's test index.

    `click_grid` (G, 2) adds an invisible layer of markers so a click on empty space still
    reports a position (Plotly only reports clicks on markers); its customdata is -1.
    """
    fig = go.Figure()
    if click_grid is not None:
        fig.add_trace(
            go.Scatter(
                x=click_grid[:, 0], y=click_grid[:, 1], mode="markers", name="empty space",
                marker=dict(size=14, color="rgba(0,0,0,0)"), customdata=np.full(len(click_grid), -1),
                hovertemplate="decode here: (%{x:.2f}, %{y:.2f})<extra></extra>", showlegend=False,
            )
        )
    for c, name in enumerate(class_names):
        sel = labels == c
        if not sel.any():
            continue
        fig.add_trace(
            go.Scatter(
                x=points[sel, 0], y=points[sel, 1], mode="markers", name=str(name),
                marker=dict(size=7, color=class_color(c), opacity=0.75, line=dict(width=0)),
                customdata=index[sel], hovertemplate=f"class {name}<br>test image #%{{customdata}}<extra></extra>",
            )
        )
    if current is not None:
        fig.add_trace(
            go.Scatter(
                x=[float(current[0])], y=[float(current[1])], mode="markers", name="current z",
                marker=dict(symbol="x-thin", size=22, line=dict(width=4, color="black")), hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=50 if title else 10, b=10), font=FONT,
        legend=dict(title="class", itemsizing="constant"), clickmode="event+select", dragmode="pan",
        xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], uirevision="map",
    )
    if ranges is not None:
        fig.update_xaxes(range=list(ranges[0]))
        fig.update_yaxes(range=list(ranges[1]))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)  # equal scale: distances on the map are latent distances
    return _readable(fig)


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
    fig.update_layout(clickmode="none")
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
