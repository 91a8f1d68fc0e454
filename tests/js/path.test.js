// pad.js's record of a drag's path (the z's the Live pad sends on release, for its GIF):
// bounded however long the drag, evenly spread over all of it, ending at the released z.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { PAD_DIR } = require('./load.js');

function pathRecorder() {
  const source = fs.readFileSync(path.join(PAD_DIR, 'pad.js'), 'utf8').replace(/^export default function/m, 'const __default = function');
  const body = `'use strict';\n${source}\n;return { PATH_MAX, newPath, recordPath, pathOf };`;
  return new Function('window', body)({});  // eslint-disable-line no-new-func
}

test('a short drag reports every z it passed, then the released one', () => {
  const { newPath, recordPath, pathOf } = pathRecorder();
  const rec = newPath();
  for (let i = 0; i < 5; i++) recordPath(rec, Float64Array.of(i, 2 * i));
  assert.deepEqual(pathOf(rec, Float64Array.of(9, 9)), [[0, 0], [1, 2], [2, 4], [3, 6], [4, 8], [9, 9]]);
  assert.deepEqual(pathOf(undefined, Float64Array.of(1, 1)), []);  // no drag (arrow keys): no path
});

test('a long drag keeps at most PATH_MAX + 1 z, evenly spaced from its start to its end', () => {
  const { PATH_MAX, newPath, recordPath, pathOf } = pathRecorder();
  const rec = newPath();
  const moves = 10000;
  for (let i = 0; i < moves; i++) recordPath(rec, [i]);
  const zs = pathOf(rec, [moves - 1]).map((z) => z[0]);
  assert.ok(zs.length <= PATH_MAX + 1 && zs.length > PATH_MAX / 2, `${zs.length} z's`);
  assert.equal(zs[0], 0);
  assert.equal(zs[zs.length - 1], moves - 1);
  const steps = new Set(zs.slice(1, -1).map((z, i) => z - zs[i]));
  assert.equal(steps.size, 1, `uneven steps ${[...steps]}`);  // one stride all along
});
