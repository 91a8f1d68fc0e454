// The standalone pad's host: what Streamlit does for the Live pad, done by the page itself
// (vae/services/standalone_pad.py writes the file). It comes last in the same module script as
// decoder.js, maps.js and pad.js, whose default export is renamed `mountPad` at export.
//
// It reads the data dict the Live pad page would send (embedded as JSON), inflates the packed
// decoder weights into the usual base64 float32 exports with the browser's own
// DecompressionStream (nothing is fetched), and calls the pad's entry once, with no-op state
// and trigger setters: there is no Python to hear a release.
function bytesFromBase64(text) {
  const bin = atob(text), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The browser's own base64 encoder (a data: URL read from memory, nothing fetched): far faster
// than building a binary string in JavaScript for megabytes of weights.
function base64FromBytes(bytes) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(',') + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob([bytes]));
  });
}

async function inflate(bytes, encoding) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(encoding));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// A packed decoder export -> the plain one (pack_decoder / unpack_decoder in standalone_pad.py):
// byte planes of the float32 values, high byte first, the low bytes that were rounded off left 0.
async function unpackDecoder(exp) {
  if (!exp || !exp.packed) return exp;
  const { encoding, bytes_per_value: keep, n, data } = exp.packed;
  const planes = await inflate(bytesFromBase64(data), encoding);
  if (planes.length !== keep * n) throw new Error(`packed weights: expected ${keep * n} bytes, got ${planes.length}`);
  const raw = new Uint8Array(4 * n);
  for (let p = 0; p < keep; p++) {
    const from = p * n, byte = 3 - p;  // little-endian float32: plane 0 is byte 3 (sign and exponent)
    for (let i = 0; i < n; i++) raw[4 * i + byte] = planes[from + i];
  }
  const tensor = (ref) => base64FromBytes(raw.subarray(4 * ref.at, 4 * (ref.at + ref.n)));
  const layers = await Promise.all(exp.layers.map(async (l) => {
    const out = { ...l };
    for (const key of ['weight', 'bias']) if (l[key] && typeof l[key] === 'object') out[key] = await tensor(l[key]);
    return out;
  }));
  const { packed, ...rest } = exp;  // eslint-disable-line no-unused-vars
  return { ...rest, layers };
}

async function mountStandalone() {
  const host = document.getElementById('latent-pad-host');
  const data = JSON.parse(document.getElementById('latent-pad-data').textContent);
  try {
    const exports = await Promise.all(data.decoders.map((d) => unpackDecoder(d.export)));
    data.decoders.forEach((d, k) => { d.export = exports[k]; });
  } catch (err) {
    host.querySelector('.lp-note').textContent = `The decoder weights could not be read: ${err.message}`;
    return;
  }
  mountPad({ data, parentElement: host, setStateValue() {}, setTriggerValue() {} });
  const map = host.querySelector('.lp-map');
  if (map) map.focus({ preventScroll: true });  // the arrow keys move z at once
}

mountStandalone();
