/**
 * The run directories of one `clap4clip run` and their lifecycle.
 *
 * Layout. One method with one seed writes into the directory itself (a run directory:
 * `config.json`, `checkpoint/`, `results.json`, ...). A comparison (no --method) or repeated runs
 * (--runs N) write one run directory per method and/or seed (`clap/`, `run-3/`, `clap/run-3/`)
 * and record the invocation in `invocation.json` at the top, so `--resume DIR` can rebuild every
 * run's config from DIR alone.
 *
 * Lifecycle of every run directory: `prepareRunDirectory` (refuses a different config unless
 * --force; a resume with a changed config names the keys), the method restored from the last
 * checkpoint when resuming, the loop writing a checkpoint after every task, then the results.
 * All checks of all directories happen before anything is trained or deleted.
 */
import { mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { FeaturesDataset } from '../../data/types.js';
import type { Method } from '../../methods/method.js';
import { createMethod } from '../../methods/registry.js';
import { readLatestCheckpoint } from '../../run/checkpoint.js';
import { restoreMethod } from '../../run/snapshot.js';
import { resolveRunConfig, type MethodName, type RunConfig } from '../../run/config.js';
import { methodSetupFor, runClassIncremental, type StepRecord } from '../../run/loop.js';
import { progressFactory } from '../../run/progress.js';
import { runDirName } from '../../run/repeatedRuns.js';
import { summarizeRun, writeRunResults, type RunResults } from '../../run/results.js';
import {
  CHECKPOINT_DIR, CONFIG_FILE, describeDifferences, diffConfigs, prepareRunDirectory, readRunConfig,
} from '../../run/runDirectory.js';
import type { StopRequest } from '../../run/signals.js';
import { writeJsonAtomic } from '../../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { CommandIO } from './io.js';

/** Methods compared when no --method is given. */
export const COMPARED_METHODS: MethodName[] = ['zeroshot', 'clip-adapter', 'clap'];


// ---------------------------------------------------------------------------------------------
// The invocation and its record

/** What one `clap4clip run` does, and where. */
export interface Invocation {
  /** The --out (or --resume) directory. */
  root: string;
  /** `root` is itself the one run directory (one method, one seed). */
  single: boolean;
  /** Runs zeroshot, clip-adapter and clap (no --method). */
  compare: boolean;
  /** The config keys given (file, flags, benchmark defaults) over the defaults; `method` absent when comparing. */
  partial: Record<string, unknown>;
  /** Continue what `root` holds. */
  resume: boolean;
  /** Replace a run of a different config. */
  force: boolean;
}

export const INVOCATION_FILE = 'invocation.json';
const INVOCATION_FORMAT = 'clap4clip-invocation';
const MAX_INVOCATION_BYTES = 1024 * 1024;

/** Records a multi-run invocation in `root/invocation.json` (atomically). */
async function writeInvocation(inv: Invocation): Promise<void> {
  try {
    await mkdir(inv.root, { recursive: true });
  } catch (err) {
    throw new Clap4ClipError(`cannot create the run directory (${(err as Error).message})`, { file: inv.root, cause: err });
  }
  await writeJsonAtomic(path.join(inv.root, INVOCATION_FILE), { format: INVOCATION_FORMAT, version: 1, compare: inv.compare, config: inv.partial });
}

/**
 * What `dir` holds: one run (its config.json), the record of a multi-run invocation, or nothing
 * (null). Both files are validated; problems are DataErrors naming the file.
 */
export async function readInvocation(dir: string): Promise<Pick<Invocation, 'single' | 'compare' | 'partial'> | null> {
  const config = await readRunConfig(dir);
  if (config !== null) return { single: true, compare: false, partial: { ...config } };
  const file = path.join(dir, INVOCATION_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new DataError(file, `cannot read (${(err as Error).message})`, { cause: err });
  }
  if (bytes.length > MAX_INVOCATION_BYTES) throw new DataError(file, `is ${bytes.length} bytes, too large for a run record (limit ${MAX_INVOCATION_BYTES})`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataError(file, `not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
  const o = raw as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new DataError(file, 'must hold a JSON object');
  if (o['format'] !== INVOCATION_FORMAT || o['version'] !== 1) throw new DataError(file, `is not a clap4clip run record ("format" ${JSON.stringify(o['format'])}, "version" ${JSON.stringify(o['version'])}; expected "${INVOCATION_FORMAT}", 1)`);
  if (typeof o['compare'] !== 'boolean') throw new DataError(file, `"compare" must be true or false, got ${JSON.stringify(o['compare'])}`);
  const partial = o['config'];
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) throw new DataError(file, '"config" must be a JSON object');
  try {
    resolveRunConfig(partial);
  } catch (err) {
    if (err instanceof Clap4ClipError) throw new DataError(file, `"config" is invalid: ${err.message}`, { cause: err });
    throw err;
  }
  return { single: false, compare: o['compare'], partial: partial as Record<string, unknown> };
}

/** One run directory of the invocation. */
export interface Leaf {
  dir: string;
  /** Its config (out = dir). */
  config: RunConfig;
}

/** The runs of one method: in `dir` itself, or one per seed in `dir/run-<seed>/` (then summarized there). */
export interface MethodRuns {
  method: MethodName;
  dir: string;
  repeated: boolean;
  leaves: Leaf[];
}

/** Every run directory of `inv`, in the order they run. Resolving the configs checks them all. */
export function planRuns(inv: Invocation): MethodRuns[] {
  if (inv.single) {
    const config = resolveRunConfig({ ...inv.partial, out: inv.root });
    return [{ method: config.method, dir: inv.root, repeated: false, leaves: [{ dir: inv.root, config }] }];
  }
  const methods = inv.compare ? COMPARED_METHODS : [resolveRunConfig(inv.partial).method];
  return methods.map((m) => {
    // Method options are for the method run; when comparing, they go to clap (the others take none).
    const config = resolveRunConfig({ ...inv.partial, method: m, ...(inv.compare && m !== 'clap' ? { methodOptions: {} } : {}) });
    const dir = inv.compare ? path.join(inv.root, m) : inv.root;
    const repeated = config.runs > 1;
    const leaves = Array.from({ length: config.runs }, (_, r) => {
      const seed = config.seed + r;
      const leafDir = repeated ? path.join(dir, runDirName(seed)) : dir;
      return { dir: leafDir, config: { ...config, seed, out: leafDir } };
    });
    return { method: m, dir, repeated, leaves };
  });
}

// ---------------------------------------------------------------------------------------------
// Checks before anything is trained or deleted

/** The entries of `dir` (null when it does not exist). */
async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Clap4ClipError(`cannot read the run directory (${(err as Error).message})`, { file: dir, cause: err });
  }
}

/** Temp files of atomic writes cut short by a kill (`.name.<pid>-<hex>.tmp`): not a user's files. */
const isLeftover = (name: string): boolean => name.startsWith('.') && name.endsWith('.tmp');

/** The directory holds nothing but leftovers of a write that was killed (so it may be started in). */
export async function holdsOnlyLeftovers(dir: string): Promise<boolean> {
  const entries = await entriesOf(dir);
  return entries !== null && entries.length > 0 && entries.every(isLeftover);
}

/**
 * Refuses, before any work, what `prepareRunDirectory` would refuse at some later run directory
 * (a different config, a resume with a changed config, a foreign non-empty directory), and a
 * directory holding another invocation's layout. Differences name the config keys.
 */
export async function checkDirectories(inv: Invocation, plan: MethodRuns[]): Promise<void> {
  const previous = inv.force ? null : await readInvocation(inv.root);
  if (previous !== null) {
    const was = resolveRunConfig(previous.compare ? { ...previous.partial, method: 'clap' } : previous.partial);
    const now = resolveRunConfig(inv.compare ? { ...inv.partial, method: 'clap' } : inv.partial);
    const layout = previous.single !== inv.single || previous.compare !== inv.compare;
    const diffs = [...(layout ? [`layout (${layoutOf(previous)} -> ${layoutOf(inv)})`] : []), ...diffConfigs(was, now).map((d) => describeDifferences([d]))];
    if (diffs.length > 0) {
      throw new Clap4ClipError(inv.resume
        ? `cannot resume with a changed config; differing keys: ${diffs.join(', ')} (resume with the run's own config, or start over with --force)`
        : `holds a run with a different config; differing keys: ${diffs.join(', ')} (choose another --out, or --force to replace that run)`, { file: inv.root });
    }
  }
  for (const leaf of plan.flatMap((m) => m.leaves)) {
    const existing = await readRunConfig(leaf.dir);
    if (existing !== null) {
      const diffs = diffConfigs(existing, leaf.config);
      if (diffs.length === 0) continue;
      if (inv.resume) throw new Clap4ClipError(`cannot resume with a changed config; differing keys: ${describeDifferences(diffs)} (resume with the run's own config, or start over with --force)`, { file: leaf.dir });
      if (!inv.force) throw new Clap4ClipError(`holds a run with a different config; differing keys: ${describeDifferences(diffs)} (choose another --out, or --force to replace that run)`, { file: leaf.dir });
    } else if (!inv.force) {
      if (((await entriesOf(leaf.dir)) ?? []).some((e) => !isLeftover(e))) throw new Clap4ClipError(`exists, is not empty and is not a clap4clip run (no ${CONFIG_FILE}); choose another --out, or --force to write the run into it`, { file: leaf.dir });
    }
  }
}

function layoutOf(inv: Pick<Invocation, 'single' | 'compare'>): string {
  return inv.single ? 'one run' : inv.compare ? 'comparison' : 'repeated runs';
}

/** Files a run directory holds (`runDirectory.ts` clears the same set), config.json last. */
const RUN_FILES = [CHECKPOINT_DIR, 'results.json', 'accuracy_matrix.csv', 'report.html', CONFIG_FILE];
/** Files an invocation writes above its run directories (rewritten when it completes). */
const SUMMARY_FILES = ['summary.json', 'comparison.json', 'report.html'];

/** Whether `dir` holds a valid run config (a directory this tool wrote), never throwing. */
async function isRunDirectory(dir: string): Promise<boolean> {
  return readRunConfig(dir).then((c) => c !== null, () => false);
}

/**
 * With --force: removes what an earlier invocation recorded in `inv.root` left that this one does
 * not write (run directories of other seeds or methods, a single run's files at the top, summaries).
 * Only this tool's own files go (in directories holding a valid config.json), and a directory only
 * once empty; a root no invocation was recorded in is left alone (`prepareRunDirectory` decides).
 */
export async function removeStaleRuns(inv: Invocation, plan: MethodRuns[]): Promise<void> {
  if ((await readInvocation(inv.root).catch(() => null)) === null) return;
  const planned = new Set(plan.flatMap((m) => m.leaves.map((l) => path.resolve(l.dir))));
  const clear = async (dir: string, files: readonly string[]): Promise<void> => {
    for (const f of files) await rm(path.join(dir, f), { recursive: true, force: true });
  };
  /** Returns whether a run directory was cleared in `dir` or below (only those are removed when empty). */
  const visit = async (dir: string, depth: number): Promise<boolean> => {
    const isPlanned = planned.has(path.resolve(dir));
    let cleared = !isPlanned && (await isRunDirectory(dir));
    if (cleared) await clear(dir, RUN_FILES);
    if (depth < 2) {
      await clear(dir, isPlanned ? SUMMARY_FILES.filter((f) => f !== 'report.html') : SUMMARY_FILES);
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory() && e.name !== CHECKPOINT_DIR && (await visit(path.join(dir, e.name), depth + 1))) cleared = true;
      }
    }
    if (cleared && depth > 0 && !isPlanned) await rmdir(dir).catch(() => undefined); // only when empty
    return cleared;
  };
  await visit(inv.root, 0);
  if (inv.single) await rm(path.join(inv.root, INVOCATION_FILE), { force: true });
}

