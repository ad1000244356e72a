/**
 * Score-based exemplar selectors (spec section 6): herding, entropy, distance, energy, variance
 * and var-entropy. Pure functions of the model's outputs for the candidates of ONE class.
 *
 * Input: `logits [T, n, C]` (row-major Float32Array: `logits[(r * n + i) * C + c]` is sample i's
 * logit for class c on the r-th of T stochastic forward passes, model in evaluation mode) and the
 * class's incremental label. Output: a ranking, a permutation of 0..n-1 best first, so the memory
 * keeps its first m for any m and later shrinks a class by truncation. Positions index the
 * candidates as the caller passed them: map with `candidates[ranking[j]]`.
 *
 * Every score is computed in float64 and every ordering breaks ties by sample position (smaller
 * first), so rankings are deterministic and a ranking for m is the prefix of the ranking for m + 1.
 *
 * Reference defects fixed here (spec section 9):
 * - energy and variance: the reference stacks the [T, B, C] outputs of each batch and reshapes them
 *   as [N, T, C], so one "sample" row mixes passes of different images. Here every score is per
 *   sample: sample i only ever reads `logits[r, i, :]`.
 * - var-entropy: the reference takes a geometric mean of the variance and minus the entropy (<= 0),
 *   which is NaN. See `varEntropyScores` for the combination used instead.
 */
import { Clap4ClipError } from '../util/errors.js';

export interface SelectorInput {
  /** [T, n, C] row-major: the logits of the class's n candidates on T forward passes. */
  logits: Float32Array;
  /** T, the number of forward passes (>= 1). */
  samples: number;
  /** n, the number of candidates of the class. */
  n: number;
  /** C, the number of classes the logits cover (the seen-class head). */
  classes: number;
  /** The class's incremental label, in [0, C). */
  label: number;
}

export interface ScoredSelectorInfo {
  description: string;
  /**
   * The score measures spread over the T forward passes, so it only means something with T > 1.
   * With T = 1 it is still accepted (a deterministic method has T = 1): see each entry.
   */
  needsSamples: boolean;
}

/** The score-based selectors: the only list of their names (`ScoredSelectorName` is its keys). */
export const SCORED_SELECTORS = {
  herding: {
    description: 'iCaRL herding on phi = L2-normalized mean logits: greedily keeps the running mean of the kept phi closest to the class mean',
    needsSamples: false,
  },
  entropy: { description: 'entropy of softmax(mean logits), most uncertain first (RWalk)', needsSamples: false },
  distance: { description: "the true class's mean logit, lowest (closest to the decision boundary) first (RWalk)", needsSamples: false },
  energy: { description: 'logsumexp over classes of the logits, averaged over the T passes, lowest first', needsSamples: false },
  variance: {
    description: 'sum over classes of the variance over the T passes of the softmax, lowest first (T = 1: all 0, dataset order)',
    needsSamples: true,
  },
  'var-entropy': {
    description: 'average of the rank by variance (lowest first) and the rank by entropy (highest first), lowest first (T = 1: the entropy ranking)',
    needsSamples: true,
  },
} satisfies Record<string, ScoredSelectorInfo>;

export type ScoredSelectorName = keyof typeof SCORED_SELECTORS;
export const SCORED_SELECTOR_NAMES = Object.keys(SCORED_SELECTORS) as ScoredSelectorName[];

export function isScoredSelectorName(name: string): name is ScoredSelectorName {
  return Object.hasOwn(SCORED_SELECTORS, name);
}

function fail(name: string, problem: string): never {
  throw new Clap4ClipError(`exemplar selector "${name}": ${problem}`);
}

function validate(name: string, input: SelectorInput): void {
  if (!isScoredSelectorName(name)) fail(name, `unknown score-based selector, must be one of [${SCORED_SELECTOR_NAMES.join(', ')}]`);
  const { logits, samples: T, n, classes: C, label } = input;
  if (!Number.isInteger(T) || T < 1) fail(name, `samples (T) must be an integer >= 1, got ${T}`);
  if (!Number.isInteger(n) || n < 0) fail(name, `n must be an integer >= 0, got ${n}`);
  if (!Number.isInteger(C) || C < 1) fail(name, `classes (C) must be an integer >= 1, got ${C}`);
  if (!Number.isInteger(label) || label < 0 || label >= C) fail(name, `label must be an integer in [0, ${C}), got ${label}`);
  if (!(logits instanceof Float32Array)) fail(name, 'logits must be a Float32Array [T, n, C]');
  if (logits.length !== T * n * C) {
    fail(name, `logits has ${logits.length} values, expected T * n * C = ${T} * ${n} * ${C} = ${T * n * C}`);
  }
  for (let k = 0; k < logits.length; k++) {
    // -Infinity masking would make phi and the entropy NaN: pass the seen-class head instead.
    if (!Number.isFinite(logits[k]!)) {
      const r = Math.floor(k / (n * C));
      const i = Math.floor(k / C) % n;
      fail(name, `logits[${r}, ${i}, ${k % C}] is ${logits[k]}, every logit must be finite`);
    }
  }
}

