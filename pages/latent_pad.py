"""The Live latent pad: a custom component (st.components.v2, inline HTML/CSS/JS, no build
step) that decodes in the browser while you drag. Not a page: live.py imports it.

Data flow. Python sends each decoder's weights and the map's points once per browser
session (`vae.webexport` dicts, cached per checkpoint sha256 with st.cache_data); later
reruns send only their ids and the browser keeps the decoded arrays. Should the browser
lack one (a reload, a lost message), it fires the `missing` trigger and the next run
sends it again. Every pointer move, arrow key or slider step updates z in JavaScript and
one requestAnimationFrame evaluates the decoder(s) and paints the image at native size
(CSS scales it with pixelated rendering). On release the component sets its `release`
state: {z, p, seq, pixels} and Python's `on_release(z, pixels)` runs. Python moves the
crosshair by sending `z_in` with a new nonce.

The crosshair is always on the map: the map's range covers the test codes, the prior's mean
z = 0 and the z Python sends (`map_ranges`), and it is recomputed only when Python moves z (a
new nonce) or the map changes, never while z moves in the browser. Where the map places z
outside that range all the same (a slider above 2-D), the crosshair is pinned inside the plot's
edge with an arrow pointing towards z.

For tests and the benchmark the page exposes, in the app's own document (v2 components
render in a shadow root, not an iframe): window.__latentPadDecode(z, which),
window.__latentPadState(), window.__latentPadStats and window.__latentPadTest
(decode, lift and locate from any export dict).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

from vae import plots, webexport
from vae.checkpoint import Checkpoint
from vae.embed import LatentMap

SENT_KEY = "_latent_pad_sent"  # payload ids this session has already sent to the browser
MAX_REPORTED_PIXELS = 4096  # the release report carries the browser's pixels up to this size
RANGES_KEY = "_latent_pad_ranges_{}"  # per pad: ((map id, z nonce), the map's ranges) it was drawn with

HTML = """
<div class="lp-root">
  <div class="lp-map-col">
    <canvas class="lp-map" tabindex="0" role="application"
            aria-label="Latent map: drag the crosshair, or focus and use the arrow keys (Shift for big steps)"></canvas>
    <div class="lp-legend"></div>
  </div>
  <div class="lp-side">
    <div class="lp-images"></div>
    <div class="lp-z" aria-live="polite"></div>
    <div class="lp-sliders"></div>
    <div class="lp-note"></div>
  </div>
</div>
"""

CSS = """
.lp-root { display: flex; gap: 24px; align-items: flex-start;
  font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); font-size: 18px; }
