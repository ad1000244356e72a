/**
 * The class-incremental task loop of spec section 5, in one function:
 *
 *   for each task t:
 *     train on (memory of earlier tasks + all training samples of task t), warm-up + cosine lr
 *     update the exemplar memory (score-based selectors first score the new classes' candidates)
 *     t > 0: class-balanced finetuning on the memory only (lr / 10, cosine without warm-up)
 *     evaluate on the test samples of tasks 0..t (batched by `evalBatching`)
 *     t < last, novelty on: detect the later tasks' test samples as novel (section 7)
 *
 * Every random draw (scenario, epoch shuffles, views, memory, the method's own) comes from one
 * seeded root generator split into fixed streams, so a run is reproducible from its config. The
 * loop's own predictions (scoring, evaluation, detection) draw from streams of their own (see
 * `ensemblePredictor`), so they never shift what training draws.
 *
 * With a run directory the loop writes a checkpoint after every task (`checkpoint.ts`), and from
 * a checkpoint it continues where that one ended: same streams, memory and metrics, so a resumed
 * run computes exactly what an uninterrupted one does. Long synchronous phases pause regularly
 * (`signals.ts`) so a stop request (SIGINT/SIGTERM) is seen mid-task.
 */
import { buildScenario, textInIncrementalOrder, type Scenario } from '../data/scenario.js';
import type { FeaturesDataset, FeaturesSplit } from '../data/types.js';
import { Rng } from '../engine/random.js';
import type { ReliabilityBin } from '../eval/calibration.js';
import { candidateLogits } from '../memory/candidateScores.js';
import { ExemplarMemory, type NewClass } from '../memory/memory.js';
import { getSelector } from '../memory/selectors.js';
import type { Method, MethodContext, TaskInfo } from '../methods/method.js';
import { writeCheckpoint, type CheckpointSnapshot } from './checkpoint.js';
import { captureSnapshot, resumePoint } from './snapshot.js';
import type { RunConfig } from './config.js';
import { ensemblePredictor, evalBatches, evaluateStep, gatherFeatures, predictBatches, type EvalBatch, type PredictedBatches, type Predictor } from './evaluate.js';
import { trainPhase, type PhaseSchedule } from './trainPhase.js';
import { afterTask, Pacer, RunInterrupted, type StopRequest } from './signals.js';
import { noveltyRecords, predictKnownAndNovel, type NoveltyRecord } from './novelty.js';
import { silentProgress, type ProgressFactory } from './progress.js';

/**
 * Independent generators of a run, all forked in a fixed order from `Rng(seed)` (new streams are
 * appended, so adding one never changes the others).
 */
export interface RunStreams {
  scenario: Rng;
  loop: Rng;
  memory: Rng;
  method: Rng;
  /** Order of `mixed` test batches. */
  evalOrder: Rng;
  /** Test-time noise of evaluation and detection (one fixed ensemble per step). */
  evalNoise: Rng;
  /** Order of `mixed` detection batches (separate: detection on or off changes no other draw). */
  noveltyOrder: Rng;
  /** Noise of the predictions scoring exemplar candidates. */
  scoring: Rng;
}

export function runStreams(seed: number): RunStreams {
  const root = new Rng(seed);
  return {
    scenario: root.fork(),
    loop: root.fork(),
    memory: root.fork(),
    method: root.fork(),
    evalOrder: root.fork(),
    evalNoise: root.fork(),
    noveltyOrder: root.fork(),
    scoring: root.fork(),
  };
}

/** The scenario of `config` on `dataset` (a pure function of both). */
export function scenarioFor(config: RunConfig, dataset: FeaturesDataset): Scenario {
  return buildScenario(dataset.numClasses, dataset.train.labels, dataset.test.labels, {
    classOrder: config.classOrder,
    split: { base: config.baseClasses, increment: config.increment, shots: config.shots },
    run: config.seed,
    rng: runStreams(config.seed).scenario,
  });
}

/** The frozen inputs a method is built with (text in incremental order, the method's stream). */
export function methodContextFor(config: RunConfig, dataset: FeaturesDataset, scenario = scenarioFor(config, dataset)): MethodContext {
  const { dim, logitScale } = dataset.manifest;
  return {
    dim,
    textPerTemplate: textInIncrementalOrder(dataset.text, scenario.classOrder, dataset.numTemplates, dim),
    numClasses: dataset.numClasses,
    numTemplates: dataset.numTemplates,
    logitScale,
    rng: runStreams(config.seed).method,
  };
}

/** What happened at one step (after task t). */
export interface StepRecord {
  task: number;
  /** A[t][k], k = 0..t. */
  accuracies: number[];
  ecePerBatchMean: number;
  eceDataset: number;
  /** Exemplars stored after the task. */
  memorySize: number;
  /** Training samples of the step (memory + new task) and iterations run. */
  trainSamples: number;
  iterations: { train: number; finetune: number };
  /** Mean loss of the last epoch of each phase (null when the phase did not run). */
  loss: { train: number | null; finetune: number | null };
  /** Wall-clock seconds of each phase (memory includes scoring the candidates). */
  seconds: { train: number; memory: number; finetune: number; eval: number; novelty: number; total: number };
}