/** Mean over the T passes: [T, n, C] -> [n, C] (float64). */
function meanLogits(input: SelectorInput): Float64Array {
  const { logits, samples: T, n, classes: C } = input;
  const mean = new Float64Array(n * C);
  for (let r = 0; r < T; r++) {
    const base = r * n * C;
    for (let k = 0; k < n * C; k++) mean[k]! += logits[base + k]!;
  }
  for (let k = 0; k < n * C; k++) mean[k]! /= T;
  return mean;
}

/** logsumexp of row[off .. off + C), stably (every exponent <= 0). */
function logSumExp(row: ArrayLike<number>, off: number, C: number): number {
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, row[off + c]!);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(row[off + c]! - max);
  return max + Math.log(s);
}

/** Entropy (nats) of softmax(mean logits), per sample: [n]. */
function entropyScores(mean: Float64Array, n: number, C: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * C;
    const lse = logSumExp(mean, off, C);
    let h = 0;
    for (let c = 0; c < C; c++) {
      const logp = mean[off + c]! - lse; // log-softmax: no log(0) even when p underflows
      h -= Math.exp(logp) * logp;
    }
    out[i] = h;
  }
  return out;
}

/** The true class's mean logit, per sample: [n]. */
function distanceScores(mean: Float64Array, n: number, C: number, label: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean[i * C + label]!;
  return out;
}

/** mean_r logsumexp_c logits[r, i, c], per sample i: [n]. */
function energyScores({ logits, samples: T, n, classes: C }: SelectorInput): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let r = 0; r < T; r++) s += logSumExp(logits, (r * n + i) * C, C);
    out[i] = s / T;
  }
  return out;
}

/**
 * sum_c Var_r softmax(logits[r, i, :])_c, per sample i: [n]. Population variance (divide by T, not
 * T - 1 as torch's default the reference uses): within one class every sample has the same T, so
 * the factor T / (T - 1) does not change the ranking, and T = 1 gives 0 instead of NaN.
 */
function varianceScores({ logits, samples: T, n, classes: C }: SelectorInput): Float64Array {
  const out = new Float64Array(n);
  const probs = new Float64Array(T * C); // this sample's softmax on each pass
  const mean = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    mean.fill(0);
    for (let r = 0; r < T; r++) {
      const off = (r * n + i) * C;
      const lse = logSumExp(logits, off, C);
      for (let c = 0; c < C; c++) {
        const p = Math.exp(logits[off + c]! - lse);
        probs[r * C + c] = p;
        mean[c]! += p / T;
      }
    }
    let v = 0; // two passes (mean, then squared deviations): no cancellation for tiny variances
    for (let r = 0; r < T; r++) for (let c = 0; c < C; c++) v += (probs[r * C + c]! - mean[c]!) ** 2;
    out[i] = v / T;
  }
  return out;
}

/** Positions 0..n-1 sorted by score (ascending or descending), ties by position. */
function orderBy(score: Float64Array, ascending: boolean): Int32Array {
  const idx = Int32Array.from({ length: score.length }, (_, i) => i);
  const sign = ascending ? 1 : -1;
  // Int32Array.prototype.sort is not guaranteed stable: the explicit `a - b` makes it total.
  return idx.sort((a, b) => sign * (score[a]! - score[b]!) || a - b);
}

/**
 * Rank of each sample in the given order, 0 = first; exactly tied scores share the mean of their
 * positions (mid-ranks), so a tie favours nobody: with T = 1 every variance is 0, every variance
 * rank is (n - 1) / 2, and var-entropy falls back to the entropy ranking rather than to position.
 */
function midRanks(score: Float64Array, ascending: boolean): Float64Array {
  const order = orderBy(score, ascending);
  const rank = new Float64Array(score.length);
  for (let lo = 0; lo < order.length; ) {
    let hi = lo + 1;
    while (hi < order.length && score[order[hi]!] === score[order[lo]!]) hi++;
    for (let j = lo; j < hi; j++) rank[order[j]!] = (lo + hi - 1) / 2;
    lo = hi;
  }
  return rank;
}

