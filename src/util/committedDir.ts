/**
 * Committed directories: a set of files written so that a reader sees either the previous complete
 * set or the new complete one, never a mix or a part. Run checkpoints and saved classifiers use it.
 *
 *   ROOT/
 *     latest                     one line: the name of the committed version directory
 *     <prefix>-0003-1f2e3d4c/    one complete version (a sequence number + random suffix)
 *       <file>...                the caller's files
 *       COMPLETE                 format, the caller's extra fields, size and sha256 of every file
 *
 * Why a pointer file and not "rename the new directory over the old one": POSIX rename(2) refuses
 * to replace a non-empty directory, so swapping directories takes two renames with a moment in
 * between where neither is in place. Replacing one small file is atomic.
 *
 * Writing (a SIGKILL or power loss may land between any two steps):
 *   1. create a NEW version directory whose name nothing refers to (the random suffix: never the
 *      one `latest` names), fsync ROOT so its entry exists (and ROOT's own entry if it was created);
 *   2. write every file, fsyncing each;
 *   3. write COMPLETE, fsync it, then fsync the version directory (the files' entries);
 *   4. replace `latest` atomically (temp file, fsync, rename, fsync ROOT): THE COMMIT POINT;
 *   5. only now remove older versions and leftovers of interrupted writes: the ones this process
 *      wrote; others' only while this process holds the folder's lock (`dirLock.ts`), which makes
 *      every other writer of the folder a dead one. Without the lock a second process might be
 *      in the middle of writing the version directory that looks like a leftover.
 * Before step 4 `latest` still names the previous version (or does not exist); after it, the new
 * one, whose every byte is already on disk. A crash before the commit leaves a version directory
 * nothing names (and perhaps a `.latest.*.tmp`): harmless, reported by the reader as `leftovers`
 * and removed by the next write that holds the lock. The reader does not delete them itself: it cannot tell a crashed
 * write from one in progress in another process.
 *
 * Reading trusts nothing: it follows `latest` only, requires COMPLETE, reads every file (a missing
 * one is an error naming it) and `verify()` checks each against its recorded size and checksum.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { syncDirectory, writeFileAtomic, writeFileDurable } from './atomicWrite.js';
import { holdsLockOver, isLockEntry } from './dirLock.js';
import { Clap4ClipError, DataError } from './errors.js';

export const LATEST_FILE = 'latest';
export const COMPLETE_FILE = 'COMPLETE';
/** `latest` holds one directory name; anything longer is not ours. */
const POINTER_LIMIT = 4096;
/** COMPLETE lists a few files; anything longer is not ours. */
const MARKER_LIMIT = 65536;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What distinguishes one kind of committed directory from another. */
export interface CommittedDirLayout {
  /** Version directories are `${prefix}-NNNN-xxxxxxxx`: "task", "classifier". */
  prefix: string;
  /** COMPLETE's `format` is `${format}-complete`. */
  format: string;
  /** What one version is called in messages: "checkpoint", "save". */
  noun: string;
  /** Said when a required `latest` is missing, to tell the user what was expected there. */
  pointerHint?: string;
}

/** The steps of a write, in order; `afterStage` runs after each (tests throw there to simulate a crash). */
export type CommitStage = 'directory' | 'file' | 'complete' | 'latest' | 'cleanup';

export interface WriteCommittedOptions {
  /** The NNNN of the directory name (tasks completed): orders versions for a person looking. */
  sequence: number;
  /** Extra fields recorded in COMPLETE (e.g. the task a checkpoint is of); not `format` or `files`. */
  marker?: Readonly<Record<string, unknown>>;
  /** Called after each stage (`file` names the file after a 'file' stage). */
  afterStage?: (stage: CommitStage, dir: string, file?: string) => void | Promise<void>;
}

export interface ReadCommittedOptions {
  /** The files a version must hold (each must also be listed in COMPLETE). */
  files: readonly string[];
  /** Largest plausible size of some files, in bytes: a foreign file is refused before it is read. */
  limits?: Readonly<Record<string, number>>;
}

/** One committed version as read; the bytes are not yet checked against COMPLETE (see `verify`). */
export interface CommittedDir {
  /** The version directory. */
  dir: string;
  /** The full path of each file. */
  paths: Record<string, string>;
  bytes: Record<string, Buffer>;
  /** The path of COMPLETE and its fields other than `format` and `files`. */
  markerFile: string;
  marker: Record<string, unknown>;
  /** Names in ROOT left by interrupted writes (uncommitted versions, temp files); the next write removes them. */
  leftovers: string[];
  /**
   * Checks every file against its size and sha256 in COMPLETE; a DataError naming the first that
   * differs. Separate so a caller can first run its own checks, whose messages are more specific.
   */
  verify(): void;
}

