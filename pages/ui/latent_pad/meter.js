// The Live pad's hole meter, in the browser (issue 11, item 6): the judge's class and confidence of
// the decoded image, q(z)/p(z) and the round trip ||mu(decode(z)) - z||, with the definitions of
// vae/analysis/layers.py's hole_meter and vae/analysis/judge.py. Image -> vector nets (the judge,
// the encoder's mean path) from vae/services/browser_export.py's layers (conv2d, maxpool, flatten,
// linear, relu), in float64 arithmetic on the float32 weights. Pure: no DOM, no window.
// Uses FORMAT, f32 and linearStep from decoder.js, earlier in the same script.

// ---- an image -> vector net: the layers in order, as PyTorch evaluates them -------------------
function buildNet(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer net export');
  const steps = [];
  let shape = exp.image_shape.slice(), size = shape[0] * shape[1] * shape[2];
  for (const l of exp.layers) {
    if (l.type === 'linear') {
      const step = linearStep(l, size);
      steps.push(step);
      size = step.out; shape = null;
    } else if (l.type === 'relu') {
      steps.push({ type: 'relu' });
    } else if (l.type === 'flatten') {
      shape = null;
    } else if (l.type === 'conv2d') {
      if (!shape) throw new Error('conv2d needs a C x H x W input');
      const [co, ci, kh, kw] = l.shape, [C, H, W] = shape, [sh, sw] = l.stride, [ph, pw] = l.padding;
      if (ci !== C) throw new Error(`conv2d expects ${ci} channels, gets ${C}`);
      const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1, Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
      steps.push({ type: 'conv2d', ci, co, kh, kw, H, W, Ho, Wo, sh, sw, ph, pw, w: f32(l.weight), b: f32(l.bias),
                   y: new Float64Array(co * Ho * Wo) });
      shape = [co, Ho, Wo]; size = co * Ho * Wo;
    } else if (l.type === 'maxpool') {
      if (!shape) throw new Error('maxpool needs a C x H x W input');
      const [C, H, W] = shape, [kh, kw] = l.kernel, [sh, sw] = l.stride, [ph, pw] = l.padding;
      const out = (n, k, s, p) => {  // PyTorch's pooling output size (dilation 1)
        let o = (l.ceil_mode ? Math.ceil((n + 2 * p - k) / s) : Math.floor((n + 2 * p - k) / s)) + 1;
        if (l.ceil_mode && (o - 1) * s >= n + p) o -= 1;  // the last window must start inside the input or its left padding
        return o;
      };
      const Ho = out(H, kh, sh, ph), Wo = out(W, kw, sw, pw);
      steps.push({ type: 'maxpool', C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, y: new Float64Array(C * Ho * Wo) });
      shape = [C, Ho, Wo]; size = C * Ho * Wo;
    } else {
      throw new Error(`unknown layer type ${l.type}`);
    }
  }
  return { imageShape: exp.image_shape, outSize: size, steps };
}

// image (C x H x W numbers) -> the net's output (a buffer owned by the net: copy to keep). One small
// function per layer type: V8 keeps each one's loops optimised (one function for all of them ran
// five times slower than its parts).
function runNet(net, image) {
  let x = image;
  for (const s of net.steps) {
    if (s.type === 'linear') x = linearForward(s, x);
    else if (s.type === 'relu') x = reluForward(x, x === image);
    else if (s.type === 'conv2d') x = conv2dForward(s, x);
    else x = maxpoolForward(s, x);
  }
  return x;
}

function linearForward(s, x) {
  const { W, b, inp, out, y } = s;
  for (let j = 0; j < out; j++) {
    let acc = b[j];
    const row = j * inp;
    for (let i = 0; i < inp; i++) acc += W[row + i] * x[i];
    y[j] = acc;
  }
  return y;
}

function reluForward(x, copy) {
  if (copy) x = Float64Array.from(x);  // never write into the caller's image
  for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
  return x;
}

// one kernel tap at a time over every output pixel it reaches: contiguous inner loops, no bounds test inside
function conv2dForward(s, x) {
  const { ci, co, kh, kw, H, W, Ho, Wo, sh, sw, ph, pw, w, b, y } = s;
  const plane = Ho * Wo;
  for (let o = 0; o < co; o++) {
    y.fill(b[o], o * plane, (o + 1) * plane);
    for (let i = 0; i < ci; i++) for (let ky = 0; ky < kh; ky++) {
      const oy0 = Math.max(0, Math.ceil((ph - ky) / sh)), oy1 = Math.min(Ho - 1, Math.floor((H - 1 + ph - ky) / sh));
      for (let kx = 0; kx < kw; kx++) {
        const wv = w[((o * ci + i) * kh + ky) * kw + kx];
        if (wv === 0) continue;
        const ox0 = Math.max(0, Math.ceil((pw - kx) / sw)), ox1 = Math.min(Wo - 1, Math.floor((W - 1 + pw - kx) / sw));
        for (let oy = oy0; oy <= oy1; oy++) {
          const yrow = o * plane + oy * Wo, xrow = (i * H + oy * sh - ph + ky) * W - pw + kx;
          for (let ox = ox0; ox <= ox1; ox++) y[yrow + ox] += wv * x[xrow + ox * sw];
        }
      }
    }
  }
  return y;
}

// padding counts as -Infinity, as in PyTorch
function maxpoolForward(s, x) {
  const { C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, y } = s;
  for (let c = 0; c < C; c++) for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) {
    let best = -Infinity;
    for (let ky = 0; ky < kh; ky++) {
      const iy = oy * sh - ph + ky;
      if (iy < 0 || iy >= H) continue;
      for (let kx = 0; kx < kw; kx++) {
        const ix = ox * sw - pw + kx;
        if (ix >= 0 && ix < W) { const v = x[(c * H + iy) * W + ix]; if (v > best || Number.isNaN(v)) best = v; }
      }
    }
    y[(c * Ho + oy) * Wo + ox] = best;
  }
  return y;
}

