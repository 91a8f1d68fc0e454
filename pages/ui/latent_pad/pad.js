// The Live pad on the page: DOM, drawing, pointer / key / slider input and the reports to
// Python. The maths is in decoder.js, maps.js, meter.js and layers.js, earlier in the same script.
//
// State kept across reruns and remounts lives on one window slot (a Symbol, not a name a page
// could collide with): the built decoders / maps by payload id, the pads by id, the timing
// stats. The window.__latentPad* test hooks are installed only when Python says so
// (data.test_hooks, from VAE_TEST_HOOKS=1: the browser tests and the benchmark).
const SHARED = (window[Symbol.for('latent-explorer.pad')] ||= { cache: new Map(), pads: new Map(), stats: {}, last: null });
const CACHE = SHARED.cache;   // payload id -> built decoder / map
const PADS = SHARED.pads;     // pad id -> Pad
const MAX_SAMPLES = 20000;
const stats = SHARED.stats;
function resetStats() {
  Object.assign(stats, { frames: 0, decodes: 0, firstFrame: 0, lastFrame: 0,
                         latency: [], handlerToPaint: [], decodeMs: [], meterMs: [], meterFrames: 0, frameMs: [] });
}
if (stats.latency === undefined) resetStats();
stats.reset = resetStats;
function push(list, v) { if (list.length < MAX_SAMPLES) list.push(v); }
// A drag's path for its GIF: every `stride`-th move's z; past PATH_MAX z's every other one is
// dropped and the stride doubles, so however long the drag, its z's stay evenly spread over all
// of it (Python thins them to the GIF's bound: vae.services.animation.read_path).
const PATH_MAX = 120;  // the GIF's bound (vae.services.animation.MAX_FRAMES); the release adds its own z
function newPath() { return { zs: [], stride: 1, moves: 0 }; }
function recordPath(path, z) {
  if (!path) return;
  if (path.moves++ % path.stride === 0) path.zs.push(Array.from(z));
  if (path.zs.length > PATH_MAX) { path.zs = path.zs.filter((_, i) => i % 2 === 0); path.stride *= 2; }
}
function pathOf(path, z) { return path ? [...path.zs, Array.from(z)] : []; }  // the release's z always ends it

