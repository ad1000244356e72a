/**
 * Exemplar selectors (spec section 6): given the candidate samples of one new class, return them
 * ranked best first. The memory keeps the first m of a ranking, and later shrinks a class by
 * truncation, so a ranking must put the samples it most wants to keep first.
 *
 * Two kinds share one contract: `random` and `first` rank without looking at the model; the
 * score-based ones (herding, entropy, distance, energy, variance, var-entropy) declare
 * `needsLogits`, and the loop then hands them the model's logits of the candidates
 * (`candidateScores.ts`); their ranking is `rankByScore` of `scoredSelectors.ts`.
 */
import type { Rng } from '../engine/random.js';
import { Clap4ClipError } from '../util/errors.js';
import { rankByScore, SCORED_SELECTOR_NAMES, SCORED_SELECTORS, type ScoredSelectorName } from './scoredSelectors.js';

/** The model's logits of one class's candidates, in candidate order: [samples, n, classes]. */
export interface CandidateLogits {
  logits: Float32Array;
  samples: number;
  classes: number;
}

export interface SelectorContext {
  /** Sample indices of one class, ascending. */
  candidates: Int32Array;
  /** The class's incremental label. */
  label: number;
  /** How many the memory will keep. */
  m: number;
  /** The run's generator (selection is part of the run's reproducible randomness). */
  rng: Rng;
  /** Logits of `candidates` (same order); present whenever the selector `needsLogits`. */
  logits?: CandidateLogits;
}

export interface Selector {
  readonly name: string;
  readonly description: string;
  /** True when `rank` reads `logits`: the loop scores the candidates with the model first. */
  readonly needsLogits: boolean;
  /**
   * A ranking of (a prefix of) `candidates`: sample indices, best first, at least
   * min(m, candidates.length) of them, no repeats.
   */
  rank(ctx: SelectorContext): Int32Array;
}

/** Uniform random subset, in random order (a random ordered sample without replacement). */
export const randomSelector: Selector = {
  name: 'random',
  description: 'uniform random subset (seeded)',
  needsLogits: false,
  rank: ({ candidates, m, rng }) => rng.choice(candidates.length, Math.min(m, candidates.length)).map((j) => candidates[j]!),
};

/** The first m candidates in dataset order: what the reference's "random" selector really does. */
export const firstSelector: Selector = {
  name: 'first',
  description: 'first m samples in dataset order (the reference "random")',
  needsLogits: false,
  rank: ({ candidates, m }) => candidates.slice(0, Math.min(m, candidates.length)),
};

/** A score-based selector: `rankByScore` over the candidates' logits, mapped to sample indices. */
export function scoredSelector(name: ScoredSelectorName): Selector {
  return {
    name,
    description: SCORED_SELECTORS[name].description,
    needsLogits: true,
    rank: ({ candidates, label, logits }) => {
      if (logits === undefined) throw new Clap4ClipError(`exemplar selector "${name}" needs the logits of the candidates of class ${label}`);
      const order = rankByScore(name, { logits: logits.logits, samples: logits.samples, n: candidates.length, classes: logits.classes, label });
      return order.map((j) => candidates[j]!);
    },
  };
}

const SCORED = Object.fromEntries(SCORED_SELECTOR_NAMES.map((n) => [n, scoredSelector(n)])) as Record<ScoredSelectorName, Selector>;

/**
 * Every exemplar selector by name: the only list of their names. `SELECTOR_NAMES` (config
 * validation, `--help`, error messages) and `SelectorName` derive from it.
 */
export const SELECTORS = { random: randomSelector, first: firstSelector, ...SCORED } satisfies Record<string, Selector>;
export type SelectorName = keyof typeof SELECTORS;
export const SELECTOR_NAMES: readonly SelectorName[] = Object.freeze(Object.keys(SELECTORS) as SelectorName[]);

/** True when `name` is a key of `SELECTORS` (own keys only: `toString` is not a selector). */
export function isSelectorName(name: string): name is SelectorName {
  return Object.hasOwn(SELECTORS, name);
}

export function getSelector(name: string): Selector {
  if (!isSelectorName(name)) throw new Clap4ClipError(`unknown exemplar selector "${name}": must be one of [${SELECTOR_NAMES.join(', ')}]`);
  return SELECTORS[name];
}
