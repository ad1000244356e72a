/**
 * The runs of an invocation, in plan order: each method's first run started ahead (so bad method
 * options fail before any directory is touched), every run executed, repeated runs summarized,
 * then comparison.json and report.html. What to print is left to the caller's hooks.
 */
import type { Scenario } from '../../data/scenario.js';
import type { FeaturesDataset } from '../../data/types.js';
import type { DirLock } from '../../util/dirLock.js';
import { scenarioFor, type StepRecord } from '../loop.js';
import type { ProgressFactory } from '../progress.js';
import { summarizeRepeatedRuns, writeRepeatedRunsSummary, type RepeatedRunsSummary } from '../repeatedRuns.js';
import type { RunResults } from '../results.js';
import { RunInterrupted, type StopRequest } from '../signals.js';
import { writeComparison } from './comparison.js';
import { executeRun } from './execute.js';
import type { Invocation, MethodRuns, PlannedRun } from './plan.js';
import { writeInvocationReport, type ReportOutcome } from './report.js';
import { startMethod, type StartedMethod } from './startMethod.js';

/** The first run of a method, built ahead: its scenario and its method, started fresh. */
export interface FirstRun {
  scenario: Scenario;
  started: StartedMethod;
}

/** Starts the first run of every method of `plan` (one entry per method, in plan order). */
export async function startFirstRuns(plan: readonly MethodRuns[], dataset: FeaturesDataset): Promise<FirstRun[]> {
  const out: FirstRun[] = [];
  for (const m of plan) {
    const { config } = m.runs[0]!;
    const scenario = scenarioFor(config, dataset);
    out.push({ scenario, started: await startMethod(config, dataset, null) });
  }
  return out;
}

/** What the caller hears of the runs (every hook optional). */
export interface InvocationHooks {
  /** Progress bars of a run's long phases. */
  progress?: (run: PlannedRun) => ProgressFactory;
  /** `run` continues after task `completedTask` (0-based) of `tasks`. */
  onResume?: (run: PlannedRun, completedTask: number, tasks: number) => void;
  /** After every task of every run, once its checkpoint is committed. */
  onStep?: (run: PlannedRun, step: StepRecord) => void | Promise<void>;
  /** A run finished (its results are written). */
  onRunDone?: (run: PlannedRun, of: MethodRuns, results: RunResults) => void;
  /** Every run finished, before comparison.json and the report are written. */
  onRunsDone?: (results: readonly RunResults[], summaries: readonly RepeatedRunsSummary[]) => void;
}

export type InvocationOutcome =
  | { status: 'complete'; results: RunResults[]; summaries: RepeatedRunsSummary[]; report: ReportOutcome }
  /** Stopped by `stop` at a safe point; `dir` is the run directory it stopped in (the root between runs). */
  | { status: 'interrupted'; interruption: RunInterrupted; dir: string };

export interface InvocationOptions {
  stop: StopRequest;
  /** The invocation's lock (`prepareInvocation`), released when the runs end, however they end. */
  lock?: DirLock;
  hooks?: InvocationHooks;
}

/**
 * Runs every planned run of `inv` (directories already prepared: `prepareInvocation`), `first`
 * from `startFirstRuns`. A stop request ends it with an 'interrupted' outcome; other errors throw.
 */
export async function runInvocation(inv: Invocation, plan: readonly MethodRuns[], dataset: FeaturesDataset, first: readonly FirstRun[], options: InvocationOptions): Promise<InvocationOutcome> {
  const { stop } = options;
  const hooks = options.hooks ?? {};
  let current = inv.root;
  try {
    const all: RunResults[] = [];
    const summaries: RepeatedRunsSummary[] = [];
    for (const [i, m] of plan.entries()) {
      const runs: RunResults[] = [];
      for (const [r, run] of m.runs.entries()) {
        if (stop.reason !== null) throw new RunInterrupted(stop.reason, `before starting ${run.dir}`);
        current = run.dir;
        const ahead = r === 0 ? first[i] : undefined;
        const res = await executeRun(dataset, run, {
          resume: inv.resume,
          force: inv.force,
          stop,
          scenario: ahead?.scenario ?? scenarioFor(run.config, dataset),
          started: ahead?.started,
          progress: hooks.progress?.(run),
          onResume: hooks.onResume && ((done, tasks) => hooks.onResume!(run, done, tasks)),
          onStep: hooks.onStep && ((step) => hooks.onStep!(run, step)),
        });
        runs.push(res);
        hooks.onRunDone?.(run, m, res);
      }
      current = inv.root;
      all.push(...runs);
      if (m.repeated) {
        const summary = summarizeRepeatedRuns(runs);
        await writeRepeatedRunsSummary(m.dir, summary);
        summaries.push(summary);
      }
    }
    hooks.onRunsDone?.(all, summaries);
    if (inv.layout === 'comparison') await writeComparison(inv.root, all, summaries);
    if (stop.reason !== null) throw new RunInterrupted(stop.reason, 'before writing the report');
    return { status: 'complete', results: all, summaries, report: await writeInvocationReport(inv, plan) };
  } catch (err) {
    if (!(err instanceof RunInterrupted)) throw err;
    return { status: 'interrupted', interruption: err, dir: current };
  } finally {
    await options.lock?.release();
  }
}
