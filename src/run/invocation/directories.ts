/**
 * The directories of an invocation before anything runs: every check of every run directory
 * happens before anything is trained or deleted; then --force clears what it replaces and a
 * multi-run invocation is recorded (before any run directory, so a kill at any later point leaves
 * a resumable DIR). Each run directory is then prepared when its run starts (`execute.ts`).
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import { acquireDirLock, entriesBesideLock, refuseIfHeldByOther, type DirLock } from '../../util/dirLock.js';
import { Clap4ClipError } from '../../util/errors.js';
import { CHECKPOINT_DIR, CONFIG_FILE, describeDifferences, diffConfigs, readRunConfig } from '../runDirectory.js';
import { settingsOf, type Invocation, type MethodRuns, type RecordedInvocation } from './plan.js';
import { INVOCATION_FILE, readInvocation, writeInvocation } from './record.js';

/** The entries of `dir` but its lock (null when it does not exist). */
async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    return await entriesBesideLock(dir);
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
 * directory holding another invocation (`previous`) of a different layout or config. Differences
 * name the config keys.
 */
export async function checkDirectories(inv: Invocation, plan: MethodRuns[], previous: RecordedInvocation | null): Promise<void> {
  if (previous !== null) {
    const layout = previous.layout !== inv.layout;
    const listOf = (r: RecordedInvocation): string => (r.config.kind === 'comparison' ? r.config.methods.join(',') : '');
    const methods = !layout && listOf(previous) !== listOf(inv);
    const diffs = [
      ...(layout ? [`layout (${previous.layout} -> ${inv.layout})`] : []),
      ...(methods ? [`methods (${listOf(previous)} -> ${listOf(inv)})`] : []),
      // A comparison's settings name a method only as the holder of the options: the list says what runs.
      ...diffConfigs(settingsOf(previous.config), settingsOf(inv.config)).filter((d) => !(d.key === 'method' && inv.layout === 'comparison')).map((d) => describeDifferences([d])),
    ];
    if (diffs.length > 0) {
      throw new Clap4ClipError(inv.resume
        ? `cannot resume with a changed config; differing keys: ${diffs.join(', ')} (resume with the run's own config, or start over with --force)`
        : `holds a run with a different config; differing keys: ${diffs.join(', ')} (choose another --out, or --force to replace that run)`, { file: inv.root });
    }
  }
  for (const run of plan.flatMap((m) => m.runs)) {
    const existing = await readRunConfig(run.dir);
    if (existing !== null) {
      const diffs = diffConfigs(existing, run.config);
      if (diffs.length === 0) continue;
      if (inv.resume) throw new Clap4ClipError(`cannot resume with a changed config; differing keys: ${describeDifferences(diffs)} (resume with the run's own config, or start over with --force)`, { file: run.dir });
      if (!inv.force) throw new Clap4ClipError(`holds a run with a different config; differing keys: ${describeDifferences(diffs)} (choose another --out, or --force to replace that run)`, { file: run.dir });
    } else if (!inv.force) {
      if (((await entriesOf(run.dir)) ?? []).some((e) => !isLeftover(e))) throw new Clap4ClipError(`exists, is not empty and is not a clap4clip run (no ${CONFIG_FILE}); choose another --out, or --force to write the run into it`, { file: run.dir });
    }
  }
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
 * With --force: removes what the earlier invocation recorded in `inv.root` (`previous`) left that
 * this one does not write (run directories of other seeds or methods, a single run's files at the
 * top, summaries). Only this tool's own files go (in directories holding a valid config.json), and
 * a directory only once empty; a root no invocation was recorded in is left alone
 * (`prepareRunDirectory` decides).
 */
export async function removeStaleRuns(inv: Invocation, plan: MethodRuns[], previous: RecordedInvocation | null): Promise<void> {
  if (previous === null) return;
  const planned = new Set(plan.flatMap((m) => m.runs.map((r) => path.resolve(r.dir))));
  const clear = async (dir: string, files: readonly string[]): Promise<void> => {
    for (const f of files) await rm(path.join(dir, f), { recursive: true, force: true });
  };
  /** Returns whether a run directory was cleared in `dir` or below (only those are removed when empty). */
  const visit = async (dir: string, depth: number): Promise<boolean> => {
    const isPlanned = planned.has(path.resolve(dir));
    let cleared = !isPlanned && (await isRunDirectory(dir));
    if (cleared) {
      await refuseIfHeldByOther(dir); // a run someone started there on its own
      await clear(dir, RUN_FILES);
    }
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
  if (inv.layout === 'one run') await rm(path.join(inv.root, INVOCATION_FILE), { force: true });
}

/**
 * Takes the invocation's lock (`util/dirLock.ts`: one writer per run directory), then, everything
 * checked, clears what --force replaces and records a multi-run invocation. The lock is on
 * `inv.root`, which holds every run directory of the invocation; it covers the tree, so another
 * invocation on a folder above or inside it (a comparison's `clap/`, a repeated run's `run-3/`) is
 * refused too. The record `inv.root` holds is read once here (unless the invocation already read
 * it); with --force an unreadable one is no obstacle (it is replaced). Returns the lock, which the
 * caller releases when the runs end (`runInvocation` does); on a refusal it is released here.
 */
export async function prepareInvocation(inv: Invocation, plan: MethodRuns[]): Promise<DirLock> {
  const inside = [...new Set(plan.flatMap((m) => [m.dir, ...m.runs.map((r) => r.dir)]))].filter((d) => path.resolve(d) !== path.resolve(inv.root));
  const lock = await acquireDirLock(inv.root, { inside });
  try {
    if (inv.force) {
      await checkDirectories(inv, plan, null);
      await removeStaleRuns(inv, plan, await readInvocation(inv.root).catch(() => null));
    } else {
      await checkDirectories(inv, plan, inv.recorded !== undefined ? inv.recorded : await readInvocation(inv.root));
    }
    if (inv.layout !== 'one run') await writeInvocation(inv);
  } catch (err) {
    await lock.release();
    throw err;
  }
  return lock;
}
