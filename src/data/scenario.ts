/**
 * The class-incremental scenario: which dataset label becomes which incremental label (class
 * order), how the incremental labels split into tasks, and which train/test samples each task owns.
 *
 * Pure functions of their inputs: the same dataset labels, options and generator state give the
 * same scenario, so a run can rebuild it from its config instead of storing it.
 */
import { numpyLegacyShuffledArange, type Rng } from '../engine/random.js';
import type { TaskInfo } from '../methods/method.js';
import { Clap4ClipError, ConfigError } from '../util/errors.js';

/**
 * `reference`: numpy legacy `RandomState(1993 + run).shuffle(arange(C))`, as the reference code;
 * `identity`: dataset label order; or an explicit permutation of 0..C-1.
 * In every case order[k] is the dataset label that becomes incremental label k.
 */
export type ClassOrderSpec = 'reference' | 'identity' | readonly number[];

/**
 * Task split. Task 0 holds `base` classes (default: `increment`), every later task `increment`.
 * `shots`: few-shot class-incremental learning, each class of a task after the first keeps only
 * `shots` training samples (drawn with the run's generator); null = all samples.
 */
export interface SplitSpec {
  base?: number | null;
  increment: number;
  shots?: number | null;
}

/** Few-shot CIL of spec section 9: base task of 60 classes, then tasks of 5 classes, 5 shots each. */
export const FEW_SHOT_SPLIT: Readonly<SplitSpec> = Object.freeze({ base: 60, increment: 5, shots: 5 });

export interface Scenario {
  /** order[k] = dataset label of incremental label k. */
  classOrder: number[];
  /** labelMap[datasetLabel] = incremental label. */
  labelMap: Int32Array;
  tasks: TaskInfo[];
  /** Incremental label of every train / test sample, [N_train] / [N_test]. */
  trainLabels: Int32Array;
  testLabels: Int32Array;
  /** Per task: indices of its training samples (ascending; few-shot: the drawn shots only). */
  trainIndices: Int32Array[];
  /** Per task: indices of its test samples, shuffled once (so a test batch mixes the task's classes). */
  testIndices: Int32Array[];
}

/** `key`: the setting at fault (`classOrder`, `increment`, `baseClasses`, `shots`), when one is. */
function scenarioError(problem: string, key?: string): Clap4ClipError {
  return key === undefined ? new Clap4ClipError(`scenario: ${problem}`) : new ConfigError(key, `scenario: ${problem}`);
}

/** The class order of `spec` for C classes and run `run` (reference: seed 1993 + run). */
export function resolveClassOrder(spec: ClassOrderSpec, numClasses: number, run: number): number[] {
  if (spec === 'identity') return Array.from({ length: numClasses }, (_, i) => i);
  if (spec === 'reference') {
    if (!Number.isInteger(run) || run < 0) throw scenarioError(`the reference class order needs a run (seed) >= 0, got ${run}`);
    return numpyLegacyShuffledArange(1993 + run, numClasses);
  }
  if (!Array.isArray(spec)) throw scenarioError(`class order must be "reference", "identity" or a list of labels`, 'classOrder');
  if (spec.length !== numClasses) {
    throw scenarioError(`the class order lists ${spec.length} labels but the dataset has ${numClasses} classes`, 'classOrder');
  }
  const seen = new Uint8Array(numClasses);
  spec.forEach((c, k) => {
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw scenarioError(`class order entry ${k} is ${String(c)}, not a label in [0, ${numClasses})`, 'classOrder');
    }
    if (seen[c]) throw scenarioError(`class order lists label ${c} twice (it must be a permutation)`, 'classOrder');
    seen[c] = 1;
  });
  return [...spec];
}

/** labelMap[order[k]] = k. */
export function inverseOrder(order: readonly number[]): Int32Array {
  const map = new Int32Array(order.length);
  order.forEach((c, k) => { map[c] = k; });
  return map;
}

/** Tasks of a split over C classes: contiguous blocks [classStart, classEnd). */
export function splitTasks(numClasses: number, split: SplitSpec): TaskInfo[] {
  const { increment } = split;
  const base = split.base ?? increment;
  if (!Number.isInteger(increment) || increment < 1) throw scenarioError(`increment must be a positive integer, got ${increment}`, 'increment');
  if (!Number.isInteger(base) || base < 1 || base > numClasses) {
    throw scenarioError(`base task size must be an integer in [1, ${numClasses}], got ${base}`, 'baseClasses');
  }
  if ((numClasses - base) % increment !== 0) {
    throw scenarioError(
      `${numClasses} classes do not split into a base task of ${base} plus tasks of ${increment} ` +
        `(${numClasses - base} classes left over is not a multiple of ${increment})`,
      'increment',
    );
  }
  const tasks: TaskInfo[] = [{ index: 0, classStart: 0, classEnd: base }];
  for (let s = base; s < numClasses; s += increment) {
    tasks.push({ index: tasks.length, classStart: s, classEnd: s + increment });
  }
  return tasks;
}

