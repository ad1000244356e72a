/**
 * RAPF's closed-form steps on hand-computed cases (baselines spec section 7, cases 4-8, and a
 * covariance), the sampler's distribution, and gradient checks of CE + hinge through the adapter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { gradCheck, param } from '../../engine/testing/gradCheck.js';
import { cholesky } from '../../linalg/cholesky.js';
import { leftSingularVectors } from '../../linalg/leftSingular.js';
import { fuseAdapters } from './fusion.js';
import { hardPairs, hingeLoss, rapfLoss } from './losses.js';
import { classStatistics, gaussianFromNoise, sampleGaussian, shrinkCov } from './statistics.js';

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

const t2 = (rows: number[][]): Tensor => Tensor.from(rows.flat(), [rows.length, rows[0]!.length]);

describe('RAPF hand cases (baselines spec section 7)', () => {
  it('4. hinge: g = (1,0), tt_o = (0.6,0.8), tt_n = (1,0) gives 0.5; tt_o, tt_n = (1,0), (0.8,0.6) gives 0', () => {
    close(hingeLoss(t2([[1, 0]]), t2([[0.6, 0.8]]), t2([[1, 0]]), 0.1).data, [0.5], 1e-6, 'hinge');
    close(hingeLoss(t2([[1, 0]]), t2([[1, 0]]), t2([[0.8, 0.6]]), 0.1).data, [0], 0, 'swapped');
    // The mean over both rows.
    close(hingeLoss(t2([[1, 0], [1, 0]]), t2([[0.6, 0.8], [1, 0]]), t2([[1, 0], [0.8, 0.6]]), 0.1).data, [0.25], 1e-6, 'mean');
  });

  it('5. hard pair: theta 0.55 takes cos 0.85 (distance 0.5477), not cos 0.84 (0.5657)', () => {
    // Class 0 old; classes 1 (cos 0.85 with class 0) and 2 (cos 0.84) new.
    const text = Float32Array.of(1, 0, 0.85, Math.sqrt(1 - 0.85 ** 2), 0.84, -Math.sqrt(1 - 0.84 ** 2));
    assert.deepEqual(hardPairs(text, 1, 3, 2, 0.55), [[0, 1]]);
    assert.deepEqual(hardPairs(text, 1, 3, 2, 0.57), [[0, 1], [0, 2]]);
    // Pairs are old x new only: no pair among the new classes (distance between 1 and 2 is small too).
    assert.deepEqual(hardPairs(text, 0, 3, 2, 2), []);
  });

  it('6. shrink: S = [[2,1],[1,4]] gives [[5,2],[2,7]]; a diagonal S gets o = 0, not NaN', () => {
    close(shrinkCov([2, 1, 1, 4], 2), [5, 2, 2, 7], 0, 'shrink');
    close(shrinkCov([2, 0, 0, 4], 2), [5, 0, 0, 7], 0, 'diagonal');
  });

  it('7. sampling: mu = (1,2), S = [[4,2],[2,2]] has L = [[2,0],[1,1]]; eps = (1,1) gives x = (3,4)', () => {
    const L = cholesky([4, 2, 2, 2], 2);
    close(L, [2, 0, 1, 1], 1e-15, 'L');
    close(gaussianFromNoise(Float32Array.of(1, 2), Float32Array.from(L), Float32Array.of(1, 1), 1), [3, 4], 1e-6, 'x');
  });

  it('8. fusion: A_o = diag(2,1), A_n = [[2.4,0],[0.1,1]], b = 0.6 gives [[2.4,0],[0.085,1]], for every SVD sign', () => {
    const Ao = [2, 0, 0, 1], An = [2.4, 0, 0.1, 1];
    const { u } = leftSingularVectors(Ao, 2, 2);
    close(fuseAdapters(Ao, An, u, 2, 0.6), [2.4, 0, 0.085, 1], 1e-6, 'fused');
    for (const signs of [[1, -1], [-1, 1], [-1, -1]]) {
      const flipped = [signs[0]!, 0, 0, signs[1]!];
      close(fuseAdapters(Ao, An, flipped, 2, 0.6), [2.4, 0, 0.085, 1], 1e-6, `signs ${signs}`);
    }
    // A_n = A_o: max Delta = 0, the adapter stays A_o.
    close(fuseAdapters(Ao, Ao, u, 2, 0.6), Ao, 0, 'unchanged');
    // b >= 1 takes A_n whole (M = 1); b = 0 keeps only the largest change of U^T (A_n - A_o) whole.
    close(fuseAdapters(Ao, An, u, 2, 1), An, 1e-6, 'b = 1');
    close(fuseAdapters(Ao, An, u, 2, 0), [2.4, 0, 0.025, 1], 1e-6, 'b = 0');
  });

  it('fusion equals U (M * P + (1 - M) * R) with R = S V^T on a random 4 x 4 (the authors\' form)', () => {
    const D = 4, rng = new Rng(8);
    const Ao = Float64Array.from({ length: D * D }, () => rng.normal());
    const An = Ao.map((x) => x + 0.3 * rng.normal());
    const { u } = leftSingularVectors(Ao, D, D);
    // P = U^T A_n, R = U^T A_o (= S V^T), M from |P - R|.
    const proj = (a: ArrayLike<number>): number[] => Array.from({ length: D * D }, (_, k) => {
      const i = Math.floor(k / D), j = k % D;
      let s = 0;
      for (let t = 0; t < D; t++) s += u[t * D + i]! * a[t * D + j]!;
      return s;
    });
    const P = proj(An), R = proj(Ao);
    const delta = P.map((p, k) => Math.abs(p - R[k]!)), max = Math.max(...delta);
    const mixed = P.map((p, k) => { const m = Math.min(1, delta[k]! / max + 0.6); return m * p + (1 - m) * R[k]!; });
    const want = Array.from({ length: D * D }, (_, k) => {
      const i = Math.floor(k / D), j = k % D;
      let s = 0;
      for (let t = 0; t < D; t++) s += u[i * D + t]! * mixed[t * D + j]!;
      return s;
    });
    close(fuseAdapters(Ao, An, u, D, 0.6), want, 1e-5, 'fused');
  });

  it('covariance: rows (1,0), (3,2), (2,4) of one class give mu = (2,2) and the unbiased S + jitter I', () => {
    // Rows are read at r * stride + offset: a [3 rows, 2 views, 2] layout, view 0.
    const features = Float32Array.of(1, 0, 9, 9, 3, 2, 9, 9, 2, 4, 9, 9);
    const s = classStatistics(features, [0, 1, 2], 4, 0, 2, 1e-6, 'test');
    close(s.mean, [2, 2], 1e-7, 'mu');
    // centred (-1,-2), (1,0), (0,2): sums xx = 2, xy = 2, yy = 8, over n - 1 = 2.
    close(s.cov, [1 + 1e-6, 1, 1, 4 + 1e-6], 1e-7, 'S');
    assert.throws(() => classStatistics(features, [0], 4, 0, 2, 1e-6, 'class 7'), /class 7.*at least 2 training samples/);
  });
});

describe('RAPF sampling', () => {
  it('draws x ~ N(mu, S): sample mean and covariance of 40,000 draws match, and a seed repeats them', () => {
    const mu = Float32Array.of(1, -2, 0.5), S = [2, 0.6, -0.3, 0.6, 1, 0.2, -0.3, 0.2, 0.5];
    const L = Float32Array.from(cholesky(S, 3));
    const n = 40000, x = sampleGaussian(mu, L, n, new Rng(4));
    const stats = classStatistics(x, Array.from({ length: n }, (_, i) => i), 3, 0, 3, 0, 'draws');
    close(stats.mean, [...mu], 0.03, 'mean');
    close(stats.cov, S, 0.05, 'cov');
    assert.deepEqual(sampleGaussian(mu, L, 5, new Rng(4)), x.subarray(0, 15));
  });
});

describe('RAPF loss gradients (finite differences)', () => {
  // D = 3, 3 classes: two batch rows and a pseudo-feature in the CE, two hard samples whose hinges
  // are active (margin 0.3) and inactive, away from the kink.
  const text = Tensor.from([1, 0, 0, 0.6, 0.8, 0, 0, 0.6, 0.8], [3, 3]);
  const input = (hardOn: boolean) => ({
    ceInputs: Tensor.from([0.9, 0.1, 0.2, 0.1, 0.8, 0.3, 0.2, 0.3, 0.9], [3, 3]),
    ceLabels: Int32Array.of(0, 1, 2),
    hard: hardOn ? { samples: Tensor.from([0.7, 0.5, 0.1, 0.1, 0.2, 0.9], [2, 3]), own: Tensor.from([1, 0, 0, 0, 0.6, 0.8], [2, 3]), nearest: Tensor.from([0.6, 0.8, 0, 1, 0, 0], [2, 3]) } : null,
    text, logitScale: 3, margin: 0.3,
  });
  const adapter = (): Tensor => param([1.1, 0.2, -0.1, 0.3, 0.9, 0.2, -0.2, 0.1, 1.2], [3, 3]);

  it('CE + hinge through A', () => {
    const A = adapter();
    const { loss, hinge } = rapfLoss(A, input(true));
    assert.ok(hinge !== null && hinge.item() > 0.05, `hinge ${hinge?.item()} is active`);
    assert.ok(loss.item() > hinge.item());
    gradCheck((a) => rapfLoss(a, input(true)).loss, [A], { eps: 1e-3 });
  });

  it('CE alone (no hard pairs) through A', () => {
    const { hinge } = rapfLoss(adapter(), input(false));
    assert.equal(hinge, null);
    gradCheck((a) => rapfLoss(a, input(false)).loss, [adapter()], { eps: 1e-3 });
  });
});
