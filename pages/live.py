"""Live pad: drag through the latent space and watch the image morph; the decoder runs in the
browser on every frame (pages/ui/latent_pad/), Python hears the final z on release."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np
import streamlit as st

from pages.ui import links, session, widgets
from pages.ui.frame import presenting
from pages.ui.latent_pad import PadLayer, latent_pad, map_ranges
from vae.analysis import images
from vae.analysis import layers as map_layers
from vae.analysis.judge import Judge
from vae.analysis.maps import LatentMap, encode_means
from vae.core.checkpoint import Checkpoint
from vae.services import animation, browser_export, standalone_pad

sel = session.require_selection()
st.title("Live latent pad")
try:
    data = session.dataset_for(sel.primary)
except Exception as exc:  # noqa: BLE001 - missing data offline: message, not a traceback
    widgets.show_error(exc)
    st.stop()
dim = sel.primary.model_config.latent_dim
decoders = [("VAE", sel.vae), ("AE", sel.ae)] if sel.vae is not None and sel.ae is not None else [(sel.primary.kind.upper(), sel.primary)]
models = dict(decoders)
st.caption(
    ("This model has a **1-D latent**: the pad is a strip along z1. Drag along it, or click it and use the left and right arrow keys. "
     if dim == 1 else "Drag the crosshair, or click the map and use the arrow keys. ")
    + ("" if presenting() else "Your browser decodes every frame itself; "  # how it works: for developers
       "when you let go, Python gets the final z and decodes it again with PyTorch below.")
    + (" One pad drives **both** decoders: the same z through the VAE and the AE." if sel.is_pair else "")
)

prefix = "live_" + "_".join(c.sha256[:10] for _, c in decoders)
z_key, nonce_key, report_key, pick_key = f"{prefix}_z", f"{prefix}_nonce", f"{prefix}_report", f"{prefix}_pick"
map_key, method_key = f"{prefix}_map_of", f"{prefix}_method"
path_key = f"{prefix}_path"  # the z's of the last drag on the pad (animation.read_path), for its GIF
st.session_state.setdefault(z_key, np.zeros(dim, np.float32))
st.session_state.setdefault(nonce_key, 0)


def set_z(z: np.ndarray) -> None:
    """Move the pad from Python: a new nonce tells the browser to take this z."""
    st.session_state[z_key] = np.asarray(z, np.float32)
    st.session_state[nonce_key] += 1
    st.session_state.pop(report_key, None)


if (link_z := links.take_z(dim)) is not None:  # a link opened the pad at its z
    set_z(link_z)


def on_release(z: np.ndarray, pixels: list[np.ndarray | None]) -> None:
    st.session_state[z_key] = z
    st.session_state[report_key] = {"z": z, "pixels": pixels}
    st.session_state[pick_key] = None  # the pad has left the picked test image
    st.session_state[path_key] = animation.read_path(((st.session_state.get(f"{prefix}_pad") or {}).get("release") or {}).get("path"), dim)


def on_pick() -> None:
    i = st.session_state.get(pick_key)
    if i is not None:
        model = models[st.session_state.get(map_key) or decoders[0][0]].model
        set_z(encode_means(model, data.x_test[i : i + 1])[0])


def forget_pick() -> None:
    """Another map: z stays where it is, but it is no longer "the picked image's μ under" this map's model."""
    st.session_state[pick_key] = None


def column_image(image: np.ndarray, caption: str, px: int) -> None:
    """An image up to `px` wide that shrinks to its column ("content" width never exceeds the
    container; a fixed width would overflow a narrow column, e.g. at 1280 px with a pair)."""
    st.image(widgets.to_pil(image, px), caption=caption, width="content", output_format="PNG")


# The dataset's judge (the meter's class, the landscape): when it is not cached yet it trains in
# the background while the pad works (widgets.judge_pending), and the meter says so meanwhile.
judge_pending = widgets.judge_pending(data)
found = widgets.current_judge(data)
judge = found if isinstance(found, Judge) else None  # the browser needs the real net (a stand-in has none)


