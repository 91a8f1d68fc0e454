// maps.js: lift / locate against vae.analysis.maps.LatentMap (fixtures from tests/js/export_fixtures.py),
// and the numbers the pad draws with.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadMaths, loadFixtures } = require('./load.js');

const M = loadMaths();
const FX = loadFixtures();
const ATOL = 1e-5;

function close(got, want, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= ATOL, `${what}[${i}]: ${got[i]} != ${want[i]}`);
  }
}

for (const c of FX.maps) {
  test(`lift and locate equal LatentMap: ${c.name}`, () => {
    const m = M.buildMap(JSON.parse(JSON.stringify(c.export)));
    assert.equal(m.n, c.points.length);
    c.points.forEach(([x, y], i) => { assert.equal(m.points[2 * i], Math.fround(x)); assert.equal(m.points[2 * i + 1], Math.fround(y)); });
    c.p.forEach((p, k) => close(Array.from(M.lift(m, p)), c.lift[k], `lift(p #${k})`));
    c.z.forEach((z, k) => close(Array.from(M.locate(m, z)), c.locate[k], `locate(z #${k})`));
    for (let k = 0; k < (c.exact_hits || 0); k++) {  // a map point lifts to its own code exactly
      const z = M.lift(m, c.p[k]);
      z.forEach((v, d) => assert.ok(Math.abs(v - c.z[k][d]) <= 1e-6, `exact hit #${k}, z${d + 1}: ${v} != ${c.z[k][d]}`));
    }
  });
}

test('buildMap refuses another format', () => {
  assert.throws(() => M.buildMap({ ...FX.maps[0].export, format: 'other' }), /not a latent-explorer map export/);
});

test('sliderGrid: a round step near a 400th of the range, and 0 on the grid', () => {
  assert.deepEqual(M.sliderGrid(-3, 3), { min: '-3.00', max: '3.00', step: '0.02' });
  assert.deepEqual(M.sliderGrid(0.3, 0.94), { min: '0.000', max: '0.940', step: '0.002' });  // widened down to 0
  for (const [lo, hi] of [[-3, 3], [0.3, 0.94], [-17.3, -2.1], [-0.004, 0.011], [5, 5]]) {
    const g = M.sliderGrid(lo, hi), min = +g.min, max = +g.max, step = +g.step;
    assert.ok(min <= Math.min(lo, 0) && max >= Math.max(hi, 0), `[${lo}, ${hi}] inside [${min}, ${max}]`);
    const k = -min / step;
    assert.ok(Math.abs(k - Math.round(k)) < 1e-9, `0 is on the grid of [${lo}, ${hi}]`);
    if (lo <= 0 && hi >= 0) assert.ok((max - min) / step <= 400, `[${lo}, ${hi}]: a few hundred steps, not thousands`);
  }
});

test('niceTicks: round steps inside the range, at most `count` of them', () => {
  assert.deepEqual(M.niceTicks(-2.5, 2.5, 5), { ticks: [-2, -1, 0, 1, 2], step: 1 });
  assert.deepEqual(M.niceTicks(0, 1, 5), { ticks: [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1], step: 0.2 });
  const { ticks, step } = M.niceTicks(-0.37, 0.52, 4);
  assert.equal(step, 0.5);  // 0.2 would give 4.45 steps across the range
  assert.deepEqual(ticks, [0, 0.5]);
  assert.ok(ticks.every((t) => t >= -0.37 && t <= 0.52) && ticks.includes(0));
});

test('fmt and clamp', () => {
  assert.equal(M.fmt(1.234), '+1.23');
  assert.equal(M.fmt(-0.5, 1), '\u22120.5');
  assert.equal(M.clamp(5, 0, 1), 1);
  assert.equal(M.clamp(-5, 0, 1), 0);
  assert.equal(M.clamp(0.25, 0, 1), 0.25);
});