/** Version directories this process created (full paths): its own to remove without a lock. */
const writtenHere = new Set<string>();

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const versionPattern = (layout: CommittedDirLayout): RegExp => new RegExp(`^${layout.prefix}-\\d{4,}-[0-9a-f]{8}$`);

// ---------------------------------------------------------------------------------------------
// Writing

/** Creates `root` if needed, fsyncing the parent of every directory this created. */
async function ensureRoot(root: string): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(root, { recursive: true });
  } catch (err) {
    throw new Clap4ClipError(`cannot create the directory (${describe(err)})`, { file: root, cause: err });
  }
  if (created === undefined) return;
  // mkdir -p made `created` and everything below it down to `root`: each is a new entry in its parent.
  for (let d = path.resolve(root); d !== path.dirname(d); d = path.dirname(d)) {
    await syncDirectory(path.dirname(d));
    if (d === path.resolve(created)) break;
  }
}

function checkFileName(name: string, root: string): void {
  if (name === '' || name === COMPLETE_FILE || name.startsWith('.') || name !== path.basename(name)) {
    throw new Clap4ClipError(`"${name}" cannot be a file of a committed directory`, { file: root });
  }
}

/**
 * Writes `files` (name -> content, written in this order) as the new committed version under
 * `root` (steps: see the file comment) and returns the version directory.
 */
