"""Streamlit widgets the pages share: images shown pixel-crisp (and as PNG bytes), one latent
slider per dimension with their ranges and steps, each page's stored z (kept while the user is
on another page) with its reset button, and error messages."""

from __future__ import annotations

import streamlit as st

from pages.ui.frame import leave_pages_folder_mode  # light: Streamlit only

# Before the imports below, on purpose: see leave_pages_folder_mode's docstring.
leave_pages_folder_mode()

import io  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Literal  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

IMAGE_PX = 280  # decoded images are shown this wide, upscaled with nearest-neighbour pixels


def to_pil(image: np.ndarray, width: int = IMAGE_PX) -> Image.Image:
    """(H, W, C) float in [0, 1] -> PIL image upscaled by a whole factor (at most `width` wide)
    with nearest-neighbour pixels, so every model pixel stays a crisp square."""
    arr = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    arr = arr[..., 0] if arr.shape[-1] == 1 else arr
    img = Image.fromarray(arr)
    scale = max(1, width // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def show_image(image: np.ndarray, caption: str | None = None, width: int | Literal["stretch", "content"] = IMAGE_PX) -> None:
    """Show an image at `width` px (or "stretch" to fill the column; CSS keeps pixels crisp).
    PNG, not Streamlit's default JPEG, so no compression noise is added."""
    pil = to_pil(image, width if isinstance(width, int) else 2 * IMAGE_PX)
    st.image(pil, caption=caption, width=pil.width if isinstance(width, int) else width, output_format="PNG")


def png_bytes(image: np.ndarray, width: int = IMAGE_PX) -> bytes:
    buf = io.BytesIO()
    to_pil(image, width).save(buf, format="PNG")
    return buf.getvalue()


def slider_step(lo: float, hi: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving 100-250 positions over [lo, hi]:
    with ranges rounded to it (slider_ranges), 0 and every value shown with two decimals is
    reachable exactly."""
    raw = max(hi - lo, 1e-9) / 100
    power = 10.0 ** np.floor(np.log10(raw))
    step = max(m * power for m in (1, 2, 5) if m * power <= raw * (1 + 1e-9))
    return float(f"{step:.3g}")


def _decimals(step: float) -> int:
    return max(0, int(-np.floor(np.log10(step) + 1e-9)))


def slider_ranges(mu: np.ndarray, cover_prior: bool = False) -> list[tuple[float, float]]:
    """Per-dimension (lo, hi) slider range for the test means mu (N, D): mean ± 3 std, widened
    to a multiple of a round step (slider_step), so 0 is on the grid where the range holds it. With `cover_prior` (for a
    VAE) the range also covers at least ±3, the prior's ±3σ where samples z ~ N(0, I) come from,
    however tightly the test means happen to cluster."""
    mean, std = mu.mean(0), np.maximum(mu.std(0), 1e-3)
    lo, hi = mean - 3 * std, mean + 3 * std
    if cover_prior:
        lo, hi = np.minimum(lo, -3.0), np.maximum(hi, 3.0)
    out = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        a, b = (a, b) if b - a > 1e-6 else (a - 1e-3, b + 1e-3)
        step = slider_step(a, b)
        d = _decimals(step) + 1
        a, b = round(np.floor(a / step + 1e-3) * step, d), round(np.ceil(b / step - 1e-3) * step, d)
        out.append((float(a) + 0.0, float(b) + 0.0))  # + 0.0: no -0.0
    return out


def z_key(prefix: str, i: int) -> str:
    return f"{prefix}_z{i}"


def _z_store(prefix: str) -> str:
    """This page's own copy of z (not a widget key): Streamlit forgets a widget's value when
    the widget is not drawn in a run (another page), this one stays for the session."""
    return f"{prefix}_zvec"


def _on_grid(v: float, lo: float, hi: float) -> float:
    """v clipped into [lo, hi] and rounded to the slider's step (so 0 stays exactly 0)."""
    step = slider_step(lo, hi)
    v = min(max(float(v), lo), hi)
    return round(lo + round((v - lo) / step) * step, _decimals(step) + 1) + 0.0


def set_z(prefix: str, z: np.ndarray, ranges: list[tuple[float, float]]) -> None:
    """Put z into the sliders' session state (clipped into their ranges)."""
    z = np.asarray(z, dtype=float).ravel()
    for i, v in enumerate(z):
        lo, hi = ranges[i]
        st.session_state[z_key(prefix, i)] = float(min(max(v, lo), hi))
    st.session_state[_z_store(prefix)] = np.array([st.session_state[z_key(prefix, i)] for i in range(len(z))], np.float32)


def reset_z_button(prefix: str, ranges: list[tuple[float, float]], key: str | None = None,
                   on_reset: Callable[[np.ndarray], None] | None = None) -> None:
    """A "reset z to 0" button for the sliders of `prefix` (0 clipped into a range without it);
    `on_reset(z)` replaces the default set_z."""
    zero = np.zeros(len(ranges), np.float32)

    def reset() -> None:
        set_z(prefix, zero, ranges)

    st.button(
        "Reset z to 0", key=key or f"{prefix}_reset",
        on_click=on_reset or reset, args=(zero,) if on_reset else None,
    )


def latent_sliders(
    prefix: str, ranges: list[tuple[float, float]], columns: int = 2, height: int | None = None,
) -> np.ndarray:
    """One slider per latent dimension, starting at 0 (or its stored z); returns z (D,).
    `height` (px) puts them in a scrolling box of that height (a 64-D latent's 64 sliders)."""
    stored = st.session_state.get(_z_store(prefix))
    for i, (lo, hi) in enumerate(ranges):
        key = z_key(prefix, i)
        if key not in st.session_state:  # first run, or the widget was forgotten off this page
            start = stored[i] if stored is not None and len(stored) == len(ranges) else 0.0
            st.session_state[key] = _on_grid(start, lo, hi)
        elif not lo <= st.session_state[key] <= hi:
            st.session_state[key] = _on_grid(st.session_state[key], lo, hi)
    values = []
    box = st.container(height=height, border=True) if height else st.container()
    with box:
        cols = st.columns(min(columns, len(ranges)))
        for i, (lo, hi) in enumerate(ranges):
            step = slider_step(lo, hi)
            with cols[i % len(cols)]:
                values.append(st.slider(
                    f"z{i + 1}", min_value=lo, max_value=hi, step=step, key=z_key(prefix, i),
                    format=f"%.{max(2, _decimals(step))}f",
                ))
    z = np.array(values, dtype=np.float32)
    st.session_state[_z_store(prefix)] = z
    return z


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon="⚠️")