/** Incremental labels of dataset labels; throws on a label outside the map. */
export function mapLabels(labels: Int32Array, labelMap: Int32Array): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= labelMap.length) throw scenarioError(`sample ${i} has label ${c}, outside [0, ${labelMap.length})`);
    out[i] = labelMap[c]!;
  }
  return out;
}

/** `dataset class 3 "owl"` (just the number when the names are unknown). */
function nameOf(datasetClass: number, names: readonly string[] | undefined): string {
  const name = names?.[datasetClass];
  return `dataset class ${datasetClass}${name === undefined ? '' : ` ${JSON.stringify(name)}`}`;
}

/** Sample indices grouped by task: taskOf[label] says which task owns an incremental label. */
function groupByTask(labels: Int32Array, tasks: readonly TaskInfo[]): number[][] {
  const taskOf = new Int32Array(tasks[tasks.length - 1]!.classEnd);
  for (const t of tasks) taskOf.fill(t.index, t.classStart, t.classEnd);
  const groups: number[][] = tasks.map(() => []);
  for (let i = 0; i < labels.length; i++) groups[taskOf[labels[i]!]!]!.push(i);
  return groups;
}

/**
 * Keep `shots` samples of every class of tasks after the first, drawn uniformly without
 * replacement with `rng` (classes in label order, so the draw is reproducible). Indices stay sorted.
 */
function drawShots(indices: number[], labels: Int32Array, task: TaskInfo, shots: number, rng: Rng, describe: (c: number) => string): number[] {
  const kept: number[] = [];
  for (let c = task.classStart; c < task.classEnd; c++) {
    const ofClass = indices.filter((i) => labels[i] === c);
    if (ofClass.length < shots) {
      throw scenarioError(`few-shot: class ${c} (${describe(c)}, task ${task.index}) has ${ofClass.length} training samples, fewer than ${shots} shots`, 'shots');
    }
    for (const j of rng.choice(ofClass.length, shots)) kept.push(ofClass[j]!);
  }
  return kept.sort((a, b) => a - b);
}

export interface ScenarioOptions {
  classOrder: ClassOrderSpec;
  split: SplitSpec;
  /** Run index: picks the reference class order (1993 + run). */
  run: number;
  /** Draws the few-shot shots and the test order. */
  rng: Rng;
  /** Class names in dataset label order (the manifest's): messages name a class by name. */
  classNames?: readonly string[];
  /** Where the dataset comes from (its folder), for messages. */
  source?: string;
}

/**
 * Build the scenario for a dataset with `numClasses` classes and the given dataset labels.
 * Every class must have at least one training and one test sample (an empty task cannot be
 * trained or scored).
 */
export function buildScenario(
  numClasses: number,
  trainDatasetLabels: Int32Array,
  testDatasetLabels: Int32Array,
  opts: ScenarioOptions,
): Scenario {
  const classOrder = resolveClassOrder(opts.classOrder, numClasses, opts.run);
  const labelMap = inverseOrder(classOrder);
  const tasks = splitTasks(numClasses, opts.split);
  const trainLabels = mapLabels(trainDatasetLabels, labelMap);
  const testLabels = mapLabels(testDatasetLabels, labelMap);
  for (const [name, labels] of [['training', trainLabels], ['test', testLabels]] as const) {
    const count = new Int32Array(numClasses);
    for (const c of labels) count[c]!++;
    const empty = count.findIndex((n) => n === 0);
    if (empty >= 0) {
      const where = opts.source === undefined ? '' : ` in ${opts.source}`;
      throw scenarioError(`${nameOf(classOrder[empty]!, opts.classNames)} has no ${name} samples${where}; every class needs at least one (\`clap4clip features\` refuses a class folder without images)`);
    }
  }
  const shots = opts.split.shots ?? null;
  if (shots !== null && (!Number.isInteger(shots) || shots < 1)) throw scenarioError(`shots must be a positive integer or null, got ${shots}`, 'shots');
  const trainGroups = groupByTask(trainLabels, tasks);
  const trainIndices = tasks.map((t) =>
    Int32Array.from(shots !== null && t.index > 0 ? drawShots(trainGroups[t.index]!, trainLabels, t, shots, opts.rng, (c) => nameOf(classOrder[c]!, opts.classNames)) : trainGroups[t.index]!),
  );
  const testIndices = groupByTask(testLabels, tasks).map((g) => {
    const a = Int32Array.from(g);
    opts.rng.shuffleInPlace(a);
    return a;
  });
  return { classOrder, labelMap, tasks, trainLabels, testLabels, trainIndices, testIndices };
}

/**
 * Text features in incremental order: out[k] = text[order[k]], [C, P, D] (what a method sees).
 */
export function textInIncrementalOrder(text: Float32Array, order: readonly number[], numTemplates: number, dim: number): Float32Array {
  const block = numTemplates * dim;
  const out = new Float32Array(order.length * block);
  order.forEach((c, k) => out.set(text.subarray(c * block, (c + 1) * block), k * block));
  return out;
}
