/**
 * One step of the class-incremental protocol (spec section 5), shared by the run loop and the
 * library's `learn`:
 *
 *   beginTask: the method meets the task's classes (their text features)
 *   train on (memory of earlier tasks + all training samples of the task)   if the method has SGD
 *   fit on the same rows                                                      if the method fits
 *   memory: old classes shrink to the new quota, new classes select theirs  if the method replays
 *     (a score-based selector first scores each new class's candidates with the model)
 *   from the second task on: class-balanced finetuning on the memory only   if the method has it
 *   endTask
 *
 * Evaluation is the caller's: the run loop evaluates the benchmark's test split, an application
 * predicts what it likes.
 */
import type { FeaturesSplit } from '../data/types.js';
import { candidateLogits } from '../memory/candidateScores.js';
import type { ExemplarMemory, NewClass } from '../memory/memory.js';
import type { Selector } from '../memory/selectors.js';
import type { Method, SgdSchedule, TaskClasses, TaskInfo } from '../methods/method.js';
import { gatherFeatures } from '../data/gatherFeatures.js';
import { ensemblePredictor } from '../run/evaluate.js';
import type { ProgressFactory } from '../run/progress.js';
import type { RunStreams } from './streams.js';
import { trainPhase, type LossCurvePoints, type PhaseResult } from './trainPhase.js';

/** What one task step produced. */
export interface TaskRecord {
  task: number;
  /** Exemplars stored after the task. */
  memorySize: number;
  /** Training samples of the step (memory + new task). */
  trainSamples: number;
  /** SGD iterations of each phase. */
  iterations: { train: number; finetune: number };
  /** Mean loss of the last epoch of each phase (null when the phase did not run). */
  loss: { train: number | null; finetune: number | null };
  /** The training loss of each phase over its iterations, thinned (`LossCurve`; empty when the phase did not run). */
  lossCurve: { train: LossCurvePoints; finetune: LossCurvePoints };
  /** Wall-clock seconds of each phase (memory includes scoring the candidates; train includes fitting). */
  seconds: { train: number; memory: number; finetune: number };
}

/** The SGD phases as this run resolves them (config overrides over the method's traits). */
export interface StepSchedules {
  train: SgdSchedule | null;
  finetune: SgdSchedule | null;
}

export interface TaskStepInput {
  method: Method;
  task: TaskInfo;
  classes: TaskClasses;
  /** Training rows: features [N, views, D] with `labels` (incremental) for every row. */
  split: FeaturesSplit;
  labels: Int32Array;
  /** Rows of the task's own samples, grouped by class in label order where memory candidates are read from. */
  taskRows: Int32Array;
  /** The memory of earlier tasks (rows of `split`); updated in place when the method replays. */
  memory: ExemplarMemory;
  selector: Selector;
  schedules: StepSchedules;
  batchSize: number;
  /** Batch size of the predictions that score exemplar candidates. */
  scoringBatchSize: number;
  /** The loop, memory, method and scoring streams are drawn from. */
  streams: Pick<RunStreams, 'loop' | 'memory' | 'method' | 'scoring'>;
  progress: ProgressFactory;
  /** Names the step in progress bars. */
  label: string;
  /** Runs between iterations and candidate classes (a stop request is seen there); changes no computation. */
  pause?: () => Promise<void>;
}

/** The new classes of `task` with their candidate rows (in `rows` order). */
export function newClassesOf(task: TaskInfo, rows: Int32Array, labels: Int32Array): NewClass[] {
  const byClass: number[][] = Array.from({ length: task.classEnd - task.classStart }, () => []);
  for (const i of rows) byClass[labels[i]! - task.classStart]!.push(i);
  return byClass.map((c, j) => ({ label: task.classStart + j, candidates: Int32Array.from(c) }));
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const NOT_RUN: PhaseResult = Object.freeze({ iterations: 0, loss: null, curve: Object.freeze({ iteration: [], loss: [] }) }) as PhaseResult;

export async function runTaskStep(input: TaskStepInput): Promise<TaskRecord> {
  const { method, task, split, labels, memory, streams, schedules, pause } = input;
  const t0 = performance.now();
  method.beginTask(task, input.classes, streams.method);
  const common = { split, labels, batchSize: input.batchSize, rng: streams.loop, methodRng: streams.method, progress: input.progress, pause };

  // 1. Learn the new task on the memory of earlier tasks plus all its training samples.
  const trainRows = concat(memory.indices(), input.taskRows);
  const trained = schedules.train
    ? await trainPhase(method, 'train', trainRows, schedules.train, { ...common, label: `${input.label} train` })
    : NOT_RUN;
  method.fit?.({ split, indices: trainRows, labels }, streams.method);
  const t1 = performance.now();

  // 2. Memory: a score-based selector reads the model's logits of each new class's candidates.
  if (method.traits.replay) {
    const newClasses = newClassesOf(task, input.taskRows, labels);
    if (input.selector.needsLogits) {
      const predict = ensemblePredictor(method, streams.scoring);
      for (const nc of newClasses) {
        nc.logits = candidateLogits(predict, (idx) => gatherFeatures(split, idx), nc.candidates, input.scoringBatchSize);
        if (pause) await pause();
      }
    }
    memory.update(newClasses, task.classEnd, input.selector, streams.memory);
  }
  const t2 = performance.now();

  // 3. Class-balanced finetuning on the memory only, from the second task on.
  const finetuned = schedules.finetune && task.index > 0 && memory.size > 0
    ? await trainPhase(method, 'finetune', memory.indices(), schedules.finetune, { ...common, label: `${input.label} finetune` })
    : NOT_RUN;
  method.endTask(task, streams.method);
  const t3 = performance.now();

  return {
    task: task.index,
    memorySize: memory.size,
    trainSamples: trainRows.length,
    iterations: { train: trained.iterations, finetune: finetuned.iterations },
    loss: { train: trained.loss, finetune: finetuned.loss },
    lossCurve: { train: trained.curve, finetune: finetuned.curve },
    seconds: { train: (t1 - t0) / 1e3, memory: (t2 - t1) / 1e3, finetune: (t3 - t2) / 1e3 },
  };
}