function ordinal(k) { return `${k}${['', 'st', 'nd', 'rd'][k] || 'th'}`; }

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
    this.meters = [];        // per decoder: the hole meter's parts ({judge, encoder, posterior}) or null
    this.layerData = [];     // the map layers to draw, in order
    this.meterOn = true;     // the benchmark switches the meter and the layers off and on
    this.layersOn = true;
    this.meterEvery = 1;     // the meter runs on every k-th frame (k > 1 when it costs more than the budget)
    this.frameNo = 0;
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
    PADS.set(this.id, this); SHARED.last = this;
    const missing = [];
    const built = (id, exp, build) => {
      if (!CACHE.has(id) && exp) CACHE.set(id, build(exp));
      if (!CACHE.has(id)) missing.push(id);
      return CACHE.get(id);
    };
    let decoders, map, meters, layers;
    try {
      decoders = data.decoders.map((d) => ({ label: d.label, id: d.id, dec: built(d.id, d.export, buildDecoder) }));
      map = built(data.map.id, data.map.export, buildMap);
      const part = (p, build) => (p ? built(p.id, p.export, build) : null);
      meters = (data.meters || []).map((m) => ({ kind: m.kind, judgePending: !!m.judge_pending, judge: part(m.judge, buildJudge),
        encoder: part(m.encoder, buildEncoder), posterior: part(m.posterior, buildPosterior), absent: m.absent || [] }));
      layers = (data.layers || []).map((l) => built(l.id, l.export, buildLayer));
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
    this.meters = decoders.map((d, k) => meters[k] || null);
    this.layerData = layers;
    this.oneD = map.D === 1;  // a 1-D latent: a strip along z1, nothing drawn or moved along a second axis
    // presenter mode (pages/ui/frame.py): no developer readouts, larger text (pad.css's .lp-presenting)
    this.root.classList.toggle('lp-presenting', !!data.presenting);
    const sig = JSON.stringify([data.decoders.map((d) => [d.id, d.label]), data.map.id, data.map.ranges,
                                data.sliders, data.image_px, data.map.colors, (data.meters || []).length, !!data.presenting]);
    const layerSig = JSON.stringify((data.layers || []).map((l) => l.id));
    if (sig === this.sig && layerSig !== this.layerSig) this.layoutMap();  // layers switched: only the map's static canvas
    this.layerSig = layerSig;
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
    this.figs = this.decoders.map((d, k) => {
      const fig = document.createElement('figure'); fig.className = 'lp-fig';
      const c = document.createElement('canvas'); c.width = W; c.height = H; c.className = 'lp-decoded';
      c.dataset.label = d.label;
      const cap = document.createElement('figcaption'); cap.textContent = d.label;
      fig.append(c, cap); this.images.append(fig);
      let meter = null;
      if (this.meters[k]) {  // the hole meter: three lines under the image
        meter = document.createElement('div'); meter.className = 'lp-meter'; meter.dataset.label = d.label;
        meter.lines = [0, 1, 2].map(() => meter.appendChild(document.createElement('div')));
        meter.pace = meter.appendChild(document.createElement('div')); meter.pace.className = 'lp-pace';
        fig.append(meter);
      }
      const ctx = c.getContext('2d');
      return { canvas: c, ctx, img: ctx.createImageData(W, H), C, H, W, meter };
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
      const meter = this.figs[0].meter ? this.figs[0].meter.offsetHeight + 8 : 0;
      const rest = this.zText.offsetHeight + this.note.offsetHeight + 40 + 3 * 18 + 120 + meter;
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
    this.drawLayers(ctx, 'under');
    const big = this.data.presenting ? 4 : 0;  // presenter mode: the axes' numbers at 20 px, their titles at 22
    ctx.font = `${16 + big}px ${style.fontFamily}`; ctx.fillStyle = fg; ctx.strokeStyle = fg;
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
    ctx.globalAlpha = 1; ctx.font = `bold ${18 + big}px ${style.fontFamily}`;
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
    this.drawLayers(ctx, 'over');
  }

  // The map layers (layers.js): the landscape under the dots, q(z)'s contours, the prior's circles
  // and the q(z|x) ellipses over them, clipped to the plot; styles as Explore's (vae/services/plots.py).
  drawLayers(ctx, where) {
    if (!this.layersOn || !this.layerData.length || this.oneD) return;
    const pl = this.plot(), style = this.data.layer_style || {};
    ctx.save(); ctx.beginPath(); ctx.rect(pl.left, pl.top, pl.width, pl.height); ctx.clip();
    const path = (pts) => { ctx.beginPath(); pts.forEach((p, i) => { const [x, y] = this.toPx(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); }); };
    for (const l of this.layerData) {
      if (where === 'under' && l.layer === 'landscape') {
        if (!l.image) {  // rows bottom-up in the export, top-down on a canvas
          const n = l.n, img = new ImageData(n, n);
          for (let r = 0; r < n; r++) img.data.set(l.rgba.subarray(r * n * 4, (r + 1) * n * 4), (n - 1 - r) * n * 4);
          l.image = document.createElement('canvas'); l.image.width = n; l.image.height = n;
          l.image.getContext('2d').putImageData(img, 0, 0);
        }
        const [[x0, x1], [y0, y1]] = l.box, [ax, ay] = this.toPx([x0, y1]), [bx, by] = this.toPx([x1, y0]);
        ctx.imageSmoothingEnabled = false; ctx.drawImage(l.image, ax, ay, bx - ax, by - ay); ctx.imageSmoothingEnabled = true;
      } else if (where === 'over' && l.layer === 'aggregate') {
        ctx.strokeStyle = style.q || '#111'; ctx.lineWidth = 2; ctx.setLineDash([]);
        for (const seg of l.contours) {
          ctx.beginPath();
          for (let i = 0; i < seg.length; i += 4) {
            const [ax, ay] = this.toPx([seg[i], seg[i + 1]]), [bx, by] = this.toPx([seg[i + 2], seg[i + 3]]);
            ctx.moveTo(ax, ay); ctx.lineTo(bx, by);
          }
          ctx.stroke();
        }
      } else if (where === 'over' && l.layer === 'prior') {
        ctx.strokeStyle = style.prior || '#444'; ctx.lineWidth = 2; ctx.setLineDash([8, 6]);
        for (const r of l.radii) { path(ellipsePoints(l.centre, [r, r], 0, 1, 181)); ctx.stroke(); }
        ctx.setLineDash([]);
      } else if (where === 'over' && l.layer === 'ellipses') {
        ctx.strokeStyle = style.ellipses || '#333'; ctx.lineWidth = 1.5;
        l.centres.forEach((c, i) => {
          const s = l.semi_axes[i];
          if (s[0] > 0) { path(ellipsePoints(c, s, l.angles[i])); ctx.stroke(); return; }
          const [x, y] = this.toPx(c); ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(x, y, 4.5, 0, 2 * Math.PI); ctx.stroke();  // an AE's: a point
        });
      }
    }
    ctx.restore();
  }

  bindEvents() {
    const c = this.mapCanvas;
    c.addEventListener('pointerdown', (ev) => {
      if (!this.map || (ev.pointerType === 'mouse' && ev.button !== 0)) return;
      ev.preventDefault();
      c.focus({ preventScroll: true, focusVisible: false });
      this.dragging = true;
      this.path = newPath();  // the z's of this drag, for its GIF (pages/live.py)
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
      this.report(pathOf(this.path, this.z));
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
    if (this.dragging) recordPath(this.path, this.z);
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
    this.frameNo += 1;
    const meterNow = this.meterOn && this.frameNo % this.meterEvery === 0;
    let meterMs = 0;
    for (let k = 0; k < this.decoders.length; k++) {
      const out = runDecoder(this.decoders[k].dec, this.z);
      this.paint(this.figs[k], out);
      if (meterNow && this.meters[k]) { const m0 = performance.now(); this.showMeter(k, out); meterMs += performance.now() - m0; }
    }
    const t1 = performance.now();
    if (meterNow && meterMs) this.paceMeter(meterMs);
    clearTimeout(this.meterTimer);
    if (this.meterOn && !meterNow) this.meterTimer = setTimeout(() => this.updateMeters(), 120);  // the z the pointer rests on gets its meter
    this.drawMap();
    this.readouts();
    const done = performance.now();
    this.lastDecodeMs = t1 - t0;
    if (this.pendingEvents.length) {
      stats.frames += 1; stats.decodes += this.decoders.length;
      if (!stats.firstFrame) stats.firstFrame = done;
      stats.lastFrame = done;
      push(stats.decodeMs, (t1 - t0 - meterMs) / this.decoders.length);
      push(stats.frameMs, done - t0);  // the frame's own work: decode, meter, map, readouts
      if (meterMs) { push(stats.meterMs, meterMs); stats.meterFrames += 1; }
      for (const ts of this.pendingEvents) push(stats.latency, done - ts);
      for (const th of this.pendingHandler) push(stats.handlerToPaint, done - th);
      this.pendingEvents = []; this.pendingHandler = [];
    }
  }

  // The hole meter beside decoder k's image, from its decode `out` of this.z (meter.js).
  showMeter(k, out) {
    const parts = this.meters[k], fig = this.figs[k];
    if (!parts || !fig.meter) return;
    const m = holeMeter(parts, this.z, out);
    fig.meter.value = m;
    meterLines(m, parts.kind, !!parts.judge, parts.judgePending, parts.absent).forEach((text, i) => {
      if (fig.meter.lines[i].textContent !== text) fig.meter.lines[i].textContent = text;
    });
    fig.meter.classList.toggle('lp-unsure', m.confidence !== null && m.confidence < 0.5);
    // throttled (paceMeter): said beside the numbers themselves, so no view that hides the note hides it
    const pace = this.meterEvery > 1 ? `while dragging: every ${ordinal(this.meterEvery)} frame` : '';
    if (fig.meter.pace.textContent !== pace) fig.meter.pace.textContent = pace;
  }
  updateMeters() {
    if (!this.z || !this.figs) return;
    this.decoders.forEach((d, k) => { if (this.meters[k]) this.showMeter(k, runDecoder(d.dec, this.z)); });
  }
  // Keep the meter within its budget of a frame: above it, run it on every k-th frame only.
  paceMeter(ms) {
    if (!this.meterWarm) { this.meterWarm = true; return; }  // the first run compiles the meter's code: not its cost
    const budget = this.data.meter_budget_ms || 6;
    this.meterAvg = this.meterAvg === undefined ? ms : 0.8 * this.meterAvg + 0.2 * ms;
    this.meterEvery = Math.max(1, Math.min(8, Math.ceil(this.meterAvg / budget)));
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
    let meter = '';
    if (this.meterOn && this.meters.some((m) => m)) {
      const mm = this.meterAvg === undefined ? '' : ` (${this.meterAvg >= 0.1 ? this.meterAvg.toFixed(1) + ' ms' : 'under 0.1 ms'})`;
      meter = this.meterEvery > 1 ? ` Hole meter: every ${ordinal(this.meterEvery)} frame while you drag${mm}, always at rest.`
        : ` Hole meter: every frame${mm}.`;
    }
    this.note.textContent = `Decoded in your browser in ${ms} `
      + `(${this.decoders.length > 1 ? this.decoders.length + ' decoders, ' : ''}${n.toLocaleString()} weights, ${this.decoders[0].dec.arch.toUpperCase()}).` + meter;
  }

  // The final z goes to Python: a state value, so it survives reruns; seq makes each release new.
  report(path = []) {
    if (!this.z || !this.setStateValue) return;
    this.seq += 1;
    const z = Array.from(this.z);
    const pixels = this.decoders.map((d) => {
      const [C, H, W] = d.dec.imageShape;
      return C * H * W <= this.data.max_pixels ? Array.from(runDecoder(d.dec, z)) : null;
    });
    this.setStateValue('release', { z, p: Array.from(this.p), seq: this.seq, pixels, path });
  }

  state() {
    return { id: this.id, ready: !!(this.map && this.figs && this.z), z: this.z ? Array.from(this.z) : null,
             p: this.p.slice(), seq: this.seq, nonce: this.nonce, ranges: this.data && this.data.map.ranges,
             plot: this.plot(), labels: this.decoders.map((d) => d.label), latentDim: this.map && this.map.D,
             axes: this.axes || null, crosshair: this.map ? [...this.crosshair(), this.off] : null,
             layers: this.layerData.map((l) => l.layer), meterEvery: this.meterEvery,
             meters: this.figs ? this.figs.map((f) => (f.meter ? { lines: f.meter.lines.map((e) => e.textContent), value: f.meter.value || null } : null)) : [] };
  }

  destroy() {
    if (this.raf) cancelAnimationFrame(this.raf);
    clearTimeout(this.meterTimer);
    this.resizer.disconnect();
    this.sideResizer.disconnect();
    if (PADS.get(this.id) === this) PADS.delete(this.id);
    if (SHARED.last === this) SHARED.last = null;
  }
}

// ---- test hooks: only with data.test_hooks ---------------------------------------------
// window.__latentPadDecode(z, which, id), __latentPadState(id), __latentPadLast (the last pad
// updated), __latentPadCache, __latentPadPads, __latentPadStats (frame timings, reset()) and
// __latentPadTest (decode, lift and locate from any export dict; the decoder's throughput).
function installTestHooks() {
  if (window.__latentPadTest) return;
  const pad = (id) => (id ? PADS.get(id) : SHARED.last);
  Object.defineProperty(window, '__latentPadLast', { get: () => SHARED.last, configurable: true, enumerable: true });
  Object.assign(window, { __latentPadCache: CACHE, __latentPadPads: PADS, __latentPadStats: stats });
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
    // the hole meter of the live pad's decoder `which` at z, as meter.js computes it
    meter: (z, which = 0, id) => {
      const p = pad(id);
      if (!p || !p.meters[which]) throw new Error('no live pad with a hole meter there');
      return holeMeter(p.meters[which], z, runDecoder(p.decoders[which].dec, z));
    },
    // decodes per second in a tight loop (no painting): the decoder's own speed
    throughput: (which = 0, ms = 500) => {
      const p = pad(), dec = p.decoders[which].dec, z = new Float64Array(dec.latentDim);
      let n = 0; const t0 = performance.now();
      while (performance.now() - t0 < ms) { z[0] = Math.sin(n); runDecoder(dec, z); n++; }
      return n / ((performance.now() - t0) / 1000);
    },
  };
}

export default function (component) {
  if (component.data && component.data.test_hooks) installTestHooks();
  const root = component.parentElement.querySelector('.lp-root');
  if (!root) return undefined;
  let p = root.__latentPad;  // the function runs again on every rerun: keep one Pad per mounted root
  if (!p) { p = new Pad(root); root.__latentPad = p; }
  p.update(component);
  return () => { p.destroy(); delete root.__latentPad; };
}
