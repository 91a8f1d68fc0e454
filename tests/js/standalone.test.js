// standalone.js: the standalone file's unpacking of packed weights gives, value for value, the
// float32 weights Python's unpack_decoder gives (fixtures from tests/js/export_fixtures.py).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { loadFixtures, PAD_DIR } = require('./load.js');

const FX = loadFixtures();

// standalone.js ends by mounting the pad on the page; here only its unpacking is taken
function loadUnpack() {
  const source = fs.readFileSync(path.join(PAD_DIR, 'standalone.js'), 'utf8');
  const body = source.replace(/^mountStandalone\(\);\s*$/m, '');
  assert.notEqual(body, source, 'standalone.js should end by calling mountStandalone()');
  return new Function(`'use strict';\n${body}\n;return unpackExport;`)();  // eslint-disable-line no-new-func
}

const unpackExport = loadUnpack();

for (const c of FX.standalone) {
  test(`unpacks like Python: ${c.name}`, async () => {
    const plain = await unpackExport(c.packed);
    assert.equal(plain.packed, undefined);
    let seen = 0;
    plain.layers.forEach((l, i) => {
      for (const key of ['weight', 'bias']) {
        if (!(key in l)) continue;
        const want = c.values[`${i}.${key}`], got = l[key];
        assert.ok(got instanceof Float32Array, `${i}.${key} is a Float32Array`);
        assert.equal(got.length, want.length, `${i}.${key} length`);
        got.forEach((v, j) => assert.ok(Object.is(v, want[j]), `${i}.${key}[${j}]: ${v} != ${want[j]}`));
        seen += 1;
      }
    });
    assert.equal(seen, Object.keys(c.values).length);
  });
}

test('a blob of the wrong length is refused with a message', async () => {
  const packed = structuredClone(FX.standalone[0].packed);
  packed.packed.n += 1;
  await assert.rejects(unpackExport(packed), /packed weights: expected/);
});
