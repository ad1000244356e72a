/**
 * The closed-form CCA of CCA-CL (zhwhu/CCA-CL `utils/inc_net.py` `CCAMIOnline.fit_from_stats`),
 * twice: `solveEigh` as the reference writes it (three D' x D' eigendecompositions), and
 * `solveLowRank`, which gives the same projection from one Cholesky factorisation and C x C
 * eigenproblems (C = classes seen). Both end in a `CcaProjection` that `projectionLogits` applies
 * (`CCAMIOnline.predict_batch`).
 *
 * Why the low-rank form is exact. Suu = Phi^T A Phi + eps I and Szu = Myz'^T Phi (statistics.ts,
 * A = Myy / dof, Myz' = Myz / dof). Take G = Phi Phi^T = E diag(g) E^T and R = diag(sqrt g) E^T,
 * so Phi^T = Q R for some orthonormal Q; span(Q) is invariant under Suu and holds every u, so any
 * f(Suu) acts there as Q f(S) Q^T with S = R A R^T + eps I [C, C]. Then
 *   K = Wz Szu Suu^-1 Suz Wz = Wz F F^T Wz,  F = Myz'^T R^T S^-1/2  [D', C]
 * has rank <= C. The reference's z-side directions A_r = Wz V_r are the generalised eigenvectors
 * of (F F^T, Szz) normalised by A^T Szz A = I, which do not depend on the whitening: with
 * Szz = L L^T and Y = L^-1 F, Y^T Y = E_y diag(v) E_y^T gives A_r = L^-T Y E_y,r diag(v_r^-1/2),
 * rho = sqrt(v_r). The text side of the reference whitens twice (U_r = Wu C^T V_r / rho already
 * holds one Wu and `predict_batch` applies another): e_cc = (phi(t) - m_u) Suu^-3/2 Suz A_r / rho,
 * which is (e_c - pi)^T R^T S^-3/2 R Myz' A_r / rho with pi = counts / n.
 * The zero eigenvalues the reference carries (D' - C of them) add nothing to the energy sum.
 */
import { gemm } from '../../engine/ops/matmul.js';
import { choleskyInPlace, solveLowerInPlace, solveLowerTransposedInPlace } from '../../linalg/cholesky.js';
import { gemm64 } from '../../linalg/gemm64.js';
import { symmetricEigen, type SymmetricEigen } from '../../linalg/symmetricEigen.js';
import { dofOf, type CcaStatistics } from './statistics.js';

export interface SolveOptions {
  /** Jitter added to Szz and Suu, and the floor of their eigenvalues (reference 1e-4 for both). */
  ridge: number;
  /** Share of the sum of squared correlations kept (reference 0.999). */
  energy: number;
}

/** What prediction needs: z_p = normalize(phi(f) Z - zOffset), logits = z_p T^T / tau. */
export interface CcaProjection {
  /** A_r diag(rho), [D', r] */
  z: Float32Array;
  /** m_z A_r diag(rho), [r] */
  zOffset: Float32Array;
  /** Unit text embeddings E_p of the classes, [C, r] */
  text: Float32Array;
  /** Canonical correlations kept, [r] */
  rho: Float32Array;
  rank: number;
  classes: number;
}

/** x / max(|x|, 1e-12) for every row (torch's F.normalize), [n, k] -> a new array of the same type. */
export function normalizeRows<T extends Float32Array | Float64Array>(x: T, n: number, k: number): T {
  const out = x.slice() as T;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += x[i * k + j]! * x[i * k + j]!;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < k; j++) out[i * k + j] = x[i * k + j]! * inv;
  }
  return out;
}

/**
 * Logits of a projection: normalize(phi Z - zOffset) T^T / tau (`CCAMIOnline.predict_batch`).
 * @param phi phi of the image features, [n, D'] @returns [n, C]
 */
export function projectionLogits(p: CcaProjection, phi: Float32Array, n: number, rffDim: number, tau: number): Float32Array {
  const r = p.rank;
  const zcc = gemm(phi, p.z, n, rffDim, r);
  for (let i = 0; i < n; i++) for (let k = 0; k < r; k++) zcc[i * r + k]! -= p.zOffset[k]!;
  const logits = gemm(normalizeRows(zcc, n, r), p.text, n, r, p.classes, false, true);
  for (let i = 0; i < logits.length; i++) logits[i]! /= tau;
  return logits;
}

/** V diag(f(lambda)) V^T from an eigendecomposition (eigenvectors as rows). */
function spectral(e: SymmetricEigen, f: (x: number) => number): Float64Array {
  const n = e.n;
  const out = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const fj = f(e.values[j]!);
    if (fj === 0) continue;
    const v = e.vectors.subarray(j * n, (j + 1) * n);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) out[a * n + b]! += fj * v[a]! * v[b]!;
  }
  return out;
}

