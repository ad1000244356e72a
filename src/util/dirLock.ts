/**
 * One writer per folder: an exclusive lock on a run directory, a classifier's save folder or a
 * features output folder, so two processes never write (and clean up) the same files.
 *
 *   FOLDER/.clap4clip.lock          {"pid", "hostname", "startedAt", "command", "token"}
 *   FOLDER/.clap4clip.lock.claim-T  only while someone removes the stale lock of token T
 *
 * Taking: the lock's JSON is written to a temp file and hard-linked to `.clap4clip.lock`; link(2)
 * fails when the name exists, so exactly one of any number of takers succeeds, and a reader never
 * sees a half-written lock. A lock covers its folder's whole tree: after taking it, the taker
 * checks every ancestor folder (and the sub-folders it was told it will write, `inside`) for a lock
 * held by another live process, and gives its own back when it finds one. Both sides write before
 * they look, so of two overlapping writers at least one sees the other.
 *
 * A stale lock (its holder died: SIGKILL, power loss, a second Ctrl-C) is one whose pid is not
 * alive on this host (`kill(pid, 0)` fails with ESRCH), or whose pid is this process's own but not
 * one of the tokens it holds (a previous process with the same pid). It is removed without a race:
 * the remover must first create `.clap4clip.lock.claim-<token>` (exclusive), then checks the lock
 * still has that token before unlinking it. The claim names one lock instance, so two removers of
 * one stale lock: one wins, the other retries and meets the winner's new lock. A claim left by a
 * remover that died is itself stale and is removed the same way (a claim on the claim).
 *
 * A lock taken on ANOTHER host (shared filesystem) is never taken over: this host cannot tell
 * whether that process still runs, and taking over a live lock would let two writers delete each
 * other's files. The message names the file to delete once the user knows it is not running.
 * A pid reused by an unrelated process makes a stale lock look alive: the error says so.
 *
 * Released by `release()` (only if the lock file is still this holder's), and at process exit for
 * locks still held. A process killed outright leaves a stale lock, which the next taker removes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { syncDirectory, writeFileDurable } from './atomicWrite.js';
import { Clap4ClipError, FolderBusyError, type LockHolder } from './errors.js';

export const LOCK_FILE = '.clap4clip.lock';

/** The lock file, its claims and their temp files: this tool's, never a user's (emptiness checks skip them). */
export const isLockEntry = (name: string): boolean => name === LOCK_FILE || name.startsWith(`${LOCK_FILE}.`);

interface LockRecord extends LockHolder {
  token: string;
}

export interface DirLockOptions {
  /** What takes the lock, recorded for the message a second writer gets (default: the command line). */
  command?: string;
  /** Sub-folders this writer will write: refused when another live process holds a lock on one. */
  inside?: readonly string[];
}

export interface DirLock {
  readonly dir: string;
  readonly file: string;
  /** Removes the lock file (if still this holder's) and the folder if taking the lock created it and it is empty. */
  release(): Promise<void>;
}

const HOST = hostname();
/** The locks (and claims) this process holds or is creating: token -> lock file. */
const held = new Map<string, string>();
let exitHookInstalled = false;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function commandLine(): string {
  return [path.basename(process.argv[1] ?? 'node'), ...process.argv.slice(2)].join(' ').slice(0, 300);
}

function parseRecord(text: string): LockRecord | null {
  try {
    const o = JSON.parse(text) as Partial<LockRecord>;
    if (Number.isSafeInteger(o.pid) && typeof o.hostname === 'string' && typeof o.token === 'string') {
      return { pid: o.pid!, hostname: o.hostname, startedAt: String(o.startedAt), command: String(o.command), token: o.token };
    }
  } catch {
    // not a lock of ours, or written by hand
  }
  return null;
}

/** The record in `file`; null when there is no such file; 'unreadable' when it is not a lock record. */
async function readRecord(file: string): Promise<LockRecord | null | 'unreadable'> {
  try {
    return parseRecord(await readFile(file, 'utf8')) ?? 'unreadable';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EISDIR') return 'unreadable';
    throw new Clap4ClipError(`cannot read the lock file (${describe(err)})`, { file, cause: err });
  }
}

