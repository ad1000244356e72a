/**
 * ROC curve points for plotting novelty detection (known = positive, higher score = more likely
 * known), and a downsampling that keeps a plot small. The areas themselves (AUROC, AUPR, FPR95) are
 * computed exactly from all scores in `novelty.ts`; these points are only for drawing.
 */

/**
 * sklearn `roc_curve(..., drop_intermediate=False)` with known as the positive class: one point per
 * distinct score (a tie group enters at once), scores from high to low, preceded by (0, 0).
 * Shapes: known [P], novel [N], both non-empty and finite → fpr, tpr of equal length >= 2, both
 * non-decreasing from 0 to 1.
 */
export function rocCurve(known: ArrayLike<number>, novel: ArrayLike<number>): { fpr: number[]; tpr: number[] } {
  if (known.length === 0 || novel.length === 0) throw new Error(`rocCurve: needs known and novel scores, got ${known.length} and ${novel.length}`);
  const items: { s: number; pos: boolean }[] = [];
  const add = (xs: ArrayLike<number>, pos: boolean, what: string): void => {
    for (let i = 0; i < xs.length; i++) {
      const s = xs[i]!;
      if (!Number.isFinite(s)) throw new Error(`rocCurve: ${what} score ${i} is not finite (${s})`);
      items.push({ s, pos });
    }
  };
  add(known, true, 'known');
  add(novel, false, 'novel');
  items.sort((a, b) => b.s - a.s);
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < items.length; i++) {
    if (items[i]!.pos) tp++;
    else fp++;
    if (i === items.length - 1 || items[i + 1]!.s !== items[i]!.s) {
      fpr.push(fp / novel.length);
      tpr.push(tp / known.length);
    }
  }
  return { fpr, tpr };
}

/**
 * At most `maxPoints` (>= 2) points of a curve, evenly spaced by index, always keeping the first
 * and the last. Points are kept as they are (no interpolation), so the drawn curve stays a subset
 * of the exact one.
 */
export function downsampleCurve(curve: { fpr: number[]; tpr: number[] }, maxPoints: number): { fpr: number[]; tpr: number[] } {
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new Error(`downsampleCurve: maxPoints must be an integer >= 2, got ${maxPoints}`);
  const L = curve.fpr.length;
  if (L !== curve.tpr.length) throw new Error(`downsampleCurve: fpr and tpr differ in length (${L} vs ${curve.tpr.length})`);
  if (L <= maxPoints) return { fpr: [...curve.fpr], tpr: [...curve.tpr] };
  const fpr: number[] = [];
  const tpr: number[] = [];
  // Indices round(k (L - 1) / (maxPoints - 1)) are strictly increasing because L > maxPoints.
  for (let k = 0; k < maxPoints; k++) {
    const i = Math.round((k * (L - 1)) / (maxPoints - 1));
    fpr.push(curve.fpr[i]!);
    tpr.push(curve.tpr[i]!);
  }
  return { fpr, tpr };
}
