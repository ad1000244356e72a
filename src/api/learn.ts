/**
 * `learn(task)`: one step of the class-incremental protocol of spec section 5 for classes that
 * arrive at run time, on image FEATURES (the memory stores features, never images). The step is
 * the run loop's own (`cl/taskStep.ts`): train on memory + the new examples, fit, memory update,
 * from the second task on class-balanced finetuning.
 *
 * It runs on a copy of the method and of the generators and returns the next state: the caller
 * commits it, so a failure anywhere leaves the classifier unchanged.
 */
import { ExemplarMemory } from '../memory/memory.js';
import { getSelector } from '../memory/selectors.js';
import type { TaskInfo } from '../methods/method.js';
import type { ClipEncoder } from '../encoders/types.js';
import { importClipModule } from '../encoders/clipModule.js';
import { gatherFeatures } from '../data/gatherFeatures.js';
import type { ProgressFactory } from '../run/progress.js';
import { cloneStreams } from '../cl/streams.js';
import { runTaskStep } from '../cl/taskStep.js';
import type { FeaturesSplit } from '../data/types.js';
import { Clap4ClipError } from '../util/errors.js';
import { copyMethod, newMethod, type ClassifierSettings, type FeatureBank, type ModelState } from './core.js';
import { encodeImages, unitRows } from './inputs.js';
import type { LearnProgress, LearnResult, LearnTask } from './types.js';

/** A checked new class: unit-norm image features [n, D] and per-template text features [P, D]. */
export interface PreparedClass {
  name: string;
  features: Float32Array;
  n: number;
  text: Float32Array;
}

const TASK_KEYS = ['classes', 'onProgress'];
const CLASS_KEYS = ['name', 'images', 'features', 'textFeatures'];
/** Images per encoder call while learning (prediction encodes one at a time). */
const ENCODE_BATCH = 32;

function checkKeys(o: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new Clap4ClipError(`${what}: unknown key "${k}": must be one of [${known.join(', ')}]`);
  }
}

/**
 * Checks a task and turns its examples into features. Text features come from `textFeatures`, or
 * from the encoder with the templates (one batch for all new classes).
 */
export async function prepareTask(task: LearnTask, settings: ClassifierSettings, state: ModelState, encoder: ClipEncoder | null): Promise<PreparedClass[]> {
  if (task === null || typeof task !== 'object' || Array.isArray(task)) throw new Clap4ClipError('learn: expected { classes: [{ name, images?, features?, textFeatures? }], onProgress? }');
  checkKeys(task, TASK_KEYS, 'learn');
  if (task.onProgress !== undefined && typeof task.onProgress !== 'function') throw new Clap4ClipError('learn: onProgress must be a function');
  if (!Array.isArray(task.classes) || task.classes.length === 0) throw new Clap4ClipError('learn: "classes" must be a non-empty array of { name, images?, features?, textFeatures? }');
  const D = settings.dim;
  const known = new Set(state.classes);
  const out: { name: string; features: Float32Array; text: Float32Array | null }[] = [];
  for (const [i, c] of task.classes.entries()) {
    let what = `learn: classes[${i}]`;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new Clap4ClipError(`${what}: expected { name, images?, features?, textFeatures? }`);
    checkKeys(c, CLASS_KEYS, what);
    if (typeof c.name !== 'string' || c.name.trim() === '') throw new Clap4ClipError(`${what}: "name" must be a non-empty string`);
    what = `learn: class "${c.name}" (classes[${i}])`;
    if (known.has(c.name)) {
      throw new Clap4ClipError(state.classes.includes(c.name) ? `${what}: already learned (class names are unique; a class is learned once)` : `${what}: appears twice in this task`);
    }
    known.add(c.name);
    if (c.images !== undefined && !Array.isArray(c.images)) throw new Clap4ClipError(`${what}: "images" must be an array`);
    const images = c.images ?? [];
    const parts: Float32Array[] = [];
    if (c.features !== undefined) parts.push(unitRows(c.features, D, `${what} features`));
    if (images.length > 0) parts.push(await encodeImages(encoder, images, what, ENCODE_BATCH));
    if (parts.length === 0) throw new Clap4ClipError(`${what}: no examples (give "images" or "features")`);
    const features = parts.length === 1 ? parts[0]! : concatFloat(parts);
    let text: Float32Array | null = null;
    if (c.textFeatures !== undefined) text = unitRows(c.textFeatures, D, `${what} textFeatures`);
    else if (encoder === null) throw new Clap4ClipError(`${what}: "textFeatures" [P, ${D}] is required without an encoder`);
    out.push({ name: c.name, features, text });
  }
  // Classes without text features get them from the encoder and the templates.
  const missing = out.filter((c) => c.text === null);
  if (missing.length > 0) {
    const { classTextFeatures } = await importClipModule('computing text features from class names (a class without "textFeatures")');
    const P = settings.templates.length;
    const text = await classTextFeatures(encoder!, missing.map((c) => c.name), settings.templates);
    missing.forEach((c, j) => { c.text = unitRows(text.slice(j * P * D, (j + 1) * P * D), D, `learn: class "${c.name}" text features`); });
  }
  const P = state.numTemplates > 0 ? state.numTemplates : out[0]!.text!.length / D;
  for (const c of out) {
    const p = c.text!.length / D;
    if (p !== P) throw new Clap4ClipError(`learn: class "${c.name}" has text features for ${p} templates, the classifier uses P = ${P} (every class needs the same templates)`);
  }
  return out.map((c) => ({ name: c.name, features: c.features, n: c.features.length / D, text: c.text! }));
}