// ---- the judge: softmax of its logits, the top class and its probability (Judge.judge) ----------
function buildJudge(exp) {
  const net = buildNet(exp);
  if (net.outSize !== exp.class_names.length) throw new Error(`judge gives ${net.outSize} scores for ${exp.class_names.length} classes`);
  return { net, classNames: exp.class_names, imageShape: exp.image_shape, key: exp.key };
}
function softmax(logits) {
  let top = -Infinity;
  for (const v of logits) top = Math.max(top, v);
  const p = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < p.length; i++) { p[i] = Math.exp(logits[i] - top); total += p[i]; }
  for (let i = 0; i < p.length; i++) p[i] /= total;
  return p;
}
function judgeImage(judge, image) {
  const probs = softmax(runNet(judge.net, image));
  let cls = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[cls]) cls = i;  // the first of equals, as argmax
  return { cls, name: judge.classNames[cls], confidence: probs[cls], probs };
}

// ---- the encoder's mean path and the round trip ------------------------------------------------
function buildEncoder(exp) {
  const net = buildNet(exp);
  if (net.outSize !== exp.latent_dim) throw new Error(`encoder gives ${net.outSize} values for a ${exp.latent_dim}-D latent`);
  return { net, latentDim: exp.latent_dim, imageShape: exp.image_shape };
}
function encodeMu(enc, image) { return runNet(enc.net, image); }
// ||mu(decode(z)) - z||: `image` is decode(z)
function roundTrip(enc, image, z) {
  const mu = encodeMu(enc, image);
  let s = 0;
  for (let d = 0; d < mu.length; d++) { const t = mu[d] - z[d]; s += t * t; }
  return Math.sqrt(s);
}

// ---- q(z)/p(z): q(z) = mean over the test sample of N(z; mu_i, diag var_i), p = N(0, I) -------
// (layers.log_aggregate_over_prior: in log space, variances floored at 1e-12). null logvar: an AE.
function buildPosterior(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer posterior export');
  const { n, latent_dim: D } = exp, mu = f32(exp.mu);
  if (mu.length !== n * D) throw new Error(`posterior: ${mu.length} means for ${n} x ${D}`);
  if (exp.logvar === null || exp.logvar === undefined) return { n, D, mu, inv: null };
  const lv = f32(exp.logvar), inv = new Float64Array(n * D), norm = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < D; d++) {
      const v = Math.max(Math.exp(lv[i * D + d]), 1e-12);
      inv[i * D + d] = 1 / v; s += Math.log(2 * Math.PI * v);
    }
    norm[i] = -0.5 * s;
  }
  return { n, D, mu, inv, norm, comp: new Float64Array(n) };
}
function logQOverP(post, z) {
  if (!post.inv) return null;
  const { n, D, mu, inv, norm, comp } = post;
  let top = -Infinity;
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let d = 0; d < D; d++) { const t = z[d] - mu[i * D + d]; m += t * t * inv[i * D + d]; }
    comp[i] = norm[i] - 0.5 * m;
    if (comp[i] > top) top = comp[i];
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(comp[i] - top);
  let zz = 0;
  for (let d = 0; d < D; d++) zz += z[d] * z[d];
  return top + Math.log(s / n) + 0.5 * (zz + D * Math.log(2 * Math.PI));
}

// ---- the meter at z: `image` is decode(z); judge, encoder and posterior may be null ---------------
// (the standalone file leaves out what would make it too large: its round trip is null)
function holeMeter(parts, z, image) {
  const { judge, encoder, posterior } = parts;
  const verdict = judge ? judgeImage(judge, image) : null;
  return {
    cls: verdict ? verdict.cls : null, name: verdict ? verdict.name : null, confidence: verdict ? verdict.confidence : null,
    logQOverP: posterior ? logQOverP(posterior, z) : null, roundTrip: encoder ? roundTrip(encoder, image, z) : null,
  };
}

// The meter as the page's lines (widgets.hole_meter_text's words; the confidence to 0.01 %).
function ratioText(logRatio) {
  const r10 = logRatio / Math.LN10;
  if (r10 >= -2 && r10 < 3) return Number(Math.exp(logRatio).toPrecision(2)).toString();
  return `\u2248 1e${r10 >= 0 ? '+' : '\u2212'}${Math.abs(Math.round(r10))}`;
}
// `absent`: the parts a standalone file left out to stay small ('judge', 'encoder', 'posterior').
function meterLines(m, kind, hasJudge, judgePending = false, absent = []) {
  const left = (part) => absent.includes(part);
  let judge = judgePending ? 'judge: being trained\u2026' : left('judge') ? 'judge: not in this file' : 'judge: none (no labels)';
  if (hasJudge && m.name !== null) {
    judge = `judge: ${m.name}, ${(100 * m.confidence).toFixed(2)} % sure` + (m.confidence < 0.5 ? ' (unrecognisable)' : '');
  }
  let ratio = kind === 'ae' ? 'q(z)/p(z): n/a (AE codes are points)' : left('posterior') ? 'q(z)/p(z): not in this file' : 'q(z)/p(z): n/a';
  if (m.logQOverP !== null) ratio = `q(z)/p(z): ${ratioText(m.logQOverP)}` + (m.logQOverP < Math.log(0.1) ? ' (few codes here)' : '');
  const trip = m.roundTrip === null ? 'round trip: not in this file' : `round trip: ${m.roundTrip.toFixed(2)}`;
  return [judge, ratio, trip];
}