/** lambda^p for lambda floored at `floor`; a zero eigenvalue (only with floor 0) gives 0 (pseudo-inverse). */
const clampedPower = (floor: number, p: number) => (x: number) => {
  const y = Math.max(x, floor);
  return y > 0 ? y ** p : 0;
};

/** Eigenvalues descending, floored at 0, with the index of each in `e` (ascending order). */
function descending(e: SymmetricEigen): { values: Float64Array; index: number[] } {
  const index = Array.from({ length: e.n }, (_, i) => e.n - 1 - i);
  return { values: Float64Array.from(index, (i) => Math.max(e.values[i]!, 0)), index };
}

/** r = #{k : cumsum(v)_k / (sum v + 1e-12) <= energy}, at least 1 (the reference can give 0); all when energy = 1. */
export function rankByEnergy(values: ArrayLike<number>, energy: number): number {
  if (energy === 1) return values.length;
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  let cum = 0;
  let r = 0;
  for (let i = 0; i < values.length; i++) {
    cum += values[i]!;
    if (cum / (total + 1e-12) <= energy) r++;
  }
  return Math.min(Math.max(r, 1), values.length);
}

/** The prediction side from A_r [D', r], rho and e_cc * rho [C, r]. */
function projection(ar: Float64Array, rho: Float64Array, mz: ArrayLike<number>, textScaled: Float64Array, d: number, r: number, classes: number): CcaProjection {
  const z = new Float32Array(d * r);
  for (let i = 0; i < d; i++) for (let k = 0; k < r; k++) z[i * r + k] = ar[i * r + k]! * rho[k]!;
  const zOffset = new Float32Array(r);
  for (let k = 0; k < r; k++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += mz[i]! * z[i * r + k]!;
    zOffset[k] = s;
  }
  return { z, zOffset, text: Float32Array.from(normalizeRows(textScaled, classes, r)), rho: Float32Array.from(rho), rank: r, classes };
}

/** e_cc * rho for e_cc = X / max(rho, 1e-6) column-wise, [C, r], in place. */
function scaleText(x: Float64Array, rho: Float64Array, classes: number, r: number): Float64Array {
  for (let c = 0; c < classes; c++) for (let k = 0; k < r; k++) x[c * r + k]! *= rho[k]! / Math.max(rho[k]!, 1e-6);
  return x;
}

/** X^T of a row-major [rows, cols], as [cols, rows]. */
function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j]!;
  return out;
}

/** s x in float64 (a plain loop: Float64Array.from with a map function is ~20x slower at D'^2 entries). */
function scaled(x: ArrayLike<number>, s: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * s;
  return out;
}

/** The low-rank solve (see the header). @param phiText phi(t_c) of the classes, [C, D'] */
export function solveLowRank(stats: CcaStatistics, phiText: Float32Array, o: SolveOptions): CcaProjection {
  const d = stats.dim, c = stats.classes;
  const dof = dofOf(stats.n);
  const phi = Float64Array.from(phiText);
  const eg = symmetricEigen(gemm64(phi, phi, c, d, c, true), c);
  const R = new Float64Array(c * c); // diag(sqrt g) E^T: R^T R = G
  for (let j = 0; j < c; j++) {
    const s = Math.sqrt(Math.max(eg.values[j]!, 0));
    for (let k = 0; k < c; k++) R[j * c + k] = s * eg.vectors[j * c + k]!;
  }
  const S = gemm64(gemm64(R, scaled(stats.myy, 1 / dof), c, c, c, false), R, c, c, c, true);
  for (let i = 0; i < c; i++) S[i * c + i]! += o.ridge;
  const es = symmetricEigen(S, c);
  const myz = scaled(stats.myz, 1 / dof); // [C, D']
  const Ft = gemm64(gemm64(spectral(es, clampedPower(o.ridge, -0.5)), R, c, c, c, false), myz, c, c, d, false); // F^T [C, D']
  const Y = transpose(Ft, c, d); // F [D', C]

  const szz = scaled(stats.szz, 1 / dof);
  for (let i = 0; i < d; i++) szz[i * d + i]! += o.ridge;
  const L = choleskyInPlace(szz, d); // over szz: it is not needed again
  solveLowerInPlace(L, Y, d, c); // Y = L^-1 F
  const Yt = transpose(Y, d, c);
  const ek = symmetricEigen(gemm64(Yt, Yt, c, d, c, true), c); // Y^T Y: the nonzero spectrum of K
  const { values: v, index } = descending(ek);
  const r = rankByEnergy(v, o.energy);
  const Er = new Float64Array(c * r); // E_y,r diag(v_r^-1/2)
  for (let k = 0; k < r; k++) {
    const inv = v[k]! > 0 ? 1 / Math.sqrt(v[k]!) : 0;
    for (let a = 0; a < c; a++) Er[a * r + k] = ek.vectors[index[k]! * c + a]! * inv;
  }
  const ar = solveLowerTransposedInPlace(L, gemm64(Y, Er, d, c, r, false), d, r);
  const rho = Float64Array.from({ length: r }, (_, k) => Math.sqrt(v[k]!));

  const M = gemm64(gemm64(transpose(R, c, c), spectral(es, clampedPower(o.ridge, -1.5)), c, c, c, false), R, c, c, c, false);
  const H = gemm64(M, gemm64(myz, ar, c, d, r, false), c, c, r, false);
  const pi = Float64Array.from(stats.counts, (n) => n / Math.max(stats.n, 1));
  const mean = new Float64Array(r);
  for (let a = 0; a < c; a++) for (let k = 0; k < r; k++) mean[k]! += pi[a]! * H[a * r + k]!;
  for (let a = 0; a < c; a++) for (let k = 0; k < r; k++) H[a * r + k]! -= mean[k]!;
  return projection(ar, rho, stats.mz, scaleText(H, rho, c, r), d, r, c);
}

