"""Fill in missing pixels: hide part of a test image and let each model fill it in; the AE's one
fill beside the VAE's fill and its sampled fills, and both measured over hundreds of test images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages.ui import measures, session, widgets
from pages.ui.frame import presenting
from vae.analysis import images, metrics

N_DRAWS = 4  # the VAE's sampled fills shown for the chosen image (a 2 x 2 tile)
BETTER = "background-color: rgba(46, 160, 67, 0.25); font-weight: bold"

sel = session.require_selection()
st.title("Fill in missing pixels")
ckpt = sel.primary
data = session.dataset_or_stop(ckpt)
st.caption(
    "The hidden pixels start grey; each iteration encodes the image, takes a code z, decodes it and puts the known "
    "pixels back. The AE has one code per image, so one fill. The VAE fills once with its mean code z = μ and, "
    "drawing z from q(z|x̃) at every iteration, gives a different fill on each draw."
)
c1, c2, c3 = st.columns(3)
index = c1.slider("Test image", 0, int(data.x_test.shape[0]) - 1, 3, key="inpaint_index")
mask_kind = c2.selectbox("Hide", images.MASKS, key="inpaint_mask")
iterations = c3.slider("Iterations", 1, 100, metrics.FILL_ITERATIONS, key="inpaint_iters")

image = data.x_test[index].permute(1, 2, 0).numpy()
known = images.make_mask(mask_kind, image.shape[:2])
masked = np.where(known[..., None], image, images.FILL_START)


def hidden_error(filled: np.ndarray) -> float:
    return float(np.abs(filled - image)[~known].mean())


cols = st.columns([1, 1, 1, 1, 1], gap="small")
with cols[0]:
    widgets.show_image(image, f"original #{index}", width="stretch")
with cols[1]:
    widgets.show_image(masked, "what the model sees", width="stretch")
if sel.ae is not None:
    with cols[2]:
        filled = images.fill_missing(sel.ae.model, image, known, iterations=iterations)
        widgets.show_image(filled, f"AE's fill · error {hidden_error(filled):.3f}", width="stretch")
if sel.vae is not None:
    with cols[3]:
        filled = images.fill_missing(sel.vae.model, image, known, iterations=iterations)
        widgets.show_image(filled, f"VAE's fill, z = μ · error {hidden_error(filled):.3f}", width="stretch")
    with cols[4]:
        seed = st.session_state.get("inpaint_seed", 0)
        draws = images.fill_samples(sel.vae.model, image, known, n=N_DRAWS, iterations=iterations, seed=seed)
        errors = ", ".join(f"{hidden_error(d):.3f}" for d in draws)
        widgets.show_image(images.tile(draws, 2, 2), f"{N_DRAWS} VAE fills, z drawn from q(z|x̃) · errors {errors}",
                           width="stretch")
        if st.button("New draws", key="inpaint_redraw"):
            st.session_state["inpaint_seed"] = seed + 1
            st.rerun()
st.caption("Error: the mean absolute difference from the original over the hidden pixels (0 = exact, 1 = every pixel inverted).")

st.subheader("Measured over many test images")
if not sel.is_pair:
    st.info("Pick a **VAE + AE pair** in the sidebar to measure both models' fills over many test images.")
    st.stop()
assert sel.vae is not None and sel.ae is not None
n_images = min(metrics.FILL_IMAGES, int(data.x_test.shape[0]))
key = (sel.vae.sha256, sel.ae.sha256, mask_kind, str(n_images))
done = measures.measured_keys()
if key not in done and int(np.prod(data.image_shape)) > measures.QUICK_PIXELS:
    st.write(f"Fill in {n_images} test images with the {mask_kind} hidden, with both models "
             f"({metrics.FILL_SAMPLES} sampled fills each for the VAE): this takes several seconds.")
    if not st.button(f"Measure over {n_images} test images", key="inpaint_measure", type="primary"):
        st.stop()
with st.spinner(f"Filling in {n_images} test images with the {mask_kind} hidden, with both models…"):
    reports = measures.fill_reports(*key[:3], n_images, sel.vae, sel.ae, data)
done.add(key)
compared = metrics.compare_fill_reports(reports["vae"], reports["ae"])
rows = compared["rows"]
st.markdown(f"**{compared['headline']}**")
table = pd.DataFrame(
    {"VAE": [r["vae_text"] for r in rows], "AE": [r["ae_text"] for r in rows], "what it measures": [r["explanation"] for r in rows]},
    index=[r["label"] for r in rows],
)


def _highlight(column: pd.Series) -> list[str]:
    """The better model's cell of each measure (none where the difference is within noise)."""
    return [BETTER if r["favours"] == column.name else "" for r in rows]


st.table(table.style.apply(_highlight, subset=["VAE", "AE"]))
if compared["note"]:
    st.info(f"Whether the fills show the true class is not measured here ({compared['note']}).")
lines = [r["sentence"] for r in rows]
if compared["spread"] is not None:
    lines.append(f"The VAE's {compared['n_samples']} sampled fills of an image differ from each other by "
                 f"{compared['spread']:.3f} per hidden pixel (standard deviation, averaged); the AE's fill is always the same.")
lines.append(compared["baseline"])
st.markdown("\n".join(f"- {line}" for line in lines))
st.caption(
    f"The better value of each measure is highlighted; a difference within {metrics.NOISE_SE:g} standard errors of the "
    f"per-image differences counts as a tie. {n_images} seeded test images, the same for both models, "
    f"{metrics.FILL_ITERATIONS} iterations; the judge is a classifier trained on the training images only, and reads the "
    "true class when its top class is the image's label with at least 50 % confidence"
    + ("." if presenting() else " (vae/analysis/metrics.py).")  # a source path is for developers
)
