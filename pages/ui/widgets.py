"""Streamlit widgets the pages share: images shown pixel-crisp (and as PNG bytes), one latent
slider per dimension with their ranges and steps, each page's stored z (kept while the user is
on another page) with its reset button, and error messages."""

from __future__ import annotations

import streamlit as st

from pages.ui.frame import leave_pages_folder_mode  # light: Streamlit only

# Before the imports below, on purpose: see leave_pages_folder_mode's docstring.
leave_pages_folder_mode()

import io  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import TYPE_CHECKING, Any, Literal  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from vae.analysis.judge import Judges
    from vae.analysis.layers import HoleMeter
    from vae.analysis.maps import LatentMap
    from vae.core.data import Dataset
    from vae.core.models import LatentModel

IMAGE_PX = 280  # decoded images are shown this wide, upscaled with nearest-neighbour pixels


def to_pil(image: np.ndarray, width: int = IMAGE_PX) -> Image.Image:
    """(H, W, C) float in [0, 1] -> PIL image upscaled by a whole factor (at most `width` wide)
    with nearest-neighbour pixels, so every model pixel stays a crisp square."""
    arr = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    arr = arr[..., 0] if arr.shape[-1] == 1 else arr
    img = Image.fromarray(arr)
    scale = max(1, width // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


# zlib level of the PNGs st.image shows: lossless at any level, so the pixels are the same; level 1
# encodes an upscaled 28x28 decode in 0.9 ms instead of 2.1 ms at Pillow's default 6 (3.4 KB
# instead of 1.6 KB), on every slider move (bench/RESULTS.md, "Classroom load").
SHOWN_PNG_LEVEL = 1
# The server's torch intra-op thread count, read when this module is first imported (the server's
# first script run, before anything changed it): what one_torch_thread gives back.
PROCESS_TORCH_THREADS = torch.get_num_threads()


def show_image(image: np.ndarray, caption: str | None = None, width: int | Literal["stretch", "content"] = IMAGE_PX) -> None:
    """Show an image at `width` px (or "stretch" to fill the column; CSS keeps pixels crisp).
    PNG, not Streamlit's default JPEG, so no compression noise is added; encoded here (fast
    zlib level, SHOWN_PNG_LEVEL), which Streamlit passes on as it is."""
    pil = to_pil(image, width if isinstance(width, int) else 2 * IMAGE_PX)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=SHOWN_PNG_LEVEL)
    st.image(buf.getvalue(), caption=caption, width=pil.width if isinstance(width, int) else width, output_format="PNG")


