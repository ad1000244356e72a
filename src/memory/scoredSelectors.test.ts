import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Clap4ClipError } from '../util/errors.js';
import { rankByScore, SCORED_SELECTOR_NAMES, SCORED_SELECTORS, selectorScores, type SelectorInput } from './scoredSelectors.js';

/** Build a SelectorInput from per-sample passes: `bySample[i][r]` = logits of sample i on pass r. */
function input(bySample: number[][][], label = 0): SelectorInput {
  const n = bySample.length;
  const T = bySample[0]!.length;
  const C = bySample[0]![0]!.length;
  const logits = new Float32Array(T * n * C); // [T, n, C]: pass-major, as the model emits it
  for (let i = 0; i < n; i++) for (let r = 0; r < T; r++) logits.set(bySample[i]![r]!, (r * n + i) * C);
  return { logits, samples: T, n, classes: C, label };
}

const ranking = (name: Parameters<typeof rankByScore>[0], inp: SelectorInput) => [...rankByScore(name, inp)];

/** Deterministic uniform [0, 1) generator (mulberry32) for the property tests. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInput(seed: number, T: number, n: number, C: number): SelectorInput {
  const rand = mulberry32(seed);
  const logits = Float32Array.from({ length: T * n * C }, () => 6 * rand() - 3);
  return { logits, samples: T, n, classes: C, label: Math.floor(rand() * C) };
}

/** Logits pointing at `deg` degrees in the plane (C = 2): phi is the unit vector at that angle. */
const at = (deg: number, scale = 1) => [scale * Math.cos((deg * Math.PI) / 180), scale * Math.sin((deg * Math.PI) / 180)];

