"""The GIF downloads (vae/services/animation.py): frame counts, sizes and durations read back
with Pillow, a frame's pixels equal to the decode of its z, and the size bound refused with a message."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vae.analysis.images import decode_images
from vae.core.errors import ConfigError
from vae.core.models import build_model
from vae.services import animation


@pytest.fixture(scope="module")
def model(tiny_model_config):  # type: ignore[no-untyped-def]
    """An untrained 8x8 decoder: distinct decodes for distinct z, which is all these tests need."""
    return build_model(tiny_model_config("vae"), seed=0).eval()


def frames_of(gif: bytes) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of a GIF as (H, W, 3) uint8 and its duration in ms."""
    im = Image.open(io.BytesIO(gif))
    assert im.format == "GIF" and im.info.get("loop") == 0  # loops for ever, as slides want
    frames, durations = [], []
    for k in range(getattr(im, "n_frames", 1)):
        im.seek(k)
        frames.append(np.asarray(im.convert("RGB")))
        durations.append(im.info["duration"])
    return frames, durations


def as_grey(frame: np.ndarray) -> np.ndarray:
    """A grey frame's one channel (its three are equal)."""
    assert (frame == frame[..., :1]).all()
    return frame[..., 0]


def test_interpolation_plays_there_and_back_and_its_ends_are_the_endpoints_decodes(model) -> None:  # type: ignore[no-untyped-def]
    a, b = np.array([-2.0, 1.0], np.float32), np.array([1.5, -0.5], np.float32)
    frames, durations = frames_of(animation.interpolation_gif([model], [a], [b], steps=7, duration_ms=90))
    assert len(frames) == 12 and durations == [90] * 12  # 7 forwards, 5 back (the ends are not repeated)
    ends = decode_images(model, np.stack([a, b]))
    assert frames[0].shape == (224, 224, 3)  # 8 px upscaled by 28
    np.testing.assert_array_equal(as_grey(frames[0]), animation.upscale(ends[0])[..., 0])
    np.testing.assert_array_equal(as_grey(frames[6]), animation.upscale(ends[1])[..., 0])
    assert not np.array_equal(frames[0], frames[6])  # the two ends decode differently
    np.testing.assert_array_equal(as_grey(frames[1]), as_grey(frames[11]))  # on the way back


def test_a_pair_is_side_by_side_under_titles(model, tiny_model_config) -> None:  # type: ignore[no-untyped-def]
    ae = build_model(tiny_model_config("ae"), seed=1).eval()
    z = np.zeros(2, np.float32)
    gif = animation.interpolation_gif([model, ae], [z, z], [z + 1, z - 1], steps=5, titles=["VAE", "AE"])
    frames, _ = frames_of(gif)
    top = animation.TITLE_PX
    assert len(frames) == 8 and frames[0].shape[:2] == (224 + top, 2 * 224 + animation.GAP)
    starts = decode_images(model, z), decode_images(ae, z)
    np.testing.assert_array_equal(as_grey(frames[0])[top:, :224], animation.upscale(starts[0][0])[..., 0])
    np.testing.assert_array_equal(as_grey(frames[0])[top:, 224 + animation.GAP :], animation.upscale(starts[1][0])[..., 0])


def test_traversal_sweeps_one_dimension_only(model) -> None:  # type: ignore[no-untyped-def]
    base = np.array([0.3, -0.7], np.float32)
    frames, durations = frames_of(animation.traversal_gif(model, base, dim=1, steps=5, span=2.0))
    assert len(frames) == 8 and set(durations) == {animation.FRAME_MS}
    want = decode_images(model, np.array([[0.3, -2.0], [0.3, 2.0]], np.float32))
    np.testing.assert_array_equal(as_grey(frames[0]), animation.upscale(want[0])[..., 0])
    np.testing.assert_array_equal(as_grey(frames[4]), animation.upscale(want[1])[..., 0])
    with pytest.raises(ConfigError, match="z3 does not exist"):
        animation.traversal_gif(model, base, dim=2)


def test_a_request_beyond_the_bound_gets_a_message_not_a_file(model) -> None:  # type: ignore[no-untyped-def]
    most = animation.MAX_STEPS  # there and back: 2 * steps - 2 frames
    assert animation.steps_refusal([model], most) is None
    assert f"at most {most} steps" in (animation.steps_refusal([model], most + 1) or "")
    assert len(frames_of(animation.traversal_gif(model, np.zeros(2), 0, steps=most))[0]) == animation.MAX_FRAMES
    with pytest.raises(animation.AnimationTooLarge) as err:
        animation.interpolation_gif([model], [np.zeros(2)], [np.ones(2)], steps=most + 1)
    message = str(err.value)
    assert "\n" not in message and animation.LIMIT in message and f"at most {most} steps" in message
    with pytest.raises(animation.AnimationTooLarge, match="shorter path"):
        animation.path_gif([model], np.zeros((animation.MAX_FRAMES + 1, 2)))
    big = Image.new("L", (animation.MAX_SIDE + 1, 10))
    with pytest.raises(animation.AnimationTooLarge, match=f"{animation.MAX_SIDE + 1}×10 px"):
        animation.gif_bytes([big])


