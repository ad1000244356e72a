/**
 * What a run checkpoint holds, taken from the running loop (`captureSnapshot`) and given back to it
 * (`restoreMethod`, `resumePoint`). The files themselves are written and read by `checkpoint.ts`.
 *
 * The method's part is its own `saveState()`; restoring is `loadState` on a freshly created
 * method. Generators are plain states: nothing is patched in place.
 */
import type { Scenario } from '../data/scenario.js';
import { ExemplarMemory } from '../memory/memory.js';
import type { Method } from '../methods/method.js';
import { STREAM_NAMES, streamStates, streamsFromStates, type RunStreams, type StreamStates } from '../cl/streams.js';
import { DataError } from '../util/errors.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type CheckpointSnapshot, type CheckpointState } from './checkpointState.js';
import type { RunConfig } from './config.js';
import type { LoopResult } from './loopResult.js';
import { configHash, describeDifferences, diffConfigs } from './runDirectory.js';

// ---------------------------------------------------------------------------------------------
// Capture (in the loop, after task t is evaluated)

export interface CaptureInput {
  config: RunConfig;
  method: Method;
  scenario: Scenario;
  completedTask: number;
  memory: ExemplarMemory;
  /** Every stream of the run (the method's own included). */
  streams: RunStreams;
  result: LoopResult;
}

/** A self-contained copy of the run after `completedTask` (tensor data copied: later training cannot change it). */
export function captureSnapshot(input: CaptureInput): CheckpointSnapshot {
  const saved = input.method.saveState();
  const { scenario: _scenario, ...metrics } = input.result;
  const state: CheckpointState = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    method: input.method.name,
    config: structuredClone(input.config),
    configHash: configHash(input.config),
    completedTask: input.completedTask,
    classOrder: [...input.scenario.classOrder],
    tasks: input.scenario.tasks.map((t) => ({ ...t })),
    memory: input.memory.toJSON(),
    rng: { streams: streamStates(input.streams) },
    metrics: structuredClone(metrics),
    methodMeta: structuredClone(saved.meta),
    tensors: saved.tensors.map(([name, t]) => ({ name, shape: [...t.shape] })),
    createdAt: new Date().toISOString(),
  };
  return { state, tensors: saved.tensors.map(([name, t]) => ({ name, shape: [...t.shape], data: t.data })) };
}

// ---------------------------------------------------------------------------------------------
// Restoring

function labelOf(snapshot: CheckpointSnapshot, which: 'params' | 'state'): string {
  return snapshot.files?.[which] ?? `checkpoint of task ${snapshot.state.completedTask}`;
}

/** Loads the checkpoint's method state into a freshly created `method` (same config). */
export function restoreMethod(method: Method, snapshot: CheckpointSnapshot): void {
  const { state } = snapshot;
  if (method.name !== state.method) throw new DataError(labelOf(snapshot, 'state'), `was written by method "${state.method}", cannot restore "${method.name}"`);
  const tensors = new Map(snapshot.tensors.map((t) => [t.name, { shape: t.shape, data: t.data }]));
  method.loadState({ tensors, meta: state.methodMeta }, labelOf(snapshot, 'params'));
}

/** Where the loop continues after a checkpoint. */
export interface ResumePoint {
  /** First task index still to run. */
  nextTask: number;
  /** Every stream after the completed task (the method's included). */
  streams: RunStreams;
  memory: ExemplarMemory;
  /** Metrics of the completed tasks; the loop appends to it. */
  result: LoopResult;
}

/**
 * Checks the snapshot against the run being resumed (same result-affecting config, same scenario,
 * memory indices that are training samples of their class) and returns the loop's state.
 */
export function resumePoint(snapshot: CheckpointSnapshot, config: RunConfig, scenario: Scenario): ResumePoint {
  const { state } = snapshot;
  const file = labelOf(snapshot, 'state');
  const fail = (problem: string): never => {
    throw new DataError(file, problem);
  };
  if (state.configHash !== configHash(config)) {
    fail(`the checkpoint was written with a different config; differing keys: ${describeDifferences(diffConfigs(state.config, config))}`);
  }
  if (JSON.stringify(state.classOrder) !== JSON.stringify(scenario.classOrder)) fail('the class order differs from the scenario of this run (different dataset?)');
  if (JSON.stringify(state.tasks) !== JSON.stringify(scenario.tasks)) fail('the tasks differ from the scenario of this run (different dataset?)');
  const { budget, classes } = state.memory;
  if (budget.kind !== config.memoryKind || budget.size !== config.memorySize) fail(`memory budget ${JSON.stringify(budget)} does not match the config`);
  const labels = scenario.trainLabels;
  for (const [c, idx] of classes) {
    for (const i of idx) if (!(i < labels.length) || labels[i] !== c) fail(`memory of class ${c} holds sample ${i}, which is not a training sample of that class`);
  }
  // Every stream the run has must be in the checkpoint, and nothing else.
  const saved = state.rng.streams;
  for (const k of Object.keys(saved)) if (!(STREAM_NAMES as readonly string[]).includes(k)) fail(`holds generator stream "${k}", which this clap4clip's loop does not have`);
  for (const k of STREAM_NAMES) if (!(k in saved)) fail(`lacks generator stream "${k}" (written by another clap4clip version)`);
  const streams = streamsFromStates(saved as StreamStates);
  return { nextTask: state.completedTask + 1, streams, memory: ExemplarMemory.fromJSON(state.memory), result: { ...structuredClone(state.metrics), scenario } };
}
