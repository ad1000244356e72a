/**
 * The class-incremental task loop of spec section 5 over a benchmark:
 *
 *   for each task t:
 *     the task step (`src/cl/taskStep.ts`): train, fit, memory, finetune
 *     evaluate on the test samples of tasks 0..t (batched by `evalBatching`)
 *     t < last, novelty on: detect the later tasks' test samples as novel (section 7)
 *
 * Every random draw (scenario, epoch shuffles, views, memory, the method's own) comes from one
 * seeded root generator split into fixed streams (`src/cl/streams.ts`), so a run is reproducible
 * from its config. The loop's own predictions (scoring, evaluation, detection) draw from streams
 * of their own, so they never shift what training draws.
 *
 * With a run directory the loop writes a checkpoint after every task (`checkpoint.ts`), and from
 * a checkpoint it continues where that one ended: same streams, memory, method state and metrics,
 * so a resumed run computes exactly what an uninterrupted one does. Long synchronous phases pause
 * regularly (`signals.ts`) so a stop request (SIGINT/SIGTERM) is seen mid-task.
 */
import { buildScenario, type Scenario } from '../data/scenario.js';
import type { FeaturesDataset, FeaturesSplit } from '../data/types.js';
import { ExemplarMemory } from '../memory/memory.js';
import { getSelector } from '../memory/selectors.js';
import type { Method, MethodSetup, SgdSchedule, TaskClasses, TaskInfo } from '../methods/method.js';
import { runStreams } from '../cl/streams.js';
import { runTaskStep, type StepSchedules } from '../cl/taskStep.js';
import { writeCheckpoint, type CheckpointSnapshot } from './checkpoint.js';
import { captureSnapshot, resumePoint } from './snapshot.js';
import type { RunConfig } from './config.js';
import { ensemblePredictor, evalBatches, evaluateStep, predictBatches, type EvalBatch, type PredictedBatches, type Predictor } from './evaluate.js';
import { afterTask, Pacer, RunInterrupted, type StopRequest } from './signals.js';
import { noveltyRecords, predictKnownAndNovel, type NoveltyRecord } from './novelty.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import { calibrateStep, holdOutRows, type HoldOut } from './calibration.js';
import type { RngState } from '../engine/random.js';
import type { LoopResult, StepRecord } from './loopResult.js';

export { runStreams, type RunStreams } from '../cl/streams.js';
export type { LoopResult, StepRecord } from './loopResult.js';

/** The scenario of `config` on `dataset` (a pure function of both). */
export function scenarioFor(config: RunConfig, dataset: FeaturesDataset): Scenario {
  return buildScenario(dataset.numClasses, dataset.train.labels, dataset.test.labels, {
    classOrder: config.classOrder,
    split: { base: config.baseClasses, increment: config.increment, shots: config.shots },
    run: config.seed,
    rng: runStreams(config.seed).scenario,
    classNames: dataset.manifest.classNames,
    source: config.data === 'synthetic' ? undefined : config.data,
  });
}

/** What a method of `config` is built with on `dataset`. */
export function methodSetupFor(config: RunConfig, dataset: FeaturesDataset): MethodSetup {
  const { dim, logitScale } = dataset.manifest;
  return { dim, logitScale, samples: config.samples, batchSize: config.batchSize, methodOptions: { ...config.methodOptions } };
}

/** The text features of `task`'s classes in incremental order, [n_i, P, D]. */
export function taskClassesOf(dataset: FeaturesDataset, scenario: Scenario, task: TaskInfo): TaskClasses {
  const P = dataset.numTemplates;
  const block = P * dataset.manifest.dim;
  const textPerTemplate = new Float32Array((task.classEnd - task.classStart) * block);
  for (let k = task.classStart; k < task.classEnd; k++) {
    const c = scenario.classOrder[k]!;
    textPerTemplate.set(dataset.text.subarray(c * block, (c + 1) * block), (k - task.classStart) * block);
  }
  return { textPerTemplate, numTemplates: P };
}

