/**
 * One planned run: its run directory prepared (`prepareRunDirectory` refuses a different config
 * unless --force; a resume with a changed config names the keys), the method started or restored
 * from the last checkpoint (`startMethod`), the loop writing a checkpoint after every task, then
 * results.json and accuracy_matrix.csv.
 */
import type { Scenario } from '../../data/scenario.js';
import type { FeaturesDataset } from '../../data/types.js';
import { runClassIncremental, type StepRecord } from '../loop.js';
import type { ProgressFactory } from '../progress.js';
import { summarizeRun, writeRunResults, type RunResults } from '../results.js';
import { prepareRunDirectory, readRunConfig } from '../runDirectory.js';
import type { StopRequest } from '../signals.js';
import { holdsOnlyLeftovers } from './directories.js';
import type { PlannedRun } from './plan.js';
import { startMethod, type StartedMethod } from './startMethod.js';

export interface ExecuteOptions {
  /** Continue the run from its last checkpoint (a directory the run never got to starts from task 0). */
  resume: boolean;
  /** Replace a run of a different config. */
  force: boolean;
  stop: StopRequest;
  /** The run's scenario (`scenarioFor(run.config, dataset)`), built once for the whole run. */
  scenario: Scenario;
  /** The run's method started fresh ahead of time; used unless the run resumes from a checkpoint. */
  started?: StartedMethod;
  /** Progress bars of the long phases (default none). */
  progress?: ProgressFactory;
  /** Called when the run continues after task `completedTask` (0-based) of `tasks`. */
  onResume?: (completedTask: number, tasks: number) => void;
  /** Called after every task, once its checkpoint is committed. */
  onStep?: (step: StepRecord) => void | Promise<void>;
}

/** Trains and evaluates `run` in its directory, from its last checkpoint when resuming. */
export async function executeRun(dataset: FeaturesDataset, run: PlannedRun, opts: ExecuteOptions): Promise<RunResults> {
  const { config, dir } = run;
  const hasRun = (await readRunConfig(dir)) !== null;
  // A kill during the very first write leaves only a temp file: nothing to protect there.
  const force = opts.force || (!hasRun && (await holdsOnlyLeftovers(dir)));
  const prepared = await prepareRunDirectory(dir, config, { force, resume: opts.resume && hasRun });
  const resuming = prepared.mode === 'resume';
  const started = opts.started !== undefined && !resuming ? opts.started : await startMethod(config, dataset, resuming ? dir : null);
  const { method, resume } = started;
  if (resume !== null) opts.onResume?.(resume.state.completedTask, resume.state.tasks.length);
  const loop = await runClassIncremental(config, dataset, method, {
    progress: opts.progress,
    onStep: opts.onStep,
    runDir: dir,
    resume: resume ?? undefined,
    stop: opts.stop,
    scenario: opts.scenario,
  });
  const results = summarizeRun(config, dataset, method.name, loop, method.notes);
  await writeRunResults(dir, results);
  return results;
}