/*
 * var-entropy: the combined score of sample i is the average of its two ranks,
 *
 *   score_i = ( rank of i by variance, LOWEST first  +  rank of i by entropy, HIGHEST first ) / 2
 *
 * and the m LOWEST scores are kept (ties by position). Each part ranks the sample exactly where its
 * own selector would put it (variance keeps the lowest variance, entropy keeps the highest entropy),
 * so "lowest combined" means "best on average by both selectors' own preferences": a sample both
 * selectors put first is first here too. This is the reference's intent: it combined the variance
 * with MINUS the entropy and kept the lowest, i.e. low variance and high entropy. What it favours:
 * samples whose averaged prediction is ambiguous (high entropy: near the decision boundary, the
 * informative ones for rehearsal) while the T passes agree with each other (low variance: the
 * ambiguity is stable, not epistemic noise from an odd or unfamiliar image).
 *
 * Why ranks and not a product or geometric mean of the values: the two live on unrelated scales
 * (entropy in [0, log C] nats; the summed variance is usually orders of magnitude smaller), a
 * geometric mean needs positive inputs (minus the entropy is <= 0, hence the reference's NaN; and a
 * variance of 0, as with T = 1, would zero every score), and magnitudes would let whichever part
 * varies more dominate. Ranks are scale-free, weigh both parts equally, are invariant to any
 * monotone rescaling of either part, and are never NaN. Exact ties share mid-ranks (see midRanks).
 */
function varEntropyScores(input: SelectorInput, mean: Float64Array): Float64Array {
  const byVariance = midRanks(varianceScores(input), true);
  const byEntropy = midRanks(entropyScores(mean, input.n, input.classes), false);
  return byVariance.map((v, i) => (v + byEntropy[i]!) / 2);
}

/**
 * iCaRL herding (Rebuffi et al. 2017, algorithm 4) on phi_i = mean logits_i / ||mean logits_i||
 * (phi = 0 when the norm is 0). Step k (1-based) appends the unchosen i minimising
 * || mu - (S + phi_i) / k || with mu the class mean of phi and S the sum of the chosen phi; it runs
 * to k = n, so the returned selection order truncates to herding's first m for every m.
 * O(n^2 C) time.
 */
function herdingRanking(mean: Float64Array, n: number, C: number): Int32Array {
  const phi = new Float64Array(n * C);
  const mu = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let c = 0; c < C; c++) norm += mean[i * C + c]! ** 2;
    norm = Math.sqrt(norm);
    for (let c = 0; c < C; c++) {
      const v = norm > 0 ? mean[i * C + c]! / norm : 0;
      phi[i * C + c] = v;
      mu[c]! += v / n;
    }
  }
  const chosen = new Uint8Array(n);
  const sum = new Float64Array(C); // S
  const order = new Int32Array(n);
  for (let k = 1; k <= n; k++) {
    let best = -1;
    let bestDist = Infinity;
    for (let i = 0; i < n; i++) {
      if (chosen[i]) continue;
      let d = 0; // squared distance: same argmin, no sqrt
      for (let c = 0; c < C; c++) d += (mu[c]! - (sum[c]! + phi[i * C + c]!) / k) ** 2;
      if (d < bestDist) {
        bestDist = d; // strict <: the first (smallest) position wins ties
        best = i;
      }
    }
    chosen[best] = 1;
    order[k - 1] = best;
    for (let c = 0; c < C; c++) sum[c]! += phi[best * C + c]!;
  }
  return order;
}

/**
 * Per-sample scores [n] of a score-based selector (not herding, whose order is not a score), in the
 * selector's own units: entropy in nats, distance a logit, energy a logit, variance a probability
 * variance, var-entropy an average rank. `rankByScore` orders them (entropy highest first, the
 * others lowest first).
 */
export function selectorScores(name: Exclude<ScoredSelectorName, 'herding'>, input: SelectorInput): Float64Array {
  validate(name, input);
  return scoresOf(name, input);
}

function scoresOf(name: Exclude<ScoredSelectorName, 'herding'>, input: SelectorInput): Float64Array {
  const { n, classes: C, label } = input;
  switch (name) {
    case 'entropy':
      return entropyScores(meanLogits(input), n, C);
    case 'distance':
      return distanceScores(meanLogits(input), n, C, label);
    case 'energy':
      return energyScores(input);
    case 'variance':
      return varianceScores(input);
    case 'var-entropy':
      return varEntropyScores(input, meanLogits(input));
    default:
      return fail(name, 'has no per-sample score (herding is a greedy order)');
  }
}

/**
 * Rank the n candidates of one class, best first: a permutation of 0..n-1 whose first m are the
 * m exemplars to keep, for any m. Ties are broken by position (smaller first).
 *
 * @param name  the selector (spec section 6)
 * @param input logits [T, n, C] of the class's candidates and the class's incremental label
 * @throws Clap4ClipError on an unknown name, a shape mismatch, a label outside [0, C), T < 1 or a
 *   non-finite logit
 */
export function rankByScore(name: ScoredSelectorName, input: SelectorInput): Int32Array {
  validate(name, input);
  if (name === 'herding') return herdingRanking(meanLogits(input), input.n, input.classes);
  // entropy keeps the most uncertain (highest first); every other score keeps the lowest.
  return orderBy(scoresOf(name, input), name !== 'entropy');
}
