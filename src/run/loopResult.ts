/**
 * What the task loop produces: one record per step and the run's metrics. Its own module so that
 * the checkpoint format, which stores these records, does not import the loop that writes it.
 */
import type { Scenario } from '../data/scenario.js';
import type { ReliabilityBin } from '../eval/calibration.js';
import type { StepSchedules, TaskRecord } from '../cl/taskStep.js';
import type { StepCalibration } from './calibration.js';
import type { NoveltyRecord } from './novelty.js';

/** What happened at one step (after task t): the task step's record, then its evaluation. */
export interface StepRecord {
  task: number;
  /** A[t][k], k = 0..t. */
  accuracies: number[];
  ecePerBatchMean: number;
  eceDataset: number;
  memorySize: TaskRecord['memorySize'];
  trainSamples: TaskRecord['trainSamples'];
  iterations: TaskRecord['iterations'];
  loss: TaskRecord['loss'];
  lossCurve: TaskRecord['lossCurve'];
  /** The fitted temperature of post-hoc calibration (null: not calibrated at this step). */
  temperature: number | null;
  /** Wall-clock seconds of each phase (memory includes scoring the candidates). */
  seconds: TaskRecord['seconds'] & { eval: number; calibration: number; novelty: number; total: number };
}

export interface LoopResult {
  scenario: Scenario;
  accuracyMatrix: number[][];
  ece: { perBatchMean: number[]; dataset: number[] };
  /** The 15 bins behind the dataset-level ECE of each step. */
  reliability: { step: number; bins: ReliabilityBin[] }[];
  /** Post-hoc calibration of every calibrated step (empty with `calibration: none`). */
  calibration: StepCalibration[];
  /** Detection records of every step but the last (empty when novelty is off). */
  novelty: NoveltyRecord[];
  /** Seconds per task (all phases). */
  timing: number[];
  steps: StepRecord[];
  /** The SGD phases as run (`phaseSchedules` of the loop). */
  schedules: StepSchedules;
}
