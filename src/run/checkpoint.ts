/**
 * The checkpoint written after every task, and its reader.
 *
 *   RUN/checkpoint/
 *     latest                      one line: the name of the current checkpoint directory
 *     task-0003-1f2e3d4c/         one complete checkpoint (task index + random suffix)
 *       params.safetensors        every tensor of method.namedParameters(), F32, by name
 *       state.json                config, bookkeeping, memory, generator states, metrics
 *       COMPLETE                  sizes and sha256 of the two files above; written last
 *
 * Crash safety (a SIGKILL may land between any two instructions): a checkpoint is written into a
 * NEW directory whose name nothing refers to yet (the random suffix means it is never the
 * directory `latest` names, even when a task is checkpointed twice), file by file with atomic,
 * fsynced writes, COMPLETE last. Only then is `latest` replaced by an atomic rename: that rename
 * is the commit point. Before it, `latest` still names the previous complete checkpoint (or does
 * not exist: no checkpoint, start from task 0); after it, the new one. Older directories are
 * deleted only after the commit, so a crash during cleanup leaves harmless leftovers that the
 * next write removes. The reader trusts nothing: it follows `latest` only, requires COMPLETE,
 * validates both files, then checks the recorded checksums.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../data/safetensors.js';
import type { Scenario } from '../data/scenario.js';
import { Rng, type RngState } from '../engine/random.js';
import { ExemplarMemory } from '../memory/memory.js';
import type { Method } from '../methods/method.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import {
  CHECKPOINT_FORMAT, CHECKPOINT_VERSION, parseCheckpointState, type CheckpointSnapshot, type CheckpointState, type CheckpointTensor,
} from './checkpointState.js';
import type { RunConfig } from './config.js';
import { runStreams, type LoopResult, type RunStreams } from './loop.js';
import { CHECKPOINT_DIR, configHash, describeDifferences, diffConfigs } from './runDirectory.js';

export * from './checkpointState.js';

export const LATEST_FILE = 'latest';
export const PARAMS_FILE = 'params.safetensors';
export const STATE_FILE = 'state.json';
export const COMPLETE_FILE = 'COMPLETE';
/** state.json holds indices and small arrays; beyond this it is not one of ours. */
const MAX_STATE_BYTES = 256 * 1024 * 1024;
const DIR_PATTERN = /^task-\d{4,}-[0-9a-f]{8}$/;

/** The stages of `writeCheckpoint`, in order (tests stop a write after each one). */
export type CheckpointStage = 'directory' | 'params' | 'state' | 'complete' | 'latest' | 'cleanup';

export interface WriteCheckpointOptions {
  /** Called after each stage; a throw here simulates a crash at that point. */
  afterStage?: (stage: CheckpointStage, dir: string) => void | Promise<void>;
}

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
// Writing

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** fsync a directory so a new entry in it (file or subdirectory) survives a power loss. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r').catch(() => null);
  if (h === null) return;
  await h.sync().catch(() => undefined); // not supported everywhere; the data itself is synced
  await h.close().catch(() => undefined);
}

/** JSON text; refuses NaN/Infinity (JSON would turn them into null silently). */
function stateJson(state: CheckpointState, file: string): string {
  try {
    return JSON.stringify(state, (key, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`value ${v} at key "${key}"`);
      return v;
    }, 1) + '\n';
  } catch (err) {
    throw new Clap4ClipError(`refusing to write a checkpoint with a non-finite number (${(err as Error).message})`, { file, cause: err });
  }
}

