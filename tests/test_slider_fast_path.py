"""What a slider move's faster path must not change (issue 11 item 10): the image the page shows
(same pixels, same width) and the hole meter's numbers (one torch thread gives the same ones),
and the server's own torch thread count comes back after each move."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from pages.ui import widgets
from vae.analysis.judge import Judge, JudgeRecipe, build_net
from vae.analysis.layers import hole_meter
from vae.core.config import ModelConfig
from vae.core.models import build_model


@pytest.mark.parametrize(("shape", "width"), [((28, 28, 1), "stretch"), ((28, 28, 1), 280), ((8, 8, 1), 220),
                                              ((28, 60, 3), "stretch"), ((434, 434, 1), 720)])
def test_show_image_sends_the_same_pixels_at_the_same_width(monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int, int],
                                                            width: int | str) -> None:
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    sent: dict = {}  # type: ignore[type-arg]
    monkeypatch.setattr(widgets.st, "image", lambda data, **kw: sent.update(data=data, **kw))
    widgets.show_image(image, "decoded image", width=width)  # type: ignore[arg-type]

    before = widgets.to_pil(image, width if isinstance(width, int) else 2 * widgets.IMAGE_PX)  # what st.image got until now
    shown = Image.open(io.BytesIO(sent["data"]))
    assert shown.format == "PNG" and shown.mode == before.mode and shown.size == before.size
    assert np.array_equal(np.asarray(shown), np.asarray(before))
    assert sent["width"] == (before.width if isinstance(width, int) else width)
    assert sent["caption"] == "decoded image" and sent["output_format"] == "PNG"


def _model_and_judge() -> tuple[torch.nn.Module, Judge]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=2)).eval()
    net = build_net((1, 28, 28), 10)
    judge = Judge(net, tuple(str(i) for i in range(10)), (1, 28, 28), 1.0, JudgeRecipe(), "test", 0.0)
    return model, judge


def test_one_torch_thread_gives_the_same_hole_meter_and_puts_the_thread_count_back() -> None:
    model, judge = _model_and_judge()
    rng = np.random.default_rng(1)
    zs = rng.normal(0, 2, (20, 2)).astype(np.float32)
    aggregate = (rng.normal(0, 1, (50, 2)).astype(np.float32), np.full((50, 2), 0.3, np.float32))
    before = torch.get_num_threads()
    usual = [hole_meter(model, judge, z, aggregate) for z in zs]
    inside: list[int] = []
    with widgets.one_torch_thread():
        inside.append(torch.get_num_threads())
        single = [hole_meter(model, judge, z, aggregate) for z in zs]
    assert inside == [1]
    assert single == usual  # class, confidence, q/p and round trip: the same numbers
    from vae.analysis.images import decode_images

    for z in zs:  # the slider's decoded image too: the same pixels
        assert np.array_equal(widgets.decoded(model, z), decode_images(model, z)[0])
    assert torch.get_num_threads() == before

    seen: list[int] = []  # a thread that starts torch after the move gets the process's count
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert seen == [widgets.PROCESS_TORCH_THREADS]


def test_one_torch_thread_puts_the_count_back_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), widgets.one_torch_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
