"""Animated GIFs for slides: the interpolation strip, one dimension's traversal, a path drawn on
the Live pad and the replay of the map forming, epoch by epoch. Pure functions: decoders,
latents or snapshots in, GIF bytes out (Pillow's GIF writer, which needs no codec: an MP4 would
need an ffmpeg binary, so there is none).

Every GIF is bounded: at most MAX_FRAMES frames of at most MAX_SIDE x MAX_SIDE pixels (LIMIT
says so in words, for the pages). A request beyond it raises AnimationTooLarge, whose message
says what to ask for instead; decoded images are upscaled by a whole factor (crisp pixels) to
about PANEL_PX, so a frame's size follows from the number of panels side by side.

Pillow merges identical consecutive frames into one (their durations add), so a path that
rests in one place gives fewer frames than z's; the animation looks the same.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from vae.analysis.images import decode_images
from vae.core.errors import ConfigError, LatentExplorerError
from vae.core.models import LatentModel
from vae.services.plots import axis_ranges, class_color

MAX_FRAMES = 120
MAX_SIDE = 512  # px, either side of a frame
LIMIT = f"up to {MAX_FRAMES} frames, each at most {MAX_SIDE}×{MAX_SIDE} px"
PANEL_PX = 224  # a decoded image is upscaled by a whole factor to at most this (28 px -> 224 px)
MAP_PX = 240  # one replay map's square plot
GAP = 8  # px between panels
TITLE_PX = 14  # the row of panel titles above the images (only with titles)
FRAME_MS = 100  # each frame's duration, unless said otherwise
HOLD_MS = 1000  # the replay's last frame (the trained map) stays this long before the loop restarts


class AnimationTooLarge(LatentExplorerError, ValueError):
    """A GIF over the bound (MAX_FRAMES frames of at most MAX_SIDE x MAX_SIDE px)."""


def check_size(n_frames: int, width: int, height: int, hint: str = "") -> None:
    """Refuse a GIF of n_frames frames of width x height px beyond the bound, with a message."""
    if n_frames > MAX_FRAMES or width > MAX_SIDE or height > MAX_SIDE:
        raise AnimationTooLarge(
            f"a GIF of {n_frames} frames of {width}×{height} px is over the limit ({LIMIT})" + (f"; {hint}" if hint else "")
        )
    if n_frames < 1:
        raise AnimationTooLarge("a GIF needs at least one frame")


def there_and_back(n: int) -> list[int]:
    """Indices 0 .. n-1 and back to 1: the loop plays forwards then backwards without a jump."""
    return list(range(n)) + list(range(n - 2, 0, -1))


def thin(n: int, max_n: int = MAX_FRAMES) -> np.ndarray:
    """At most max_n indices into range(n), evenly spread, the first and last always kept."""
    if n <= max_n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_n).round().astype(np.int64))


# --- frames -----------------------------------------------------------------------------------


def upscale(image: np.ndarray, px: int = PANEL_PX) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> (sH, sW, C) uint8, nearest-neighbour by the largest whole
    factor s with max(sH, sW) <= px (at least 1): every model pixel a crisp square."""
    arr = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    s = max(1, px // max(arr.shape[0], arr.shape[1]))
    return arr.repeat(s, 0).repeat(s, 1)


_FONT: ImageFont.ImageFont | ImageFont.FreeTypeFont | None = None


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default()
    return _FONT


def compose(panels: Sequence[np.ndarray], titles: Sequence[str] | None = None) -> Image.Image:
    """Panels (h, w, C) uint8, C = 1 or 3, side by side with GAP px of white between them and,
    with `titles`, a row of titles above: one frame, mode "L" when every panel is grey (so it
    survives the GIF's palette exactly), else "RGB"."""
    grey = all(p.shape[2] == 1 for p in panels)
    width = sum(p.shape[1] for p in panels) + GAP * (len(panels) - 1)
    top = TITLE_PX if titles else 0
    height = top + max(p.shape[0] for p in panels)
    frame = Image.new("L" if grey else "RGB", (width, height), 255 if grey else (255, 255, 255))
    draw = ImageDraw.Draw(frame)
    x = 0
    for k, p in enumerate(panels):
        arr = p[..., 0] if grey else (p.repeat(3, 2) if p.shape[2] == 1 else p)
        frame.paste(Image.fromarray(np.ascontiguousarray(arr)), (x, top))
        if titles:
            draw.text((x + 2, 1), titles[k], fill=0 if grey else (0, 0, 0), font=_font())
        x += p.shape[1] + GAP
    return frame


def decoded_frames(models: Sequence[LatentModel], zs: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   px: int = PANEL_PX) -> list[Image.Image]:
    """Frame t shows decode(zs[k][t]) of every model k side by side. zs[k]: (T, D_k), the same T for all."""
    decoded = [decode_images(m, z) for m, z in zip(models, zs, strict=True)]
    return [compose([upscale(d[t], px) for d in decoded], titles) for t in range(decoded[0].shape[0])]


def frame_size(n_panels: int, image_hw: tuple[int, int], titles: bool, px: int = PANEL_PX) -> tuple[int, int]:
    """(width, height) of a frame of n_panels decoded images of (H, W) px, as `compose` makes it."""
    s = max(1, px // max(image_hw))
    return n_panels * image_hw[1] * s + GAP * (n_panels - 1), image_hw[0] * s + (TITLE_PX if titles else 0)


def check_decoded(models: Sequence[LatentModel], n_frames: int, titles: bool, hint: str = "") -> None:
    """check_size for a GIF of decoded images of these models side by side."""
    shape = models[0].config.image_shape
    check_size(n_frames, *frame_size(len(models), (shape[1], shape[2]), titles), hint=hint)


MAX_STEPS = (MAX_FRAMES + 2) // 2  # an interpolation or a traversal plays there and back: 2 * steps - 2 frames


def _check_steps(models: Sequence[LatentModel], steps: int, titles: bool) -> None:
    if steps < 2:
        raise AnimationTooLarge(f"an animation needs at least 2 steps, got {steps}")
    check_decoded(models, len(there_and_back(steps)), titles, hint=f"choose at most {MAX_STEPS} steps")


def steps_refusal(models: Sequence[LatentModel], steps: int, titles: bool = False) -> str | None:
    """Why an interpolation or traversal GIF of `steps` steps would be refused (the page shows it
    instead of the button), or None when it is within the bound."""
    try:
        _check_steps(models, steps, titles)
    except AnimationTooLarge as exc:
        return str(exc)
    return None


def path_refusal(models: Sequence[LatentModel], path: np.ndarray, titles: bool = False) -> str | None:
    """Why path_gif would refuse this path (T, D), or None."""
    try:
        check_decoded(models, len(path), titles, hint="draw a shorter path")
    except AnimationTooLarge as exc:
        return str(exc)
    return None


# --- GIF --------------------------------------------------------------------------------------


def gif_bytes(frames: Sequence[Image.Image], duration_ms: int | Sequence[int] = FRAME_MS) -> bytes:
    """Frames (PIL images of one size) -> an endlessly looping GIF; `duration_ms` per frame, or one
    per frame. Refuses more than MAX_FRAMES frames or frames larger than MAX_SIDE px."""
    check_size(len(frames), frames[0].width if frames else 0, frames[0].height if frames else 0)
    durations = [int(duration_ms)] * len(frames) if isinstance(duration_ms, int) else [int(d) for d in duration_ms]
    if len(durations) != len(frames):
        raise ValueError(f"{len(frames)} frames need {len(frames)} durations, got {len(durations)}")
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=list(frames[1:]), duration=durations, loop=0)
    return buf.getvalue()


# --- the four animations --------------------------------------------------------------------


def interpolation_gif(models: Sequence[LatentModel], starts: Sequence[np.ndarray], ends: Sequence[np.ndarray],
                      steps: int = 20, titles: Sequence[str] | None = None, duration_ms: int = FRAME_MS) -> bytes:
    """The straight line from starts[k] to ends[k], decoded by models[k] (all side by side), in
    `steps` steps, played there and back (2 * steps - 2 frames)."""
    _check_steps(models, steps, bool(titles))
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    lines = [(1 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32) for a, b in zip(starts, ends, strict=True)]
    frames = decoded_frames(models, lines, titles)
    return gif_bytes([frames[i] for i in there_and_back(steps)], duration_ms)


def traversal_gif(model: LatentModel, base: np.ndarray, dim: int, steps: int = 31, span: float = 3.0,
                  duration_ms: int = FRAME_MS) -> bytes:
    """Latent dimension `dim` swept over [-span, span] in `steps` steps, the others held at
    `base`, played there and back (2 * steps - 2 frames)."""
    _check_steps([model], steps, False)
    if not 0 <= dim < model.latent_dim:
        raise ConfigError(f"dim: z{dim + 1} does not exist; this latent has {model.latent_dim} dimensions")
    z = np.tile(np.asarray(base, np.float32), (steps, 1))
    z[:, dim] = np.linspace(-span, span, steps, dtype=np.float32)
    frames = decoded_frames([model], [z])
    return gif_bytes([frames[i] for i in there_and_back(steps)], duration_ms)


def path_gif(models: Sequence[LatentModel], path: np.ndarray, titles: Sequence[str] | None = None,
             duration_ms: int = 60) -> bytes:
    """The z's of a path (T, D) in order, each decoded by every model side by side: T frames."""
    path = np.asarray(path, np.float32)
    check_decoded(models, path.shape[0], bool(titles), hint="draw a shorter path")
    return gif_bytes(decoded_frames(models, [path] * len(models), titles), duration_ms)


def read_path(raw: object, latent_dim: int) -> np.ndarray | None:
    """The path the pad reports (a list of z's, untrusted) -> (T, D) float32 with T in [2, MAX_FRAMES]
    (a longer path thinned evenly, its ends kept), or None when it is not a list of D finite numbers each."""
    if not isinstance(raw, list) or len(raw) < 2 or len(raw) > 100 * MAX_FRAMES:
        return None
    if not all(isinstance(z, list) and len(z) == latent_dim and all(isinstance(v, int | float) for v in z) for z in raw):
        return None
    path = np.array(raw, np.float64)
    if not np.isfinite(path).all():
        return None
    return path[thin(len(path))].astype(np.float32)


def _map_panel(points: np.ndarray, labels: np.ndarray, ranges: tuple[tuple[float, float], tuple[float, float]],
               title: str, px: int = MAP_PX) -> np.ndarray:
    """One replay map drawn with Pillow: the points (P, 2) as dots in their class's colour (the
    app's palette) in a px x px box over `ranges`, the title above. (px + TITLE_PX, px, 3) uint8."""
    img = Image.new("RGB", (px, px + TITLE_PX), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, TITLE_PX, px - 1, TITLE_PX + px - 1), outline=(200, 200, 200))
    draw.text((2, 1), title, fill=(0, 0, 0), font=_font())
    (x0, x1), (y0, y1) = ranges
    xs = (points[:, 0] - x0) / max(x1 - x0, 1e-12) * (px - 7) + 3
    ys = TITLE_PX + (1 - (points[:, 1] - y0) / max(y1 - y0, 1e-12)) * (px - 7) + 3  # up is up
    colors = [ImageColor.getrgb(class_color(int(c))) for c in labels]
    for x, y, c in zip(xs.tolist(), ys.tolist(), colors, strict=True):
        draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=c)
    # the scale, which follows the points from epoch to epoch (there are no tick marks)
    draw.text((3, TITLE_PX + px - 13), f"x {x0:.3g} to {x1:.3g}, y {y0:.3g} to {y1:.3g}", fill=(110, 110, 110), font=_font())
    return np.asarray(img)


