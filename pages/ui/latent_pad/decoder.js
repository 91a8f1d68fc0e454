// The Live pad's decoder: the browser export's weights (base64 of little-endian float32) and
// the forward pass of vae/services/browser_export.py's layers (linear, relu, unflatten, convT, sigmoid),
// in float64 arithmetic on the float32 weights. Pure: no DOM, no window.
//
// The component's Python concatenates decoder.js, maps.js and pad.js into one script (no
// bundler); Node's tests (tests/js) load decoder.js and maps.js the same way (tests/js/load.js).
const FORMAT = 'latent-explorer-web';
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---- weights ------------------------------------------------------------------------------
// base64 text (the Live pad's exports), or a Float32Array as it is (the standalone file's inflated weights)
function f32(b64) {
  if (b64 instanceof Float32Array) return b64;
  const bin = atob(b64), n = bin.length, bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
  if (LITTLE_ENDIAN) return new Float32Array(bytes.buffer);
  const view = new DataView(bytes.buffer), out = new Float32Array(n / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// A linear layer of an export as a step (decoder.js and meter.js build their nets with it).
function linearStep(l, size) {
  const [out, inp] = l.shape;
  if (inp !== size) throw new Error(`linear layer expects ${inp} inputs, gets ${size}`);
  return { type: 'linear', W: f32(l.weight), b: f32(l.bias), inp, out, y: new Float64Array(out) };
}

// ---- the decoder: the layers of vae/services/browser_export.py, in order, as PyTorch evaluates them ---
function buildDecoder(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer decoder export');
  const steps = [];
  let size = exp.latent_dim, shape = null;
  for (const l of exp.layers) {
    if (l.type === 'linear') {
      const step = linearStep(l, size);
      steps.push(step);
      size = step.out; shape = null;
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

