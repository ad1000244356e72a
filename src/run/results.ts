/**
 * The record of a run: `results.json` (resolved config, class order, tasks, accuracy matrix and
 * the metrics of spec section 7, ECE per step with its reliability bins, novelty detection per
 * step and its mean, the evaluation batching, timing) and `accuracy_matrix.csv` beside it.
 * Results on synthetic data carry `synthetic: true` so they are never mistaken for CLIP numbers.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { FeaturesDataset } from '../data/types.js';
import {
  accuracyMatrixCsv,
  averageAccuracy,
  backwardTransfer,
  forgetting,
  lastAccuracy,
  stepAccuracies,
} from '../eval/accuracyMatrix.js';
import type { ReliabilityBin } from '../eval/calibration.js';
import type { TaskInfo } from '../methods/method.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError } from '../util/errors.js';
import type { EvalBatching, RunConfig } from './config.js';
import type { StepCalibration } from './calibration.js';
import type { StepSchedules } from '../cl/taskStep.js';
import { provenance, type Provenance } from './provenance.js';
import { intraOpThreads } from '../engine/onnx/runtime.js';
import { calibrationPlanFor, type LoopResult, type StepRecord } from './loop.js';
import { noveltyMeans, type NoveltyMetrics, type NoveltyRecord, type NoveltyScore } from './novelty.js';

export const RESULTS_FILE = 'results.json';
export const MATRIX_CSV_FILE = 'accuracy_matrix.csv';

export interface RunResults {
  format: 'clap4clip-results';
  version: 1;
  method: string;
  /** True when the features are the built-in synthetic world, not real CLIP features. */
  synthetic: boolean;
  dataset: { source: string; encoder: string; dim: number; numClasses: number; numTemplates: number; train: number; test: number };
  config: RunConfig;
  /** The SGD phases as run (config overrides over the method's own; null: the phase does not exist). */
  schedules: StepSchedules;
  /** Package version, git commit and Node.js version of the code that ran. */
  provenance: Provenance;
  classOrder: number[];
  tasks: TaskInfo[];
  /** A[t][k] as fractions in [0, 1] (lower-triangular ragged). */
  accuracyMatrix: number[][];
  /** acc_t, mean over k <= t of A[t][k]. */
  stepAccuracy: number[];
  averageAccuracy: number;
  lastAccuracy: number;
  /** null with a single task. */
  backwardTransfer: number | null;
  forgetting: number | null;
  ece: { perBatchMean: number[]; dataset: number[]; bins: 15; evalBatching: string };
  /** How test images were grouped into predictions (decides what CLAP's predictions depend on). */
  evalBatching: EvalBatching;
  /** Reliability bins of each step (15, counts sum to the step's test samples). */
  reliability: { step: number; bins: ReliabilityBin[] }[];
  /**
   * Post-hoc temperature scaling (`src/run/calibration.ts`): where T was fitted, how many training
   * samples per task were held out of training and memory for it (0 unless `holdout`), and per
   * calibrated step T with the test ECE (both), NLL, Brier score and reliability bins before and after.
   */
  calibration: { source: RunConfig['calibration']; perClass: number | null; heldOut: number[]; steps: StepCalibration[] };
  /** Novel data detection of each step but the last, one record per score (empty when off). */
  novelty: NoveltyRecord[];
  /** Mean over steps per score ({} when there is no detection). */
  noveltyMean: Partial<Record<NoveltyScore, NoveltyMetrics>>;
  /** Seconds per task (all phases). */
  timing: number[];
  totalSeconds: number;
  steps: StepRecord[];
  /** The method's notes on reading these results (absent when it has none). */
  notes?: string[];
  createdAt: string;
}

/** True when the manifest marks the dataset as synthetic. */
export function isSynthetic(dataset: FeaturesDataset): boolean {
  return dataset.manifest.encoder === 'synthetic' || dataset.manifest.extra?.['synthetic'] === true;
}

export function summarizeRun(config: RunConfig, dataset: FeaturesDataset, methodName: string, loop: LoopResult, notes: readonly string[] = []): RunResults {
  const A = loop.accuracyMatrix;
  return {
    format: 'clap4clip-results',
    version: 1,
    method: methodName,
    synthetic: isSynthetic(dataset),
    dataset: {
      source: config.data,
      encoder: dataset.manifest.encoder,
      dim: dataset.manifest.dim,
      numClasses: dataset.numClasses,
      numTemplates: dataset.numTemplates,
      train: dataset.train.n,
      test: dataset.test.n,
    },
    config,
    schedules: loop.schedules,
    provenance: provenance(intraOpThreads()),
    classOrder: loop.scenario.classOrder,
    tasks: loop.scenario.tasks,
    accuracyMatrix: A,
    stepAccuracy: stepAccuracies(A),
    averageAccuracy: averageAccuracy(A),
    lastAccuracy: lastAccuracy(A),
    backwardTransfer: backwardTransfer(A),
    forgetting: forgetting(A),
    ece: { perBatchMean: loop.ece.perBatchMean, dataset: loop.ece.dataset, bins: 15, evalBatching: config.evalBatching },
    evalBatching: config.evalBatching,
    reliability: loop.reliability,
    calibration: {
      source: config.calibration,
      perClass: config.calibration === 'holdout' ? config.calibrationPerClass : null,
      heldOut: calibrationPlanFor(config, loop.scenario)?.holdOut?.heldOut.map((rows) => rows.length) ?? loop.scenario.tasks.map(() => 0),
      steps: loop.calibration,
    },
    novelty: loop.novelty,
    noveltyMean: noveltyMeans(loop.novelty),
    timing: loop.timing,
    totalSeconds: loop.timing.reduce((a, b) => a + b, 0),
    steps: loop.steps,
    ...(notes.length > 0 ? { notes: [...notes] } : {}),
    createdAt: new Date().toISOString(),
  };
}

/** Writes `results.json` and `accuracy_matrix.csv` into `dir` (created if needed), atomically. */
export async function writeRunResults(dir: string, results: RunResults): Promise<{ json: string; csv: string }> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new Clap4ClipError(`cannot create the run directory (${(err as Error).message})`, { file: dir, cause: err });
  }
  const json = path.join(dir, RESULTS_FILE);
  const csv = path.join(dir, MATRIX_CSV_FILE);
  await writeFileAtomic(csv, accuracyMatrixCsv(results.accuracyMatrix));
  await writeJsonAtomic(json, results);
  return { json, csv };
}