def _legend(class_names: Sequence[str], width: int) -> Image.Image:
    """The classes' colours (as on the map) with their names, in rows that fit `width` px."""
    font = _font()
    items, row, x = [], 0, 2
    for k, name in enumerate(class_names):
        w = 12 + int(font.getlength(str(name))) + 10
        if x + w > width and x > 2:
            row, x = row + 1, 2
        items.append((x, row, k, str(name)))
        x += w
    img = Image.new("RGB", (width, (row + 1) * TITLE_PX + 2), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for x, r, k, name in items:
        y = 2 + r * TITLE_PX
        draw.rectangle((x, y + 2, x + 7, y + 9), fill=ImageColor.getrgb(class_color(k)))
        draw.text((x + 11, y), name, fill=(0, 0, 0), font=font)
    return img


def _map_palette(n_classes: int) -> Image.Image:
    """A fixed palette for the replay's frames: the classes' colours and greys. Quantizing to it
    is exact for the dots and fast; an adaptive palette per frame took most of the encoding time
    (5.7 of 7.3 s for 120 frames on the busy 2-core machine)."""
    colours = [ImageColor.getrgb(class_color(k)) for k in range(max(n_classes, 1))][:256 - 64]
    greys = [(v, v, v) for v in np.linspace(0, 255, 256 - len(colours)).round().astype(int).tolist()]
    flat = [c for rgb in colours + greys for c in rgb]
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat)
    return pal


