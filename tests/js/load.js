// Loads the Live pad's front-end files for Node's tests the way the browser gets them: one
// script, the files concatenated in the component's order (pages/ui/latent_pad/__init__.py,
// JS_MODULES), evaluated in strict mode (as a module is), with the names a test needs returned.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const PAD_DIR = path.resolve(__dirname, '..', '..', 'pages', 'ui', 'latent_pad');
const PURE_MODULES = ['decoder.js', 'maps.js', 'meter.js', 'layers.js'];  // the pure maths, before pad.js
const MATHS = ['FORMAT', 'f32', 'buildDecoder', 'runDecoder', 'buildMap', 'idw', 'lift', 'locate',
  'sliderGrid', 'niceTicks', 'fmt', 'clamp', 'buildNet', 'runNet', 'buildJudge', 'softmax', 'judgeImage', 'buildEncoder',
  'encodeMu', 'roundTrip', 'buildPosterior', 'logQOverP', 'holeMeter', 'ratioText', 'meterLines', 'buildLayer',
  'contourSegments', 'ellipsePoints'];

function evaluate(source, names, globals = {}) {
  const keys = Object.keys(globals);
  const body = `'use strict';\n${source}\n;return { ${names.join(', ')} };`;
  return new Function(...keys, body)(...keys.map((k) => globals[k]));  // eslint-disable-line no-new-func
}

// decoder.js, maps.js, meter.js, layers.js: no DOM, no window (a window in their scope would be a bug: undefined here)
function loadMaths() {
  const source = PURE_MODULES.map((f) => fs.readFileSync(path.join(PAD_DIR, f), 'utf8')).join('\n');
  return evaluate(source, MATHS, { window: undefined, document: undefined });
}

// The whole script the component sends (from the fixtures: Python's own concatenation), with a
// stand-in `window`; returns its default export, the function Streamlit calls on every run.
function loadComponent(js, window) {
  const source = js.replace(/^export default function/m, 'const __default = function');
  if (source === js) throw new Error('the component script has no `export default function`');
  return evaluate(source, ['__default'], { window }).__default;
}

// The fixtures Python wrote (tests/js/export_fixtures.py): LATENT_PAD_FIXTURES names the file.
function loadFixtures() {
  const file = process.env.LATENT_PAD_FIXTURES;
  if (!file) {
    throw new Error('LATENT_PAD_FIXTURES is not set: run `python3 tests/js/export_fixtures.py DIR` and set it to '
      + 'DIR/fixtures.json (pytest tests/test_pad_js.py does both)');
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

module.exports = { loadMaths, loadComponent, loadFixtures, PAD_DIR };