def pad_layers(chosen: tuple[str, ...], ckpt: Checkpoint, lmap: LatentMap, map_id: str) -> list[PadLayer]:
    """The chosen layers of the map's model, over the map's own range without z (the pad's range
    only grows past it to keep a z set from Python in view), drawn in the order Explore stacks them."""
    if not chosen:
        return []
    plane = map_layers.plane_of(lmap)
    box = map_ranges(lmap, dim)

    def landscape() -> dict[str, Any]:
        assert judge is not None  # offered only with a judge
        return browser_export.export_layer(
            "landscape", map_layers.compute_landscape(ckpt.model, judge, ckpt.sha256, plane, box), len(data.class_names))

    wanted = [  # under the dots, then over them
        (widgets.LANDSCAPE, "landscape", landscape),
        (widgets.Q_CONTOURS, "aggregate", lambda: browser_export.export_layer(
            "aggregate", map_layers.compute_aggregate(ckpt.model, data.x_test, ckpt.sha256, plane, box))),
        (widgets.PRIOR, "prior", lambda: browser_export.export_layer("prior", map_layers.prior_circles(plane))),
        (widgets.ELLIPSES, "ellipses", lambda: browser_export.export_layer(
            "ellipses", map_layers.compute_ellipses(ckpt.model, data.x_test, ckpt.sha256, plane))),
    ]
    return [PadLayer(f"layer-{map_id}-{name}-{map_layers.GRID}", compute) for label, name, compute in wanted
            if label in chosen and (name != "landscape" or judge is not None)]