export async function writeCommittedDir(
  root: string, layout: CommittedDirLayout, files: Readonly<Record<string, Uint8Array | string>>, opts: WriteCommittedOptions,
): Promise<string> {
  const entries = Object.entries(files).map(([name, data]): [string, Uint8Array] => [name, typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
  for (const [name] of entries) checkFileName(name, root);
  const extra = opts.marker ?? {};
  if ('format' in extra || 'files' in extra) throw new Clap4ClipError('the marker fields "format" and "files" are reserved', { file: root });

  const name = `${layout.prefix}-${String(opts.sequence).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
  const dir = path.join(root, name);
  const stage = async (s: CommitStage, file?: string): Promise<void> => opts.afterStage?.(s, dir, file);
  await ensureRoot(root);
  try {
    await mkdir(dir); // not recursive: the random name must be new
  } catch (err) {
    throw new Clap4ClipError(`cannot create the ${layout.noun} directory (${describe(err)})`, { file: dir, cause: err });
  }
  writtenHere.add(path.resolve(dir));
  await syncDirectory(root);
  await stage('directory');

  const write = async (file: string, data: Uint8Array): Promise<void> => {
    try {
      await writeFileDurable(file, data);
    } catch (err) {
      throw new Clap4ClipError(`cannot write (${describe(err)})`, { file, cause: err });
    }
  };
  for (const [file, data] of entries) {
    await write(path.join(dir, file), data);
    await stage('file', file);
  }
  const marker = {
    format: `${layout.format}-complete`,
    ...extra,
    files: Object.fromEntries(entries.map(([file, data]) => [file, { bytes: data.length, sha256: sha256(data) }])),
  };
  await write(path.join(dir, COMPLETE_FILE), Buffer.from(JSON.stringify(marker, null, 2) + '\n'));
  await syncDirectory(dir);
  await stage('complete');

  await writeFileAtomic(path.join(root, LATEST_FILE), `${name}\n`); // the commit point
  await stage('latest');
  await removeLeftovers(root, layout, name);
  await stage('cleanup');
  return dir;
}

/** The names in `root` that are not part of the version `keep`: other versions and temp files. */
async function leftoversIn(root: string, layout: CommittedDirLayout, keep: string | null): Promise<string[]> {
  const pattern = versionPattern(layout);
  const names = await readdir(root).catch(() => [] as string[]);
  return names.filter((n) => (pattern.test(n) && n !== keep) || (n.startsWith('.') && n.endsWith('.tmp') && !isLockEntry(n))).sort();
}

/**
 * Removes every version but `keep` and the temp files of interrupted writes that this process
 * wrote; with the folder's lock held (by this process, on `root` or above), every one of them.
 */
export async function removeLeftovers(root: string, layout: CommittedDirLayout, keep: string | null): Promise<void> {
  const exclusive = holdsLockOver(root);
  // Temp files are `.name.<pid>-<hex>.tmp` (atomicWrite.ts).
  const ownTemp = (n: string): boolean => n.startsWith('.') && n.includes(`.${process.pid}-`);
  for (const entry of await leftoversIn(root, layout, keep)) {
    const full = path.resolve(root, entry);
    if (!exclusive && !writtenHere.has(full) && !ownTemp(entry)) continue;
    try {
      await rm(full, { recursive: true, force: true });
      writtenHere.delete(full);
    } catch (err) {
      throw new Clap4ClipError(`cannot remove a leftover of an earlier write (${describe(err)})`, { file: full, cause: err });
    }
  }
  // A lost removal only brings a leftover back, which the next write removes: no fsync needed.
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The bytes of `file`; null when it does not exist. Refuses files over `limit` bytes unread. */
async function readLimited(file: string, limit: number, tooLarge: (size: number) => string): Promise<Buffer | null> {
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw new DataError(file, 'is a directory, not a file');
    const size = st.size;
    if (size > limit) throw new DataError(file, tooLarge(size));
    return await readFile(file);
  } catch (err) {
    if (err instanceof DataError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DataError(file, `cannot read (${describe(err)})`, { cause: err });
  }
}

function parseMarker(bytes: Buffer, file: string, layout: CommittedDirLayout, names: readonly string[]): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DataError(file, `the COMPLETE marker is not valid JSON (${describe(err)}); truncated or corrupt?`, { cause: err });
  }
  const m = raw as Record<string, unknown> | null;
  const expected = `${layout.format}-complete`;
  if (m === null || typeof m !== 'object' || Array.isArray(m) || m['format'] !== expected) {
    throw new DataError(file, `is not the COMPLETE marker of a ${layout.noun} ("format" must be "${expected}")`);
  }
  const listed = m['files'] as Record<string, { bytes?: unknown; sha256?: unknown }> | undefined;
  for (const name of names) {
    const e = listed?.[name];
    if (!(e !== null && typeof e === 'object' && Number.isSafeInteger(e.bytes) && typeof e.sha256 === 'string' && SHA256_HEX.test(e.sha256))) {
      throw new DataError(file, `does not record the size and sha256 of ${name}; not the COMPLETE marker of a ${layout.noun}, or corrupt`);
    }
  }
  return m;
}

/**
 * The committed version under `root`. With `optional`, null when nothing was committed yet (no
 * `latest`: a first run, or a crash before the first commit); without, that is an error. Every
 * problem is a DataError naming the file.
 */
export async function readCommittedDir(root: string, layout: CommittedDirLayout, opts: ReadCommittedOptions & { optional: true }): Promise<CommittedDir | null>;
export async function readCommittedDir(root: string, layout: CommittedDirLayout, opts: ReadCommittedOptions & { optional?: false }): Promise<CommittedDir>;
export async function readCommittedDir(root: string, layout: CommittedDirLayout, opts: ReadCommittedOptions & { optional?: boolean }): Promise<CommittedDir | null> {
  const { noun } = layout;
  const latest = path.join(root, LATEST_FILE);
  const pointerBytes = await readLimited(latest, POINTER_LIMIT, (size) => `is ${size} bytes, more than any ${noun} pointer (limit ${POINTER_LIMIT}); not a ${noun} pointer or corrupt`);
  if (pointerBytes === null) {
    if (opts.optional === true) return null;
    throw new DataError(latest, `${noun} pointer${layout.pointerHint === undefined ? '' : ` ${layout.pointerHint}`} is missing`);
  }
  const pointer = pointerBytes.toString('utf8').trim();
  if (!versionPattern(layout).test(pointer)) throw new DataError(latest, `does not name a ${noun} directory (got ${JSON.stringify(pointer.slice(0, 60))})`);
  const dir = path.join(root, pointer);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
    throw new DataError(latest, `names the ${noun} directory "${pointer}", which does not exist (deleted after it was written?)`);
  }

  const markerFile = path.join(dir, COMPLETE_FILE);
  const markerBytes = await readLimited(markerFile, MARKER_LIMIT, (size) => `is ${size} bytes, more than any COMPLETE marker (limit ${MARKER_LIMIT}); corrupt`);
  if (markerBytes === null) throw new DataError(markerFile, `COMPLETE marker (the ${noun} is incomplete) is missing`);
  const marker = parseMarker(markerBytes, markerFile, layout, opts.files);
  const recorded = marker['files'] as Record<string, { bytes: number; sha256: string }>;

  const paths: Record<string, string> = {};
  const bytes: Record<string, Buffer> = {};
  for (const name of opts.files) {
    const file = path.join(dir, name);
    const limit = opts.limits?.[name] ?? Number.MAX_SAFE_INTEGER;
    const b = await readLimited(file, limit, (size) => `is ${size} bytes, more than any ${name} of a ${noun} (limit ${limit}); not one or corrupt`);
    if (b === null) throw new DataError(file, `is missing from the ${noun} (${COMPLETE_FILE} lists it); deleted after it was written?`);
    paths[name] = file;
    bytes[name] = b;
  }
  const { format: _format, files: _files, ...extra } = marker;
  return {
    dir, paths, bytes, markerFile, marker: extra,
    leftovers: await leftoversIn(root, layout, pointer),
    verify: () => {
      for (const name of opts.files) {
        const b = bytes[name]!;
        const want = recorded[name]!;
        if (b.length !== want.bytes || sha256(b) !== want.sha256) {
          throw new DataError(paths[name]!, `content does not match the checksum in ${COMPLETE_FILE} (${b.length} bytes, recorded ${want.bytes}); modified or corrupted after it was written`);
        }
      }
    },
  };
}
