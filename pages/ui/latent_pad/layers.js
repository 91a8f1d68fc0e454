// The Live pad's map layers (vae/analysis/layers.py computes them, browser_export.export_layer
// sends them): decoding the exports, and the one piece of geometry the browser does itself, q(z)'s
// contour lines at a density level (marching squares over the grid's cell centres, linear
// interpolation on the edges). Pure: no DOM, no window. Uses FORMAT and f32 from decoder.js.

function buildLayer(exp) {
  if (!exp || exp.format !== FORMAT) throw new Error('not a latent-explorer layer export');
  const l = { ...exp };
  if (exp.layer === 'landscape') {
    const bin = atob(exp.rgba), bytes = new Uint8ClampedArray(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    if (bytes.length !== exp.n * exp.n * 4) throw new Error(`landscape: ${bytes.length} bytes for ${exp.n} x ${exp.n} RGBA`);
    l.rgba = bytes;
  } else if (exp.layer === 'aggregate') {
    l.density = exp.density ? f32(exp.density) : null;
    l.contours = l.density ? exp.levels.map((level) => contourSegments(l.density, exp.n, exp.box, level)) : [];
  }
  return l;
}

// Segments (x1, y1, x2, y2, ... in map units) where the n x n grid (rows bottom-up, as the
// grid's ys; cell centres over `box`) crosses `level`.
function contourSegments(grid, n, box, level) {
  const [[x0, x1], [y0, y1]] = box, dx = (x1 - x0) / n, dy = (y1 - y0) / n;
  const X = (c) => x0 + (c + 0.5) * dx, Y = (r) => y0 + (r + 0.5) * dy;
  const out = [];
  // a point on the edge between grid nodes a and b where the value crosses level
  const cut = (ax, ay, va, bx, by, vb) => {
    const t = (level - va) / (vb - va);
    return [ax + t * (bx - ax), ay + t * (by - ay)];
  };
  for (let r = 0; r + 1 < n; r++) for (let c = 0; c + 1 < n; c++) {
    // corners counter-clockwise from bottom-left: (c, r), (c+1, r), (c+1, r+1), (c, r+1)
    const v = [grid[r * n + c], grid[r * n + c + 1], grid[(r + 1) * n + c + 1], grid[(r + 1) * n + c]];
    const px = [X(c), X(c + 1), X(c + 1), X(c)], py = [Y(r), Y(r), Y(r + 1), Y(r + 1)];
    const pts = [];
    for (let e = 0; e < 4; e++) {
      const a = e, b = (e + 1) % 4;
      if ((v[a] >= level) !== (v[b] >= level)) pts.push(cut(px[a], py[a], v[a], px[b], py[b], v[b]));
    }
    if (pts.length === 2) out.push(pts[0][0], pts[0][1], pts[1][0], pts[1][1]);
    else if (pts.length === 4) {  // a saddle: pair the crossings by the cell's mean, as the usual rule does
      const inside = (v[0] + v[1] + v[2] + v[3]) / 4 >= level, first = v[0] >= level;
      const [p, q, s, t] = inside === first ? [pts[0], pts[3], pts[1], pts[2]] : [pts[0], pts[1], pts[2], pts[3]];
      out.push(p[0], p[1], q[0], q[1], s[0], s[1], t[0], t[1]);
    }
  }
  return Float64Array.from(out);
}

// The k-sigma outline of one ellipse (layers.ellipse_outline): n points, closed.
function ellipsePoints(centre, semi, angle, k = 1, n = 49) {
  const out = [], c = Math.cos(angle), s = Math.sin(angle);
  for (let i = 0; i < n; i++) {
    const t = (i === n - 1 ? 0 : i) * 2 * Math.PI / (n - 1), x = k * semi[0] * Math.cos(t), y = k * semi[1] * Math.sin(t);
    out.push([centre[0] + c * x - s * y, centre[1] + s * x + c * y]);
  }
  return out;
}
