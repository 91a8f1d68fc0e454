// layers.js: q(z)'s contour lines by marching squares, on a density whose contours are known
// (a unit Gaussian's: circles), and the ellipses' outlines.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadMaths } = require('./load.js');

const M = loadMaths();

test('the contour of a unit Gaussian at a level is the circle of its radius', () => {
  const n = 64, box = [[-4, 4], [-3, 5]], grid = new Float64Array(n * n);
  const cx = 0.3, cy = 1.1;
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
    const x = -4 + (c + 0.5) * 8 / n, y = -3 + (r + 0.5) * 8 / n;
    grid[r * n + c] = Math.exp(-0.5 * ((x - cx) ** 2 + (y - cy) ** 2)) / (2 * Math.PI);
  }
  for (const radius of [1, 2]) {
    const level = Math.exp(-0.5 * radius * radius) / (2 * Math.PI);
    const seg = M.contourSegments(grid, n, box, level);
    assert.ok(seg.length >= 4 * 20, `${seg.length / 4} segments`);
    let worst = 0;
    for (let i = 0; i < seg.length; i += 2) worst = Math.max(worst, Math.abs(Math.hypot(seg[i] - cx, seg[i + 1] - cy) - radius));
    assert.ok(worst < 0.03, `radius ${radius}: off by ${worst}`);  // linear interpolation on a 0.125 grid
  }
  assert.equal(M.contourSegments(grid, n, box, 1).length, 0);  // above the peak: no line
});

test('an ellipse outline has its semi-axes along its angle', () => {
  const pts = M.ellipsePoints([1, 2], [3, 0.5], Math.PI / 2, 1, 49);
  assert.equal(pts.length, 49);
  assert.deepEqual(pts[0], pts[48]);
  assert.ok(Math.abs(pts[0][0] - 1) < 1e-12 && Math.abs(pts[0][1] - 5) < 1e-12);  // the major axis points up
});

test('buildLayer checks the landscape\'s size', () => {
  const exp = { format: 'latent-explorer-web', layer: 'landscape', n: 2, box: [[0, 1], [0, 1]], rgba: Buffer.alloc(12).toString('base64') };
  assert.throws(() => M.buildLayer(exp), /12 bytes for 2 x 2/);
  assert.equal(M.buildLayer({ ...exp, rgba: Buffer.alloc(16).toString('base64') }).rgba.length, 16);
});