function concatFloat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const range = (start: number, end: number): Int32Array => Int32Array.from({ length: end - start }, (_, i) => start + i);

/** The stored exemplars of `memory` (indices into `split`), gathered into a new bank. */
function compactBank(memory: ExemplarMemory, split: FeaturesSplit): FeatureBank {
  const indices = memory.indices(); // classes ascending, ranking order within a class
  const labels = new Int32Array(indices.length);
  indices.forEach((idx, i) => { labels[i] = split.labels[idx]!; });
  return { features: gatherFeatures(split, indices), labels };
}

/** The memory over a bank: class -> its rows, in bank order. */
function memoryOfBank(bank: FeatureBank, settings: ClassifierSettings): ExemplarMemory {
  const byClass = new Map<number, number[]>();
  bank.labels.forEach((c, i) => {
    const rows = byClass.get(c) ?? [];
    rows.push(i);
    byClass.set(c, rows);
  });
  return ExemplarMemory.fromJSON({ budget: settings.memory, classes: [...byClass.entries()].sort((a, b) => a[0] - b[0]) });
}

/** Progress of one phase as `LearnProgress` events (the bar's label carries the loss). */
function progressEvents(task: number, onProgress: ((p: LearnProgress) => void) | undefined): ProgressFactory {
  return (label, total) => {
    const phase: LearnProgress['phase'] = label.endsWith('finetune') ? 'finetune' : 'train';
    let iteration = 0;
    return {
      tick: (_n?: number, note?: string) => {
        iteration++;
        const loss = note?.startsWith('loss ') ? Number(note.slice(5)) : NaN;
        onProgress?.({ task, phase, iteration, total, loss });
      },
      done: () => {},
    };
  };
}

/**
 * Learns `classes` as the next task and returns the next state (not committed).
 * @param classes checked new classes (`prepareTask`)
 */
export async function learnTask(
  settings: ClassifierSettings,
  state: ModelState,
  classes: readonly PreparedClass[],
  onProgress?: (p: LearnProgress) => void,
): Promise<{ state: ModelState; result: LearnResult }> {
  const t0 = performance.now();
  const D = settings.dim;
  const start = state.classes.length;
  const task: TaskInfo = { index: state.tasks.length, classStart: start, classEnd: start + classes.length };
  const numTemplates = classes[0]!.text.length / D;
  const method = state.method === null ? await newMethod(settings) : await copyMethod(settings, state.method);
  const streams = cloneStreams(state.streams);

  // The training split: the memory's exemplars (rows 0..M-1), then the new examples class by class.
  const M = state.bank.labels.length;
  const N = classes.reduce((n, c) => n + c.n, 0);
  const labels = new Int32Array(M + N);
  labels.set(state.bank.labels);
  let row = M;
  classes.forEach((c, j) => { labels.fill(start + j, row, row + c.n); row += c.n; });
  const split: FeaturesSplit = { features: concatFloat([state.bank.features, ...classes.map((c) => c.features)]), labels, n: M + N, views: 1, dim: D };
  const memory = memoryOfBank(state.bank, settings);
  const { train, finetune } = method.traits.sgd;

  const record = await runTaskStep({
    method, task, classes: { textPerTemplate: concatFloat(classes.map((c) => c.text)), numTemplates },
    split, labels, taskRows: range(M, M + N), memory, selector: getSelector(settings.selector),
    schedules: { train, finetune }, batchSize: settings.batchSize, scoringBatchSize: settings.batchSize,
    streams, progress: progressEvents(task.index, onProgress), label: `${method.name} task ${task.index}`,
  });
  const bank = method.traits.replay ? compactBank(memory, split) : state.bank;

  const next: ModelState = {
    classes: [...state.classes, ...classes.map((c) => c.name)],
    text: concatFloat([state.text, ...classes.map((c) => c.text)]),
    numTemplates, tasks: [...state.tasks, task], bank, method, streams,
    // One fixed ensemble per learned model, as the run loop's evaluation after a task.
    noise: streams.evalNoise.fork().state(),
    novelty: null, // the model changed: a threshold or temperature set on the old one means nothing now
    calibration: null,
  };
  const result: LearnResult = { ...record, classStart: task.classStart, classEnd: task.classEnd, seconds: (performance.now() - t0) / 1e3 };
  return { state: next, result };
}