export interface LoopOptions {
  /** Progress bars for long phases (default: none). */
  progress?: ProgressFactory;
  /** Called after every step, once its checkpoint is committed (e.g. to print a line). */
  onStep?: (step: StepRecord) => void | Promise<void>;
  /** Run directory: a checkpoint is written into it after every task. */
  runDir?: string;
  /**
   * Continue after this checkpoint (`readLatestCheckpoint`). The caller has already loaded
   * `method` from it (`restoreMethod`); the loop takes the streams, memory and metrics from it
   * and runs the remaining tasks (none when the run was finished).
   */
  resume?: CheckpointSnapshot;
  /**
   * Stop request (e.g. from a signal): seen at the pauses during a task, where the task is
   * abandoned, and after each checkpoint but the last; the loop then throws `RunInterrupted`.
   */
  stop?: StopRequest;
  /** Run tasks 0..untilTask only (default: all); for tests and partial runs. */
  untilTask?: number;
  /** The scenario of `config` on `dataset`, when the caller has built it already (else built here). */
  scenario?: Scenario;
}

/** The SGD phases of `method` with the config's overrides. */
export function phaseSchedules(config: RunConfig, method: Method): StepSchedules {
  const { train, finetune } = method.traits.sgd;
  const lr = config.lr ?? train?.lr ?? 0;
  const over = (s: SgdSchedule | null, epochs: number | null, rate: number): SgdSchedule | null => (s === null ? null : { ...s, epochs: epochs ?? s.epochs, lr: rate });
  // An explicit lr keeps the method's finetuning ratio (lr / 10 for the reference methods).
  const baseLr = train?.lr ?? 0;
  const finetuneLr = config.finetuneLr ?? (finetune === null ? 0 : config.lr !== null && baseLr > 0 ? (config.lr * finetune.lr) / baseLr : finetune.lr);
  return { train: over(train, config.epochs, lr), finetune: over(finetune, config.finetuneEpochs, finetuneLr) };
}

/** Where a run's calibration samples come from; null with `calibration: none`. */
export interface CalibrationPlan {
  source: 'holdout' | 'memory';
  /** With `holdout`: the rows kept out of training. */
  holdOut: HoldOut | null;
  orderState: RngState;
}