DECODE_COLS = 4  # the replay's reconstructions under each map, in rows of this many


def _decodes_panel(decodes: np.ndarray, px: int = MAP_PX) -> np.ndarray:
    """(K, C, H, W) uint8 reconstructions in rows of DECODE_COLS under a map px wide, each upscaled
    by a whole factor (crisp pixels). (rows * cell, px, 3) uint8 on white."""
    k, c, h, w = decodes.shape
    cell = px // DECODE_COLS
    s = max(1, (cell - 4) // max(h, w))
    rows = -(-k // DECODE_COLS)
    out = np.full((rows * (h * s + 4), px, 3), 255, np.uint8)
    for i in range(k):
        img = decodes[i].transpose(1, 2, 0).repeat(s, 0).repeat(s, 1)
        img = img.repeat(3, 2) if c == 1 else img
        r, col = divmod(i, DECODE_COLS)
        y, x = r * (h * s + 4) + 2, col * cell + (cell - w * s) // 2
        out[y : y + h * s, x : x + w * s] = img
    return out


def replay_frames(snapshots: Sequence[np.ndarray], labels: Sequence[np.ndarray], titles: Sequence[str],
                  class_names: Sequence[str] = (), decodes: Sequence[np.ndarray | None] | None = None,
                  ) -> tuple[list[Image.Image], np.ndarray]:
    """The map of each model (snapshots[k]: (E + 1, P, 2), snapshot e after epoch e, 0 before
    training; labels[k]: (P,)) side by side, one frame per epoch, at most MAX_FRAMES epochs
    (thinned evenly, the first and last kept), with the classes' colours under them. Each frame's
    axes span that epoch's points of all maps, as on the Train page. With `decodes[k]`
    ((E + 1, K, C, H, W) uint8: the checkpoint's reconstructions of the first K snapshot images
    at each snapshot), that epoch's reconstructions are drawn under model k's map, so the map
    and what the decoder makes of it change together. Returns the frames and the epochs they show."""
    epochs = thin(min(s.shape[0] for s in snapshots))
    palette = _map_palette(int(max(int(np.max(lab, initial=0)) for lab in labels)) + 1)
    rows = list(decodes) if decodes is not None else [None] * len(snapshots)
    frames = []
    for e in epochs.tolist():
        points = [np.asarray(s[e], np.float32) for s in snapshots]
        ranges = axis_ranges(*points)
        panels = [_map_panel(p, lab, ranges, f"{t}, epoch {e}") for p, lab, t in zip(points, labels, titles, strict=True)]
        if any(d is not None for d in rows):
            under = [_decodes_panel(d[e]) if d is not None else None for d in rows]
            tall = max(u.shape[0] for u in under if u is not None)
            blank = np.full((tall, MAP_PX, 3), 255, np.uint8)
            panels = [np.concatenate([p, blank if u is None else np.concatenate([u, blank[: tall - u.shape[0]]])])
                      for p, u in zip(panels, under, strict=True)]
        maps = compose(panels)
        if class_names:
            legend = _legend(class_names, maps.width)
            frame = Image.new("RGB", (maps.width, maps.height + legend.height), (255, 255, 255))
            frame.paste(maps, (0, 0))
            frame.paste(legend, (0, maps.height))
            maps = frame
        frames.append(maps.quantize(palette=palette, dither=Image.Dither.NONE))
    return frames, epochs


def replay_gif(snapshots: Sequence[np.ndarray], labels: Sequence[np.ndarray], titles: Sequence[str],
               class_names: Sequence[str] = (), duration_ms: int = 200, decodes: Sequence[np.ndarray | None] | None = None) -> bytes:
    """replay_frames as a GIF; the last frame (the trained map) holds for HOLD_MS."""
    check_size(1, len(snapshots) * MAP_PX + GAP * (len(snapshots) - 1), MAP_PX + TITLE_PX, hint="fewer maps side by side")
    frames, _ = replay_frames(snapshots, labels, titles, class_names, decodes)
    check_size(len(frames), frames[0].width, frames[0].height, hint="fewer maps side by side")
    return gif_bytes(frames, [duration_ms] * (len(frames) - 1) + [HOLD_MS])
