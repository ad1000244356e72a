/**
 * Exemplar selectors: given the candidate samples of one class, return them ranked best first.
 * The memory keeps the first m of a ranking, and later shrinks a class by truncation, so a
 * ranking must put the samples it most wants to keep first.
 *
 * Score-based selectors of spec section 6 (herding, entropy, distance, energy, variance) plug in
 * here later: they read per-candidate model outputs from `scores`.
 */
import type { Rng } from '../engine/random.js';
import { Clap4ClipError } from '../util/errors.js';

export interface SelectorContext {
  /** Sample indices of one class, ascending. */
  candidates: Int32Array;
  /** How many the memory will keep. */
  m: number;
  /** The run's generator (selection is part of the run's reproducible randomness). */
  rng: Rng;
  /** Per-candidate model outputs, [candidates.length, k], for selectors that score samples. */
  scores?: Float32Array;
}

/**
 * Returns a ranking of (a prefix of) `candidates`: sample indices, best first, at least
 * min(m, candidates.length) of them, no repeats.
 */
export type Selector = (ctx: SelectorContext) => Int32Array;

/** Uniform random subset, in random order (a random ordered sample without replacement). */
export const randomSelector: Selector = ({ candidates, m, rng }) => {
  const k = Math.min(m, candidates.length);
  return rng.choice(candidates.length, k).map((j) => candidates[j]!);
};

/** The first m candidates in dataset order: what the reference's "random" selector really does. */
export const firstSelector: Selector = ({ candidates, m }) => candidates.slice(0, Math.min(m, candidates.length));

export interface SelectorEntry {
  select: Selector;
  description: string;
}

export const selectors = {
  random: { select: randomSelector, description: 'uniform random subset (seeded)' },
  first: { select: firstSelector, description: 'first m samples in dataset order (the reference "random")' },
} satisfies Record<string, SelectorEntry>;

export type SelectorName = keyof typeof selectors;

export const SELECTOR_NAMES = Object.keys(selectors) as SelectorName[];

export function getSelector(name: string): Selector {
  const entry = (selectors as Record<string, SelectorEntry>)[name];
  if (entry === undefined) throw new Clap4ClipError(`unknown exemplar selector "${name}": must be one of [${SELECTOR_NAMES.join(', ')}]`);
  return entry.select;
}