/**
 * Everything checked: clears what --force replaces and records a multi-run invocation (written
 * before any run directory, so a kill at any later point leaves a resumable DIR).
 */
export async function prepareInvocation(inv: Invocation, plan: MethodRuns[]): Promise<void> {
  await checkDirectories(inv, plan);
  if (inv.force) await removeStaleRuns(inv, plan);
  if (!inv.single) await writeInvocation(inv);
}

// ---------------------------------------------------------------------------------------------
// One run directory

/** A method built for a run. */
export interface BuiltMethod {
  method: Method;
}

/** Build the method of `config` (fails early on bad method options, before any training). */
export async function buildMethod(config: RunConfig, ds: FeaturesDataset): Promise<BuiltMethod> {
  return { method: await createMethod(config.method, methodSetupFor(config, ds)) };
}

export interface RunOneOptions {
  resume: boolean;
  force: boolean;
  stop: StopRequest;
  /** A freshly built method for this config (else built here). */
  built?: BuiltMethod;
  /** Called after every task, once its checkpoint is committed. */
  onStep?: (dir: string, step: StepRecord) => void | Promise<void>;
}

const pct = (x: number): string => (100 * x).toFixed(2);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Trains and evaluates one run directory, from its last checkpoint when resuming (a directory
 * the run never got to, or got to before its first checkpoint, starts from task 0); writes a
 * checkpoint after every task, then results.json + accuracy_matrix.csv.
 */
