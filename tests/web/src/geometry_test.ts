import assert from "node:assert/strict";
import { geometry, MAX_LIST_PX, ROW_H } from "../../../web/src/geometry.ts";

Deno.test("list geometry: below the cap, rows sit at i * ROW_H and the spacer is every row", () => {
  const g = geometry(100_000, 800);
  assert.equal(g.spacer, 100_000 * ROW_H);
  assert.equal(g.virtualTop(12_345), 12_345);
  assert.equal(g.scrollTopFor(777), 777);
  assert.equal(g.rowTop(500, 9_999), 500 * ROW_H);
});

Deno.test("list geometry: past the cap the scroll range is scaled, ends map to ends, rows stay ROW_H apart", () => {
  const total = 2_000_000;
  const h = 800;
  const g = geometry(total, h);
  assert.equal(g.spacer, MAX_LIST_PX);
  const maxScroll = g.spacer - h;
  // top and bottom of the scroll range are the first and the last screen of rows
  assert.equal(g.virtualTop(0), 0);
  assert.equal(g.virtualTop(maxScroll), total * ROW_H - h);
  const last = total - 1;
  const bottom = g.rowTop(last, maxScroll);
  assert.ok(bottom >= maxScroll && bottom + ROW_H <= maxScroll + h + 1e-6, `last row at ${bottom}`);
  // half way: the middle rows, drawn inside the viewport, ROW_H apart
  const mid = maxScroll / 2;
  const firstRow = Math.floor(g.virtualTop(mid) / ROW_H);
  assert.ok(Math.abs(firstRow - (total - h / ROW_H) / 2) < 2, `first row ${firstRow}`);
  const y = g.rowTop(firstRow, mid);
  assert.ok(y > mid - ROW_H && y <= mid, `row at ${y}, viewport at ${mid}`);
  assert.equal(g.rowTop(firstRow + 1, mid) - y, ROW_H);
  // scrollTopFor inverts virtualTop
  assert.ok(Math.abs(g.virtualTop(g.scrollTopFor(1_234_567 * ROW_H)) - 1_234_567 * ROW_H) < 1e-3);
});

Deno.test("list geometry: an empty list or one shorter than the viewport", () => {
  assert.equal(geometry(0, 800).spacer, 0);
  const g = geometry(3, 800, 10);
  assert.equal(g.virtualTop(0), 0);
  assert.equal(g.rowTop(2, 0), 2 * ROW_H);
});