/** Checks the tensors against the state's list and for non-finite values (a NaN model is not worth resuming). */
function checkTensors(tensors: readonly CheckpointTensor[], state: CheckpointState, fail: (p: string) => never): void {
  if (tensors.length !== state.tensors.length) fail(`holds ${tensors.length} tensors, the state lists ${state.tensors.length}`);
  tensors.forEach((t, i) => {
    const e = state.tensors[i]!;
    if (t.name !== e.name || JSON.stringify(t.shape) !== JSON.stringify(e.shape)) fail(`tensor ${i} is "${t.name}" ${JSON.stringify(t.shape)}, the state lists "${e.name}" ${JSON.stringify(e.shape)}`);
    for (let k = 0; k < t.data.length; k++) {
      if (!Number.isFinite(t.data[k]!)) fail(`tensor "${t.name}" holds a non-finite value (${t.data[k]}) at element ${k}`);
    }
  });
}

/**
 * Writes `snapshot` as the run's current checkpoint (ordering: see the file comment) and returns
 * its directory. The snapshot is validated first with the reader's own checks, so a checkpoint
 * that could not be read back is never committed.
 */
export async function writeCheckpoint(runDir: string, snapshot: CheckpointSnapshot, opts: WriteCheckpointOptions = {}): Promise<string> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const { state } = snapshot;
  const text = stateJson(state, root);
  parseCheckpointState(JSON.parse(text), `checkpoint of task ${state.completedTask} (not written)`);
  checkTensors(snapshot.tensors, state, (p) => {
    throw new Clap4ClipError(`refusing to write the checkpoint of task ${state.completedTask}: ${p}`, { file: root });
  });
  const params = encodeSafetensors(
    Object.fromEntries(snapshot.tensors.map((t): [string, SafeTensor] => [t.name, { dtype: 'F32', shape: t.shape, data: t.data }])),
    { format: CHECKPOINT_FORMAT, completedTask: String(state.completedTask) },
    path.join(root, PARAMS_FILE),
  );
  const name = `task-${String(state.completedTask).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
  const dir = path.join(root, name);
  const stage = async (s: CheckpointStage) => opts.afterStage?.(s, dir);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new Clap4ClipError(`cannot create the checkpoint directory (${(err as Error).message})`, { file: dir, cause: err });
  }
  await syncDir(root);
  await stage('directory');
  await writeFileAtomic(path.join(dir, PARAMS_FILE), params);
  await stage('params');
  await writeFileAtomic(path.join(dir, STATE_FILE), text);
  await stage('state');
  await writeJsonAtomic(path.join(dir, COMPLETE_FILE), {
    format: `${CHECKPOINT_FORMAT}-complete`,
    completedTask: state.completedTask,
    files: { [PARAMS_FILE]: { bytes: params.length, sha256: sha256(params) }, [STATE_FILE]: { bytes: Buffer.byteLength(text), sha256: sha256(text) } },
  });
  await stage('complete');
  await writeFileAtomic(path.join(root, LATEST_FILE), `${name}\n`); // the commit point
  await stage('latest');
  // Only now may older checkpoints (and temp files of interrupted writes) go.
  for (const entry of await readdir(root)) {
    const stale = (DIR_PATTERN.test(entry) && entry !== name) || (entry.startsWith('.') && entry.endsWith('.tmp'));
    if (stale) await rm(path.join(root, entry), { recursive: true, force: true });
  }
  await stage('cleanup');
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The bytes of `file`; null when it does not exist and `optional`. */
async function readBytes(file: string, what: string, limit: number, optional = false): Promise<Buffer | null> {
  try {
    const size = (await stat(file)).size;
    if (size > limit) throw new DataError(file, `is ${size} bytes, more than any ${what} (limit ${limit}); not a checkpoint file or corrupt`);
    return await readFile(file);
  } catch (err) {
    if (err instanceof DataError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && optional) return null;
    throw new DataError(file, code === 'ENOENT' ? `${what} is missing` : `cannot read the ${what} (${(err as Error).message})`, { cause: err });
  }
}

function parseJson(bytes: Buffer, file: string, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DataError(file, `the ${what} is not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
}

interface CompleteMarker { files: Record<string, { bytes: number; sha256: string }> }

