"""Explore: the μ map of the test set, latent sliders, click-to-decode."""

from __future__ import annotations

import os

import numpy as np
import streamlit as st
from PIL import ImageColor

from pages import common
from vae import images, plots
from vae.embed import encode_means

sel = common.require_selection()
ckpt = sel.primary
st.title("Explore the latent space")
data = common.dataset_or_stop(ckpt)
dim = ckpt.model_config.latent_dim
st.caption(
    f"{ckpt.kind.upper()} · {dim}-D latent · each dot is the mean μ of one test image's code. "
    "Click a dot to load its code, click empty space to decode that spot, or move the sliders."
)

if dim <= 2:
    method = "identity"
else:
    choice = st.radio("Map", ["PCA (instant)", "t-SNE (slower, cached)"], horizontal=True, key="explore_method")
    method = "pca" if choice.startswith("PCA") else "tsne"
if method == "tsne":  # seconds: show its steps in a status box, which a cached map never opens
    steps: list = []

    def show_step(message: str) -> None:
        if not steps:
            steps.append(st.status(f"t-SNE map: {message}…", expanded=True))
        steps[0].update(label=f"t-SNE map: {message}…")
        steps[0].write(message)

    try:
        lmap, index = common.map_for(ckpt, method, on_status=show_step)
    except Exception:
        if steps:
            steps[0].update(label="t-SNE map failed", state="error")
        raise
    if steps:
        steps[0].update(label=f"t-SNE map of {len(index):,} test images: done (cached from now on)", state="complete", expanded=False)
else:
    with st.spinner("encoding the test set…"):  # shows only after 0.5 s, so never for a cached map
        lmap, index = common.map_for(ckpt, method)
labels = data.y_test[index].numpy()
ranges = common.slider_ranges(lmap.mu_, cover_prior=ckpt.kind == "vae")
prefix = f"explore_{ckpt.sha256[:12]}"
chart_key = f"{prefix}_map"
axis_ranges = plots.axis_ranges(lmap.points_)


def on_map_click() -> None:
    points = st.session_state[chart_key].selection.points
    if not points:
        return
    p = points[0]
    test_index = int(np.ravel(p.get("customdata", [-1]))[0]) if p.get("customdata") is not None else -1
    if test_index >= 0:
        z = encode_means(ckpt.model, data.x_test[test_index : test_index + 1])[0]
        st.session_state[f"{prefix}_picked"] = test_index
    else:
        z = lmap.lift(np.array([[p["x"], p["y"]]], dtype=np.float32))[0]
        st.session_state.pop(f"{prefix}_picked", None)
    common.set_z(prefix, z, ranges)


left, right = st.columns([3, 2], gap="large")
with left:
    (gx0, gx1), (gy0, gy1) = axis_ranges
    gx, gy = np.meshgrid(np.linspace(gx0, gx1, 36), np.linspace(gy0, gy1, 36))
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    fig = plots.latent_map(
        lmap.points_, labels, data.class_names, index, click_grid=grid,
        axis_titles=("z₁", "z₂") if method == "identity" else (f"{method.upper()} 1", f"{method.upper()} 2"),
        ranges=axis_ranges,
    )
    st.plotly_chart(fig, key=chart_key, on_select=on_map_click, selection_mode="points", config={"scrollZoom": True})
    picked = st.session_state.get(f"{prefix}_picked")
    if picked is not None:
        x_in = data.x_test[picked].permute(1, 2, 0).numpy()
        mu = encode_means(ckpt.model, data.x_test[picked : picked + 1])
        c1, c2 = st.columns(2)
        with c1:
            common.show_image(x_in, f"test image #{picked} (class {data.class_names[int(data.y_test[picked])]})", width=224)
        with c2:
            common.show_image(images.decode_images(ckpt.model, mu)[0], "its reconstruction from μ", width=224)

colors = np.array([ImageColor.getrgb(plots.class_color(int(c))) for c in labels], dtype=np.uint8)
thumb = images.scatter_thumbnail(lmap.points_, colors, axis_ranges)


def decode_panel() -> None:
    """Sliders and the decoded image: a slider change reruns only this function."""
    z = common.latent_sliders(prefix, ranges, columns=2 if dim > 1 else 1) if dim <= 8 else None
    if z is None:
        with st.expander(f"{dim} latent sliders", expanded=True):
            z = common.latent_sliders(prefix, ranges, columns=4)
    image = images.decode_images(ckpt.model, z)[0]
    common.show_image(image, "decoded image", width="stretch")
    # full column width: at a third of it the marker was a speck on a projector
    st.image(images.mark_position(thumb, lmap.locate(z)[0], axis_ranges), caption="z on the map", width="stretch")
    st.code("z = [" + ", ".join(f"{v:+.2f}" for v in z) + "]", language=None, wrap_lines=True)


if not os.environ.get("VAE_NO_FRAGMENT"):  # the benchmark's "without fragment" variant
    decode_panel = st.fragment(decode_panel)
with right:
    decode_panel()
