// pad.js, as the component's script (Python's concatenation, from the fixtures): the
// window.__latentPad* test hooks exist only when the data asks for them.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadComponent, loadFixtures } = require('./load.js');

const FX = loadFixtures();
const hooks = (win) => Object.keys(win).filter((k) => k.startsWith('__latentPad')).sort();
const noPad = (testHooks) => ({ data: { test_hooks: testHooks }, parentElement: { querySelector: () => null } });

test('the script is decoder.js, maps.js, meter.js, layers.js and pad.js, with one default export', () => {
  const js = FX.component_js;
  const at = ['function runDecoder(', 'function lift(', 'function holeMeter(', 'function contourSegments(', 'class Pad {'].map((s) => js.indexOf(s));
  assert.ok(at.every((i, k) => i >= 0 && (k === 0 || at[k - 1] < i)), `order ${at}`);
  assert.equal(js.match(/^export default function/gm).length, 1);
});

test('without data.test_hooks the page gets no window.__latentPad* names', () => {
  const win = {};
  const main = loadComponent(FX.component_js, win);
  assert.deepEqual(hooks(win), []);
  main(noPad(false));
  main(noPad(undefined));
  assert.deepEqual(hooks(win), []);
});

test('with data.test_hooks the hooks are there', () => {
  const win = {};
  loadComponent(FX.component_js, win)(noPad(true));
  assert.deepEqual(hooks(win), ['__latentPadCache', '__latentPadDecode', '__latentPadLast', '__latentPadPads',
    '__latentPadState', '__latentPadStats', '__latentPadTest']);
  assert.equal(win.__latentPadLast, null);
  assert.equal(win.__latentPadState(), null);
  assert.equal(typeof win.__latentPadStats.reset, 'function');
  // decode from an export dict, as the browser tests do
  const c = FX.decoders[1], out = win.__latentPadTest.decodeExport(c.export, [c.z[0]])[0];
  assert.ok(out.every((v, i) => Math.abs(v - c.expected[0][i]) <= 1e-5));
});
