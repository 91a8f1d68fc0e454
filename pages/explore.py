"""Explore: the μ map of the test set with its layers (landscape, prior, q(z), q(z|x)), latent sliders, click-to-decode, the hole meter at z."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from pages.ui import links, session, widgets
from pages.ui.frame import presenting
from vae.analysis import images
from vae.analysis.maps import default_method, encode_means
from vae.services import plots
from vae.settings import settings

sel = session.require_selection()
ckpt = sel.primary
st.title("Explore the latent space")
data = session.dataset_or_stop(ckpt)
dim = ckpt.model_config.latent_dim
one_d = dim == 1
st.caption(
    f"{ckpt.kind.upper()} · {dim}-D latent · each dot is the mean μ of one test image's code"
    + (" (z₁ across; one row per class, spread only to keep dots apart). " if one_d else ". ")
    + "Click a dot to load its code, click empty space to decode that spot, or move the sliders."
)

if dim <= 2:
    method = "identity"
else:
    choice = st.radio("Map", ["PCA (instant)", "t-SNE (slower, cached)"], horizontal=True, key="explore_method")
    method = "pca" if choice.startswith("PCA") else "tsne"
if method == "tsne":  # seconds: show its steps in a status box, which a cached map never opens
    steps: list[Any] = []

    def show_step(message: str) -> None:
        if not steps:
            steps.append(st.status(f"t-SNE map: {message}…", expanded=True))
        steps[0].update(label=f"t-SNE map: {message}…")
        steps[0].write(message)

    try:
        lmap, index = session.map_for(ckpt, method, on_status=show_step)
    except Exception:
        if steps:
            steps[0].update(label="t-SNE map failed", state="error")
        raise
    if steps:
        steps[0].update(label=f"t-SNE map of {len(index):,} test images: done (cached from now on)", state="complete", expanded=False)
else:
    with st.spinner("encoding the test set…"):  # shows only after 0.5 s, so never for a cached map
        lmap, index = session.map_for(ckpt, method)
labels = data.y_test[index].numpy()
colour = st.selectbox("Colour by", ["class", *data.factor_names], key="explore_colour",
                                       help="the dataset's true factors: a continuous colour scale") if data.factor_names else "class"
colour_by = plots.factor_colours(colour, data.factor_names, data.factors_test, index)
# The sliders' ranges come from the default map's sample whichever map is shown: a slider whose
# range changes is a new widget to Streamlit, and the browser showed it at its minimum.
range_map = lmap if method == default_method(dim) else session.map_for(ckpt, default_method(dim))[0]
ranges = widgets.slider_ranges(range_map.mu_, cover_prior=ckpt.kind == "vae")
prefix = f"explore_{ckpt.sha256[:12]}"
chart_key = f"{prefix}_map"
map_box = f"{prefix}_mapbox"  # the map's container: the z marker is drawn over it (plots.marker_css)
MAP_HEIGHT = 440
picked_key = f"{prefix}_picked"
if (link_z := links.take_z(dim)) is not None:  # a link opened this page at its z
    st.session_state.pop(picked_key, None)
    if any(not lo <= v <= hi for v, (lo, hi) in zip(link_z.tolist(), ranges, strict=True)):
        st.info("The link's z lies outside the sliders' range: it is clipped into it.")
    widgets.set_z(prefix, link_z, ranges)
axis_ranges = plots.axis_ranges(lmap.points_, lmap.locate(np.zeros((1, dim), np.float32)))  # z = 0 is on the map
if one_d:
    axis_ranges = (axis_ranges[0], (-0.5, len(data.class_names) - 0.5))


def the_map(chosen: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """This session's figure, built once per model, map and set of layers: the same spec on every
    rerun, so the browser never redraws it (the fragment's CSS moves the z marker over it). The
    layers are computed over the map's own axis ranges: they never move the axes."""
    key = (f"{prefix}_{method}_{colour}_figure_" + "+".join(chosen) + ("_present" if presenting() else "")
           + ("_judge-pending" if widgets.LANDSCAPE in chosen and widgets.judge_pending(data) else ""))  # redrawn with the landscape once the judge is there
    held = st.session_state.get("explore_figure")  # one per session: the last model, map and layers shown
    if held is None or held[0] != key:
        fig = plots.latent_map(
            lmap.points_, labels, data.class_names, index, click_grid=plots.click_grid(axis_ranges, 20),
            ranges=axis_ranges, height=MAP_HEIGHT, one_d=one_d, data_revision=key, colour_by=colour_by,
            axis_titles=("z₁", "z₂") if method == "identity" else (f"{method.upper()} 1", f"{method.upper()} 2"),
        )
        if chosen:
            with st.spinner("computing the map's layers (once per model)…"):
                fig = widgets.add_layers(fig, chosen, ckpt.model, ckpt.sha256, lmap, axis_ranges, data.x_test,
                                         widgets.current_judge(data), data.class_names)
        held = st.session_state["explore_figure"] = key, fig
    return held[1]


def on_map_click() -> None:
    click = plots.clicked_z(
        st.session_state[chart_key].selection.points, lift=lmap.lift, n_test=len(data.x_test), one_d=one_d,
        encode=lambda i: encode_means(ckpt.model, data.x_test[i : i + 1])[0],
    )
    if click is None:
        return
    if click.test_index is None:
        st.session_state.pop(picked_key, None)
    else:
        st.session_state[picked_key] = click.test_index
    widgets.set_z(prefix, click.z, ranges)


def explore_panel() -> None:
    """Decoded images, sliders and the map's z marker: a slider move or a click reruns only
    this function. The map itself is drawn outside it and never changes; the marker is a CSS
    rule over the map's container (a changed chart spec would remount the chart in the browser)."""
    shown = st.container()  # the images first, in view however many sliders follow
    z = widgets.latent_sliders(prefix, ranges, columns=1 if one_d else 2 if dim <= 8 else 4,
                              height=260 if dim > 8 else None)  # 64 sliders: a scrolling box
    b1, b2 = st.columns([2, 3], vertical_alignment="center") if dim <= 8 else (st.container(), st.container())
    with b1:
        widgets.reset_z_button(prefix, ranges)
    marker = plots.current_marker(lmap.locate(z)[0], axis_ranges, one_d=one_d)
    with b2:
        if not presenting():  # a developer's readout: the sliders show z
            st.code("z = [" + ", ".join(f"{v:+.2f}" for v in z) + "]", language=None, wrap_lines=True)
        links.copy_link(sel.name, [c.sha256 for c in (sel.vae, sel.ae) if c is not None], z, key=f"{prefix}_link")
        if marker["kind"] == "arrow":
            st.caption(f"{marker['text']}: the arrow at its edge points to it.")
    st.html(f"<style>{plots.marker_css('st-key-' + map_box, marker, axis_ranges, MAP_HEIGHT, one_d=one_d)}</style>")
    with shown:
        picked = st.session_state.get(picked_key)
        # the decoded image large (half the column either way); a clicked test image beside it
        c1, c2, c3 = st.columns([2, 1, 1]) if picked is not None else (*st.columns(2), None)
        with c1:
            widgets.show_image(widgets.decoded(ckpt.model, z), "decoded image", width="stretch")
        with c1 if picked is not None or not presenting() else c2:  # presenter mode: beside the image, in view
            widgets.show_hole_meter(ckpt.model, ckpt.kind, ckpt.sha256, data, z)
        if picked is None or c3 is None:  # the hint gets the other half: in a quarter it broke mid-word at 1280 px
            c2.caption("Click a dot on the map: its test image and its reconstruction appear here.")
        else:
            mu = encode_means(ckpt.model, data.x_test[picked : picked + 1])
            with c2:
                widgets.show_image(data.x_test[picked].permute(1, 2, 0).numpy(),
                                  f"test image #{picked} (class {data.class_names[int(data.y_test[picked])]})", width="stretch")
            with c3:
                widgets.show_image(images.decode_images(ckpt.model, mu)[0], "decoded from its μ", width="stretch")


if not settings().no_fragment:  # the benchmark's "without fragment" variant
    explore_panel = st.fragment(explore_panel)
left, right = st.columns([3, 2] if not presenting() else [1, 1], gap="large")  # presenter mode: a larger image
with right:  # first: the decoded image is on screen before the map's figure is even built
    explore_panel()
with left:
    no_layers = ("a 1-D latent's map is a line: there is no plane to draw them on." if one_d else
                 "a t-SNE map has no plane in the latent (no linear lift): choose PCA to see them." if method == "tsne" else None)
    chosen = widgets.layer_picker("explore_layers", no_layers, judge=widgets.current_judge(data) is not None or widgets.judge_pending(data))
    with st.container(key=map_box):  # only the chart in it: marker_css places z over its plot area
        st.plotly_chart(the_map(chosen), key=chart_key, on_select=on_map_click, selection_mode="points")
widgets.wait_for_judge(data, "the decoded landscape and the meter's class")