def png_bytes(image: np.ndarray, width: int = IMAGE_PX) -> bytes:
    buf = io.BytesIO()
    to_pil(image, width).save(buf, format="PNG")
    return buf.getvalue()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block (the hole meter's one-image decode, judge and encode, on every slider move)
    with one torch intra-op thread, then give the process its own setting back.

    Why: each Streamlit script run is a new thread, and torch's OpenMP starts a team of worker
    threads for each one on its first parallel op (the judge's conv): with two threads a
    one-image judge costs 3 ms instead of 0.2 ms, and on a busy machine every op waits at its
    barrier for a descheduled second thread, spinning meanwhile (measured: the server's CPU per
    Explore slider move 38 ms with two threads, 13 ms with one; bench/RESULTS.md, "Classroom
    load"). With OpenMP torch keeps the count per thread (omp_set_num_threads): this run's own is
    set to 1; `torch.set_num_threads` also sets the count that threads starting torch meanwhile
    take, which is put back at the end. Only speed depends on it: the same numbers come out."""
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(PROCESS_TORCH_THREADS)


def decoded(model: LatentModel, z: np.ndarray) -> np.ndarray:
    """The image of one z (D,), (H, W, C) in [0, 1]: a slider move's decode, on one torch thread
    (one_torch_thread: the same pixels, without a thread team started for this run)."""
    from vae.analysis.images import decode_images

    with one_torch_thread():
        return decode_images(model, z)[0]


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


# --- the map's layers and the hole meter (issue 11, items 5 and 6) ----------------------------

LANDSCAPE, PRIOR, Q_CONTOURS, ELLIPSES = "Decoded landscape", "Prior 1-3σ", "q(z)", "q(z|x)"  # one row at 1280 px
LAYERS = (LANDSCAPE, PRIOR, Q_CONTOURS, ELLIPSES)
DEFAULT_LAYERS: tuple[str, ...] = ()  # the map as it was until a teacher switches a layer on
LAYER_KEY = {
    LANDSCAPE: "colour: the judge's reading of the decode (pale: unsure)",
    PRIOR: "dashed: prior 1σ, 2σ, 3σ",
    Q_CONTOURS: "solid: q(z) 50 / 90 / 99 %",
    ELLIPSES: "grey: q(z|x) 1σ (AE: points)",
}
LAYER_HELP = (
    "Decoded landscape: each spot of the map coloured by the class the judge reads in its decode, faded where "
    "it is unsure. Prior: the circles holding 39 %, 86 % and 99 % of N(0, I). q(z): the contours around 50 %, "
    "90 % and 99 % of the codes' mixture (a VAE only; an AE's codes are points). q(z|x): each sampled test "
    "image's 1σ ellipse (an AE's are points)."
)


@st.cache_resource(max_entries=4, show_spinner="the judge of this dataset: loading it…")
def dataset_judge(name: str, _data: Dataset) -> Judges | None:
    """The dataset's judge (vae.analysis.metrics.judge_or_none: trained once and cached on disk),
    held for the server's life; None for a dataset without labels. Pages ask `current_judge`,
    which never waits for a training."""
    from vae.analysis.metrics import judge_or_none

    return judge_or_none(_data)


@st.cache_resource(max_entries=4, show_spinner=False)
def _judge_training(name: str, _data: Dataset) -> threading.Thread:
    """The dataset's judge trained once per server in the background, in a child process at a lower
    priority (jobs.train_judge_apart: in a thread of the server its training held the GIL against
    every session's script); this thread waits for it, and the judge is then loaded from its cache."""
    from vae.services.jobs import train_judge_apart

    # not a daemon: where the child fails the judge trains in this thread, and a daemon thread still
    # inside torch when the interpreter exits aborts the whole process ("terminate called without an
    # active exception", exit code 134); a server stopped meanwhile waits for the training (the
    # child's or this thread's), and the judge is cached for the next start
    thread = threading.Thread(target=train_judge_apart, args=(_data,), name=f"judge-{name}", daemon=False)
    thread.start()
    return thread


def judge_pending(data: Dataset) -> bool:
    """Whether the dataset's judge is still being trained (seconds on an idle machine, minutes on a
    busy one). Its training starts here, in the background, the first time a page asks: the page
    goes on without the judge's parts meanwhile, and `wait_for_judge` reruns it when it is there."""
    from vae.analysis.judge import has_labels
    from vae.services.workflow import judge_cached

    if not has_labels(data) or judge_cached(data):
        return False
    return _judge_training(data.name, data).is_alive()


def current_judge(data: Dataset) -> Judges | None:
    """The dataset's judge, or None while it is being trained (see judge_pending) or when the
    dataset has no labels."""
    return None if judge_pending(data) else dataset_judge(data.name, data)


def wait_for_judge(data: Dataset, what: str) -> None:
    """While the dataset's judge trains: a line saying so (`what` follows when it is ready), and a
    check every 2 s that reruns the whole page once it is there. Nothing when it is ready."""
    if not judge_pending(data):
        return

    @st.fragment(run_every=2.0)
    def poll() -> None:
        if not judge_pending(data):
            st.rerun()
        st.caption(f"Training this dataset's judge once (seconds; minutes on a busy machine): {what} follow when it is ready.")

    poll()


@st.cache_resource(max_entries=16, show_spinner=False)
def posterior_sample(sha: str, _model: LatentModel, _x_test: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """(μ, σ²) of the sample of test images behind q(z) (layers.posterior_sample), per checkpoint."""
    from vae.analysis.layers import posterior_sample as sample

    return sample(_model, _x_test)


def layer_picker(key: str, unavailable: str | None = None, judge: bool = True) -> tuple[str, ...]:
    """The map's layers as a multi-select of pills; returns the chosen ones (in LAYERS order).
    `unavailable`: why this map has no layers (t-SNE, a 1-D latent): the pills are disabled and
    that reason is shown. Without a judge (`judge` False) the landscape is not offered, and a
    caption says why."""
    options = list(LAYERS) if judge else [o for o in LAYERS if o != LANDSCAPE]
    if key not in st.session_state:
        st.session_state[key] = [o for o in DEFAULT_LAYERS if o in options]
    chosen = st.pills("Layers", options, selection_mode="multi", key=key, disabled=unavailable is not None,
                      help=LAYER_HELP, label_visibility="collapsed", wrap=True)
    if unavailable is not None:
        st.caption(f"Layers: {unavailable}")
        return ()
    if not judge:
        st.caption("Decoded landscape: unavailable, this dataset has no labels, so there is no judge to read the decodes.")
    picked = tuple(o for o in LAYERS if o in (chosen or []))
    if picked:  # the layers' key (the map's legend holds only the classes: thirteen entries overflow it)
        st.caption(" · ".join(LAYER_KEY[o] for o in picked))
    return picked


def add_layers(
    fig: go.Figure, chosen: tuple[str, ...], model: LatentModel, sha: str, latent_map: LatentMap,
    box: tuple[tuple[float, float], tuple[float, float]], x_test: torch.Tensor, judge: Judges | None,
    class_names: tuple[str, ...],
) -> go.Figure:
    """A copy of the map's figure with the chosen layers drawn on it, computed over the map's own
    axis ranges (`box`), so the axes do not move (the z marker's CSS relies on them). The layers'
    data are cached on disk per checkpoint (vae.analysis.layers.compute_*)."""
    import plotly.graph_objects as go

    from vae.analysis import layers
    from vae.services import plots

    out = go.Figure(fig)
    if not chosen:
        return out
    plane = layers.plane_of(latent_map)
    under: list[Any] = []
    over: list[Any] = []
    if LANDSCAPE in chosen and judge is not None:
        land = layers.compute_landscape(model, judge, sha, plane, box)
        under.append(plots.landscape_trace(land.xs, land.ys, land.classes, land.confidence, class_names))
    if Q_CONTOURS in chosen:
        agg = layers.compute_aggregate(model, x_test, sha, plane, box)
        under += plots.density_contour_traces(agg.xs, agg.ys, agg.density, layers.mass_levels(agg).tolist())
    if PRIOR in chosen:
        circles = layers.prior_circles(plane)
        over += plots.circle_traces(circles.outlines, circles.radii.tolist())
    if ELLIPSES in chosen:
        ell = layers.compute_ellipses(model, x_test, sha, plane)
        over += plots.ellipse_traces(ell.centres, ell.semi_axes, ell.angles)
    for trace in under + over:
        if not isinstance(trace, go.Image):  # an image has no legend entry
            trace.showlegend = False  # the caption under the layer pills is their key
    out.add_traces(under + over)
    return out


def _ratio_text(log_ratio: float) -> str:
    """q(z)/p(z) from its log: plain between 0.01 and 1000, else a power of ten."""
    r10 = log_ratio / np.log(10)
    if -2 <= r10 < 3:
        return f"{np.exp(log_ratio):.2g}"
    return f"≈ 1e{r10:+.0f}"


def hole_meter_text(meter: HoleMeter, kind: str, judge_training: bool = False) -> str:
    """The hole meter as one short Markdown line per measure."""
    if judge_training:
        judge = "judge: being trained…"
    elif meter.class_name is None or meter.confidence is None:
        judge = "judge: none (no labels)"
    else:
        judge = f"judge: **{meter.class_name}**, **{meter.confidence:.0%}** sure"
        if meter.confidence < 0.5:
            judge += " (unrecognisable)"
    if meter.log_q_over_p is None:
        ratio = "q(z)/p(z): n/a (AE codes are points)" if kind == "ae" else "q(z)/p(z): n/a"
    else:
        ratio = f"q(z)/p(z): **{_ratio_text(meter.log_q_over_p)}**"
        if meter.log_q_over_p < np.log(0.1):
            ratio += " (few codes here)"
    return "  \n".join((judge, ratio, f"round trip: **{meter.round_trip:.2f}**"))


METER_HELP = (
    "judge: the class a classifier trained on the training images reads in this decode, and how sure it is "
    "(under 50 %: unrecognisable). q(z)/p(z): how dense the test images' codes are at z against the prior "
    "N(0, I): well under 1 where the prior sends samples that no image's code is near (a hole). round trip: "
    "how far encoding this decode lands from z, ‖μ(decode(z)) − z‖ (near 0: the models agree on this z)."
)


def show_hole_meter(model: LatentModel, kind: str, sha: str, data: Dataset, z: np.ndarray) -> HoleMeter:
    """The hole meter at z, under a decoded image: one decode, one judge call and one encode."""
    from vae.analysis.layers import hole_meter

    judge = current_judge(data)  # None while it trains in the background: the rest of the meter goes on
    aggregate = posterior_sample(sha, model, data.x_test)
    with one_torch_thread():
        meter = hole_meter(model, judge, z, aggregate)
    with st.container(key=f"hole_meter_{kind}_{sha[:12]}"):  # the key: presenter mode's CSS enlarges its numbers
        st.markdown(hole_meter_text(meter, kind, judge_training=judge is None and judge_pending(data)), help=METER_HELP)
    return meter


# --- GIF downloads (issue 12, item 2) ----------------------------------------------------------


def gif_download(label: str, make: Callable[[], bytes], file_name: str, key: str, refusal: str | None = None) -> None:
    """A download button whose GIF is made only when it is clicked (Streamlit calls `make` then,
    not on every rerun; the click reruns nothing), with the size bound beside it; where the
    request is over that bound, `refusal` (vae.services.animation's message) instead of the button."""
    from vae.services.animation import LIMIT

    if refusal:
        st.warning(refusal, icon=":material/block:")
        return
    c_button, c_note = st.columns([1, 2], vertical_alignment="center")
    c_button.download_button(label, make, file_name=file_name, mime="image/gif", key=key, on_click="ignore",
                             icon=":material/gif_box:")
    c_note.caption(f"GIF: {LIMIT}.")
