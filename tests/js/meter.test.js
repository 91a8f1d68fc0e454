// meter.js: the hole meter's maths in the browser against PyTorch and vae/analysis/layers.py
// (fixtures from tests/js/export_fixtures.py): the judge's probabilities, the encoder's mu, a
// conv2d / max-pool with odd shapes, q(z)/p(z) and the whole meter at z. Within 1e-4 (issue 11).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadMaths, loadFixtures } = require('./load.js');

const M = loadMaths();
const FX = loadFixtures();
const TOL = 1e-4;

function maxAbsDiff(a, b) {
  assert.equal(a.length, b.length, 'length');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
const json = (x) => JSON.parse(JSON.stringify(x));  // as the browser gets it

for (const c of FX.judges) {
  test(`judge probabilities equal PyTorch's softmax: ${c.name}`, () => {
    const judge = M.buildJudge(json(c.export));
    c.x.forEach((x, k) => {
      const v = M.judgeImage(judge, x), want = c.probs[k];
      assert.ok(maxAbsDiff(v.probs, want) <= TOL, `image ${k}: ${maxAbsDiff(v.probs, want)}`);
      const top = want.indexOf(Math.max(...want));
      assert.equal(v.cls, top);
      assert.equal(v.name, c.export.class_names[top]);
      assert.ok(Math.abs(v.confidence - want[top]) <= TOL);
    });
  });
}

for (const c of FX.encoders) {
  test(`encoder mu equals PyTorch: ${c.name}`, () => {
    const enc = M.buildEncoder(json(c.export));
    c.x.forEach((x, k) => assert.ok(maxAbsDiff(M.encodeMu(enc, x), c.mu[k]) <= TOL, `image ${k}`));
  });
}

test(`odd conv2d and max-pool equal PyTorch: ${FX.odd_net.name}`, () => {
  const net = M.buildNet(json(FX.odd_net.export));
  FX.odd_net.x.forEach((x, k) => {
    const before = x.slice();
    assert.ok(maxAbsDiff(M.runNet(net, x), FX.odd_net.y[k]) <= 1e-5, `input ${k}`);
    assert.deepEqual(x, before);  // the input is never written to
  });
});

test('q(z)/p(z) equals layers.log_aggregate_over_prior (relative 1e-4 on the ratio)', () => {
  const post = M.buildPosterior(json(FX.posterior.export));
  FX.posterior.z.forEach((z, k) => {
    const got = M.logQOverP(post, z), want = FX.posterior.expected[k];
    // |log a - log b| <= 1e-4 is |a / b - 1| <= 1e-4 to first order
    assert.ok(Math.abs(got - want) <= TOL, `z #${k}: log ratio ${got} against ${want}`);
  });
});

test('an AE has no q(z) density: null, as Python\'s None', () => {
  const exp = { ...json(FX.posterior.export), logvar: null };
  assert.equal(M.logQOverP(M.buildPosterior(exp), [0, 0, 0]), null);
});

test('the hole meter at z equals layers.hole_meter (class, confidence, q(z)/p(z), round trip)', () => {
  const m = FX.meter, dec = M.buildDecoder(json(m.decoder));
  const parts = { judge: M.buildJudge(json(m.judge)), encoder: M.buildEncoder(json(m.encoder)), posterior: M.buildPosterior(json(m.posterior)) };
  for (const c of m.cases) {
    const got = M.holeMeter(parts, c.z, M.runDecoder(dec, c.z));
    assert.equal(got.cls, c.cls);
    assert.ok(Math.abs(got.confidence - c.confidence) <= TOL, `confidence ${got.confidence} against ${c.confidence}`);
    assert.ok(Math.abs(got.logQOverP - c.log_q_over_p) <= TOL, `log q/p ${got.logQOverP} against ${c.log_q_over_p}`);
    assert.ok(Math.abs(got.roundTrip - c.round_trip) <= TOL, `round trip ${got.roundTrip} against ${c.round_trip}`);
  }
  const none = M.holeMeter({ ...parts, judge: null, posterior: null }, m.cases[0].z, M.runDecoder(dec, m.cases[0].z));
  assert.equal(none.cls, null); assert.equal(none.logQOverP, null);
  assert.deepEqual(M.meterLines(none, 'ae', false).slice(0, 2), ['judge: none (no labels)', 'q(z)/p(z): n/a (AE codes are points)']);
});

test('a standalone file without the encoder: no round trip, and the meter says what the file left out', () => {
  const m = FX.meter, dec = M.buildDecoder(json(m.decoder)), c = m.cases[0];
  const parts = { judge: M.buildJudge(json(m.judge)), encoder: null, posterior: M.buildPosterior(json(m.posterior)) };
  const got = M.holeMeter(parts, c.z, M.runDecoder(dec, c.z));
  assert.equal(got.roundTrip, null);
  assert.equal(got.cls, c.cls);
  assert.ok(Math.abs(got.logQOverP - c.log_q_over_p) <= TOL);
  const lines = M.meterLines(got, 'vae', true, false, ['encoder']);
  assert.match(lines[0], /^judge: /); assert.match(lines[1], /^q\(z\)\/p\(z\): /);
  assert.equal(lines[2], 'round trip: not in this file');
  const bare = M.meterLines({ name: null, confidence: null, logQOverP: null, roundTrip: null }, 'vae', false, false, ['judge', 'posterior', 'encoder']);
  assert.deepEqual(bare, ['judge: not in this file', 'q(z)/p(z): not in this file', 'round trip: not in this file']);
});

test('the meter\'s lines: confidence to 0.01 %, the ratio as the pages write it', () => {
  const lines = M.meterLines({ cls: 7, name: '7', confidence: 0.93271, logQOverP: Math.log(0.42), roundTrip: 0.0512 }, 'vae', true);
  assert.deepEqual(lines, ['judge: 7, 93.27 % sure', 'q(z)/p(z): 0.42', 'round trip: 0.05']);
  assert.match(M.meterLines({ name: '1', confidence: 0.3, logQOverP: -50, roundTrip: 2 }, 'vae', true)[0], /unrecognisable/);
  assert.equal(M.ratioText(-50 * Math.LN10), '\u2248 1e\u221250');
  assert.equal(M.meterLines({ name: null, confidence: null, logQOverP: null, roundTrip: 1 }, 'vae', false, true)[0], 'judge: being trained\u2026');
});

test('buildNet refuses what it cannot evaluate', () => {
  const exp = json(FX.judges[0].export);
  assert.throws(() => M.buildNet({ ...exp, format: 'x' }), /not a latent-explorer net export/);
  assert.throws(() => M.buildNet({ ...exp, layers: [...exp.layers, { type: 'tanh' }] }), /unknown layer type tanh/);
  assert.throws(() => M.buildJudge({ ...exp, class_names: ['a', 'b'] }), /scores for 2 classes/);
  assert.throws(() => M.buildNet({ ...exp, image_shape: [2, 8, 8] }), /expects 1 channels/);
});
