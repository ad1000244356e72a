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
 * Crash safety (a SIGKILL may land between any two instructions) is the committed-directory
 * protocol of `util/committedDir.ts`: a checkpoint goes into a NEW directory nothing refers to yet,
 * every file fsynced, COMPLETE last; replacing `latest` atomically is the commit point. Before it,
 * `latest` still names the previous complete checkpoint (or does not exist: no checkpoint, start
 * from task 0); after it, the new one. Older directories are deleted only after the commit. The
 * reader follows `latest` only, requires COMPLETE, validates both files, then the checksums.
 */
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../data/safetensors.js';
import { COMPLETE_FILE, LATEST_FILE, readCommittedDir, writeCommittedDir, type CommittedDirLayout } from '../util/committedDir.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import {
  CHECKPOINT_FORMAT, parseCheckpointState, type CheckpointSnapshot, type CheckpointState, type CheckpointTensor,
} from './checkpointState.js';
import { CHECKPOINT_DIR } from './runDirectory.js';

export * from './checkpointState.js';

export { COMPLETE_FILE, LATEST_FILE };
export const PARAMS_FILE = 'params.safetensors';
export const STATE_FILE = 'state.json';
/** state.json holds indices and small arrays; beyond this it is not one of ours. */
const MAX_STATE_BYTES = 256 * 1024 * 1024;
/** Directories `task-0003-1f2e3d4c`; COMPLETE's format `clap4clip-checkpoint-complete`. */
const LAYOUT: CommittedDirLayout = { prefix: 'task', format: CHECKPOINT_FORMAT, noun: 'checkpoint' };

/** The stages of `writeCheckpoint`, in order (tests stop a write after each one). */
export type CheckpointStage = 'directory' | 'params' | 'state' | 'complete' | 'latest' | 'cleanup';

export interface WriteCheckpointOptions {
  /** Called after each stage; a throw here simulates a crash at that point. */
  afterStage?: (stage: CheckpointStage, dir: string) => void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Writing

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
  // Stage names as before the protocol moved to util/committedDir.ts (the tests and callers use them).
  const fileStage: Record<string, CheckpointStage> = { [PARAMS_FILE]: 'params', [STATE_FILE]: 'state' };
  return writeCommittedDir(root, LAYOUT, { [PARAMS_FILE]: params, [STATE_FILE]: text }, {
    sequence: state.completedTask,
    marker: { completedTask: state.completedTask },
    afterStage: (s, dir, file) => opts.afterStage?.(s === 'file' ? fileStage[file!]! : s, dir),
  });
}

// ---------------------------------------------------------------------------------------------
// Reading

function parseJson(bytes: Buffer, file: string, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DataError(file, `the ${what} is not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
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
  const read = await readCommittedDir(path.join(runDir, CHECKPOINT_DIR), LAYOUT, {
    files: [PARAMS_FILE, STATE_FILE], limits: { [STATE_FILE]: MAX_STATE_BYTES }, optional: true,
  });
  if (read === null) return null;
  const files = { dir: read.dir, params: read.paths[PARAMS_FILE]!, state: read.paths[STATE_FILE]! };
  const state = parseCheckpointState(parseJson(read.bytes[STATE_FILE]!, files.state, 'checkpoint state'), files.state);
  if (read.marker['completedTask'] !== state.completedTask) {
    throw new DataError(read.markerFile, `is not a COMPLETE marker of the checkpoint of task ${state.completedTask} (it records task ${JSON.stringify(read.marker['completedTask'])})`);
  }
  const tensors = readTensors(read.bytes[PARAMS_FILE]!, files.params, state);
  // Checksums last: a structural problem gets its specific message above; this catches the rest.
  read.verify();
  return { state, tensors, files };
}