type Liveness = 'mine' | 'alive' | 'dead' | 'other host';

function liveness(r: LockRecord): Liveness {
  if (r.hostname !== HOST) return 'other host';
  if (r.pid === process.pid) return held.has(r.token) ? 'mine' : 'dead';
  try {
    process.kill(r.pid, 0);
    return 'alive';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive'; // EPERM: alive, another user's
  }
}

/**
 * Creates `file` holding `record` iff no such file exists (atomic, complete when it appears). The
 * token counts as this process's from before the link, so no one in this process ever sees the new
 * lock as a dead process's.
 */
async function createExclusive(file: string, record: LockRecord): Promise<boolean> {
  const tmp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  await writeFileDurable(tmp, JSON.stringify(record) + '\n');
  held.set(record.token, file);
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    held.delete(record.token);
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Clap4ClipError(`cannot create the lock file (${describe(err)})`, { file, cause: err });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function newRecord(command: string): LockRecord {
  return { pid: process.pid, hostname: HOST, startedAt: new Date().toISOString(), command, token: randomBytes(8).toString('hex') };
}

/**
 * Removes the lock (or claim) `file` of token `token` if it still is that one; returns when done
 * or when someone else is already at it (the caller looks again).
 */
async function removeStale(file: string, token: string, command: string): Promise<void> {
  const claim = `${path.join(path.dirname(file), LOCK_FILE)}.claim-${token}`;
  const record = newRecord(command);
  if (!(await createExclusive(claim, record))) {
    const other = await readRecord(claim);
    if (other !== null && other !== 'unreadable' && liveness(other) === 'dead') await removeStale(claim, other.token, command);
    else await sleep(20); // a live remover is at it: it takes milliseconds
    return;
  }
  try {
    const now = await readRecord(file);
    if (now !== null && now !== 'unreadable' && now.token === token) await unlink(file).catch(() => undefined);
  } finally {
    held.delete(record.token);
    await unlink(claim).catch(() => undefined);
  }
}

function busy(dir: string, file: string, r: LockRecord | null, state: Liveness | 'unreadable'): FolderBusyError {
  const who = r === null ? '' : `pid ${r.pid} on ${r.hostname === HOST ? 'this host' : `host ${r.hostname}`}, since ${r.startedAt}: ${JSON.stringify(r.command)}`;
  const problem = state === 'other host'
    ? `is locked by a clap4clip process on another host (${who}); this host cannot tell whether it still runs: if it does not, delete ${file} and try again`
    : state === 'unreadable'
      ? `is locked (${file} exists but is not a clap4clip lock); if no clap4clip process is writing here, delete it and try again`
      : state === 'mine'
        ? `is already in use by this process (${who}); one writer per folder`
        : `is in use by another clap4clip process (${who}); wait for it to finish or stop it (a lock whose process is gone is taken over automatically; if pid ${r!.pid} is now an unrelated process, delete ${file})`;
  return new FolderBusyError(dir, problem, r === null ? null : { pid: r.pid, hostname: r.hostname, startedAt: r.startedAt, command: r.command });
}

/** The lock on `dir` held by a live process other than this one's own locks, if any. */
async function liveLockIn(dir: string): Promise<{ file: string; record: LockRecord; state: Liveness } | null> {
  const file = path.join(dir, LOCK_FILE);
  const r = await readRecord(file).catch(() => null);
  if (r === null || r === 'unreadable') return null;
  const state = liveness(r);
  return state === 'alive' || state === 'other host' ? { file, record: r, state } : null;
}

function ancestorsOf(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; path.dirname(d) !== d; ) {
    d = path.dirname(d);
    out.push(d);
  }
  return out;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [token, file] of held) {
      try {
        if (parseRecord(readFileSync(file, 'utf8'))?.token === token) unlinkSync(file);
      } catch {
        // gone already, or unreadable: leave it (the next taker sees it is stale)
      }
    }
  });
}

