/**
 * The classifier's state and the one way its method is (re)built.
 *
 * A `Method` is built for a fixed number of classes (its context holds the text features of every
 * class it will see). An application learns classes it did not know about when it started, so each
 * `learn` builds a new method over all classes known so far and carries the trained tensors over:
 * replay beginTask/endTask of the learned tasks (their structure), copy every tensor in by name,
 * and rewind the method's generator over the draws the rebuild made. The rebuilt method computes
 * what the old one did; the old one is left untouched, which is what makes a failed `learn` (or a
 * failed load) leave the classifier as it was.
 */
import { Rng, type RngState } from '../engine/random.js';
import type { MemoryBudget } from '../memory/memory.js';
import type { SelectorName } from '../memory/selectors.js';
import type { Method, MethodContext, TaskInfo } from '../methods/method.js';
import { createMethod } from '../methods/registry.js';
import { Clap4ClipError } from '../util/errors.js';
import type { NoveltyCalibration } from './types.js';

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

/** The generators of a classifier, forked in a fixed order from Rng(seed). */
export interface ClassifierStreams {
  /** Batch order and views. */
  loop: Rng;
  /** Exemplar selection. */
  memory: Rng;
  /** Test-time noise of the predictions that score exemplar candidates. */
  scoring: Rng;
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
  /** e[c, p], unit norm, [C, P, D]. */
  text: Float32Array;
  /** P (0 before the first task). */
  numTemplates: number;
  tasks: readonly TaskInfo[];
  bank: FeatureBank;
  /** null before the first task. */
  method: Method | null;
  /** The method's context; `context.rng` is the method's own generator. */
  context: MethodContext | null;
  streams: ClassifierStreams;
  /** The method's generator after the last committed step (a new step or a load continues from it). */
  methodRng: RngState;
  /** The fixed test-time noise stream of `predict`: every prediction starts from this state. */
  noise: RngState;
  /** Threshold of `isNovel` for this model (null: not calibrated). */
  novelty: NoveltyCalibration | null;
}

/** The state of a new classifier: no classes, generators from `seed`. */
export function emptyState(seed: number): ModelState {
  const root = new Rng(seed);
  const methodRng = root.fork().state();
  const streams: ClassifierStreams = { loop: root.fork(), memory: root.fork(), scoring: root.fork() };
  const noise = root.fork().state();
  const bank = { features: new Float32Array(0), labels: new Int32Array(0) };
  return { classes: [], text: new Float32Array(0), numTemplates: 0, tasks: [], bank, method: null, context: null, streams, methodRng, noise, novelty: null };
}

/** Independent copies of the streams (a learning attempt draws from these; committed on success). */
export function cloneStreams(s: ClassifierStreams): ClassifierStreams {
  return { loop: Rng.fromState(s.loop.state()), memory: Rng.fromState(s.memory.state()), scoring: Rng.fromState(s.scoring.state()) };
}

/** Tensors by name, as a method or a saved file holds them. */
export type TensorSource = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

/** The tensors of `method`, by name (not copied). */
export function methodTensors(method: Method): TensorSource {
  return new Map(method.namedParameters().map(([name, t]) => [name, { shape: t.shape, data: t.data }]));
}

export interface BuildInput {
  settings: ClassifierSettings;
  /** [C, P, D] for the C classes the method must know. */
  text: Float32Array;
  numTemplates: number;
  numClasses: number;
  /** Tasks already learned: replayed, then filled from `tensors`. */
  tasks: readonly TaskInfo[];
  tensors: TensorSource | null;
  /** The method's generator; a rebuild leaves the new context's generator at this state. */
  methodRng: Rng;
  /** Names the tensors' origin in errors. */
  source: string;
}

/**
 * A method over `numClasses` classes with the learned `tasks` restored from `tensors`.
 * With no tasks, the method is new and keeps the draws of its initialization.
 */
export async function buildMethod(input: BuildInput): Promise<{ method: Method; context: MethodContext }> {
  const { settings, tasks, source } = input;
  const rewindTo = input.methodRng.state();
  const context: MethodContext = {
    dim: settings.dim,
    textPerTemplate: input.text,
    numClasses: input.numClasses,
    numTemplates: input.numTemplates,
    logitScale: settings.logitScale,
    rng: input.methodRng,
  };
  const method = await createMethod(settings.method, context, { samples: settings.samples, batchSize: settings.batchSize, methodOptions: { ...settings.methodOptions } });
  if (tasks.length === 0) return { method, context };
  for (const task of tasks) {
    method.beginTask(task);
    method.endTask(task);
  }
  const saved = input.tensors ?? new Map();
  const own = method.namedParameters();
  const ownNames = new Set(own.map(([n]) => n));
  for (const name of saved.keys()) {
    if (!ownNames.has(name)) throw new Clap4ClipError(`${source}: holds tensor "${name}" that ${method.name} does not have (different method options?)`);
  }
  for (const [name, t] of own) {
    const s = saved.get(name);
    if (s === undefined) throw new Clap4ClipError(`${source}: tensor "${name}" of ${method.name} is missing (different method options?)`);
    if (JSON.stringify(s.shape) !== JSON.stringify(t.shape)) throw new Clap4ClipError(`${source}: tensor "${name}" has shape ${JSON.stringify(s.shape)}, ${method.name} has ${JSON.stringify(t.shape)}`);
  }
  for (const [name, t] of own) t.data.set(saved.get(name)!.data);
  // The replay drew initializations that were just overwritten: rewind the generator over them.
  context.rng = Rng.fromState(rewindTo);
  return { method, context };
}
