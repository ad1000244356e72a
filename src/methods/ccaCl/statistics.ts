/**
 * The accumulated statistics of CCA-CL (zhwhu/CCA-CL `utils/inc_net.py` `RunningCovMI.update`),
 * kept in a factored form that holds exactly the same information as the reference's three
 * D' x D' matrices.
 *
 * Reference, for every shuffled batch B of z = phi(f) and u = phi(t_y):
 *     Szz += (z - zbar_B)^T (z - zbar_B),  Suu += (u - ubar_B)^T (u - ubar_B),  Szu += (z - zbar_B)^T (u - ubar_B)
 *     m_z = (m_z n + zbar_B |B|) / (n + |B|),  m_u likewise,  n += |B|
 * Every u is a row of Phi = phi(t_c) [C, D'], so with Y the one-hot labels of the batch,
 * u - ubar_B = (Y - ybar_B) Phi, and
 *     Suu = Phi^T Myy Phi,  Myy = sum_B (Y - ybar_B)^T (Y - ybar_B) = sum_B diag(cnt_B) - cnt_B cnt_B^T / |B|   [C, C]
 *     Szu = Myz^T Phi,      Myz = sum_B Y^T (z - zbar_B)   (ybar_B drops out: the centred z sum to 0)    [C, D']
 *     m_u = Phi^T counts / n.
 * So the state is Szz [D', D'], Myz, Myy, counts, m_z, n: a third of the reference's memory, and
 * the text side costs O(|B| D') per batch instead of two D'^2 products.
 */
import { gemm } from '../../engine/ops/matmul.js';
import { Clap4ClipError } from '../../util/errors.js';

export class CcaStatistics {
  n = 0;
  classes = 0;
  /** sum_B Zc^T Zc, [D', D'] */
  szz: Float32Array;
  /** sum_B Y^T Zc, [C, D'] */
  myz = new Float32Array(0);
  /** sum_B Yc^T Yc, [C, C] */
  myy = new Float32Array(0);
  /** training rows per class, [C] */
  counts = new Float32Array(0);
  /** count-weighted running mean of z, [D'] */
  mz: Float32Array;

  constructor(readonly dim: number) {
    this.szz = new Float32Array(dim * dim);
    this.mz = new Float32Array(dim);
  }

  /** Room for classes [0, classes): earlier rows keep their values, new ones start at 0. */
  growClasses(classes: number): void {
    const c = this.classes;
    if (classes < c) throw new Clap4ClipError(`cca-cl statistics: cannot shrink from ${c} to ${classes} classes`);
    const myz = new Float32Array(classes * this.dim);
    myz.set(this.myz);
    const myy = new Float32Array(classes * classes);
    for (let i = 0; i < c; i++) myy.set(this.myy.subarray(i * c, (i + 1) * c), i * classes);
    const counts = new Float32Array(classes);
    counts.set(this.counts);
    this.myz = myz;
    this.myy = myy;
    this.counts = counts;
    this.classes = classes;
  }

  /**
   * Adds consecutive batches of `batchSize` rows (the last may be shorter).
   * @param z phi of the rows in batch order, [m, D']; centred in place within each batch
   * @param labels class of every row (< classes), [m]
   */
  addBatches(z: Float32Array, labels: ArrayLike<number>, m: number, batchSize: number): void {
    const d = this.dim, C = this.classes;
    if (z.length !== m * d || labels.length !== m) throw new Clap4ClipError(`cca-cl statistics: ${z.length} values and ${labels.length} labels for ${m} rows of D' = ${d}`);
    const mean = new Float64Array(d);
    const cnt = new Float64Array(C);
    for (let s = 0; s < m; s += batchSize) {
      const e = Math.min(s + batchSize, m);
      const B = e - s;
      mean.fill(0);
      cnt.fill(0);
      for (let i = s; i < e; i++) {
        const y = labels[i]!;
        if (!Number.isInteger(y) || y < 0 || y >= C) throw new Clap4ClipError(`cca-cl statistics: label ${y} outside the ${C} classes seen`);
        cnt[y]! += 1;
        for (let j = 0; j < d; j++) mean[j]! += z[i * d + j]!;
      }
      for (let j = 0; j < d; j++) mean[j]! /= B;
      for (let i = s; i < e; i++) {
        const o = i * d, yo = labels[i]! * d;
        for (let j = 0; j < d; j++) {
          z[o + j] = z[o + j]! - mean[j]!;
          this.myz[yo + j]! += z[o + j]!;
        }
      }
      for (let j = 0; j < d; j++) this.mz[j] = (this.mz[j]! * this.n + mean[j]! * B) / (this.n + B);
      for (let a = 0; a < C; a++) {
        if (cnt[a] === 0) continue;
        this.counts[a]! += cnt[a]!;
        for (let b = 0; b < C; b++) if (cnt[b] !== 0) this.myy[a * C + b]! += (a === b ? cnt[a]! : 0) - (cnt[a]! * cnt[b]!) / B;
      }
      this.n += B;
    }
    const zz = gemm(z, z, d, m, d, true, false);
    for (let i = 0; i < zz.length; i++) this.szz[i]! += zz[i]!;
  }
}

/** The reference's `finalize`: S = scatter / max(n - 1, 1), plus `ridge` on the diagonal when given. */
export function dofOf(n: number): number {
  return Math.max(n - 1, 1);
}
