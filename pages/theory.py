"""Theory: the ELBO of one test image, live, beside its formulas."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.ui import session, widgets
from vae.analysis.theory import K_VALUES, elbo_breakdown, log_px_versus_k
from vae.services import plots

sel = session.require_selection()
st.title("Theory: the ELBO, live")
if sel.vae is None:
    st.warning("The ELBO needs a VAE; the selected model is a plain autoencoder. Pick a VAE or a pair in the sidebar.")
    st.stop()
ckpt = sel.vae
data = session.dataset_or_stop(ckpt)

c_pick, c_seed = st.columns([3, 1])
with c_pick:
    index = st.slider("Test image", 0, int(data.x_test.shape[0]) - 1, 0, key="theory_index")
with c_seed:
    st.write("")
    if st.button("Resample ε", width="stretch"):
        st.session_state["theory_seed"] = st.session_state.get("theory_seed", 0) + 1
seed = st.session_state.get("theory_seed", 0)
x = data.x_test[index : index + 1]
b = elbo_breakdown(ckpt.model, x, seed=seed)

col_img, col_math = st.columns([1, 2], gap="large")
with col_img:
    widgets.show_image(x[0].permute(1, 2, 0).numpy(), f"x: test image #{index}", width=220)
    widgets.show_image(b.reconstruction, "p(x|z) for this z", width=220)
with col_math:
    st.markdown("**Reparameterization**: sample ε, then move and scale it, so gradients flow through μ and σ.")
    st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon,\qquad \varepsilon \sim \mathcal{N}(0, I)")
    table = pd.DataFrame(
        {"μ": b.mu, "σ": b.sigma, "ε": b.eps, "z = μ + σ·ε": b.z, "KL (nats)": b.kl_per_dim},
        index=[f"z{i + 1}" for i in range(len(b.mu))],
    )
    st.dataframe(table.style.format("{:+.3f}"), width="stretch")  # height "auto": fits up to 10 rows, then scrolls
    st.markdown("**KL per dimension**, closed form against N(0, 1):")
    st.latex(r"\mathrm{KL}_j = \tfrac12\left(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\right)")
    st.markdown("**ELBO** = reconstruction − KL:")
    st.latex(
        rf"\underbrace{{\log p_\theta(x\mid z)}}_{{{b.recon:.2f}}} \;-\; "
        rf"\underbrace{{\textstyle\sum_j \mathrm{{KL}}_j}}_{{{b.kl:.2f}}} \;=\; "
        rf"\underbrace{{\mathrm{{ELBO}}}}_{{{b.elbo:.2f}\ \text{{nats}}}}"
    )

st.subheader("ELBO ≤ log p(x): the importance-sampled estimate")
st.latex(
    r"\log p(x) \approx \log \frac{1}{K}\sum_{k=1}^{K} \frac{p_\theta(x\mid z_k)\,p(z_k)}{q_\phi(z_k\mid x)},"
    r"\qquad z_k \sim q_\phi(z\mid x)"
)
st.caption("K = 1 is the ELBO; more samples give a tighter bound that rises towards log p(x). Every K uses the same "
           "20,000 samples from q(z|x), in groups of K, so the curve shows the bound, not the noise of separate draws.")


@st.cache_data(max_entries=64, show_spinner="estimating log p(x) for K = 1 … 1000…")
def _curve(sha: str, index: int) -> tuple[list[float], float]:
    return log_px_versus_k(ckpt.model, data.x_test[index : index + 1])


estimates, mean_elbo = _curve(ckpt.sha256, index)
c_plot, c_nums = st.columns([3, 1])
with c_plot:
    st.plotly_chart(plots.log_px_curve(K_VALUES, estimates, mean_elbo), key="theory_curve")
with c_nums:
    st.metric("mean ELBO (K = 1)", f"{mean_elbo:.2f} nats")
    st.metric("log p(x), K = 1000", f"{estimates[-1]:.2f} nats", delta=f"gap {estimates[-1] - mean_elbo:.2f} nats")
