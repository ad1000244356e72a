/**
 * A run directory belongs to one config. `prepareRunDirectory` enforces that before anything is
 * trained:
 *
 *   - a new (missing or empty) directory gets `config.json` (the resolved config, which
 *     `--config` accepts back) and the run starts;
 *   - an existing run with the SAME config (keys that do not change results ignored) starts over,
 *     or with `resume` continues from its checkpoint;
 *   - an existing run with a DIFFERENT config is refused, naming the differing keys, unless
 *     `force` (start over with the new config); a resume never accepts a changed config;
 *   - a non-empty directory that is not a run (no `config.json`) is refused unless `force`, and
 *     even then only this tool's own files are deleted.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { entriesBesideLock } from '../util/dirLock.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { readFailure } from '../util/inputFile.js';
import { resolveRunConfig, type RunConfig } from './config.js';

export const CONFIG_FILE = 'config.json';
/** The checkpoint directory (layout in `checkpoint.ts`). */
export const CHECKPOINT_DIR = 'checkpoint';
/** Files a run writes; `force` and a restart delete exactly these (never a user's other files). */
const RUN_ARTIFACTS = [CHECKPOINT_DIR, 'results.json', 'accuracy_matrix.csv', 'report.html'];
/** Config keys that change where or how a run reports, never its numbers. */
export const RESULT_NEUTRAL_KEYS: readonly (keyof RunConfig)[] = ['out', 'progress'];
/** config.json is a few KB; anything this large is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The config without the result-neutral keys: what the hash and the diff compare. */
export function resultAffectingConfig(config: RunConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of RESULT_NEUTRAL_KEYS) delete out[k];
  return out;
}

/** JSON with object keys sorted at every level, so equal configs give equal text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the canonical result-affecting config (hex): equal iff the runs compute the same. */
export function configHash(config: RunConfig): string {
  return createHash('sha256').update(canonicalJson(resultAffectingConfig(config))).digest('hex');
}

export interface ConfigDifference {
  /** Dotted path: `epochs`, `methodOptions.beta`. Arrays are compared whole. */
  key: string;
  /** undefined: the key is absent on that side. */
  before: unknown;
  after: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Deep differences between two resolved configs, result-neutral keys ignored, keys sorted. */
export function diffConfigs(before: RunConfig, after: RunConfig): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  const walk = (a: unknown, b: unknown, key: string): void => {
    if (isObject(a) && isObject(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const k of keys) walk(a[k], b[k], key === '' ? k : `${key}.${k}`);
    } else if (canonicalJson(a) !== canonicalJson(b)) {
      out.push({ key, before: a, after: b });
    }
  };
  walk(resultAffectingConfig(before), resultAffectingConfig(after), '');
  return out;
}

function showValue(v: unknown): string {
  if (v === undefined) return '(unset)';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** `epochs (5 -> 3), methodOptions.beta ((unset) -> 10)`. */
export function describeDifferences(diffs: readonly ConfigDifference[]): string {
  return diffs.map((d) => `${d.key} (${showValue(d.before)} -> ${showValue(d.after)})`).join(', ');
}

/** Reads and validates `DIR/config.json`; null when there is none. */
export async function readRunConfig(dir: string): Promise<RunConfig | null> {
  const file = path.join(dir, CONFIG_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw readFailure(file, 'run config', err);
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw new DataError(file, `is ${bytes.length} bytes, too large for a run config (limit ${MAX_CONFIG_BYTES})`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataError(file, `not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
  try {
    return resolveRunConfig(raw);
  } catch (err) {
    if (err instanceof Clap4ClipError) throw new DataError(file, err.message, { cause: err });
    throw err;
  }
}

export interface PrepareOptions {
  /** Replace a run of a different config (or a foreign non-empty directory's run files). */
  force?: boolean;
  /** Continue the run in the directory; its config must be unchanged. */
  resume?: boolean;
}

export type RunDirectoryMode =
  /** New directory: nothing to resume. */
  | 'fresh'
  /** Same config, not resuming: the old checkpoint and results were deleted. */
  | 'restart'
  /** Different config with `force`: the old run's files were deleted. */
  | 'overwrite'
  /** Same config, `resume`: continue from `readLatestCheckpoint(dir)` (null: from task 0). */
  | 'resume';

export interface PreparedRunDirectory {
  dir: string;
  mode: RunDirectoryMode;
  /** The config of the run (on resume: the one in config.json, equal up to neutral keys). */
  config: RunConfig;
}

async function listDir(dir: string): Promise<string[] | null> {
  try {
    return await entriesBesideLock(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') throw new Clap4ClipError(`the run directory is a file, not a directory`, { file: dir, cause: err });
    throw new Clap4ClipError(`cannot read the run directory (${(err as Error).message})`, { file: dir, cause: err });
  }
}

/**
 * Deletes the run's own files, the checkpoint FIRST: a crash between here and the new
 * config.json then leaves the old config with no checkpoint (a resume starts from task 0 of the
 * old config), never a new config.json beside an old config's checkpoint.
 */
async function clearRunFiles(dir: string): Promise<void> {
  for (const name of RUN_ARTIFACTS) await rm(path.join(dir, name), { recursive: true, force: true });
}

/** Checks `dir` against `config` (see the file comment) and writes config.json when starting. */
export async function prepareRunDirectory(dir: string, config: RunConfig, opts: PrepareOptions = {}): Promise<PreparedRunDirectory> {
  if (opts.force && opts.resume) throw new Clap4ClipError('--force and --resume contradict each other: --resume continues a run, --force replaces it');
  const entries = await listDir(dir);
  const existing = entries === null ? null : await readRunConfig(dir);
  const start = async (mode: RunDirectoryMode): Promise<PreparedRunDirectory> => {
    if (mode !== 'fresh') await clearRunFiles(dir);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new Clap4ClipError(`cannot create the run directory (${(err as Error).message})`, { file: dir, cause: err });
    }
    await writeJsonAtomic(path.join(dir, CONFIG_FILE), config);
    return { dir, mode, config };
  };

  if (opts.resume) {
    if (existing === null) {
      throw new Clap4ClipError(`nothing to resume: no ${CONFIG_FILE} (start the run without --resume)`, { file: dir });
    }
    const diffs = diffConfigs(existing, config);
    if (diffs.length > 0) {
      throw new Clap4ClipError(`cannot resume with a changed config; differing keys: ${describeDifferences(diffs)} (resume with the run's own config, or start over with --force)`, { file: dir });
    }
    return { dir, mode: 'resume', config: existing };
  }
  if (entries === null || entries.length === 0) return start('fresh');
  if (existing === null) {
    if (!opts.force) throw new Clap4ClipError(`exists, is not empty and is not a clap4clip run (no ${CONFIG_FILE}); choose another --out, or --force to write the run into it`, { file: dir });
    return start('overwrite');
  }
  const diffs = diffConfigs(existing, config);
  if (diffs.length === 0) return start('restart');
  if (!opts.force) {
    throw new Clap4ClipError(`holds a run with a different config; differing keys: ${describeDifferences(diffs)} (choose another --out, or --force to replace that run)`, { file: dir });
  }
  return start('overwrite');
}
