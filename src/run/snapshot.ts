/**
 * What a run checkpoint holds, taken from the running loop (`captureSnapshot`) and given back to it
 * (`restoreMethod`, `resumePoint`). The files themselves are written and read by `checkpoint.ts`.
 */
import type { Scenario } from '../data/scenario.js';
import { Rng, type RngState } from '../engine/random.js';
import { ExemplarMemory } from '../memory/memory.js';
import type { Method } from '../methods/method.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type CheckpointSnapshot, type CheckpointState } from './checkpointState.js';
import type { RunConfig } from './config.js';
import { runStreams, type LoopResult, type RunStreams } from './loop.js';
import { configHash, describeDifferences, diffConfigs } from './runDirectory.js';

// ---------------------------------------------------------------------------------------------
// Capture (in the loop, after task t is evaluated)

export interface CaptureInput {
  config: RunConfig;
  method: Method;
  /** The method's own generator (its MethodContext.rng). */
  methodRng: Rng;
  scenario: Scenario;
  completedTask: number;
  memory: ExemplarMemory;
  /** Every stream of the loop (their `method` fork is unused by the loop: see methodRng). */
  streams: RunStreams;
  result: LoopResult;
}

/** A self-contained copy of the run after `completedTask` (tensor data copied: later training cannot change it). */
export function captureSnapshot(input: CaptureInput): CheckpointSnapshot {
  const named = input.method.namedParameters();
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
    rng: { streams: Object.fromEntries(Object.entries(input.streams).map(([k, g]) => [k, (g as Rng).state()])), method: input.methodRng.state() },
    metrics: structuredClone(metrics),
    tensors: named.map(([name, t]) => ({ name, shape: [...t.shape] })),
    createdAt: new Date().toISOString(),
  };
  return { state, tensors: named.map(([name, t]) => ({ name, shape: [...t.shape], data: t.data.slice() })) };
}

// ---------------------------------------------------------------------------------------------
// Restoring

/** Sets `rng` (an object others hold a reference to) to `state` in place. */
export function restoreRngInPlace(rng: Rng, state: RngState): void {
  // Rng keeps its four state words in own fields: copying them from a fresh generator rewinds an
  // instance that methods hold by reference, without changing random.ts. Verified, so a change
  // of Rng's internals fails loudly here instead of resuming with the wrong draws.
  Object.assign(rng, Rng.fromState(state));
  if (JSON.stringify(rng.state().s) !== JSON.stringify(state.s)) throw new Error('restoreRngInPlace: Rng no longer keeps its state in own fields; add Rng.setState');
}

function labelOf(snapshot: CheckpointSnapshot, which: 'params' | 'state'): string {
  return snapshot.files?.[which] ?? `checkpoint of task ${snapshot.state.completedTask}`;
}

/**
 * Brings a freshly built `method` (same config, same context) to the checkpoint: replays
 * beginTask/endTask of the completed tasks so its structure exists, copies every tensor in by
 * name (in place, so optimizers built by beginTask keep pointing at them), then restores
 * `methodRng` (its MethodContext.rng), which the replay advanced.
 */
export function restoreMethod(method: Method, methodRng: Rng, snapshot: CheckpointSnapshot): void {
  const { state } = snapshot;
  const params = labelOf(snapshot, 'params');
  if (method.name !== state.method) throw new DataError(labelOf(snapshot, 'state'), `was written by method "${state.method}", cannot restore "${method.name}"`);
  try {
    for (const task of state.tasks.slice(0, state.completedTask + 1)) {
      method.beginTask(task);
      method.endTask(task);
    }
  } catch (err) {
    throw new Clap4ClipError(`${method.name}: cannot rebuild its structure for tasks 0..${state.completedTask} of the checkpoint (${(err as Error).message})`, { cause: err });
  }
  const saved = new Map(snapshot.tensors.map((t) => [t.name, t]));
  const own = method.namedParameters();
  const ownNames = new Set(own.map(([n]) => n));
  for (const name of saved.keys()) {
    if (!ownNames.has(name)) throw new DataError(params, `holds tensor "${name}" that ${method.name} does not have (different method options?)`);
  }
  for (const [name, t] of own) {
    const s = saved.get(name);
    if (s === undefined) throw new DataError(params, `tensor "${name}" of ${method.name} is missing (different method options?)`);
    if (JSON.stringify(s.shape) !== JSON.stringify(t.shape)) throw new DataError(params, `tensor "${name}" has shape ${JSON.stringify(s.shape)}, ${method.name} has ${JSON.stringify(t.shape)} (different D or options?)`);
  }
  for (const [name, t] of own) t.data.set(saved.get(name)!.data);
  restoreRngInPlace(methodRng, state.rng.method);
}

/** Where the loop continues after a checkpoint. */
export interface ResumePoint {
  /** First task index still to run. */
  nextTask: number;
  /** The loop's streams after the completed task; `method` is the method's generator (restore it with restoreMethod). */
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
  // Every stream the loop has now must be in the checkpoint, and nothing else.
  const saved = state.rng.streams;
  const fresh = runStreams(config.seed) as unknown as Record<string, Rng>;
  for (const k of Object.keys(saved)) if (!(k in fresh)) fail(`holds generator stream "${k}", which this clap4clip's loop does not have`);
  const streams = Object.fromEntries(Object.keys(fresh).map((k) => [k, Rng.fromState(saved[k] ?? fail(`lacks generator stream "${k}" (written by another clap4clip version)`))])) as unknown as RunStreams;
  return { nextTask: state.completedTask + 1, streams, memory: ExemplarMemory.fromJSON(state.memory), result: { ...structuredClone(state.metrics), scenario } };
}
