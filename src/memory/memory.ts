/**
 * Exemplar memory (spec section 6): training-sample indices stored per incremental class.
 *
 * After each task every old class keeps the first m of its stored exemplars (they were stored in
 * ranking order, so truncation keeps the best ones) and each new class stores the first m of its
 * selector's ranking. m comes from the budget: a fixed total split evenly over the seen classes
 * (CIFAR-100: 2000 in total, floor(2000 / C) per class) or a fixed number per class (20).
 */
import type { Rng } from '../engine/random.js';
import { Clap4ClipError } from '../util/errors.js';
import type { CandidateLogits, Selector } from './selectors.js';

export type MemoryBudget = { kind: 'total'; size: number } | { kind: 'perClass'; size: number };

/** Exemplars per class after `seenClasses` classes: floor(total / C) or the fixed per-class size. */
export function perClassQuota(budget: MemoryBudget, seenClasses: number): number {
  if (!Number.isInteger(budget.size) || budget.size < 0) throw new Clap4ClipError(`memory size must be an integer >= 0, got ${budget.size}`);
  if (!Number.isInteger(seenClasses) || seenClasses < 1) throw new Clap4ClipError(`memory: seen classes must be >= 1, got ${seenClasses}`);
  return budget.kind === 'total' ? Math.floor(budget.size / seenClasses) : budget.size;
}

/** The new classes of a task with their candidate samples (ascending sample indices). */
export interface NewClass {
  label: number;
  candidates: Int32Array;
  /** The model's logits of the candidates (same order), for selectors that `needsLogits`. */
  logits?: CandidateLogits;
}

/** JSON form (checkpoints): class label -> stored sample indices in ranking order. */
export interface MemoryState {
  budget: MemoryBudget;
  classes: [number, number[]][];
}

export class ExemplarMemory {
  private readonly byClass = new Map<number, Int32Array>();

  constructor(readonly budget: MemoryBudget) {
    perClassQuota(budget, 1); // validates the size
  }

  /** Number of classes stored. */
  get numClasses(): number {
    return this.byClass.size;
  }

  /** Total number of stored exemplars. */
  get size(): number {
    let n = 0;
    for (const v of this.byClass.values()) n += v.length;
    return n;
  }

  /**
   * Shrink the old classes to the new quota, then let `select` rank the candidates of each new
   * class and store the first m. `seenClasses` counts old and new classes together. A selector
   * that `needsLogits` reads them from each new class (`candidateLogits` computes them).
   */
  update(newClasses: readonly NewClass[], seenClasses: number, select: Selector, rng: Rng): void {
    const m = perClassQuota(this.budget, seenClasses);
    for (const [label, stored] of this.byClass) this.byClass.set(label, stored.slice(0, m));
    for (const nc of newClasses) {
      if (this.byClass.has(nc.label)) throw new Clap4ClipError(`memory: class ${nc.label} is already stored (classes are new once)`);
      const ranking = select.rank({ candidates: nc.candidates, label: nc.label, m, rng, ...(nc.logits ? { logits: nc.logits } : {}) });
      const want = Math.min(m, nc.candidates.length);
      if (ranking.length < want) throw new Clap4ClipError(`memory: the selector ranked ${ranking.length} samples of class ${nc.label}, needs ${want}`);
      this.byClass.set(nc.label, ranking.slice(0, want));
    }
  }

  /** Stored sample indices of one class, in ranking order. */
  exemplarsOf(label: number): Int32Array {
    return this.byClass.get(label) ?? new Int32Array(0);
  }

  /** Stored exemplars per class, labels ascending: [label, count][]. */
  classSizes(): [number, number][] {
    return [...this.byClass.keys()].sort((a, b) => a - b).map((c) => [c, this.byClass.get(c)!.length]);
  }

  /** All stored sample indices, classes in ascending label order. */
  indices(): Int32Array {
    const out = new Int32Array(this.size);
    let o = 0;
    for (const [c] of this.classSizes()) {
      const v = this.byClass.get(c)!;
      out.set(v, o);
      o += v.length;
    }
    return out;
  }

  toJSON(): MemoryState {
    return { budget: this.budget, classes: this.classSizes().map(([c]) => [c, Array.from(this.byClass.get(c)!)]) };
  }

  static fromJSON(state: MemoryState): ExemplarMemory {
    const mem = new ExemplarMemory(state.budget);
    for (const [c, idx] of state.classes) mem.byClass.set(c, Int32Array.from(idx));
    return mem;
  }
}