/** The calibration plan of `config` on `scenario`: a pure function of both (same on resume). */
export function calibrationPlanFor(config: RunConfig, scenario: Scenario): CalibrationPlan | null {
  if (config.calibration === 'none') return null;
  const rng = runStreams(config.seed).calibration;
  if (config.calibration === 'holdout') {
    const holdOut = holdOutRows(scenario, config.calibrationPerClass, rng);
    return { source: 'holdout', holdOut, orderState: holdOut.orderState };
  }
  return { source: 'memory', holdOut: null, orderState: rng.fork().state() };
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
  const { runDir, stop } = options;
  // On resume, streams, memory and metrics come from the checkpoint, before anything holds a stream.
  const start = options.resume ? resumePoint(options.resume, config, scenario) : null;
  const streams = start?.streams ?? runStreams(config.seed);
  const memory = start?.memory ?? new ExemplarMemory({ kind: config.memoryKind, size: config.memorySize });
  const result: LoopResult = start?.result ?? { scenario, accuracyMatrix: [], ece: { perBatchMean: [], dataset: [] }, reliability: [], calibration: [], novelty: [], timing: [], steps: [], schedules: phaseSchedules(config, method) };
  result.calibration ??= []; // a checkpoint of a run without calibration has none
  result.schedules = phaseSchedules(config, method);
  const plan = calibrationPlanFor(config, scenario);
  const firstTask = start?.nextTask ?? 0;
  const progress = options.progress ?? silentProgress;
  const schedules = phaseSchedules(config, method);
  const selector = getSelector(config.selector);
  const taskOf = new Int32Array(dataset.numClasses);
  for (const t of scenario.tasks) taskOf.fill(t.index, t.classStart, t.classEnd);
  const numTasks = scenario.tasks.length;
  const lastTask = Math.min(numTasks - 1, options.untilTask ?? numTasks - 1);

  for (const task of scenario.tasks) {
    const t = task.index;
    if (t < firstTask || t > lastTask) continue;
    // A stop during task t abandons it: the checkpoint of task t - 1 is the last complete state.
    const pacer = new Pacer(stop, (reason) => new RunInterrupted(reason, afterTask(t - 1, numTasks), t - 1));
    pacer.check();
    const tag = `task ${t + 1}/${numTasks}`;
    const t0 = performance.now();

    // 1. The task step: train, fit, memory, finetune.
    const record = await runTaskStep({
      method, task, classes: taskClassesOf(dataset, scenario, task),
      split: dataset.train, labels: scenario.trainLabels, taskRows: plan?.holdOut?.trainRows[t] ?? scenario.trainIndices[t]!,
      memory, selector, schedules, batchSize: config.batchSize, scoringBatchSize: config.evalBatchSize,
      streams, progress, label: `${method.name} ${tag}`, pause: () => pacer.pause(),
    });
    const t3 = performance.now();

    // 2. Evaluate every seen task over all seen classes, batched as `evalBatching` says.
    const predict = ensemblePredictor(method, streams.evalNoise);
    const seen = scenario.testIndices.slice(0, t + 1);
    const batches = evalBatches(config.evalBatching, seen, config.evalBatchSize, streams.evalOrder);
    const bar = progress(`${method.name} ${tag} eval`, batches.length);
    const predicted = await predictPaced(predict, dataset.test, batches, () => bar.tick(), pacer);
    bar.done();
    const ev = evaluateStep(predicted, scenario.testLabels, taskOf, t + 1);
    const t4 = performance.now();

    // 2b. Post-hoc calibration: T fitted on the calibration samples, test metrics before and after.
    const groups = plan === null ? [] : plan.holdOut ? plan.holdOut.heldOut.slice(0, t + 1) : memory.size > 0 ? [memory.indices()] : [];
    const calibration = plan === null || groups.every((g) => g.length === 0) ? null : calibrateStep({
      step: t, source: plan.source, predict, train: dataset.train, trainLabels: scenario.trainLabels, groups,
      evalBatching: config.evalBatching, evalBatchSize: config.evalBatchSize, orderState: plan.orderState,
      test: predicted, testLabels: scenario.testLabels,
    });
    await pacer.pause();
    const t4b = performance.now();

    // 3. Novel data detection: the later tasks' test samples through the same seen-class head.
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
      memorySize: record.memorySize,
      trainSamples: record.trainSamples,
      iterations: record.iterations,
      loss: record.loss,
      lossCurve: record.lossCurve,
      temperature: calibration?.temperature ?? null,
      seconds: { ...record.seconds, eval: (t4 - t3) / 1e3, calibration: (t4b - t4) / 1e3, novelty: (t5 - t4b) / 1e3, total: (t5 - t0) / 1e3 },
    };
    result.novelty.push(...novelty);
    result.accuracyMatrix.push(ev.accuracies);
    result.ece.perBatchMean.push(ev.ecePerBatchMean);
    result.ece.dataset.push(ev.eceDataset);
    result.reliability.push({ step: t, bins: ev.reliability });
    if (calibration) result.calibration.push(calibration);
    result.timing.push(step.seconds.total);
    result.steps.push(step);
    // The task is complete: commit its checkpoint (a stop requested meanwhile waits for it).
    if (runDir !== undefined) {
      await writeCheckpoint(runDir, captureSnapshot({ config, method, scenario, completedTask: t, memory, streams, result }));
    }
    await options.onStep?.(step);
    // After the last task only writing the results is left: the run finishes.
    if (stop?.reason != null && t < numTasks - 1) throw new RunInterrupted(stop.reason, afterTask(t, numTasks), t);
  }
  return result;
}