export interface LoopResult {
  scenario: Scenario;
  accuracyMatrix: number[][];
  ece: { perBatchMean: number[]; dataset: number[] };
  /** The 15 bins behind the dataset-level ECE of each step. */
  reliability: { step: number; bins: ReliabilityBin[] }[];
  /** Detection records of every step but the last (empty when novelty is off). */
  novelty: NoveltyRecord[];
  /** Seconds per task (all phases). */
  timing: number[];
  steps: StepRecord[];
}

export interface LoopOptions {
  /**
   * The context `method` was built with (`methodContextFor`). With it, the loop's predictions
   * draw their noise from the run's evaluation streams, swapped into `context.rng` for the call;
   * without it they draw from the method's own generator (and so shift its training draws).
   */
  context?: MethodContext;
  /** Progress bars for long phases (default: none). */
  progress?: ProgressFactory;
  /** Called after every step, once its checkpoint is committed (e.g. to print a line). */
  onStep?: (step: StepRecord) => void | Promise<void>;
  /** Run directory: a checkpoint is written into it after every task (needs `context`). */
  runDir?: string;
  /**
   * Continue after this checkpoint (`readLatestCheckpoint`). The caller has already restored
   * `method` with `restoreMethod(method, context.rng, resume)`; the loop takes the streams, memory
   * and metrics from it and runs the remaining tasks (none when the run was finished).
   */
  resume?: CheckpointSnapshot;
  /**
   * Stop request (e.g. from a signal): seen at the pauses during a task, where the task is
   * abandoned, and after each checkpoint but the last; the loop then throws `RunInterrupted`.
   */
  stop?: StopRequest;
  /** The scenario of `config` on `dataset`, when the caller has built it already (else built here). */
  scenario?: Scenario;
}

function phaseSchedules(config: RunConfig, method: Method): { train: PhaseSchedule; finetune: PhaseSchedule } {
  const s = method.schedule;
  const lr = config.lr ?? s.lr;
  // An explicit lr keeps the method's finetuning ratio (lr / 10 for the reference methods).
  const finetuneLr = config.finetuneLr ?? (config.lr !== null && s.lr > 0 ? (config.lr * s.finetuneLr) / s.lr : s.finetuneLr);
  return {
    train: { epochs: config.epochs ?? s.epochs, lr, warmup: s.warmup },
    finetune: { epochs: config.finetuneEpochs ?? s.finetuneEpochs, lr: finetuneLr, warmup: false },
  };
}