export async function runOne(ds: FeaturesDataset, leaf: Leaf, io: CommandIO, opts: RunOneOptions): Promise<RunResults> {
  const { config, dir } = leaf;
  const hasRun = (await readRunConfig(dir)) !== null;
  // A kill during the very first write leaves only a temp file: nothing to protect there.
  const force = opts.force || (!hasRun && (await holdsOnlyLeftovers(dir)));
  const prepared = await prepareRunDirectory(dir, config, { force, resume: opts.resume && hasRun });
  const snapshot = prepared.mode === 'resume' ? await readLatestCheckpoint(dir) : null;
  const { method } = opts.built ?? (await buildMethod(config, ds));
  if (snapshot !== null) {
    restoreMethod(method, snapshot);
    const { completedTask, tasks } = snapshot.state;
    io.stdout.write(`  ${config.method}: resuming ${dir} after task ${completedTask + 1}/${tasks.length}\n`);
  }
  const progress = progressFactory(config.progress, io.stderr);
  const verbose = config.progress === 'always' || (config.progress === 'auto' && io.stderr.isTTY === true);
  const onStep = async (s: StepRecord): Promise<void> => {
    if (verbose) {
      io.stderr.write(`${config.method} after task ${s.task + 1}: acc ${pct(mean(s.accuracies))}% (tasks: ${s.accuracies.map(pct).join(' ')}), ECE ${s.eceDataset.toFixed(4)}, ${s.seconds.total.toFixed(1)}s\n`);
    }
    await opts.onStep?.(dir, s);
  };
  const loop = await runClassIncremental(config, ds, method, { progress, onStep, runDir: dir, resume: snapshot ?? undefined, stop: opts.stop });
  const results = summarizeRun(config, ds, method.name, loop);
  await writeRunResults(dir, results);
  return results;
}

/**
 * report.html of the invocation: in its directory, over its runs. A failure is a warning (the
 * results are complete and `clap4clip report` can write it later), never a failed run.
 */
export async function writeRunReport(inv: Invocation, plan: MethodRuns[], io: CommandIO): Promise<string | null> {
  try {
    // Lazy: the report pulls in vega, which only this step needs.
    const { writeReport } = await import('../../report/writeReport.js');
    const { file } = inv.compare ? await writeReport(plan.map((m) => m.dir), inv.root) : await writeReport([inv.root]);
    io.stdout.write(`report -> ${file}\n`);
    return file;
  } catch (err) {
    io.stderr.write(`clap4clip: warning: the report was not written (${(err as Error).message}); the results are complete (\`clap4clip report\` can write it later)\n`);
    return null;
  }
}
