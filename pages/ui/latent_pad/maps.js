// The Live pad's map maths: lift (map position -> z) and locate (z -> map position) as
// vae/analysis/maps.py's LatentMap does, and the numbers the pad draws with (slider grid, axis ticks,
// the z readout). Pure: no DOM, no window. Uses FORMAT and f32 from decoder.js, earlier in
// the same script.

// ---- the map: lift (position -> z) and locate (z -> position), as vae/analysis/maps.py ----------
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

// ---- numbers the pad draws with -------------------------------------------------------------
function niceTicks(lo, hi, count) {
  const span = hi - lo, raw = span / Math.max(count, 1), mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.abs(t) < 1e-12 ? 0 : t);
  return { ticks, step };
}
function fmt(v, digits = 2) { return (v >= 0 ? '+' : '\u2212') + Math.abs(v).toFixed(digits); }
function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