/** The reference's covariances (`RunningCovMI.finalize`): already divided by dof, ridge on Szz and Suu. */
export interface Covariances {
  dim: number;
  szz: Float64Array;
  suu: Float64Array;
  szu: Float64Array;
  mz: ArrayLike<number>;
  mu: ArrayLike<number>;
}

/** `fit_from_stats` and the text side of `predict_batch` as written. @param phiText [C, D'] */
export function canonicalFromCovariances(cov: Covariances, phiText: ArrayLike<number>, classes: number, o: SolveOptions): CcaProjection {
  const d = cov.dim;
  const wz = spectral(symmetricEigen(cov.szz, d), clampedPower(o.ridge, -0.5));
  const wu = spectral(symmetricEigen(cov.suu, d), clampedPower(o.ridge, -0.5));
  const C = gemm64(gemm64(wz, cov.szu, d, d, d, false), wu, d, d, d, false);
  const ek = symmetricEigen(gemm64(C, C, d, d, d, true), d);
  const { values: v, index } = descending(ek);
  const r = rankByEnergy(v, o.energy);
  const Vr = new Float64Array(d * r);
  for (let k = 0; k < r; k++) for (let i = 0; i < d; i++) Vr[i * r + k] = ek.vectors[index[k]! * d + i]!;
  const rho = Float64Array.from({ length: r }, (_, k) => Math.sqrt(v[k]!));
  const ur = gemm64(wu, gemm64(transpose(C, d, d), Vr, d, d, r, false), d, d, r, false); // Wu C^T V_r (divided by rho below)
  const ec = Float64Array.from(phiText);
  for (let a = 0; a < classes; a++) for (let i = 0; i < d; i++) ec[a * d + i]! -= cov.mu[i]!;
  const text = gemm64(gemm64(ec, wu, classes, d, d, false), ur, classes, d, r, false);
  return projection(gemm64(wz, Vr, d, d, r, false), rho, cov.mz, scaleText(text, rho, classes, r), d, r, classes);
}

/** The reference's path from the same statistics: build Szz, Suu, Szu [D', D'] and solve as written. */
export function solveEigh(stats: CcaStatistics, phiText: Float32Array, o: SolveOptions): CcaProjection {
  const d = stats.dim, c = stats.classes;
  const dof = dofOf(stats.n);
  const phi = Float64Array.from(phiText);
  const szz = scaled(stats.szz, 1 / dof);
  const suu = gemm64(gemm64(transpose(phi, c, d), scaled(stats.myy, 1 / dof), d, c, c, false), phi, d, c, d, false);
  for (let i = 0; i < d; i++) {
    szz[i * d + i]! += o.ridge;
    suu[i * d + i]! += o.ridge;
  }
  const szu = gemm64(transpose(scaled(stats.myz, 1 / dof), c, d), phi, d, c, d, false);
  const mu = gemm64(Float64Array.from(stats.counts, (n) => n / Math.max(stats.n, 1)), phi, 1, c, d, false);
  return canonicalFromCovariances({ dim: d, szz, suu, szu, mz: stats.mz, mu }, phiText, c, o);
}