def test_a_pad_path_gives_one_frame_per_z(model) -> None:  # type: ignore[no-untyped-def]
    path = np.stack([np.linspace(-2, 2, 9), np.linspace(1, -1, 9)], 1).astype(np.float32)
    frames, durations = frames_of(animation.path_gif([model], path, duration_ms=50))
    assert len(frames) == 9 and durations == [50] * 9
    want = decode_images(model, path)
    for k in (0, 4, 8):
        np.testing.assert_array_equal(as_grey(frames[k]), animation.upscale(want[k])[..., 0])


def test_the_pads_path_is_checked_and_thinned_to_the_bound() -> None:
    short = animation.read_path([[0, 1], [0.5, 1.5]], 2)
    assert short is not None and short.tolist() == [[0, 1], [0.5, 1.5]]
    long = [[float(i), 0.0] for i in range(500)]
    thinned = animation.read_path(long, 2)
    assert thinned is not None and len(thinned) == animation.MAX_FRAMES
    assert thinned[0, 0] == 0 and thinned[-1, 0] == 499 and (np.diff(thinned[:, 0]) > 0).all()
    for bad in (None, "x", [[0, 1]], [[0, 1], [0]], [[0, 1], ["a", 1]], [[0, 1], [float("nan"), 1]], [[0, 1], [True, None]]):
        assert animation.read_path(bad, 2) is None, bad


def test_replay_shows_every_epoch_up_to_the_bound_and_holds_the_trained_map() -> None:
    rng = np.random.default_rng(0)
    snaps = rng.normal(size=(6, 50, 2)).astype(np.float32)
    labels = np.arange(50) % 3
    gif = animation.replay_gif([snaps, 3 * snaps], [labels, labels], ["VAE", "AE"], ["a", "b", "c"], duration_ms=150)
    frames, durations = frames_of(gif)
    assert len(frames) == 6 and durations == [150] * 5 + [animation.HOLD_MS]
    assert frames[0].shape[1] == 2 * animation.MAP_PX + animation.GAP and frames[0].shape[0] > animation.MAP_PX
    # a dot of class 1 is drawn in the app's colour of class 1 (the palette of the map's dots)
    from PIL import ImageColor

    from vae.services.plots import class_color

    colours = {tuple(c) for c in frames[0].reshape(-1, 3).tolist()}
    assert ImageColor.getrgb(class_color(1)) in colours
    # with the reconstructions, each epoch's row sits under its map, crisp (a whole-factor upscale)
    decodes = rng.integers(0, 256, size=(6, 8, 1, 8, 8)).astype(np.uint8)
    with_rows, _ = frames_of(animation.replay_gif([snaps, 3 * snaps], [labels, labels], ["VAE", "AE"], decodes=[decodes, None]))
    assert with_rows[0].shape[1] == frames[0].shape[1] and with_rows[0].shape[0] > frames[0].shape[0]
    row = animation._decodes_panel(decodes[5])
    top = animation.MAP_PX + animation.TITLE_PX
    s = (animation.MAP_PX // animation.DECODE_COLS - 4) // 8
    x0 = (animation.MAP_PX // animation.DECODE_COLS - 8 * s) // 2
    shown = with_rows[5][top + 2 : top + 2 + 8 * s : s, x0 : x0 + 8 * s : s, 0].astype(int)
    assert np.abs(shown - decodes[5, 0, 0]).max() <= 4  # the fixed palette (250-odd greys), as Pillow quantizes to it
    assert row.shape[0] == 2 * (8 * s + 4)
    many, shown = animation.replay_frames([rng.normal(size=(301, 20, 2))], [np.zeros(20, np.int64)], ["VAE"])
    assert len(many) == animation.MAX_FRAMES and shown[0] == 0 and shown[-1] == 300


def test_the_animate_command_writes_a_pairs_replay_and_refuses_beyond_the_bound(default_pair_dir, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import DEFAULT_PAIR, DEFAULT_PAIR_EPOCHS
    from vae.__main__ import main

    pair = [str(default_pair_dir / f"{DEFAULT_PAIR}-{kind}.safetensors") for kind in ("vae", "ae")]
    out = tmp_path / "replay.gif"
    assert main(["animate", *pair, "--what", "replay", "--out", str(out)]) == 0
    frames, durations = frames_of(out.read_bytes())
    assert len(frames) == DEFAULT_PAIR_EPOCHS + 1 and durations[-1] == animation.HOLD_MS
    capsys.readouterr()
    assert main(["animate", pair[0], "--what", "traversal", "--steps", "62", "--out", str(tmp_path / "t.gif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a GIF of 122 frames") and err.count("\n") == 1 and not (tmp_path / "t.gif").exists()


def test_the_pad_records_no_more_z_than_a_gif_can_show() -> None:
    """pad.js keeps at most PATH_MAX z's of a drag (tests/js/path.test.js), plus the released one;
    read_path thins that one extra away: the release message stays as small as the GIF allows."""
    import re
    from pathlib import Path

    js = (Path(__file__).resolve().parents[1] / "pages" / "ui" / "latent_pad" / "pad.js").read_text(encoding="utf-8")
    found = re.search(r"^const PATH_MAX = (\d+);", js, re.M)
    assert found is not None and int(found.group(1)) == animation.MAX_FRAMES