function parseComplete(raw: unknown, file: string, completedTask: number): CompleteMarker {
  const m = raw as { format?: unknown; completedTask?: unknown; files?: Record<string, { bytes?: unknown; sha256?: unknown }> };
  const ok = m !== null && typeof m === 'object' && m.format === `${CHECKPOINT_FORMAT}-complete` && m.completedTask === completedTask &&
    [PARAMS_FILE, STATE_FILE].every((f) => typeof m.files?.[f]?.sha256 === 'string' && Number.isSafeInteger(m.files[f]!.bytes));
  if (!ok) throw new DataError(file, `is not a COMPLETE marker of the checkpoint of task ${completedTask}`);
  return m as CompleteMarker;
}

/** The tensors of params.safetensors, checked against the state's list: F32, same shapes, all present, finite. */
function readTensors(bytes: Buffer, file: string, state: CheckpointState): CheckpointTensor[] {
  const { tensors } = decodeSafetensors(bytes, file);
  const fail = (problem: string): never => {
    throw new DataError(file, problem);
  };
  const listed = new Set(state.tensors.map((e) => e.name));
  for (const name of Object.keys(tensors)) if (!listed.has(name)) fail(`holds tensor "${name}", which state.json does not list`);
  const out = state.tensors.map((e) => {
    const t = tensors[e.name] ?? fail(`tensor "${e.name}" is missing (state.json lists ${state.tensors.length} tensors)`);
    if (t.dtype !== 'F32') fail(`tensor "${e.name}" has dtype ${t.dtype}, checkpoints hold F32`);
    if (JSON.stringify(t.shape) !== JSON.stringify(e.shape)) fail(`tensor "${e.name}" has shape ${JSON.stringify(t.shape)}, state.json lists ${JSON.stringify(e.shape)}`);
    return { name: e.name, shape: t.shape, data: t.data as Float32Array };
  });
  checkTensors(out, state, fail);
  return out;
}

/**
 * The run's current checkpoint, fully validated; null when there is none yet (a first run, or a
 * crash before the first checkpoint was committed). Every problem is a DataError naming the file.
 */
export async function readLatestCheckpoint(runDir: string): Promise<CheckpointSnapshot | null> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const latest = path.join(root, LATEST_FILE);
  const pointerBytes = await readBytes(latest, 'checkpoint pointer', 4096, true);
  if (pointerBytes === null) return null;
  const pointer = pointerBytes.toString('utf8').trim();
  if (!DIR_PATTERN.test(pointer)) throw new DataError(latest, `does not name a checkpoint directory (got ${JSON.stringify(pointer.slice(0, 60))})`);
  const dir = path.join(root, pointer);
  const files = { dir, params: path.join(dir, PARAMS_FILE), state: path.join(dir, STATE_FILE) };
  const completeFile = path.join(dir, COMPLETE_FILE);
  const completeBytes = await readBytes(completeFile, 'COMPLETE marker (the checkpoint directory is incomplete)', 65536);
  const stateBytes = (await readBytes(files.state, 'checkpoint state', MAX_STATE_BYTES))!;
  const state = parseCheckpointState(parseJson(stateBytes, files.state, 'checkpoint state'), files.state);
  const complete = parseComplete(parseJson(completeBytes!, completeFile, 'COMPLETE marker'), completeFile, state.completedTask);
  const paramsBytes = (await readBytes(files.params, 'checkpoint parameters', Number.MAX_SAFE_INTEGER))!;
  const tensors = readTensors(paramsBytes, files.params, state);
  // Checksums last: a structural problem gets its specific message above; this catches the rest.
  for (const [file, bytes, name] of [[files.params, paramsBytes, PARAMS_FILE], [files.state, stateBytes, STATE_FILE]] as const) {
    const want = complete.files[name]!;
    if (bytes.length !== want.bytes || sha256(bytes) !== want.sha256) {
      throw new DataError(file, `content does not match the checksum in ${COMPLETE_FILE} (${bytes.length} bytes, recorded ${want.bytes}); modified or corrupted after it was written`);
    }
  }
  return { state, tensors, files };
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