@st.fragment
def live_panel() -> None:
    """Everything interactive: a pad release or a control reruns only this."""
    widths = ([1.1] if sel.is_pair else []) + ([1.3] if dim > 2 else []) + [2.6, 1.1]
    cols = iter(st.columns(widths, vertical_alignment="bottom"))
    map_label = next(cols).radio("Map of", list(models), horizontal=True, key=map_key, on_change=forget_pick) if sel.is_pair else decoders[0][0]
    method = "identity"
    if dim > 2:
        choice = next(cols).radio("Map", ["PCA", "t-SNE"], horizontal=True, key=method_key, help="t-SNE takes a few seconds the first time, then it is cached")
        method = "pca" if choice == "PCA" else "tsne"
    map_ckpt = models[map_label]
    with st.spinner("t-SNE of the test means (a few seconds; cached afterwards)…" if method == "tsne" else "encoding the test set…"):
        lmap, index = session.map_for(map_ckpt, method)
    labels = data.y_test[index].numpy()
    projection = "PCA" if method == "pca" else "t-SNE"
    next(cols).selectbox(
        f"Jump to a test image (z = its μ under the {map_label})", [int(i) for i in index], index=None, key=pick_key,
        format_func=lambda i: f"#{i} · class {data.class_names[int(data.y_test[i])]}", on_change=on_pick,
        placeholder="pick a test image…",
    )
    next(cols).button("z = 0", on_click=set_z, args=(np.zeros(dim, np.float32),), key=f"{prefix}_origin", width="stretch",
                      help="back to the prior's mean")

    no_layers = ("a 1-D latent's map is a line: there is no plane to draw them on." if dim == 1 else
                 "a t-SNE map has no plane in the latent (no linear lift): choose PCA to see them." if method == "tsne" else None)
    chosen = widgets.layer_picker(f"{prefix}_layers", no_layers, judge=judge is not None or judge_pending)
    map_id = f"map-{map_ckpt.sha256[:16]}-{method}-{len(index)}"
    latent_pad(
        key=f"{prefix}_pad", decoders=decoders, lmap=lmap, map_id=map_id,
        labels=labels, class_names=data.class_names,
        axis_titles=(("z₁", "z₂") if dim == 2 else ("z₁", "")) if method == "identity" else (f"{projection} 1", f"{projection} 2"),
        z=st.session_state[z_key], z_nonce=st.session_state[nonce_key], on_release=on_release,
        slider_ranges=widgets.slider_ranges(lmap.mu_, cover_prior=map_ckpt.kind == "vae") if dim > 2 else None, image_px=260 if len(decoders) > 1 else 320,
        judge=judge, judge_pending=judge_pending, posteriors=[widgets.posterior_sample(c.sha256, c.model, data.x_test) for _, c in decoders],
        layers=pad_layers(chosen, map_ckpt, lmap, map_id),
    )
    path = st.session_state.get(path_key)
    if path is None:
        st.caption("Drag on the pad: the path you draw can then be downloaded as a GIF.")
    else:
        gif_models, gif_titles = [c.model for _, c in decoders], [label for label, _ in decoders] if sel.is_pair else None
        widgets.gif_download("Download the path as GIF", functools.partial(animation.path_gif, gif_models, path, gif_titles),
                             "pad_path.gif", f"{prefix}_path_gif", animation.path_refusal(gif_models, path, bool(gif_titles)))

    st.download_button(  # the same pad as one HTML file: opens offline, from a file or any static web host
        "Download standalone pad (HTML)", key=f"{prefix}_standalone", mime="text/html", on_click="ignore", icon=":material/download:",
        file_name=f"{sel.primary.pair or sel.primary.kind}-pad.html", help="one self-contained file: this pad's decoders, map and code; no server, no network",
        data=lambda: standalone_pad.standalone_html(
            decoders, lmap, labels, data.class_names, map_id=f"map-{map_ckpt.sha256[:16]}-{method}-{len(index)}",
            axis_titles=standalone_pad.axis_titles(method, dim), heading=standalone_pad.page_heading(decoders, data.name),
            sliders=widgets.slider_ranges(lmap.mu_, cover_prior=map_ckpt.kind == "vae") if dim > 2 else None,
            judge=judge, posteriors=[widgets.posterior_sample(c.sha256, c.model, data.x_test) for _, c in decoders]),  # the meter, where it fits
    )

    z = np.asarray(st.session_state[z_key], np.float32)
    report = st.session_state.get(report_key)
    st.subheader("In Python: the released z, decoded again by PyTorch")
    result_cols = st.columns([2] + [1] * len(decoders), gap="large")
    with result_cols[0]:
        if not presenting():  # a developer's readout (the browser tests read it)
            with st.container(key="live_z_report"):
                st.code(json.dumps([float(v) for v in z]), language="json", wrap_lines=True)
        picked = st.session_state.get(pick_key)
        if picked is not None:
            column_image(data.x_test[picked].permute(1, 2, 0).numpy(), f"test image #{picked}: z is its μ", 140)
        else:
            st.caption("from the pad on release" if report else "set from Python (start or z = 0)")
        log_prior = -0.5 * float(z @ z) - 0.5 * dim * math.log(2 * math.pi)
        nearest = int(np.argmin(((lmap.mu_ - z) ** 2).sum(1)))
        m1, m2 = st.columns(2)
        m1.metric("log N(z; 0, I)", f"{log_prior:.2f}", help="log density of z under the prior, in nats")
        m2.metric(
            "nearest test code", f"class {data.class_names[int(labels[nearest])]}",
            f"distance {float(np.linalg.norm(lmap.mu_[nearest] - z)):.2f}", delta_color="off", delta_arrow="off",
            help=f"the test image whose μ under the {map_label} is closest to z",
        )
        links.copy_link(sel.name, [c.sha256 for _, c in decoders], z, key=f"{prefix}_link")
    for k, (col, (label, ckpt)) in enumerate(zip(result_cols[1:], decoders, strict=True)):
        with col:
            server = images.decode_images(ckpt.model, z)[0]
            column_image(server, f"{label} · PyTorch", 220)
            pixels = report["pixels"] if report else []
            if k < len(pixels) and pixels[k] is not None and not presenting():  # a developer's readout
                gap = float(np.abs(pixels[k].transpose(1, 2, 0) - server).max())
                st.metric("browser vs PyTorch", f"{gap:.1e}", help="largest difference of one pixel (of 1.0) between the two decodes")


live_panel()
widgets.wait_for_judge(data, "the meter's class and the landscape")