.lp-map-col { flex: 0 0 auto; width: min(var(--lp-map-share, 58%), 620px, calc(100vh - 120px)); min-width: 240px; }
.lp-narrow { flex-direction: column; }
.lp-narrow .lp-map-col { width: 100%; }
.lp-map { display: block; width: 100%; aspect-ratio: 1 / 1; touch-action: none; cursor: crosshair;
  border: 1px solid var(--st-border-color, #ccc); border-radius: 10px; outline: none; user-select: none; }
.lp-map:focus-visible { box-shadow: 0 0 0 4px var(--st-primary-color, #ff4b4b); }
.lp-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin-top: 10px; font-size: 17px; }
.lp-legend span { display: inline-flex; align-items: center; gap: 6px; }
.lp-legend i { display: inline-block; width: 14px; height: 14px; border-radius: 50%; }
.lp-side { flex: 1 1 0; min-width: 160px; display: flex; flex-direction: column; gap: 18px; }
.lp-images { display: flex; gap: 24px; }
.lp-fig { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 8px; }
.lp-fig canvas { image-rendering: pixelated; image-rendering: crisp-edges; border-radius: 8px;
  background: #000; box-shadow: 0 1px 6px rgba(0, 0, 0, 0.25); }
.lp-fig figcaption { font-size: 22px; font-weight: 700; }
.lp-z { contain: content; min-height: 1.4em; font-family: var(--st-code-font, monospace); font-size: 22px; line-height: 1.35; word-break: break-word; }
.lp-sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 4px 18px;
  align-content: start; max-height: 380px; overflow-y: auto; padding-right: 4px; }
/* With sliders (above 2-D) the side panel is exactly as tall as the map column: images and z
   stay beside the pad and the sliders scroll in what is left, however many dimensions. */
.lp-has-sliders:not(.lp-narrow) .lp-side { align-self: stretch; contain: size; }
.lp-has-sliders:not(.lp-narrow) .lp-sliders { flex: 1 1 0; min-height: 0; max-height: none; }
.lp-has-sliders .lp-z { font-size: 17px; }  /* the sliders show every value; the readout only starts z */
/* A 1-D latent: the map is a strip along z1 */
.lp-1d .lp-map { aspect-ratio: 5 / 2; }
.lp-slider label { display: flex; justify-content: space-between; font-family: var(--st-code-font, monospace); font-size: 16px; }
.lp-slider input { width: 100%; margin: 2px 0 6px; accent-color: var(--st-primary-color, #ff4b4b); }
.lp-note { contain: content; min-height: 2.6em; font-size: 15px; opacity: 0.8; }
.lp-error { color: var(--st-red-color, #c00); font-weight: 600; }
"""

JS = r"""
const FORMAT = 'latent-explorer-web';
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const CACHE = (window.__latentPadCache ||= new Map());   // payload id -> built decoder / map
const PADS = (window.__latentPadPads ||= new Map());     // pad id -> Pad
const MAX_SAMPLES = 20000;
const stats = (window.__latentPadStats ||= {});
function resetStats() {
  Object.assign(stats, { frames: 0, decodes: 0, firstFrame: 0, lastFrame: 0,
                         latency: [], handlerToPaint: [], decodeMs: [] });
}
if (stats.latency === undefined) resetStats();
stats.reset = resetStats;
function push(list, v) { if (list.length < MAX_SAMPLES) list.push(v); }

// ---- weights ------------------------------------------------------------------------------
function f32(b64) {
  const bin = atob(b64), n = bin.length, bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
  if (LITTLE_ENDIAN) return new Float32Array(bytes.buffer);
  const view = new DataView(bytes.buffer), out = new Float32Array(n / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// ---- the decoder: the same layers as vae/webexport.py's decode_from_export ---------------
function buildDecoder(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer decoder export');
  const steps = [];
  let size = exp.latent_dim, shape = null;
  for (const l of exp.layers) {
    if (l.type === 'linear') {
      const [out, inp] = l.shape;
      if (inp !== size) throw new Error(`linear layer expects ${inp} inputs, gets ${size}`);
      steps.push({ type: 'linear', W: f32(l.weight), b: f32(l.bias), inp, out, y: new Float64Array(out) });
      size = out; shape = null;
    } else if (l.type === 'relu' || l.type === 'sigmoid') {
      steps.push({ type: l.type });
    } else if (l.type === 'unflatten') {
      shape = l.shape.slice();
    } else if (l.type === 'convT') {
      if (!shape) throw new Error('convT needs a C x H x W input (unflatten first)');
      const [ci, co, kh, kw] = l.shape, [, H, W] = shape;
      const [sh, sw] = l.stride, [ph, pw] = l.padding, [oh, ow] = l.output_padding;
      const Ho = (H - 1) * sh - 2 * ph + kh + oh, Wo = (W - 1) * sw - 2 * pw + kw + ow;
      const w = f32(l.weight), wt = new Float32Array(w.length);
      // PyTorch stores (in, out, kH, kW); reorder to (in, kH, kW, out) so the inner loop is contiguous.
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) wt[((i * kh + ky) * kw + kx) * co + o] = w[((i * co + o) * kh + ky) * kw + kx];
      steps.push({ type: 'convT', ci, co, kh, kw, H, W, Ho, Wo, sh, sw, ph, pw, wt, b: f32(l.bias),
                   y: new Float64Array(co * Ho * Wo) });
      shape = [co, Ho, Wo]; size = co * Ho * Wo;
    } else {
      throw new Error(`unknown layer type ${l.type}`);
    }
  }
  const [C, H, W] = exp.image_shape;
  if (size !== C * H * W) throw new Error(`decoder gives ${size} values for a ${C}x${H}x${W} image`);
  return { latentDim: exp.latent_dim, imageShape: exp.image_shape, nParams: exp.n_params, arch: exp.arch,
           steps, z: new Float64Array(exp.latent_dim) };
}

// z (D numbers) -> pixel probabilities, C x H x W (a buffer owned by the decoder: copy to keep).
function runDecoder(dec, z) {
  let x = dec.z;
  for (let i = 0; i < x.length; i++) x[i] = +z[i];
  for (const s of dec.steps) {
    if (s.type === 'linear') {
      const { W, b, inp, out, y } = s;
      for (let j = 0; j < out; j++) {
        let acc = b[j];
        const row = j * inp;
        for (let i = 0; i < inp; i++) acc += W[row + i] * x[i];
        y[j] = acc;
      }
      x = y;
    } else if (s.type === 'relu') {
      for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
    } else if (s.type === 'sigmoid') {
      for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
    } else {  // convT: each input pixel scatters its kernel into the output, stride apart
      const { ci, co, kh, kw, H, W, Ho, Wo, sh, sw, ph, pw, wt, b, y } = s;
      const plane = Ho * Wo;
      for (let o = 0; o < co; o++) y.fill(b[o], o * plane, (o + 1) * plane);
      for (let i = 0; i < ci; i++) for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) {
        const v = x[(i * H + iy) * W + ix];
        if (v === 0) continue;  // after a ReLU most inputs are 0: skipping them changes no sum
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * sh - ph + ky;
          if (oy < 0 || oy >= Ho) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * sw - pw + kx;
            if (ox < 0 || ox >= Wo) continue;
            const wb = ((i * kh + ky) * kw + kx) * co;
            for (let o = 0, at = oy * Wo + ox; o < co; o++, at += plane) y[at] += v * wt[wb + o];
          }
        }
      }
      x = y;
    }
  }
  return x;
}

// ---- the map: lift (position -> z) and locate (z -> position), as vae/embed.py ----------
function buildMap(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer map export');
  const m = { D: exp.latent_dim, n: exp.n, lift: exp.lift, k: exp.k || 8, points: f32(exp.points),
              labels: exp.labels || null };
  if (exp.lift === 'linear') { m.mean = f32(exp.mean); m.comp = f32(exp.components); }
  if (exp.lift === 'idw') m.mu = f32(exp.mu);
  return m;
}

// Inverse-distance-weighted mean of `values` (vd per row) at the k nearest rows of `ref` (rd per row).
function idw(ref, rd, values, vd, q, k) {
  const n = ref.length / rd;
  k = Math.min(k, n);
  const bestD = new Float64Array(k).fill(Infinity), bestI = new Int32Array(k).fill(-1);
  for (let r = 0; r < n; r++) {
    let d2 = 0;
    for (let j = 0; j < rd; j++) { const t = ref[r * rd + j] - q[j]; d2 += t * t; }
    if (d2 >= bestD[k - 1]) continue;
    let at = k - 1;
    while (at > 0 && bestD[at - 1] > d2) { bestD[at] = bestD[at - 1]; bestI[at] = bestI[at - 1]; at--; }
    bestD[at] = d2; bestI[at] = r;
  }
  const w = new Float64Array(k);
  const exact = Math.sqrt(bestD[0]) < 1e-9;
  let total = 0;
  for (let j = 0; j < k; j++) {
    const d = Math.sqrt(bestD[j]);
    w[j] = exact ? (d < 1e-9 ? 1 : 0) : 1 / Math.max(d, 1e-12) ** 2;
    total += w[j];
  }
  const out = new Float64Array(vd);
  for (let j = 0; j < k; j++) for (let c = 0; c < vd; c++) out[c] += (w[j] / total) * values[bestI[j] * vd + c];
  return out;
}

function lift(m, p) {
  const z = new Float64Array(m.D);
  if (m.lift === 'linear') {
    for (let d = 0; d < m.D; d++) z[d] = p[0] * m.comp[d] + p[1] * m.comp[m.D + d] + m.mean[d];
  } else if (m.lift === 'idw') {
    return idw(m.points, 2, m.mu, m.D, p, m.k);
  } else {
    for (let d = 0; d < m.D; d++) z[d] = p[d];
  }
  return z;
}

function locate(m, z) {
  if (m.lift === 'linear') {
    const p = [0, 0];
    for (let d = 0; d < m.D; d++) { const c = z[d] - m.mean[d]; p[0] += c * m.comp[d]; p[1] += c * m.comp[m.D + d]; }
    return p;
  }
  if (m.lift === 'idw') return Array.from(idw(m.mu, m.D, m.points, 2, z, m.k));
  return [z[0], m.D > 1 ? z[1] : 0];
}

// Slider attributes whose step grid holds 0 exactly (z starts at 0): a round step near
// (hi - lo) / 400, and min / max on multiples of it, widened to include 0 where needed.
function sliderGrid(lo, hi) {
  const raw = Math.max(hi - lo, 1e-6) / 400, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const min = Math.min(0, Math.floor(lo / step)) * step, max = Math.max(0, Math.ceil(hi / step)) * step;
  return { min: min.toFixed(digits), max: max.toFixed(digits), step: step.toFixed(digits) };
}

// ---- drawing helpers ------------------------------------------------------------------------
function niceTicks(lo, hi, count) {
  const span = hi - lo, raw = span / Math.max(count, 1), mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.abs(t) < 1e-12 ? 0 : t);
  return { ticks, step };
}
function fmt(v, digits = 2) { return (v >= 0 ? '+' : '\u2212') + Math.abs(v).toFixed(digits); }
function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }

// ---- one pad --------------------------------------------------------------------------------
class Pad {
  constructor(root) {
    this.root = root;
    this.mapCanvas = root.querySelector('.lp-map');
    this.legend = root.querySelector('.lp-legend');
    this.images = root.querySelector('.lp-images');
    this.zText = root.querySelector('.lp-z');
    this.sliderBox = root.querySelector('.lp-sliders');
    this.side = root.querySelector('.lp-side');
    this.note = root.querySelector('.lp-note');
    this.layer = document.createElement('canvas');   // axes + points, redrawn only on resize
    this.sig = '';
    this.decoders = [];
    this.map = null;
    this.z = null; this.p = [0, 0];
    this.nonce = null;
    this.seq = 0;
    this.raf = 0;
    this.pendingEvents = [];
    this.pendingHandler = [];
    this.dragging = false;
    this.lastDecodeMs = 0;
    this.askedAt = -1e9;
    this.bindEvents();
    this.resizer = new ResizeObserver(() => { this.layoutMap(); this.schedule(); });
    this.resizer.observe(this.mapCanvas);
    this.sideResizer = new ResizeObserver(() => {
      root.classList.toggle('lp-narrow', root.clientWidth < 560);  // a phone: map above the images
      this.sizeFigs();
    });
    this.sideResizer.observe(this.side);
    this.sideResizer.observe(root);
  }

  update(args) {
    const { data, setStateValue, setTriggerValue } = args;
    this.setStateValue = setStateValue; this.setTriggerValue = setTriggerValue;
    this.data = data;
    this.id = data.pad_id;
    PADS.set(this.id, this); window.__latentPadLast = this;
    const missing = [];
    const built = (id, exp, build) => {
      if (!CACHE.has(id) && exp) CACHE.set(id, build(exp));
      if (!CACHE.has(id)) missing.push(id);
      return CACHE.get(id);
    };
    let decoders, map;
    try {
      decoders = data.decoders.map((d) => ({ label: d.label, id: d.id, dec: built(d.id, d.export, buildDecoder) }));
      map = built(data.map.id, data.map.export, buildMap);
    } catch (err) {
      this.showError(`The browser decoder could not be built: ${err.message}`);
      return;
    }
    if (missing.length) {
      this.note.textContent = 'Loading the decoder weights into the browser\u2026';
      const now = performance.now();
      if (now - this.askedAt > 2000) { this.askedAt = now; setTriggerValue('missing', missing); }
      return;
    }
    const bad = decoders.find((d) => d.dec.latentDim !== map.D);
    if (bad) {
      this.showError(`${bad.label} has a ${bad.dec.latentDim}-D latent, the map ${map.D}-D.`);
      return;
    }
    this.decoders = decoders; this.map = map;
    this.oneD = map.D === 1;  // a 1-D latent: a strip along z1, nothing drawn or moved along a second axis
    const sig = JSON.stringify([data.decoders.map((d) => [d.id, d.label]), data.map.id, data.map.ranges,
                                data.sliders, data.image_px, data.map.colors]);
    if (sig !== this.sig) { this.sig = sig; this.build(); }
    const zin = data.z_in;
    if (this.z === null || (zin && zin.nonce !== this.nonce)) {
      const z = zin && zin.z && zin.z.length === map.D ? zin.z : new Array(map.D).fill(0);
      this.nonce = zin ? zin.nonce : null;
      this.setZ(Float64Array.from(z));
    } else if (data.map.id !== this.mapId && this.z.length === map.D) {
      this.setZ(this.z);  // another map of the same z (e.g. the pair's other model): place the crosshair on it
    }
    this.mapId = data.map.id;
    this.schedule();
  }

  // Plain text in the note (never innerHTML: a message may carry a label or an error text).
  showError(message) {
    const span = document.createElement('span');
    span.className = 'lp-error'; span.textContent = message;
    this.note.replaceChildren(span);
  }

  build() {
    const { data, map } = this;
    const [C, H, W] = this.decoders[0].dec.imageShape;
    this.images.replaceChildren();
    this.figs = this.decoders.map((d) => {
      const fig = document.createElement('figure'); fig.className = 'lp-fig';
      const c = document.createElement('canvas'); c.width = W; c.height = H; c.className = 'lp-decoded';
      c.dataset.label = d.label;
      const cap = document.createElement('figcaption'); cap.textContent = d.label;
      fig.append(c, cap); this.images.append(fig);
      const ctx = c.getContext('2d');
      return { canvas: c, ctx, img: ctx.createImageData(W, H), C, H, W };
    });
    this.legend.replaceChildren(...(data.map.class_names || []).map((name, i) => {
      const s = document.createElement('span'), dot = document.createElement('i');
      dot.style.background = data.map.colors[i % data.map.colors.length];
      s.append(dot, document.createTextNode(name)); return s;
    }));
    this.sliderBox.replaceChildren();
    this.sliders = (data.sliders || []).map(([lo, hi], d) => {
      const wrap = document.createElement('div'); wrap.className = 'lp-slider';
      const label = document.createElement('label'), name = document.createElement('span'), val = document.createElement('span');
      name.textContent = `z${d + 1}`; label.append(name, val);
      const input = document.createElement('input');
      Object.assign(input, { type: 'range', ...sliderGrid(lo, hi) });
      input.setAttribute('aria-label', `latent dimension ${d + 1}`);
      input.addEventListener('input', (ev) => {
        const z = Float64Array.from(this.z); z[d] = +input.value;
        this.setZ(z, ev.timeStamp);
      });
      input.addEventListener('change', () => this.report());
      wrap.append(label, input); this.sliderBox.append(wrap);
      return { input, val, lo, hi };
    });
    this.sliderBox.style.display = this.sliders.length ? '' : 'none';
    this.root.classList.toggle('lp-has-sliders', this.sliders.length > 0);
    this.root.classList.toggle('lp-1d', this.oneD);
    this.mapCanvas.setAttribute('aria-label', this.oneD
      ? 'Latent strip (1-D latent): drag along z1, or focus and use the left and right arrow keys (Shift for big steps)'
      : 'Latent map: drag the crosshair, or focus and use the arrow keys (Shift for big steps)');
    // room for two images, or for one image above the sliders
    this.root.style.setProperty('--lp-map-share', this.figs.length > 1 || this.sliders.length ? '50%' : '58%');
    this.sizeFigs();
    this.layoutMap();
  }

  // Decoded images: as large as image_px, side by side in the side panel's width.
  sizeFigs() {
    if (!this.figs || !this.figs.length) return;
    const n = this.figs.length, room = (this.side.clientWidth - (n - 1) * 24) / n;
    let px = Math.min(this.data.image_px || 280, room || 280);
    if (this.sliders && this.sliders.length && !this.root.classList.contains('lp-narrow')) {
      // the side panel is as tall as the map: leave the z readout, the note and a few slider rows their room
      const rest = this.zText.offsetHeight + this.note.offsetHeight + 40 + 3 * 18 + 120;
      px = Math.min(px, this.side.clientHeight - rest);
    }
    px = Math.max(96, Math.floor(px));
    for (const f of this.figs) { f.canvas.style.width = `${px}px`; f.canvas.style.height = `${Math.round(px * f.H / f.W)}px`; }
  }

  // ---- geometry: CSS pixels of the map canvas <-> map coordinates
  plot() {
    const w = this.mapCanvas.clientWidth, h = this.mapCanvas.clientHeight;
    const m = { left: this.oneD ? 24 : 64, right: 16, top: 16, bottom: 56 };
    return { left: m.left, top: m.top, width: Math.max(w - m.left - m.right, 10), height: Math.max(h - m.top - m.bottom, 10) };
  }
  toMap(cx, cy) {
    const r = this.mapCanvas.getBoundingClientRect(), pl = this.plot(), [[x0, x1], [y0, y1]] = this.data.map.ranges;
    const fx = (cx - r.left - pl.left) / pl.width, fy = (cy - r.top - pl.top) / pl.height;
    return [clamp(x0 + fx * (x1 - x0), x0, x1), this.oneD ? 0 : clamp(y1 - fy * (y1 - y0), y0, y1)];
  }
  toPx(p) {
    const pl = this.plot(), [[x0, x1], [y0, y1]] = this.data.map.ranges;
    const py = this.oneD ? pl.top + pl.height / 2 : pl.top + (y1 - p[1]) / (y1 - y0) * pl.height;
    return [pl.left + (p[0] - x0) / (x1 - x0) * pl.width, py];
  }

  layoutMap() {
    if (!this.map) return;
    const c = this.mapCanvas, dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr)), h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    this.layer.width = w; this.layer.height = h;
    const ctx = this.layer.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(this.root);
    const fg = style.color, bg = style.getPropertyValue('--st-background-color').trim() || '#fff';
    this.fg = fg;
    const pl = this.plot(), [[x0, x1], [y0, y1]] = this.data.map.ranges, W = c.clientWidth, H = c.clientHeight;
    ctx.fillStyle = bg; ctx.fillRect(0, 0, W, H);
    ctx.font = `16px ${style.fontFamily}`; ctx.fillStyle = fg; ctx.strokeStyle = fg;
    ctx.globalAlpha = 0.12; ctx.lineWidth = 1;
    const tx = niceTicks(x0, x1, Math.max(3, Math.floor(pl.width / 90)));
    const ty = this.oneD ? { ticks: [], step: 1 } : niceTicks(y0, y1, Math.max(3, Math.floor(pl.height / 70)));
    const label = (t, step) => (Math.abs(step) >= 1 ? t.toFixed(0) : t.toFixed(Math.min(3, Math.ceil(-Math.log10(step))))).replace('-', '\u2212');
    for (const t of tx.ticks) { const [px] = this.toPx([t, y0]); ctx.beginPath(); ctx.moveTo(px, pl.top); ctx.lineTo(px, pl.top + pl.height); ctx.stroke(); }
    for (const t of ty.ticks) { const [, py] = this.toPx([x0, t]); ctx.beginPath(); ctx.moveTo(pl.left, py); ctx.lineTo(pl.left + pl.width, py); ctx.stroke(); }
    ctx.globalAlpha = 0.85;
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of tx.ticks) { const [px] = this.toPx([t, y0]); ctx.fillText(label(t, tx.step), px, pl.top + pl.height + 6); }
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (const t of ty.ticks) { const [, py] = this.toPx([x0, t]); ctx.fillText(label(t, ty.step), pl.left - 8, py); }
    ctx.globalAlpha = 1; ctx.font = `bold 18px ${style.fontFamily}`;
    const [ax, ay] = this.data.map.axis_titles || ['z1', 'z2'];
    ctx.textAlign = 'center'; ctx.textBaseline = 'bottom'; ctx.fillText(ax, pl.left + pl.width / 2, H - 4);
    if (!this.oneD && ay) {
      ctx.save(); ctx.translate(16, pl.top + pl.height / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = 'middle';
      ctx.fillText(ay, 0, 0); ctx.restore();
    }
    this.axes = { x: tx.ticks.map((t) => label(t, tx.step)), y: ty.ticks.map((t) => label(t, ty.step)),
                  titles: this.oneD || !ay ? [ax] : [ax, ay] };  // what is written on the axes, for tests
    ctx.globalAlpha = 0.3; ctx.lineWidth = 1.5; ctx.strokeRect(pl.left, pl.top, pl.width, pl.height);
    // the test set's means, coloured by class
    const { points, labels, n } = this.map, colors = this.data.map.colors;
    const r = Math.max(2.2, Math.min(4, pl.width / 150));
    ctx.globalAlpha = 0.72;
    ctx.save(); ctx.beginPath(); ctx.rect(pl.left, pl.top, pl.width, pl.height); ctx.clip();
    for (let i = 0; i < n; i++) {
      const [px, py] = this.toPx([points[2 * i], points[2 * i + 1]]);
      if (this.oneD) {  // a rug: one short tick per test code at its z1, nothing placed on an invented axis
        ctx.strokeStyle = labels ? colors[labels[i] % colors.length] : fg; ctx.lineWidth = 2; ctx.globalAlpha = 0.5;
        ctx.beginPath(); ctx.moveTo(px, py - pl.height * 0.3); ctx.lineTo(px, py + pl.height * 0.3); ctx.stroke();
        continue;
      }
      ctx.fillStyle = labels ? colors[labels[i] % colors.length] : fg;
      ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.restore(); ctx.globalAlpha = 1;
  }

  bindEvents() {
    const c = this.mapCanvas;
    c.addEventListener('pointerdown', (ev) => {
      if (!this.map || (ev.pointerType === 'mouse' && ev.button !== 0)) return;
      ev.preventDefault();
      c.focus({ preventScroll: true, focusVisible: false });
      this.dragging = true;
      try { c.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic event has no active pointer */ }
      this.moveTo(this.toMap(ev.clientX, ev.clientY), ev.timeStamp);
    });
    c.addEventListener('pointermove', (ev) => {
      if (!this.dragging) return;
      this.moveTo(this.toMap(ev.clientX, ev.clientY), ev.timeStamp);
    });
    const release = (ev) => {
      if (!this.dragging) return;
      this.dragging = false;
      if (ev.type === 'pointerup') this.moveTo(this.toMap(ev.clientX, ev.clientY), ev.timeStamp);
      this.report();
    };
    c.addEventListener('pointerup', release);
    c.addEventListener('pointercancel', release);
    c.addEventListener('lostpointercapture', release);
    const KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    const moves = (ev) => KEYS[ev.key] && this.map && !(this.oneD && KEYS[ev.key][0] === 0);  // 1-D: left / right only
    c.addEventListener('keydown', (ev) => {
      const dir = KEYS[ev.key];
      if (!moves(ev)) return;
      ev.preventDefault();
      const [[x0, x1], [y0, y1]] = this.data.map.ranges, f = ev.shiftKey ? 0.05 : 0.01;
      this.moveTo([clamp(this.p[0] + dir[0] * f * (x1 - x0), x0, x1), this.oneD ? 0 : clamp(this.p[1] + dir[1] * f * (y1 - y0), y0, y1)], ev.timeStamp);
    });
    c.addEventListener('keyup', (ev) => { if (moves(ev)) this.report(); });
  }

  moveTo(p, timeStamp) {
    this.p = p;
    this.z = lift(this.map, p);
    this.queue(timeStamp);
  }
  setZ(z, timeStamp) {
    this.z = z;
    this.p = locate(this.map, z);
    this.queue(timeStamp);
  }
  queue(timeStamp) {
    if (timeStamp !== undefined) { this.pendingEvents.push(timeStamp); this.pendingHandler.push(performance.now()); }
    this.schedule();
  }
  schedule() { if (!this.raf) this.raf = requestAnimationFrame(() => this.frame()); }

  // One animation frame: decode z with every decoder, paint, then the map and the readouts.
  frame() {
    this.raf = 0;
    if (!this.map || !this.z || !this.figs) return;
    const t0 = performance.now();
    for (let k = 0; k < this.decoders.length; k++) this.paint(this.figs[k], runDecoder(this.decoders[k].dec, this.z));
    const t1 = performance.now();
    this.drawMap();
    this.readouts();
    const done = performance.now();
    this.lastDecodeMs = t1 - t0;
    if (this.pendingEvents.length) {
      stats.frames += 1; stats.decodes += this.decoders.length;
      if (!stats.firstFrame) stats.firstFrame = done;
      stats.lastFrame = done;
      push(stats.decodeMs, (t1 - t0) / this.decoders.length);
      for (const ts of this.pendingEvents) push(stats.latency, done - ts);
      for (const th of this.pendingHandler) push(stats.handlerToPaint, done - th);
      this.pendingEvents = []; this.pendingHandler = [];
    }
  }

  paint(fig, out) {
    const { img, C, H, W } = fig, px = img.data, plane = H * W;
    for (let i = 0; i < plane; i++) {
      const r = out[i], g = C === 3 ? out[plane + i] : r, b = C === 3 ? out[2 * plane + i] : r;
      px[4 * i] = Math.round(255 * r); px[4 * i + 1] = Math.round(255 * g); px[4 * i + 2] = Math.round(255 * b); px[4 * i + 3] = 255;
    }
    fig.ctx.putImageData(img, 0, 0);
  }

  drawMap() {
    const c = this.mapCanvas, ctx = c.getContext('2d'), dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const pl = this.plot(), [x, y] = this.crosshair();
    ctx.strokeStyle = this.fg; ctx.globalAlpha = 0.45; ctx.lineWidth = 1.5; ctx.setLineDash([6, 6]);
    ctx.beginPath();
    if (!this.oneD) { ctx.moveTo(pl.left, y); ctx.lineTo(pl.left + pl.width, y); }
    ctx.moveTo(x, pl.top); ctx.lineTo(x, pl.top + pl.height); ctx.stroke();
    ctx.setLineDash([]); ctx.globalAlpha = 1;
    for (const [color, width] of [['#fff', 8], ['#000', 4]]) {
      ctx.strokeStyle = color; ctx.lineWidth = width;
      ctx.beginPath(); ctx.arc(x, y, 13, 0, 2 * Math.PI);
      ctx.moveTo(x - 22, y); ctx.lineTo(x - 6, y); ctx.moveTo(x + 6, y); ctx.lineTo(x + 22, y);
      ctx.moveTo(x, y - 22); ctx.lineTo(x, y - 6); ctx.moveTo(x, y + 6); ctx.lineTo(x, y + 22);
      ctx.stroke();
    }
    if (this.off) {  // z is off the map (a slider, or a t-SNE map's lift): pinned to the edge, an arrow points to it
      const [tx, ty] = this.toPx(this.p), len = Math.hypot(tx - x, ty - y) || 1, ux = (tx - x) / len, uy = (ty - y) / len;
      const bx = x + 17 * ux, by = y + 17 * uy, nx = -uy, ny = ux;
      ctx.fillStyle = '#000'; ctx.strokeStyle = '#fff'; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(bx + 12 * ux, by + 12 * uy); ctx.lineTo(bx + 7 * nx, by + 7 * ny); ctx.lineTo(bx - 7 * nx, by - 7 * ny);
      ctx.closePath(); ctx.stroke(); ctx.fill();
    }
  }

  // Where the crosshair is drawn: at z's map position, or pinned inside the plot's edge when
  // that is off the map (the map's range covers the test codes, z = 0 and any z set from Python).
  crosshair() {
    const pl = this.plot(), [x, y] = this.toPx(this.p), m = 30;  // room for the arms and the arrow
    const cx = clamp(x, pl.left + m, pl.left + pl.width - m), cy = clamp(y, pl.top + m, pl.top + pl.height - m);
    this.off = !(x >= pl.left && x <= pl.left + pl.width && y >= pl.top && y <= pl.top + pl.height);
    return this.off ? [cx, cy] : [x, y];
  }

  readouts() {
    const z = this.z, D = z.length;
    const head = this.sliders && this.sliders.length ? 4 : 8;  // with sliders, every value is on its slider
    const shown = Array.from(z.slice(0, head), (v) => fmt(v)).join(', ') + (D > head ? `, \u2026 (${D} dims)` : '');
    const text = `z = (${shown})`;
    if (this.zText.textContent !== text) this.zText.textContent = text;
    if (this.sliders) this.sliders.forEach((s, d) => {
      if (this.root.getRootNode().activeElement !== s.input) s.input.value = z[d];
      s.val.textContent = fmt(z[d]);
    });
    const now = performance.now();
    if (now - (this.noteAt || 0) < 250) return;  // a timing line that changes every frame is unreadable
    this.noteAt = now;
    const n = this.decoders.reduce((a, d) => a + (d.dec.nParams || 0), 0);
    // performance.now() is coarsened (0.1 ms, or more) in most browsers: a fast decode measures as 0
    const ms = this.lastDecodeMs >= 0.1 ? `${this.lastDecodeMs.toFixed(1)} ms` : 'under 0.1 ms';
    this.note.textContent = `Decoded in your browser in ${ms} `
      + `(${this.decoders.length > 1 ? this.decoders.length + ' decoders, ' : ''}${n.toLocaleString()} weights, ${this.decoders[0].dec.arch.toUpperCase()}).`;
  }

  // The final z goes to Python: a state value, so it survives reruns; seq makes each release new.
  report() {
    if (!this.z || !this.setStateValue) return;
    this.seq += 1;
    const z = Array.from(this.z);
    const pixels = this.decoders.map((d) => {
      const [C, H, W] = d.dec.imageShape;
      return C * H * W <= this.data.max_pixels ? Array.from(runDecoder(d.dec, z)) : null;
    });
    this.setStateValue('release', { z, p: Array.from(this.p), seq: this.seq, pixels });
  }

  state() {
    return { id: this.id, ready: !!(this.map && this.figs && this.z), z: this.z ? Array.from(this.z) : null,
             p: this.p.slice(), seq: this.seq, nonce: this.nonce, ranges: this.data && this.data.map.ranges,
             plot: this.plot(), labels: this.decoders.map((d) => d.label), latentDim: this.map && this.map.D,
             axes: this.axes || null, crosshair: this.map ? [...this.crosshair(), this.off] : null };
  }

  destroy() {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.resizer.disconnect();
    this.sideResizer.disconnect();
    if (PADS.get(this.id) === this) PADS.delete(this.id);
    if (window.__latentPadLast === this) window.__latentPadLast = null;
  }
}

function pad(id) { return id ? PADS.get(id) : window.__latentPadLast; }
window.__latentPadDecode = (z, which = 0, id) => {
  const p = pad(id);
  if (!p || !p.decoders[which]) throw new Error('no live pad with that decoder');
  return Array.from(runDecoder(p.decoders[which].dec, z));
};
window.__latentPadState = (id) => { const p = pad(id); return p ? p.state() : null; };
window.__latentPadTest = {
  decodeExport: (exp, zs) => { const dec = buildDecoder(exp); return zs.map((z) => Array.from(runDecoder(dec, z))); },
  lift: (exp, ps) => { const m = buildMap(exp); return ps.map((p) => Array.from(lift(m, p))); },
  locate: (exp, zs) => { const m = buildMap(exp); return zs.map((z) => Array.from(locate(m, z))); },
  // decodes per second in a tight loop (no painting): the decoder's own speed
  throughput: (which = 0, ms = 500) => {
    const p = pad(), dec = p.decoders[which].dec, z = new Float64Array(dec.latentDim);
    let n = 0; const t0 = performance.now();
    while (performance.now() - t0 < ms) { z[0] = Math.sin(n); runDecoder(dec, z); n++; }
    return n / ((performance.now() - t0) / 1000);
  },
};

export default function (component) {
  const root = component.parentElement.querySelector('.lp-root');
  if (!root) return undefined;
  let p = root.__latentPad;  // the function runs again on every rerun: keep one Pad per mounted root
  if (!p) { p = new Pad(root); root.__latentPad = p; }
  p.update(component);
  return () => { p.destroy(); delete root.__latentPad; };
}
"""

_component = st.components.v2.component("latent_explorer_pad", html=HTML, css=CSS, js=JS)


@st.cache_data(max_entries=16, show_spinner=False)
def decoder_export(sha: str, _ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's decoder for the browser (base64 float32), computed once per sha256."""
    return webexport.export_decoder(_ckpt.model)


@st.cache_data(max_entries=16, show_spinner=False)
def map_export(map_id: str, _lmap: LatentMap, _labels: np.ndarray) -> dict[str, Any]:
    """A fitted map for the browser; `map_id` names checkpoint, method and sample."""
    return webexport.export_map(_lmap, _labels)


def map_ranges(lmap: LatentMap, latent_dim: int, z: np.ndarray | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """The pad's x / y ranges: the test codes, the prior's mean z = 0 and `z` (where Python puts
    the crosshair), as the map places them, with a margin. The crosshair starts at z = 0, and an
    AE's or a briefly trained model's codes often exclude it (e.g. all in [0.3, 0.94]): a range
    of the codes alone would leave the crosshair off the map, invisible."""
    anchors = [np.zeros(latent_dim, np.float32)]
    if z is not None:
        z = np.asarray(z, np.float32).ravel()
        if z.shape == (latent_dim,) and np.isfinite(z).all():
            anchors.append(z)
    where = lmap.locate(np.stack(anchors))
    (x0, x1), (y0, y1) = plots.axis_ranges(lmap.points_, where[np.isfinite(where).all(1)])
    if latent_dim == 1:
        y0, y1 = -1.0, 1.0  # a 1-D map is a strip: its points sit at y = 0, no y axis is drawn
    return (x0, x1), (y0, y1)


def latent_pad(
    *,
    key: str,
    decoders: Sequence[tuple[str, Checkpoint]],
    lmap: LatentMap,
    map_id: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    axis_titles: tuple[str, str],
    z: np.ndarray,
    z_nonce: int,
    on_release: Callable[[np.ndarray, list[np.ndarray | None]], None],
    slider_ranges: Sequence[tuple[float, float]] | None = None,
    image_px: int = 280,
) -> None:
    """Mount the pad. `decoders`: (label, checkpoint) pairs that all decode the same z.

    The map `lmap` (with `labels` per point) is drawn and used to lift the crosshair to z.
    `z` with a new `z_nonce` moves the crosshair from Python. On release, `on_release(z,
    pixels)` runs before the rerun: z (D,) float32 and finite, pixels per decoder as the
    browser computed them ((C, H, W) float32, or None for images above MAX_REPORTED_PIXELS or
    a malformed report). A release whose z is not D finite numbers is ignored
    (`webexport.read_release`)."""
    sent: set[str] = st.session_state.setdefault(SENT_KEY, set())
    payloads = [(f"dec-{ckpt.sha256[:16]}", label, ckpt) for label, ckpt in decoders]
    config = decoders[0][1].model_config

    def released() -> None:
        # the browser's values are untrusted: a malformed report is ignored and z stays as it was
        checked = webexport.read_release(
            (st.session_state.get(key) or {}).get("release"), config.latent_dim, config.image_shape, len(decoders)
        )
        if checked is not None:
            on_release(*checked)

    def missing() -> None:
        wanted = (st.session_state.get(key) or {}).get("missing")
        sent.difference_update([w for w in wanted if isinstance(w, str)] if isinstance(wanted, list) else [])

    # The range is kept while z only moves in the browser (a release): never rescaled under the pointer.
    held = st.session_state.get(RANGES_KEY.format(key))
    if held is None or held[0] != (map_id, int(z_nonce)):
        held = ((map_id, int(z_nonce)), map_ranges(lmap, config.latent_dim, z))
        st.session_state[RANGES_KEY.format(key)] = held
    (x0, x1), (y0, y1) = held[1]
    data = {
        "pad_id": key,
        "decoders": [
            {"id": pid, "label": label, "export": None if pid in sent else decoder_export(ckpt.sha256, ckpt)}
            for pid, label, ckpt in payloads
        ],
        "map": {
            "id": map_id, "export": None if map_id in sent else map_export(map_id, lmap, labels),
            "ranges": [[x0, x1], [y0, y1]], "axis_titles": list(axis_titles), "class_names": [str(c) for c in class_names],
            "colors": [plots.class_color(i) for i in range(max(len(class_names), 1))],
        },
        "sliders": [[float(lo), float(hi)] for lo, hi in slider_ranges] if slider_ranges is not None else None,
        "z_in": {"z": [float(v) for v in np.asarray(z, np.float64).ravel()], "nonce": int(z_nonce)},
        "image_px": int(image_px),
        "max_pixels": MAX_REPORTED_PIXELS,
    }
    _component(key=key, data=data, on_release_change=released, on_missing_change=missing, width="stretch", height="content")
    sent.update([pid for pid, _, _ in payloads] + [map_id])
