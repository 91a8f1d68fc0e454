"""The Live pad's path GIF end to end in Chromium (issue 12, item 2): a drag on the pad, the path
the browser reports on release, the download button Python then shows, and the GIF it downloads,
whose last frame is PyTorch's decode of the released z. On the session's shared pair server."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import pad_state, wait_python_z
from tests.e2e.test_live_pad import PROJECTOR, _open_live, _to_client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_a_drag_on_the_pad_downloads_as_a_gif_ending_at_the_released_z(pair_server, browser, pair_models_dir) -> None:  # type: ignore[no-untyped-def]
    from vae.analysis.images import decode_images
    from vae.core.checkpoint import load_checkpoint
    from vae.services import animation

    context = browser.new_context(viewport=PROJECTOR, accept_downloads=True)
    try:
        pg = _open_live(context, pair_server, "live_pad_gif")
        (x0, x1), (y0, y1) = pad_state(pg)["ranges"]
        sx, sy = _to_client(pg, [x0 + 0.2 * (x1 - x0), y0 + 0.5 * (y1 - y0)])
        ex, ey = _to_client(pg, [x0 + 0.8 * (x1 - x0), y0 + 0.6 * (y1 - y0)])
        pg.mouse.move(sx, sy)
        pg.mouse.down()
        pg.mouse.move(ex, ey, steps=20)
        pg.mouse.up()
        z = wait_python_z(pg, pad_state(pg)["z"])

        button = pg.get_by_role("button", name="Download the path as GIF")
        button.wait_for(timeout=30_000)
        with pg.expect_download(timeout=30_000) as download:
            button.click()
        gif = Image.open(io.BytesIO(download.value.path().read_bytes()))
        n = getattr(gif, "n_frames", 1)
        assert 5 <= n <= 22, n  # about one frame per move: the press, 20 moves and the release (a few may coincide)
        gif.seek(n - 1)
        last = np.asarray(gif.convert("RGB"))[animation.TITLE_PX :, :224, 0]  # the VAE's panel
        vae = load_checkpoint(pair_models_dir / "mnist-2d-vae.safetensors").model
        want = animation.upscale(decode_images(vae, np.array(z, np.float32))[0])[..., 0]
        assert np.abs(last.astype(int) - want.astype(int)).max() <= 1
        assert not pg.errors, pg.errors  # type: ignore[attr-defined]
    finally:
        context.close()