/** Makes `dir` (and its parents); returns whether `dir` itself was created. Names a file in the way. */
async function ensureFolder(dir: string): Promise<boolean> {
  const st = await stat(dir).catch(() => null);
  if (st !== null && !st.isDirectory()) throw new Clap4ClipError('is a file, not a folder', { file: dir });
  if (st !== null) return false;
  let first: string | undefined;
  try {
    first = await mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') throw new Clap4ClipError('cannot be created: a part of the path is a file, not a folder', { file: dir, cause: err });
    throw new Clap4ClipError(`cannot create the folder (${describe(err)})`, { file: dir, cause: err });
  }
  // Each folder mkdir -p made is a new entry in its parent: fsync those, so the folder survives a crash.
  for (let d = dir; first !== undefined && path.dirname(d) !== d; d = path.dirname(d)) {
    await syncDirectory(path.dirname(d));
    if (d === path.resolve(first)) break;
  }
  return true;
}

/**
 * Takes the exclusive lock on `dir` (created when missing), or throws FolderBusyError naming the
 * folder and the process holding it (see the file comment for stale locks).
 */
export async function acquireDirLock(dirArg: string, opts: DirLockOptions = {}): Promise<DirLock> {
  const dir = path.resolve(dirArg);
  const file = path.join(dir, LOCK_FILE);
  const command = opts.command ?? commandLine();
  const created = await ensureFolder(dir);
  installExitHook();
  const giveUpFolder = async (): Promise<void> => {
    if (created) await rmdir(dir).catch(() => undefined); // only when empty: someone may have written since
  };
  let unreadableSince: number | null = null;
  for (let attempt = 0; ; attempt++) {
    const record = newRecord(command);
    if (await createExclusive(file, record)) {
      const lock = makeLock(dir, file, record.token, giveUpFolder);
      for (const other of [...ancestorsOf(dir), ...(opts.inside ?? []).map((d) => path.resolve(d))]) {
        const found = await liveLockIn(other);
        if (found !== null) {
          await lock.release();
          throw busy(other, found.file, found.record, found.state);
        }
      }
      return lock;
    }
    const r = await readRecord(file);
    if (r === null) continue; // released between our try and our look
    if (r === 'unreadable') {
      // A lock being written by hand, or a foreign file: give it a moment, then refuse.
      unreadableSince ??= Date.now();
      if (Date.now() - unreadableSince < 200) {
        await sleep(20);
        continue;
      }
      await giveUpFolder();
      throw busy(dir, file, null, 'unreadable');
    }
    const state = liveness(r);
    if (state !== 'dead' || attempt > 50) {
      await giveUpFolder();
      throw busy(dir, file, r, state);
    }
    await removeStale(file, r.token, command);
  }
}

function makeLock(dir: string, file: string, token: string, giveUpFolder: () => Promise<void>): DirLock {
  let released = false;
  return {
    dir,
    file,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      const now = await readRecord(file).catch(() => null);
      if (now !== null && now !== 'unreadable' && now.token === token) await unlink(file).catch(() => undefined);
      held.delete(token);
      await giveUpFolder();
    },
  };
}

/**
 * Whether this process holds a lock on `dir` or on a folder above it: then no other live process
 * writes there, and what an interrupted write left behind may be removed.
 */
export function holdsLockOver(dir: string): boolean {
  const resolved = path.resolve(dir);
  for (const file of held.values()) {
    if (path.basename(file) !== LOCK_FILE) continue;
    const locked = path.dirname(file);
    if (resolved === locked || resolved.startsWith(locked + path.sep)) return true;
  }
  return false;
}

/**
 * Throws FolderBusyError when another live process holds a lock on `dir` itself (for a writer that
 * holds a folder above `dir` and is about to clear something below it that another writer took).
 */
export async function refuseIfHeldByOther(dir: string): Promise<void> {
  const found = await liveLockIn(path.resolve(dir));
  if (found !== null) throw busy(path.resolve(dir), found.file, found.record, found.state);
}

/** Runs `work` holding the lock on `dir`, released afterwards whatever happens. */
export async function withDirLock<T>(dir: string, opts: DirLockOptions, work: () => Promise<T>): Promise<T> {
  const lock = await acquireDirLock(dir, opts);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

/** The folder's entries other than lock files (null when the folder does not exist). */
export async function entriesBesideLock(dir: string): Promise<string[] | null> {
  try {
    return (await readdir(dir)).filter((n) => !isLockEntry(n));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
