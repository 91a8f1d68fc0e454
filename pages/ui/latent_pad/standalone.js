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

// A packed export -> the plain one (pack_export / unpack_export in standalone_pad.py): byte planes
// of the float32 values, high byte first, the low bytes that were rounded off left 0. Each
// "weight" / "bias" becomes a Float32Array view of the one inflated buffer.
async function unpackExport(exp) {
  if (!exp || !exp.packed) return exp;
  const { encoding, bytes_per_value: keep, n, data } = exp.packed;
  const planes = await inflate(bytesFromBase64(data), encoding);
  if (planes.length !== keep * n) throw new Error(`packed weights: expected ${keep * n} bytes, got ${planes.length}`);
  const raw = new Uint8Array(4 * n);
  for (let p = 0; p < keep; p++) {
    const from = p * n, byte = 3 - p;  // little-endian float32: plane 0 is byte 3 (sign and exponent)
    for (let i = 0; i < n; i++) raw[4 * i + byte] = planes[from + i];
  }
  let values = new Float32Array(raw.buffer);
  if (!LITTLE_ENDIAN) {  // the bytes are little-endian float32 whatever the machine
    const view = new DataView(raw.buffer);
    values = Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
  }
  const layers = exp.layers.map((l) => {
    const out = { ...l };
    for (const key of ['weight', 'bias']) if (l[key] && typeof l[key] === 'object') out[key] = values.subarray(l[key].at, l[key].at + l[key].n);
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