/** The new classes of `task` with their candidate training samples (ascending indices). */
function newClassesOf(task: TaskInfo, trainIndices: Int32Array, labels: Int32Array): NewClass[] {
  const byClass: number[][] = Array.from({ length: task.classEnd - task.classStart }, () => []);
  for (const i of trainIndices) byClass[labels[i]! - task.classStart]!.push(i);
  return byClass.map((c, j) => ({ label: task.classStart + j, candidates: Int32Array.from(c) }));
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Test batches predicted per group of this many, with a pause between groups. */
const PACED_EVAL_GROUP = 8;

/** `predictBatches` with pauses (every batch is predicted alone, so grouping changes nothing). */
async function predictPaced(predict: Predictor, split: FeaturesSplit, batches: readonly EvalBatch[], onBatch: () => void, pacer: Pacer): Promise<PredictedBatches> {
  const out: PredictedBatches = { classes: 0, samples: 1, batches: [] };
  for (let s = 0; s < batches.length; s += PACED_EVAL_GROUP) {
    const part = predictBatches(predict, split, batches.slice(s, s + PACED_EVAL_GROUP), onBatch);
    out.classes = part.classes;
    out.samples = part.samples;
    out.batches.push(...part.batches);
    await pacer.pause();
  }
  return out;
}

/** Runs the whole protocol of `config` with `method` on `dataset` (from `options.resume` on, if given). */
export async function runClassIncremental(config: RunConfig, dataset: FeaturesDataset, method: Method, options: LoopOptions = {}): Promise<LoopResult> {
  const scenario = options.scenario ?? scenarioFor(config, dataset);
  const { runDir, context, stop } = options;
  if (runDir !== undefined && context === undefined) throw new Error('runClassIncremental: checkpoints (runDir) need the method\'s context');
  // On resume, streams, memory and metrics come from the checkpoint, before anything holds a stream.
  const start = options.resume ? resumePoint(options.resume, config, scenario) : null;
  const streams = start?.streams ?? runStreams(config.seed);
  const memory = start?.memory ?? new ExemplarMemory({ kind: config.memoryKind, size: config.memorySize });
  const result: LoopResult = start?.result ?? { scenario, accuracyMatrix: [], ece: { perBatchMean: [], dataset: [] }, reliability: [], novelty: [], timing: [], steps: [] };
  const firstTask = start?.nextTask ?? 0;
  const progress = options.progress ?? silentProgress;
  const schedules = phaseSchedules(config, method);
  const select = getSelector(config.selector);
  const taskOf = new Int32Array(dataset.numClasses);
  for (const t of scenario.tasks) taskOf.fill(t.index, t.classStart, t.classEnd);
  const numTasks = scenario.tasks.length;
  const train = { split: dataset.train, labels: scenario.trainLabels, batchSize: config.batchSize, rng: streams.loop, progress };
  const trainFeatures = (indices: Int32Array): Float32Array => gatherFeatures(dataset.train, indices);

  for (const task of scenario.tasks) {
    const t = task.index;
    if (t < firstTask) continue;
    // A stop during task t abandons it: the checkpoint of task t - 1 is the last complete state.
    const pacer = new Pacer(stop, (reason) => new RunInterrupted(reason, afterTask(t - 1, numTasks), t - 1));
    pacer.check();
    const tag = `task ${t + 1}/${numTasks}`;
    const t0 = performance.now();
    method.beginTask(task);

    // 1. Learn the new task on the memory of earlier tasks plus all its training samples.
    const trainSet = concat(memory.indices(), scenario.trainIndices[t]!);
    const trained = method.trainable
      ? await trainPhase(method, 'train', trainSet, schedules.train, { ...train, label: `${method.name} ${tag} train`, pause: () => pacer.pause() })
      : { iterations: 0, loss: null };
    const t1 = performance.now();

    // 2. Memory: old classes shrink to the new quota, new classes select theirs; a score-based
    //    selector reads the model's logits of each new class's candidates (evaluation mode).
    if (method.trainable) {
      const newClasses = newClassesOf(task, scenario.trainIndices[t]!, scenario.trainLabels);
      if (select.needsLogits) {
        const predict = ensemblePredictor(method, context, streams.scoring);
        for (const nc of newClasses) {
          nc.logits = candidateLogits(predict, trainFeatures, nc.candidates, config.evalBatchSize);
          await pacer.pause();
        }
      }
      memory.update(newClasses, task.classEnd, select, streams.memory);
    }
    const t2 = performance.now();

    // 3. Class-balanced finetuning on the memory only, from the second task on.
    const finetuned = method.trainable && t > 0 && memory.size > 0
      ? await trainPhase(method, 'finetune', memory.indices(), schedules.finetune, { ...train, label: `${method.name} ${tag} finetune`, pause: () => pacer.pause() })
      : { iterations: 0, loss: null };
    method.endTask(task);
    const t3 = performance.now();

    // 4. Evaluate every seen task over all seen classes, batched as `evalBatching` says.
    const predict = ensemblePredictor(method, context, streams.evalNoise);
    const seen = scenario.testIndices.slice(0, t + 1);
    const batches = evalBatches(config.evalBatching, seen, config.evalBatchSize, streams.evalOrder);
    const bar = progress(`${method.name} ${tag} eval`, batches.length);
    const predicted = await predictPaced(predict, dataset.test, batches, () => bar.tick(), pacer);
    bar.done();
    const ev = evaluateStep(predicted, scenario.testLabels, taskOf, t + 1);
    const t4 = performance.now();

    // 5. Novel data detection: the later tasks' test samples through the same seen-class head.
    const novelty: NoveltyRecord[] = [];
    if (config.novelty && t < numTasks - 1) {
      const all = predictKnownAndNovel(config.evalBatching, predict, dataset.test, scenario.testIndices, t + 1, predicted, {
        batchSize: config.evalBatchSize,
        orderRng: streams.noveltyOrder,
        progress,
        label: `${method.name} ${tag} novelty`,
      });
      novelty.push(...noveltyRecords(t, all, (i) => taskOf[scenario.testLabels[i]!]! <= t));
      await pacer.pause();
    }
    const t5 = performance.now();

    const step: StepRecord = {
      task: t,
      accuracies: ev.accuracies,
      ecePerBatchMean: ev.ecePerBatchMean,
      eceDataset: ev.eceDataset,
      memorySize: memory.size,
      trainSamples: trainSet.length,
      iterations: { train: trained.iterations, finetune: finetuned.iterations },
      loss: { train: trained.loss, finetune: finetuned.loss },
      seconds: {
        train: (t1 - t0) / 1e3,
        memory: (t2 - t1) / 1e3,
        finetune: (t3 - t2) / 1e3,
        eval: (t4 - t3) / 1e3,
        novelty: (t5 - t4) / 1e3,
        total: (t5 - t0) / 1e3,
      },
    };
    result.novelty.push(...novelty);
    result.accuracyMatrix.push(ev.accuracies);
    result.ece.perBatchMean.push(ev.ecePerBatchMean);
    result.ece.dataset.push(ev.eceDataset);
    result.reliability.push({ step: t, bins: ev.reliability });
    result.timing.push(step.seconds.total);
    result.steps.push(step);
    // The task is complete: commit its checkpoint (a stop requested meanwhile waits for it).
    if (runDir !== undefined) {
      await writeCheckpoint(runDir, captureSnapshot({ config, method, methodRng: context!.rng, scenario, completedTask: t, memory, streams, result }));
    }
    await options.onStep?.(step);
    // After the last task only writing the results is left: the run finishes.
    if (stop?.reason != null && t < numTasks - 1) throw new RunInterrupted(stop.reason, afterTask(t, numTasks), t);
  }
  return result;
}
