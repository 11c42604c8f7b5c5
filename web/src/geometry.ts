/**
 * Scroll geometry of the virtualized flow list: rows of {@link ROW_H} px, of which only those around the
 * viewport are drawn. Browsers cap an element's height (Chromium ~33.5M px, Firefox ~17.9M px), so past
 * {@link MAX_LIST_PX} the scroll range is scaled down and the rows are drawn around the scroll position.
 *
 * @module
 */

/** Height of one list row in px (also in style.css). */
export const ROW_H = 24;
/** The tallest spacer the list uses (625k rows unscaled). */
export const MAX_LIST_PX = 15_000_000;

/** Where things are in a list of `total` rows shown in a viewport of `height` px. */
export interface Geometry {
  /** Height of the scrolled spacer element. */
  spacer: number;
  /** The unscaled offset (row index * ROW_H) at the top of the viewport for a `scrollTop`. */
  virtualTop(scrollTop: number): number;
  /** The `scrollTop` that puts the unscaled offset `v` at the top of the viewport. */
  scrollTopFor(v: number): number;
  /** Where row `i` is drawn inside the spacer, for the viewport at `scrollTop`. */
  rowTop(i: number, scrollTop: number): number;
}

/** The geometry of a list of `total` rows in a viewport of `height` px (`max`: the spacer's cap). */
export function geometry(total: number, height: number, max = MAX_LIST_PX): Geometry {
  const full = total * ROW_H;
  const spacer = Math.min(full, max);
  const scaled = full > spacer && spacer > height;
  const virtualTop = (t: number) => scaled ? t * (full - height) / (spacer - height) : t;
  return {
    spacer,
    virtualTop,
    scrollTopFor: (v) => scaled ? v * (spacer - height) / (full - height) : v,
    rowTop: (i, t) => scaled ? t + i * ROW_H - virtualTop(t) : i * ROW_H,
  };
}
