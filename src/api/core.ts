/**
 * The classifier's state, and the one way its method is created or copied.
 *
 * A method learns classes as they arrive (the method contract of `methods/method.ts`), so `learn`
 * hands the new task to the method the classifier already has. It does so on a copy (created
 * fresh, then `loadState(saveState())`) with copies of the generators: a failed `learn` leaves
 * the classifier as it was, and a load is the same "create, then load state".
 */
import type { RngState } from '../engine/random.js';
import type { MemoryBudget } from '../memory/memory.js';
import type { SelectorName } from '../memory/selectors.js';
import type { Method, MethodSetup, TaskInfo, TensorSource } from '../methods/method.js';
import { createMethod } from '../methods/registry.js';
import { tensorSource } from '../methods/state.js';
import { runStreams, type RunStreams } from '../cl/streams.js';
import type { NoveltyCalibration, TemperatureCalibration } from './types.js';

export type { TensorSource } from '../methods/method.js';

/** What stays fixed for the life of a classifier (and is saved with it). */
export interface ClassifierSettings {
  method: string;
  methodOptions: Record<string, unknown>;
  /** T */
  samples: number;
  /** B */
  batchSize: number;
  memory: MemoryBudget;
  selector: SelectorName;
  /** D */
  dim: number;
  logitScale: number;
  /** Templates used to compute text features from class names (encoder mode). */
  templates: readonly string[];
  /** Encoder id or folder (null: features only). */
  encoderId: string | null;
  seed: number;
}

/** The stored exemplars: features [M, D] and incremental labels [M], classes ascending, ranking order within a class. */
export interface FeatureBank {
  features: Float32Array;
  labels: Int32Array;
}

/**
 * Everything that changes when the classifier learns. Replaced as a whole on commit (never
 * mutated in place), so a failed step cannot leave half of it changed.
 */
export interface ModelState {
  /** Class names in label order (C). */
  classes: readonly string[];
  /** e[c, p], unit norm, [C, P, D] (saved with the classifier; the method keeps what it needs). */
  text: Float32Array;
  /** P (0 before the first task). */
  numTemplates: number;
  tasks: readonly TaskInfo[];
  bank: FeatureBank;
  /** null before the first task. */
  method: Method | null;
  /** The run's generators (`cl/streams.ts`), the method's included; a new step continues from them. */
  streams: RunStreams;
  /** The fixed test-time noise of `predict`: every prediction starts from this state. */
  noise: RngState;
  /** Threshold of `isNovel` for this model (null: not calibrated). */
  novelty: NoveltyCalibration | null;
  /** The temperature `calibrate` fitted for this model (null: raw probabilities). */
  calibration: TemperatureCalibration | null;
}

/** The state of a new classifier: no classes, the run's generators from `seed`. */
export function emptyState(seed: number): ModelState {
  const streams = runStreams(seed);
  const bank = { features: new Float32Array(0), labels: new Int32Array(0) };
  // Replaced by the first learn; nothing predicts before it.
  const noise = streams.evalNoise.state();
  return { classes: [], text: new Float32Array(0), numTemplates: 0, tasks: [], bank, method: null, streams, noise, novelty: null, calibration: null };
}

export function methodSetupOf(settings: ClassifierSettings): MethodSetup {
  return { dim: settings.dim, logitScale: settings.logitScale, samples: settings.samples, batchSize: settings.batchSize, methodOptions: { ...settings.methodOptions } };
}

/** A new method of the settings (no task learned yet). */
export function newMethod(settings: ClassifierSettings): Promise<Method> {
  return createMethod(settings.method, methodSetupOf(settings));
}

/**
 * A method of the settings with a saved state loaded into it.
 * @param source names the state's origin in errors
 */
export async function methodFromState(settings: ClassifierSettings, state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): Promise<Method> {
  const method = await newMethod(settings);
  method.loadState(state, source);
  return method;
}

/** An independent copy of `method` (training the copy leaves the original as it is). */
export async function copyMethod(settings: ClassifierSettings, method: Method): Promise<Method> {
  const saved = method.saveState();
  return methodFromState(settings, { tensors: tensorSource(saved.tensors), meta: saved.meta }, 'the current model');
}
