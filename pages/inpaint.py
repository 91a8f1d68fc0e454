"""Fill in missing pixels: hide part of a test image and let each model fill it in."""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages.ui import session, widgets
from vae.analysis import images

sel = session.require_selection()
st.title("Fill in missing pixels")
ckpt = sel.primary
data = session.dataset_or_stop(ckpt)
st.caption(
    "The hidden pixels start grey; each iteration encodes the image, decodes its code and puts the known "
    "pixels back, so the model's idea of a likely image fills the gap."
)
c1, c2, c3 = st.columns(3)
index = c1.slider("Test image", 0, int(data.x_test.shape[0]) - 1, 3, key="inpaint_index")
mask_kind = c2.selectbox("Hide", images.MASKS, key="inpaint_mask")
iterations = c3.slider("Iterations", 1, 100, 30, key="inpaint_iters")

image = data.x_test[index].permute(1, 2, 0).numpy()
known = images.make_mask(mask_kind, image.shape[:2])
masked = np.where(known[..., None], image, 0.5)
cols = st.columns(4, gap="medium")
with cols[0]:
    widgets.show_image(image, f"original #{index}", width="stretch")
with cols[1]:
    widgets.show_image(masked, "what the model sees", width="stretch")
for col, (kind, c) in zip(cols[2:], [(k, c) for k, c in (("VAE", sel.vae), ("AE", sel.ae)) if c is not None], strict=False):
    with col:
        filled = images.fill_missing(c.model, image, known, iterations=iterations)
        err = float(np.abs(filled - image)[~known].mean())
        widgets.show_image(filled, f"{kind} fill · error {err:.3f}", width="stretch")
