"""Compare AE vs VAE: same nets, same seed, same z, the same map layers and a hole meter under each decode; the AE's latent space has holes.

Or two VAEs on the same data (e.g. β = 1 and β = 4): which factor each dimension moves."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from pages.ui import links, measures, session, widgets
from pages.ui.frame import presenting
from vae.analysis import images, metrics
from vae.analysis.maps import encode_means
from vae.analysis.metrics import compare_reports
from vae.core.checkpoint import Checkpoint
from vae.core.data import Dataset
from vae.services import animation, plots

sel = session.require_selection()
# presenter mode: the layers beside the title, so that the maps and the decodes fit a 1280x720 screen
title_box, layers_box = st.columns([2, 3], vertical_alignment="bottom") if presenting() else (st.container(), st.container())
title_slot = title_box.empty()
title_slot.title("Compare AE vs VAE")


@st.cache_data(max_entries=8, show_spinner="measuring which factor each dimension moves…")
def factor_report(sha: str, _ckpt: Checkpoint, _data: Dataset) -> dict:  # type: ignore[type-arg]
    assert _data.factors_test is not None
    return metrics.factor_report(_ckpt.model, _data.x_test, _data.factors_test, _data.factor_names)


def compare_vaes(pair: dict[str, Checkpoint]) -> None:
    """Two VAEs on the same data and latent size (e.g. β = 1 and β = 4): per-dimension traversals side
    by side, labelled (where the data has true factors) by the factor each dimension moves, the MI
    table and the measured MIGs."""
    first = next(iter(pair.values()))
    data = session.dataset_or_stop(first)
    dim = first.model_config.latent_dim
    reports = {label: factor_report(c.sha256, c, data) for label, c in pair.items()} if data.factor_names else {}
    if reports:
        st.markdown(metrics.mig_comparison({label: r["mig"]["mig"] for label, r in reports.items()}))
    else:
        st.caption("This dataset's true factors are not known (only `shapes` has them here): the traversals show what each "
                   "dimension does, and no MIG is measured.")
    st.subheader("Each dimension swept from −3 to +3, the others at 0")
    steps = 9
    sweep = np.linspace(-3, 3, steps, dtype=np.float32)
    labels = {label: metrics.dimension_labels(r["shares"], r["factor_names"]) for label, r in reports.items()}
    heads = st.columns(len(pair))
    for head, label in zip(heads, pair, strict=True):
        head.markdown(f"**{label}**")
    for j in range(dim):
        z = np.zeros((steps, dim), np.float32)
        z[:, j] = sweep
        for col, (label, ckpt) in zip(st.columns(len(pair)), pair.items(), strict=True):
            with col:
                caption = labels[label][j] if label in labels else f"z{j + 1}"
                widgets.show_image(images.tile(images.decode_images(ckpt.model, z), 1, steps), caption, width="stretch")
    if reports:
        st.subheader("Which factor each dimension moves")
        for col, (label, r) in zip(st.columns(len(pair)), reports.items(), strict=True):
            table = pd.DataFrame(r["shares"].T, index=[f"z{j + 1}" for j in range(dim)], columns=list(r["factor_names"]))
            col.markdown(f"**{label}**: MIG {r['mig']['mig']:.3f}")
            col.dataframe(table.style.format("{:.2f}").highlight_max(axis=1, props="font-weight: bold; background-color: rgba(46, 160, 67, 0.25)"))
        st.caption("Each cell: I(zⱼ; factor) / H(factor), the share of the factor's entropy that the dimension's (binned) code "
                   "carries, on the test set; the largest in each row is highlighted. A disentangled code has one large "
                   "share per factor, in a dimension of its own; MIG averages, over the factors, the gap between a "
                   "factor's two largest shares (vae/analysis/metrics.py).")


others = session.compatible_vaes(sel.vae) if sel.vae is not None else {}
if others and sel.vae is not None:
    own = f"{sel.name or 'this VAE'} (β = {sel.vae.train_config.beta:g})"
    with_ae = "its AE (the VAE + AE pair)"
    chosen_other = st.selectbox("Compare with", ([with_ae] if sel.is_pair else []) + list(others), key="compare_with",
                                help="another VAE trained on the same data with the same latent size, e.g. another β")
    if chosen_other in others:
        title_slot.title("Compare two VAEs")
        both = sorted(((own, sel.vae), (chosen_other, others[chosen_other])), key=lambda t: t[1].train_config.beta)
        compare_vaes(dict(both))
        st.stop()
if not sel.is_pair:
    st.info("Pick a **VAE + AE pair** in the sidebar (train one with *Model: both* on the Train page), or a VAE "
            "with another VAE trained on the same data with the same latent size (e.g. β = 1 and β = 4).")
    st.stop()
vae_ckpt, ae_ckpt = sel.vae, sel.ae
assert vae_ckpt is not None and ae_ckpt is not None
pair_shas = [vae_ckpt.sha256, ae_ckpt.sha256]  # the link's model
data = session.dataset_or_stop(vae_ckpt)
dim = vae_ckpt.model_config.latent_dim
method = "identity" if dim <= 2 else "pca"
maps = {kind: session.map_for(c, method) for kind, c in (("VAE", vae_ckpt), ("AE", ae_ckpt))}
models = {"VAE": vae_ckpt.model, "AE": ae_ckpt.model}
one_d = dim == 1
shared = plots.axis_ranges(*(m.points_ for m, _ in maps.values()), *(m.locate(np.zeros((1, dim), np.float32)) for m, _ in maps.values()))
if one_d:  # z₁ across, one row per class: no invented z₂
    shared = (shared[0], (-0.5, len(data.class_names) - 0.5))
prefix = f"compare_{vae_ckpt.sha256[:8]}_{ae_ckpt.sha256[:8]}"
CAPTION = (
    f"{dim}-D latent, {'the means themselves' if method == 'identity' else 'PCA of the means'} on the same axes"
    + (" (z₁ across; one row per class, spread only to keep dots apart). " if dim == 1 else ". ")
    + "The black marker is the z that both decoders get below. "
    "The VAE's KL term pulls its codes into a compact ball around 0; the AE puts them anywhere, leaving gaps."
)
if not presenting():  # presenter mode: under the decodes, so that maps and decodes fit the screen
    st.caption(CAPTION)

# The shared sliders: the VAE's range (its codes and the prior's ±3σ) or one that also spans the
# AE's codes. An AE is free to spread its codes far (±40 where the VAE stays within ±3), and a
# slider spanning both would leave the VAE's whole useful region a few pixels wide; then the
# user picks which range the sliders follow, the VAE's by default.
vae_ranges = widgets.slider_ranges(maps["VAE"][0].mu_, cover_prior=True)
ae_ranges = widgets.slider_ranges(maps["AE"][0].mu_)
span_ranges = {
    "vae": vae_ranges,
    "both": [(min(v[0], a[0]), max(v[1], a[1])) for v, a in zip(vae_ranges, ae_ranges, strict=True)],
}
ae_far_out = any(b[1] - b[0] > 2 * (v[1] - v[0]) for v, b in zip(vae_ranges, span_ranges["both"], strict=True))
span_key = f"{prefix}_span"
if not ae_far_out:
    st.session_state[span_key] = "both"  # the VAE's region keeps at least half of each slider anyway
elif st.session_state.get(span_key) not in span_ranges:
    st.session_state[span_key] = "vae"


def sliders_of(span: str) -> str:
    """Widget-key prefix of the sliders for one span (their range is part of a slider's identity)."""
    return f"{prefix}_{span}"


def move_z(z: np.ndarray, span: str) -> None:
    st.session_state[span_key] = span
    widgets.set_z(sliders_of(span), z, span_ranges[span])


def on_span_change() -> None:
    """Keep z (clipped into the new range) when the sliders switch ranges."""
    new = st.session_state[span_key]
    old = "both" if new == "vae" else "vae"
    z = [st.session_state.get(widgets.z_key(sliders_of(old), i)) for i in range(dim)]
    if None not in z:
        move_z(np.array(z, np.float32), new)


def on_click(kind: str) -> None:
    click = plots.clicked_z(
        st.session_state[f"{prefix}_{kind}_map"].selection.points, lift=maps[kind][0].lift, n_test=len(data.x_test),
        one_d=one_d, encode=lambda i: encode_means(models[kind], data.x_test[i : i + 1])[0],
    )
    if click is None:
        return
    z = click.z
    span = st.session_state[span_key]
    if span == "vae" and any(not lo <= v <= hi for v, (lo, hi) in zip(z, vae_ranges, strict=True)):
        span = "both"  # an AE code beyond the VAE's range: widen the sliders rather than clip it
    move_z(z, span)


MAP_HEIGHT = 460 if not presenting() else 350  # presenter mode: maps and decodes on one 1280x720 screen
if (link_z := links.take_z(dim)) is not None:  # a link opened this page at its z
    span = st.session_state[span_key]
    if span == "vae" and any(not lo <= v <= hi for v, (lo, hi) in zip(link_z.tolist(), vae_ranges, strict=True)):
        span = "both"
    if any(not lo <= v <= hi for v, (lo, hi) in zip(link_z.tolist(), span_ranges[span], strict=True)):
        st.info("The link's z lies outside the sliders' range: it is clipped into it.")
    move_z(link_z, span)


def map_box(kind: str) -> str:
    """The key of one map's container: the z marker is drawn over it (plots.marker_css)."""
    return f"{prefix}_{kind}_mapbox"


def the_map(kind: str, chosen: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """This session's figure of one map with its layers, built once: the same spec on every rerun,
    so the browser never redraws it (the fragment's CSS moves the z marker over it). The layers
    are computed over the shared axis ranges: they never move the axes."""
    key = (f"{prefix}_{kind}_{colour}_figure_" + "+".join(chosen) + ("_present" if presenting() else "")
           + ("_judge-pending" if widgets.LANDSCAPE in chosen and widgets.judge_pending(data) else ""))  # redrawn with the landscape once the judge is there
    held = st.session_state.setdefault("compare_figures", {})
    if key not in held:
        if len(held) >= 2:  # one pair's two maps per session
            held.clear()
        lmap, index = maps[kind]
        fig = plots.latent_map(
            lmap.points_, data.y_test[index].numpy(), data.class_names, index, title=kind,
            click_grid=plots.click_grid(shared, 20), ranges=shared, height=MAP_HEIGHT,
            one_d=one_d, data_revision=key, axis_titles=("z₁", "z₂") if method == "identity" else ("PCA 1", "PCA 2"),
            colour_by=plots.factor_colours(colour, data.factor_names, data.factors_test, index),
        )
        if chosen:
            ckpt = vae_ckpt if kind == "VAE" else ae_ckpt
            assert ckpt is not None  # as asserted above, where the page starts
            with st.spinner(f"computing the {kind} map's layers (once per model)…"):
                fig = widgets.add_layers(fig, chosen, ckpt.model, ckpt.sha256, lmap, shared, data.x_test,
                                         widgets.current_judge(data), data.class_names)
        if presenting():  # the axes readable from the back of the room, the ten classes' legend still in its height
            fig.update_layout(font_size=17, legend=dict(font_size=13, tracegroupgap=0))
        held[key] = fig
    return held[key]


with layers_box:
    colour = st.selectbox("Colour by", ["class", *data.factor_names], key="compare_colour",
                          help="the dataset's true factors: a continuous colour scale") if data.factor_names else "class"
    chosen = widgets.layer_picker(
        "compare_layers", "a 1-D latent's map is a line: there is no plane to draw them on." if one_d else None,
        judge=widgets.current_judge(data) is not None or widgets.judge_pending(data),
    )
for col, kind in zip(st.columns(2, gap="large"), maps, strict=True):
    with col, st.container(key=map_box(kind)):  # only the chart in it: marker_css places z over its plot area
        st.plotly_chart(the_map(kind, chosen), key=f"{prefix}_{kind}_map", on_select=lambda k=kind: on_click(k), selection_mode="points")


@st.fragment
def compare_panel() -> None:
    """The shared sliders, both decoded images and both maps' z markers: a slider move reruns
    only this. The maps themselves are drawn outside it and never change; each marker is a CSS
    rule over its map's container (a changed chart spec would remount the chart in the browser)."""
    if presenting():  # each decode and its meter under its own map, the sliders between them
        c_vae, m_vae, c_sl, c_ae, m_ae = st.columns([0.9, 1.1, 1.3, 0.9, 1.1], gap="small")
    else:
        st.subheader("The same z, decoded by both")
        c_sl, c_vae, c_ae = st.columns([2, 1, 1], gap="medium")
        m_vae, m_ae = c_vae, c_ae
    with c_sl:
        if ae_far_out:
            st.radio(
                "Slider range", list(span_ranges), key=span_key, on_change=on_span_change, horizontal=True,
                format_func={"vae": "the VAE's codes and the prior's ±3σ", "both": "the AE's codes too"}.get,
                help="The AE spreads its codes far wider than the VAE, so a range covering both leaves the VAE's region "
                     "only a small part of each slider.",
            )
        span = st.session_state[span_key]
        z = widgets.latent_sliders(sliders_of(span), span_ranges[span],
                                  columns=1 if one_d or presenting() else 2 if dim <= 8 else 4, height=300 if dim > 8 else None)
        widgets.reset_z_button(sliders_of(span), span_ranges[span], key=f"{prefix}_reset",
                              on_reset=lambda zero: move_z(zero, st.session_state[span_key]))
        links.copy_link(sel.name, pair_shas, z, key=f"{prefix}_link")
    for c, kind in ((c_vae, "VAE"), (c_ae, "AE")):
        with c:
            widgets.show_image(widgets.decoded(models[kind], z), f"{kind} decodes z", width="stretch")
    for c, kind, ckpt in ((m_vae, "VAE", vae_ckpt), (m_ae, "AE", ae_ckpt)):
        with c:  # after both images: the judge's first load (seconds, once) never holds up the AE's decode
            assert ckpt is not None
            widgets.show_hole_meter(models[kind], ckpt.kind, ckpt.sha256, data, z)
    css, off = [], []
    for kind in maps:
        marker = plots.current_marker(maps[kind][0].locate(z)[0], shared, one_d=one_d)
        css.append(plots.marker_css("st-key-" + map_box(kind), marker, shared, MAP_HEIGHT, title=kind, one_d=one_d))
        if marker["kind"] == "arrow":
            off.append(f"the {kind} map: {marker['text']}")
    if off:
        c_sl.caption("; ".join(off) + " (the arrow at its edge points to it).")
    st.html("<style>" + "\n".join(css) + "</style>")


compare_panel()
if presenting():
    st.caption(CAPTION)

st.subheader("Samples from the prior N(0, I)")
if st.button("New samples", key="compare_resample"):
    st.session_state["compare_seed"] = st.session_state.get("compare_seed", 0) + 1
seed = st.session_state.get("compare_seed", 0)
c1, c2 = st.columns(2, gap="large")
for c, kind in ((c1, "VAE"), (c2, "AE")):
    with c:
        widgets.show_image(images.tile(images.prior_samples(models[kind], 16, seed), 2, 8), kind, width="stretch")
st.caption("Both decoders get the very same z's: what N(0, I) gives each model. How recognisable such samples are, "
           "measured over many of them, is below.")

st.subheader("Interpolation between two test images")
n_test = int(data.x_test.shape[0])
c_a, c_b = st.columns(2)
a = c_a.number_input("From test image #", 0, n_test - 1, 0, key="compare_from")
b = c_b.number_input("To test image #", 0, n_test - 1, min(1, n_test - 1), key="compare_to")
for kind in ("VAE", "AE"):
    mu = encode_means(models[kind], data.x_test[[int(a), int(b)]])
    strip = images.interpolation(models[kind], mu[0], mu[1], steps=10)
    widgets.show_image(images.tile(strip, 1, 10), f"{kind}: straight line from the code of #{a} to #{b}", width="stretch")
gif_steps = int(st.number_input("Steps in the GIF", 2, 200, 20, key="compare_gif_steps", help="the GIF goes there and back"))
gif_ends = [encode_means(m, data.x_test[[int(a), int(b)]]) for m in models.values()]
widgets.gif_download(
    "Download the interpolation as GIF", functools.partial(animation.interpolation_gif, list(models.values()), [e[0] for e in gif_ends],
                                                          [e[1] for e in gif_ends], int(gif_steps), list(models)),
    f"interpolation_{a}_to_{b}.gif", "compare_gif", animation.steps_refusal(list(models.values()), gif_steps, titles=True),
)


st.subheader("Measured, not only seen")
if widgets.judge_pending(data):  # the judge reads the prior samples and the holes: measured once it is trained
    widgets.wait_for_judge(data, "the measured comparison, the decoded landscape and the meter's class")
    st.stop()
reports = {kind: measures.checkpoint_report(c.sha256, c, data) for kind, c in (("VAE", vae_ckpt), ("AE", ae_ckpt))}
compared = compare_reports(reports["VAE"], reports["AE"])
rows = compared["rows"]
table = pd.DataFrame(
    {"VAE": [r["vae_text"] for r in rows], "AE": [r["ae_text"] for r in rows], "what it measures": [r["explanation"] for r in rows]},
    index=[r["label"] for r in rows],
)
BETTER = "background-color: rgba(46, 160, 67, 0.25); font-weight: bold"


def _highlight(column: pd.Series) -> list[str]:
    """The better model's cell of each measure."""
    return [BETTER if r["favours"] == column.name else "" for r in rows]


st.table(table.style.apply(_highlight, subset=["VAE", "AE"]))  # a table wraps the explanations
if compared["note"]:
    st.info(f"Recognised samples, class coverage and holes are not measured here ({compared['note']}).")
st.markdown("\n".join(f"- {r['sentence']}" for r in rows))
if compared["active_units"]:
    st.markdown(f"- {compared['active_units']}")
st.caption(
    "The better value of each measure is highlighted. Recognised means the dataset's judge (a classifier trained on the "
    "training images only) is at least 50 % sure; prior samples are 1,000 seeded z ~ N(0, I), the same for both models; "
    "the data's region is the box from the 1st to the 99th percentile of the test codes"
    + ("." if presenting() else " (vae/analysis/metrics.py).")  # a source path is for developers
)
