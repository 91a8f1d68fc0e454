// The standalone pad's host: what Streamlit does for the Live pad, done by the page itself
// (vae/services/standalone_pad.py writes the file). It comes last in the same module script as
// decoder.js, maps.js, meter.js, layers.js and pad.js, whose default export is renamed `mountPad`
// at export.
//
// It reads the data dict the Live pad page would send (embedded as JSON), inflates the packed
// weights (the decoders', and the judge's where the file has one) with the browser's own
// DecompressionStream (nothing is fetched) into Float32Arrays that decoder.js's f32() takes as they
// are, and calls the pad's entry once, with no-op state and trigger setters: there is no Python
// to hear a release.
function bytesFromBase64(text) {
  const bin = atob(text), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function inflate(bytes, encoding) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(encoding));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// A packed export -> the plain one (pack_export / unpack_decoder in standalone_pad.py, value for
// value): the inflated blob holds the steps (little-endian float32), then the byte planes of the
// zigzagged integer codes, low byte first. Each "weight" / "bias" {at, n, rows, step_at} becomes a
// Float32Array view of one buffer: row r of its n / rows values is Math.fround(code * step), the
// step steps[step_at + r] (the same float64 product rounded once to float32 as numpy's).
async function unpackExport(exp) {
  if (!exp || !exp.packed) return exp;
  const { encoding, bytes_per_code: width, n, n_steps: nSteps, data } = exp.packed;
  const raw = await inflate(bytesFromBase64(data), encoding);
  if (raw.length !== 4 * nSteps + width * n) throw new Error(`packed weights: expected ${4 * nSteps + width * n} bytes, got ${raw.length}`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const steps = Float32Array.from({ length: nSteps }, (_, i) => view.getFloat32(4 * i, true));
  const codes = new Int32Array(n);
  for (let p = 0, at = 4 * nSteps; p < width; p++, at += n) {
    const shift = 8 * p;
    for (let i = 0; i < n; i++) codes[i] |= raw[at + i] << shift;
  }
  const values = new Float32Array(n);
  const layers = exp.layers.map((l) => {
    const out = { ...l };
    for (const key of ['weight', 'bias']) {
      const ref = l[key];
      if (!ref || typeof ref !== 'object') continue;
      const per = ref.n / ref.rows;
      for (let r = 0; r < ref.rows; r++) {
        const step = steps[ref.step_at + r], from = ref.at + r * per;
        for (let i = from; i < from + per; i++) {
          const u = codes[i];
          values[i] = Math.fround(((u >>> 1) ^ -(u & 1)) * step);  // zigzag: 0, 1, 2, 3 -> 0, -1, 1, -2
        }
      }
      out[key] = values.subarray(ref.at, ref.at + ref.n);
    }
    return out;
  });
  const { packed, ...rest } = exp;  // eslint-disable-line no-unused-vars
  return { ...rest, layers };
}

async function mountStandalone() {
  const host = document.getElementById('latent-pad-host');
  const data = JSON.parse(document.getElementById('latent-pad-data').textContent);
  try {
    const parts = [...data.decoders, ...(data.meters || []).flatMap((m) => [m.judge, m.encoder]).filter((p) => p && p.export)];
    const exports = await Promise.all(parts.map((p) => unpackExport(p.export)));
    parts.forEach((p, k) => { p.export = exports[k]; });  // the meters share one judge: unpacked once per mention, same values
  } catch (err) {
    host.querySelector('.lp-note').textContent = `The weights could not be read: ${err.message}`;
    return;
  }
  mountPad({ data, parentElement: host, setStateValue() {}, setTriggerValue() {} });
  const map = host.querySelector('.lp-map');
  if (map) map.focus({ preventScroll: true });  // the arrow keys move z at once
}

mountStandalone();
