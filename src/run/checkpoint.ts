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
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import {
  CHECKPOINT_FORMAT, parseCheckpointState, type CheckpointSnapshot, type CheckpointState, type CheckpointTensor,
} from './checkpointState.js';
import { CHECKPOINT_DIR } from './runDirectory.js';

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
