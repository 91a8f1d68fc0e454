// decoder.js: the browser's weights decoding and decoder forward pass against PyTorch's own
// outputs (fixtures from tests/js/export_fixtures.py).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadMaths, loadFixtures } = require('./load.js');

const M = loadMaths();
const FX = loadFixtures();
const ATOL = 1e-5;  // float64 sums of float32 weights against PyTorch's float32 decoder

function maxAbsDiff(a, b) {
  assert.equal(a.length, b.length, 'length');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

test('f32: base64 of little-endian float32 decodes bit-exactly', () => {
  const got = M.f32(FX.f32.b64);
  assert.ok(got instanceof Float32Array);
  assert.equal(got.length, FX.f32.values.length);
  got.forEach((v, i) => assert.ok(Object.is(v, FX.f32.values[i]), `value ${i}: ${v} != ${FX.f32.values[i]}`));  // -0 too
});

test('f32 takes a Float32Array as it is (the standalone file\'s inflated weights: no base64 round trip)', () => {
  const values = Float32Array.from(FX.f32.values);
  assert.equal(M.f32(values), values);
});

test('f32 refuses a partial float', () => {
  assert.throws(() => M.f32(Buffer.from('abcdef').toString('base64')));
});

for (const c of FX.decoders) {
  test(`decoder equals PyTorch: ${c.name}`, () => {
    const exp = JSON.parse(JSON.stringify(c.export));  // through JSON, as the browser gets it
    const dec = M.buildDecoder(exp);
    assert.equal(dec.latentDim, exp.latent_dim);
    assert.deepEqual(dec.imageShape, c.shape);
    c.z.forEach((z, k) => {
      const out = M.runDecoder(dec, z);
      assert.ok(maxAbsDiff(out, c.expected[k]) <= ATOL, `z #${k}: max |browser - torch| = ${maxAbsDiff(out, c.expected[k])}`);
    });
  });
}

test('a decoder is reused: each run gives the same pixels for the same z', () => {
  const c = FX.decoders[0], dec = M.buildDecoder(c.export);
  const first = Array.from(M.runDecoder(dec, c.z[0]));
  M.runDecoder(dec, c.z[1]);
  assert.deepEqual(Array.from(M.runDecoder(dec, c.z[0])), first);
});

test('buildDecoder refuses what it cannot evaluate', () => {
  const exp = FX.decoders[0].export;
  assert.throws(() => M.buildDecoder({ ...exp, format: 'other' }), /not a latent-explorer decoder export/);
  assert.throws(() => M.buildDecoder({ ...exp, layers: [...exp.layers, { type: 'tanh' }] }), /unknown layer type tanh/);
  assert.throws(() => M.buildDecoder({ ...exp, latent_dim: exp.latent_dim + 1 }), /linear layer expects/);
  assert.throws(() => M.buildDecoder({ ...exp, image_shape: [1, 9, 9] }), /decoder gives/);
});
