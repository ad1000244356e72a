/**
 * ROC curve points for plotting novelty detection (known = positive, higher score = more likely
 * known), and a downsampling that keeps a plot small. The areas themselves (AUROC, AUPR, FPR95) are
 * computed exactly from all scores in `novelty.ts`; these points are only for drawing.
 */
import { clfCurve } from './novelty.js';

/**
 * sklearn `roc_curve(..., drop_intermediate=False)` with known as the positive class: one point per
 * distinct score (a tie group enters at once), scores from high to low, preceded by (0, 0).
 * Shapes: known [P], novel [N], both non-empty and finite → fpr, tpr of equal length >= 2, both
 * non-decreasing from 0 to 1.
 */
export function rocCurve(known: ArrayLike<number>, novel: ArrayLike<number>): { fpr: number[]; tpr: number[] } {
  const { tps, fps, P, N } = clfCurve('rocCurve', known, novel);
  return { fpr: [0, ...fps.map((fp) => fp / N)], tpr: [0, ...tps.map((tp) => tp / P)] };
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