describe('herding', () => {
  // Candidates at 0, 41, 48, 32 and 80 degrees: the class mean of phi points at ~40.2 degrees.
  // Step 1 takes 41 (closest to the mean). The second closest to the mean is 48 (7.8 degrees off;
  // 32 is 8.2 off), but with 41 already kept, adding 48 drags the running mean to 44.5 while adding
  // 32 brings it back to 36.5 and spreads it (shorter, like the mean itself): herding takes 32.
  // (Distances ||mu - (S + phi) / 2||: 0.1127 for 32, 0.1190 for 48.) Then 48, then the two far ones.
  const angles = [0, 41, 48, 32, 80];

  it('takes the sample closest to the mean first, then the one that corrects the running mean', () => {
    assert.deepEqual(ranking('herding', input(angles.map((d) => [at(d)]))), [1, 3, 2, 0, 4]);
  });

  it('uses the L2-normalized mean over the T passes (scale and pass noise do not matter)', () => {
    // Each sample's logits scaled differently, and split into two passes that average to them.
    const scales = [5, 0.5, 2, 9, 1];
    const passes = angles.map((d, i) => {
      const v = at(d, scales[i]);
      return [v.map((x) => x + 1.5), v.map((x) => x - 1.5)];
    });
    assert.deepEqual(ranking('herding', input(passes)), [1, 3, 2, 0, 4]);
  });

  it('matches an independent m-step herding for every m (truncation property)', () => {
    const inp = randomInput(7, 3, 12, 4);
    const { logits, samples: T, n, classes: C } = inp;
    const phi = Array.from({ length: n }, (_, i) => {
      const v = Array.from({ length: C }, (_, c) => {
        let s = 0;
        for (let r = 0; r < T; r++) s += logits[(r * n + i) * C + c]!;
        return s / T;
      });
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
    const mu = Array.from({ length: C }, (_, c) => phi.reduce((s, p) => s + p[c]!, 0) / n);
    const herd = (m: number): number[] => {
      const kept: number[] = [];
      for (let k = 1; k <= m; k++) {
        let best = -1;
        let bestDist = Infinity;
        for (let i = 0; i < n; i++) {
          if (kept.includes(i)) continue;
          const dist = Math.hypot(...mu.map((x, c) => x - (kept.reduce((s, j) => s + phi[j]![c]!, 0) + phi[i]![c]!) / k));
          if (dist < bestDist) [best, bestDist] = [i, dist];
        }
        kept.push(best);
      }
      return kept;
    };
    const full = ranking('herding', inp);
    for (let m = 0; m <= n; m++) assert.deepEqual(full.slice(0, m), herd(m), `m = ${m}`);
  });
});

describe('entropy', () => {
  it('takes the flattest softmax first', () => {
    // Uniform (entropy log 3) > [2, 1, 0] > peaked [5, 0, 0].
    const inp = input([[[5, 0, 0]], [[1, 1, 1]], [[2, 1, 0]]]);
    assert.deepEqual(ranking('entropy', inp), [1, 2, 0]);
    assert.ok(Math.abs(selectorScores('entropy', inp)[1]! - Math.log(3)) < 1e-12);
  });

  it('is the entropy of softmax(mean logits), not the mean of per-pass entropies', () => {
    // Sample 0 flips between two confident passes: mean logits [2, 2], entropy log 2 (the maximum).
    // Sample 1 is [1, 0] on both passes: entropy 0.58. Averaging per-pass entropies would instead
    // give sample 0 about 0.09 and rank it last.
    const inp = input([[[4, 0], [0, 4]], [[1, 0], [1, 0]]]);
    assert.deepEqual(ranking('entropy', inp), [0, 1]);
    assert.ok(Math.abs(selectorScores('entropy', inp)[0]! - Math.log(2)) < 1e-12);
  });
});

describe('distance', () => {
  it("takes the lowest true-class mean logit first (the sample nearest the boundary)", () => {
    // Label 1. True-class mean logits: 5, -1, 2, and 0 for the last (passes 10 and -10 average out).
    const passes = [[[0, 5, 0], [0, 5, 0]], [[0, -1, 0], [0, -1, 0]], [[3, 2, 0], [3, 2, 0]], [[0, 10, 0], [0, -10, 0]]];
    assert.deepEqual(ranking('distance', input(passes, 1)), [1, 3, 2, 0]);
    assert.deepEqual([...selectorScores('distance', input(passes, 1))], [5, -1, 2, 0]);
    // The label decides which column counts: class 0's logits are 0, 0, 3, 0 (ties by position).
    assert.deepEqual(ranking('distance', input(passes, 0)), [0, 1, 3, 2]);
  });
});

/*
 * The reference's defect: it concatenates the [T, B, C] outputs and reshapes them as [N, T, C], so
 * "sample" j gets flat rows 2j and 2j + 1 (for T = 2), which belong to different images. These
 * helpers re-create that misreading to show the tests below would catch it.
 */
function misread(inp: SelectorInput): SelectorInput {
  const { logits, samples: T, n, classes: C } = inp;
  const out = new Float32Array(logits.length); // reinterpret [T, n, C] memory as [n, T, C]
  for (let j = 0; j < n; j++) for (let r = 0; r < T; r++) out.set(logits.subarray((j * T + r) * C, (j * T + r + 1) * C), (r * n + j) * C);
  return { ...inp, logits: out };
}

describe('energy', () => {
  it('is per sample: each sample keeps its own logsumexp (reference-defect test)', () => {
    // Sample i has all logits v_i on both passes: energy v_i + log 2, with v = 10, 0, 5.
    const v = [10, 0, 5];
    const inp = input(v.map((x) => [[x, x], [x, x]]));
    const scores = selectorScores('energy', inp);
    v.forEach((x, i) => assert.ok(Math.abs(scores[i]! - (x + Math.log(2))) < 1e-12, `sample ${i}`));
    assert.deepEqual(ranking('energy', inp), [1, 2, 0]);
    // The reference's reading averages (10, 0), (5, 10), (0, 5): a different ranking.
    assert.deepEqual(ranking('energy', misread(inp)), [2, 0, 1]);
  });

  it('averages logsumexp over the passes (not logsumexp of the mean logits)', () => {
    // Passes [4, 0] and [0, 4]: each has logsumexp 4 + log(1 + e^-4) = 4.018; the mean logits [2, 2]
    // would give 2.693. The second sample, [3, 3] on both passes, has 3.693, so it comes first.
    const inp = input([[[4, 0], [0, 4]], [[3, 3], [3, 3]]]);
    assert.ok(Math.abs(selectorScores('energy', inp)[0]! - (4 + Math.log1p(Math.exp(-4)))) < 1e-12);
    assert.deepEqual(ranking('energy', inp), [1, 0]);
  });
});

describe('variance', () => {
  // Sample 0 flips between [4, 0] and [0, 4], sample 1 is [0, 0] twice, sample 2 flips [1, 0], [0, 1].
  // With C = 2 and T = 2 the summed population variance is (p1 - p2)^2 / 2 where p1 - p2 is the
  // change of the first class's probability: tanh(2) for sample 0, 0 for sample 1, tanh(0.5) for 2.
  const passes = [[[4, 0], [0, 4]], [[0, 0], [0, 0]], [[1, 0], [0, 1]]];

  it('is per sample and lowest first (reference-defect test)', () => {
    const inp = input(passes);
    assert.deepEqual(ranking('variance', inp), [1, 2, 0]);
    // The reference's reading pairs [4,0]+[0,0], [1,0]+[0,4], [0,0]+[0,1]: a different ranking.
    assert.deepEqual(ranking('variance', misread(inp)), [2, 0, 1]);
  });

  it('uses the population variance over T (divide by T)', () => {
    const scores = selectorScores('variance', input(passes));
    const expected = [Math.tanh(2) ** 2 / 2, 0, Math.tanh(0.5) ** 2 / 2];
    expected.forEach((e, i) => assert.ok(Math.abs(scores[i]! - e) < 1e-7, `sample ${i}: ${scores[i]} vs ${e}`));
  });

  it('with T = 1 is 0 everywhere, so the ranking is dataset order', () => {
    const inp = input([[[3, 0]], [[0, 0]], [[1, 2]]]);
    assert.deepEqual([...selectorScores('variance', inp)], [0, 0, 0]);
    assert.deepEqual(ranking('variance', inp), [0, 1, 2]);
  });
});

describe('var-entropy', () => {
  // Five samples, T = 2, C = 2:
  //   0 confident, stable   [2.5,0] [2.5,0]   variance rank 0  entropy rank 3  -> 1.5
  //   1 ambiguous, stable   [0.6,0] [0.62,0]  variance rank 1  entropy rank 1  -> 1
  //   2 ambiguous, unstable [4,0]  [-4,0]     variance rank 4  entropy rank 0  -> 2
  //   3 flipping            [4,0]  [0,0]      variance rank 3  entropy rank 2  -> 2.5
  //   4 confident, stable   [3,0]  [3.5,0]    variance rank 2  entropy rank 4  -> 3
  // (variance rank: lowest first; entropy rank: highest first, as the entropy selector orders.)
  // The decision keeps first the sample that is ambiguous yet stable (1), which neither part alone
  // puts first: variance alone starts with 0, entropy alone with 2.
  const passes = [[[2.5, 0], [2.5, 0]], [[0.6, 0], [0.62, 0]], [[4, 0], [-4, 0]], [[4, 0], [0, 0]], [[3, 0], [3.5, 0]]];

  it('orders by the average of the variance rank (ascending) and the entropy rank (descending)', () => {
    const inp = input(passes);
    assert.deepEqual([...selectorScores('var-entropy', inp)], [1.5, 1, 2, 2.5, 3]);
    assert.deepEqual(ranking('var-entropy', inp), [1, 0, 2, 3, 4]);
    assert.deepEqual(ranking('variance', inp), [0, 1, 4, 3, 2]);
    assert.deepEqual(ranking('entropy', inp), [2, 1, 3, 0, 4]);
  });

  it('is never NaN, even with zero variances and negative logits', () => {
    for (const T of [1, 2, 5]) {
      const scores = selectorScores('var-entropy', randomInput(T, T, 40, 6));
      assert.ok(scores.every(Number.isFinite), `T = ${T}`);
    }
    const flat = selectorScores('var-entropy', input([[[0, 0], [0, 0]], [[-3, -3], [-3, -3]]]));
    assert.deepEqual([...flat], [0.5, 0.5]); // all tied: mid-ranks, then position decides
  });

  it('with T = 1 falls back to the entropy ranking (variance ties contribute nothing)', () => {
    const inp = randomInput(3, 1, 15, 5);
    assert.deepEqual(ranking('var-entropy', inp), ranking('entropy', inp));
  });
});

describe('every selector', () => {
  it('returns a permutation of 0..n-1, deterministically', () => {
    for (const name of SCORED_SELECTOR_NAMES) {
      for (const [seed, T, n, C] of [[1, 1, 1, 1], [2, 3, 17, 5], [3, 4, 30, 10]] as const) {
        const inp = randomInput(seed, T, n, C);
        const r = ranking(name, inp);
        assert.deepEqual([...r].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), `${name} seed ${seed}`);
        assert.deepEqual(ranking(name, inp), r, `${name} is deterministic`);
      }
      assert.deepEqual(ranking(name, { logits: new Float32Array(0), samples: 2, n: 0, classes: 3, label: 0 }), []);
    }
  });

  it('keeps, for every m, the m best scores (so the first m of the m + 1 ranking is the m ranking)', () => {
    const inp = randomInput(11, 3, 25, 6);
    for (const name of SCORED_SELECTOR_NAMES.filter((x) => x !== 'herding') as Exclude<(typeof SCORED_SELECTOR_NAMES)[number], 'herding'>[]) {
      const s = selectorScores(name, inp);
      const better = (a: number, b: number) => (name === 'entropy' ? s[a]! >= s[b]! : s[a]! <= s[b]!);
      const r = ranking(name, inp);
      for (let m = 1; m < r.length; m++) {
        for (const kept of r.slice(0, m)) for (const dropped of r.slice(m)) assert.ok(better(kept, dropped), `${name} m = ${m}`);
      }
    }
  });

  it('breaks ties by position: identical samples keep dataset order', () => {
    const same = input(Array.from({ length: 6 }, () => [[1, 2, 3], [0, 2, 1]]), 2);
    for (const name of SCORED_SELECTOR_NAMES) assert.deepEqual(ranking(name, same), [0, 1, 2, 3, 4, 5], name);
  });

  it('is described, and only the spread-based ones need T > 1', () => {
    const needs = SCORED_SELECTOR_NAMES.filter((x) => SCORED_SELECTORS[x].needsSamples);
    assert.deepEqual(needs, ['variance', 'var-entropy']);
    for (const x of SCORED_SELECTOR_NAMES) assert.ok(SCORED_SELECTORS[x].description.length > 0);
  });
});

describe('input validation', () => {
  const good = (): SelectorInput => input([[[1, 2, 3], [3, 2, 1]], [[0, 0, 0], [1, 1, 1]]], 1);
  const throwsWith = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof Clap4ClipError && re.test(e.message));

  it('rejects a logits length that is not T * n * C', () => {
    throwsWith(() => rankByScore('entropy', { ...good(), n: 3 }), /exemplar selector "entropy": logits has 12 values, expected T \* n \* C = 2 \* 3 \* 3 = 18/);
  });

  it('rejects a label outside [0, C) or not an integer', () => {
    for (const label of [-1, 3, 1.5]) throwsWith(() => rankByScore('distance', { ...good(), label }), new RegExp(`label must be an integer in \\[0, 3\\), got ${label}`));
  });

  it('rejects T < 1, a bad n or C', () => {
    throwsWith(() => rankByScore('variance', { ...good(), samples: 0, logits: new Float32Array(0) }), /samples \(T\) must be an integer >= 1, got 0/);
    throwsWith(() => rankByScore('energy', { ...good(), n: -1 }), /n must be an integer >= 0, got -1/);
    throwsWith(() => rankByScore('energy', { ...good(), classes: 0 }), /classes \(C\) must be an integer >= 1, got 0/);
  });

  it('rejects non-finite logits, naming the position [r, i, c]', () => {
    const inp = good();
    inp.logits[(1 * 2 + 0) * 3 + 2] = Number.NaN; // pass 1, sample 0, class 2
    throwsWith(() => rankByScore('herding', inp), /logits\[1, 0, 2\] is NaN, every logit must be finite/);
    inp.logits[(1 * 2 + 0) * 3 + 2] = -Infinity;
    throwsWith(() => selectorScores('var-entropy', inp), /logits\[1, 0, 2\] is -Infinity/);
  });

  it('rejects an unknown selector name', () => {
    throwsWith(() => rankByScore('random' as never, good()), /exemplar selector "random": unknown score-based selector, must be one of \[herding, entropy, distance, energy, variance, var-entropy\]/);
    throwsWith(() => selectorScores('herding' as never, good()), /herding.*no per-sample score/);
  });
});
