/**
 * The generators of a class-incremental run, the one place that owns them. The run loop and the
 * library's classifier fork the same streams in the same order from `Rng(seed)`, so one seed
 * means the same draws through either front end. New streams are appended (adding one never
 * changes the others).
 */
import { Rng, type RngState } from '../engine/random.js';

export interface RunStreams {
  /** Class order and the few-shot subsets of the scenario. */
  scenario: Rng;
  /** Epoch shuffles and the random view of every training sample. */
  loop: Rng;
  /** Exemplar selection. */
  memory: Rng;
  /** The method's own draws: initialization, training noise and dropout, fitting. */
  method: Rng;
  /** Order of `mixed` test batches. */
  evalOrder: Rng;
  /** Test-time noise of evaluation, detection and `predict` (one fixed ensemble per step). */
  evalNoise: Rng;
  /** Order of `mixed` detection batches (separate: detection on or off changes no other draw). */
  noveltyOrder: Rng;
  /** Noise of the predictions scoring exemplar candidates. */
  scoring: Rng;
  /**
   * The held-out calibration samples of a run (`src/run/calibrationSet.ts`). The run loop draws
   * them from this stream's initial state only, so the draw is a function of the seed and the
   * scenario, the same on resume; the library never draws from it.
   */
  calibration: Rng;
}

/** Stream names, in fork order. */
export const STREAM_NAMES = ['scenario', 'loop', 'memory', 'method', 'evalOrder', 'evalNoise', 'noveltyOrder', 'scoring', 'calibration'] as const satisfies readonly (keyof RunStreams)[];

/**
 * Streams appended after states were first saved: a saved state without one of these (an older
 * classifier save) gets it fresh from the seed, which is exact as long as nothing drew from it
 * before it existed.
 */
export const APPENDED_STREAMS: readonly (keyof RunStreams)[] = ['calibration'];

export function runStreams(seed: number): RunStreams {
  const root = new Rng(seed);
  const out = {} as Record<keyof RunStreams, Rng>;
  for (const name of STREAM_NAMES) out[name] = root.fork();
  return out;
}

export type StreamStates = Record<keyof RunStreams, RngState>;

export function streamStates(streams: RunStreams): StreamStates {
  const out = {} as StreamStates;
  for (const name of STREAM_NAMES) out[name] = streams[name].state();
  return out;
}

/** Streams from saved states; `seed` supplies the `APPENDED_STREAMS` an older state lacks. */
export function streamsFromStates(states: Partial<StreamStates>, seed?: number): RunStreams {
  const out = {} as Record<keyof RunStreams, Rng>;
  let fresh: RunStreams | null = null;
  for (const name of STREAM_NAMES) {
    const saved = states[name];
    if (saved !== undefined) out[name] = Rng.fromState(saved);
    else if (seed !== undefined && APPENDED_STREAMS.includes(name)) out[name] = (fresh ??= runStreams(seed))[name];
    else throw new Error(`generator state "${name}" is missing`);
  }
  return out;
}

/** Independent copies (a learning attempt draws from these; they are committed on success). */
export function cloneStreams(streams: RunStreams): RunStreams {
  return streamsFromStates(streamStates(streams));
}
