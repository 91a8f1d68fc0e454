"""Generate: the decoded manifold grid, per-dimension traversals, samples from the prior."""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from pages.ui import measures, session, widgets
from vae.analysis import images, metrics
from vae.services import animation

sel = session.require_selection()
ckpt = sel.primary
model = ckpt.model
dim = ckpt.model_config.latent_dim
st.title("Generate")
st.caption(f"{ckpt.kind.upper()} · {dim}-D latent")

# the measures of the prior's samples (vae.analysis.metrics.COMPARED), the round trip aside
PRIOR_PATHS = [path for _, path, *_ in metrics.COMPARED if path[0] == "prior_samples" and path[1] != "round_trip"]
PRIOR_LABELS = {label for label, path, *_ in metrics.COMPARED if path in PRIOR_PATHS}


def prior_measures() -> None:
    """What the judge reads in 1,000 seeded prior samples of the selected model(s): every sentence
    is built from the measured values (the checkpoints' stored metrics, completed and cached by
    pages.ui.measures); with a pair, both models side by side and which one each measure favours."""
    data = session.dataset_or_stop(ckpt)
    reports = {kind: measures.checkpoint_report(c.sha256, c, data) for kind, c in (("VAE", sel.vae), ("AE", sel.ae)) if c is not None}
    if sel.is_pair:
        compared = metrics.compare_reports(reports["VAE"], reports["AE"])
        rows = [r for r in compared["rows"] if r["label"] in PRIOR_LABELS]
        if not rows:
            st.info(f"How recognisable these samples are is not measured here ({compared['note'] or metrics.NO_JUDGE}).")
            return
        n = (reports["VAE"].get("prior_samples") or {}).get("n_samples") or 0
        st.markdown(f"Measured over {n:,} seeded prior samples of each model (the same z for both), read by the dataset's judge:\n"
                    + "\n".join(f"- {r['sentence']} *({r['explanation']})*" for r in rows))
        return
    kind, report = next(iter(reports.items()))
    samples = report.get("prior_samples") or {}
    if samples.get("recognised") is None:
        st.info(f"How recognisable these samples are is not measured here ({metrics.NO_JUDGE}).")
        return
    st.markdown(
        f"Measured over {samples['n_samples']:,} seeded prior samples: the dataset's judge (a classifier trained on the "
        f"training images) recognises {100 * samples['recognised']:.0f} % of this {kind}'s samples, i.e. is at least 50 % sure "
        f"(mean confidence {samples['mean_confidence']:.2f}); "
        f"they cover {samples['classes_covered']} of {samples['n_classes']} classes (class entropy "
        f"{samples['class_entropy']:.2f}, 1 = every class equally often). Pick a VAE + AE pair to compare both."
    )


tab_grid, tab_trav, tab_prior = st.tabs(["Manifold strip" if dim == 1 else "Manifold grid", "Traversals", "Samples from the prior"])
with tab_grid:
    if dim == 1:
        # a 1-D latent has no second axis: its whole manifold is one line, drawn as one strip
        st.markdown(
            "This model has a **1-D latent**, so its whole decoded manifold is one line: images along z1, "
            "spaced by the **inverse CDF of N(0, 1)** so each step covers the same prior mass (Kingma & Welling 2014, Fig. 4)."
        )
        n = st.slider("Number of images", 5, 25, 15, key="gen_n")
        strip = images.manifold_strip(model, n=n)
        widgets.show_image(strip, f"1-D manifold: {n} images along z1 (left to right: low to high)", width=min(900, 60 * n))
        st.download_button("Download PNG", widgets.png_bytes(strip, 60 * n), file_name="manifold.png", mime="image/png")
    else:
        st.markdown(
            "Decoded images on a grid over two latent dimensions, spaced by the **inverse CDF of N(0, 1)** "
            "so each cell covers the same prior mass (Kingma & Welling 2014, Fig. 4)."
        )
        c1, c2, c3 = st.columns(3)
        n = c1.slider("Grid size", 5, 25, 15, key="gen_n")
        if dim > 2:
            d0 = c2.selectbox("Horizontal dimension", range(dim), format_func=lambda i: f"z{i + 1}", key="gen_d0")
            d1 = c3.selectbox("Vertical dimension", range(dim), index=1, format_func=lambda i: f"z{i + 1}", key="gen_d1")
            st.caption("The other dimensions are held at 0 (the prior's mean).")
        else:
            d0, d1 = 0, 1
        if d0 == d1:
            st.warning("Pick two different dimensions.")
        else:
            grid = images.manifold_grid(model, n=n, dims=(d0, d1))
            widgets.show_image(grid, f"{n}×{n} manifold (z{d0 + 1} → right, z{d1 + 1} → up)", width=720)
            st.download_button("Download PNG", widgets.png_bytes(grid, 720), file_name="manifold.png", mime="image/png")

with tab_trav:
    trav = images.traversals(model, np.zeros(dim, np.float32), steps=11)
    if dim == 1:
        st.markdown("The latent has one dimension, so there is one traversal: z1 swept from −3 to +3.")
        widgets.show_image(trav, "one row, the only latent dimension: z1 from −3 to +3", width=min(900, 80 * 11))
    else:
        st.markdown("Each row sweeps one latent dimension from −3 to +3 with the others held at 0.")
        widgets.show_image(trav, "rows: z1, z2, … ; columns: −3 … +3", width=min(900, 80 * 11))
    c_dim, c_steps = st.columns(2)
    gif_dim = c_dim.selectbox("Dimension to animate", range(dim), format_func=lambda i: f"z{i + 1}", key="gen_gif_dim") if dim > 1 else 0
    gif_steps = int(c_steps.number_input("Steps in the GIF", 2, 200, 31, key="gen_gif_steps", help="the GIF goes from −3 to +3 and back"))
    widgets.gif_download(
        f"Download the z{gif_dim + 1} traversal as GIF",
        functools.partial(animation.traversal_gif, model, np.zeros(dim, np.float32), int(gif_dim), gif_steps),
        f"traversal_z{gif_dim + 1}.gif", "gen_gif", animation.steps_refusal([model], gif_steps),
    )

with tab_prior:
    st.markdown(f"Draws of z ~ N(0, I), decoded by the {ckpt.kind.upper()}: what sampling from the prior gives.")
    prior_measures()
    if st.button("New samples", key="gen_resample"):
        st.session_state["gen_seed"] = st.session_state.get("gen_seed", 0) + 1
    samples = images.prior_samples(model, n=32, seed=st.session_state.get("gen_seed", 0))
    widgets.show_image(images.tile(samples, 4, 8), "32 samples from the prior", width=800)
