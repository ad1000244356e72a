/**
 * Atomic file writes: readers see either the old file or the complete new one,
 * never a half-written file, and a failed write leaves the old file untouched.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Clap4ClipError } from './errors.js';

/** Temp name in the same directory (rename is only atomic within one filesystem). */
function tempPathFor(target: string): string {
  const suffix = `${process.pid}-${randomBytes(6).toString('hex')}`;
  // Leading dot hides it; `.tmp` ending is covered by .gitignore.
  return path.join(path.dirname(target), `.${path.basename(target)}.${suffix}.tmp`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Write `data` to a NEW file `file` and fsync it before closing: once this returns, the bytes are
 * on disk (the file's directory entry is not: sync the directory with `syncDirectory`). Fails
 * rather than clobbering when `file` exists. On failure the partial file is removed.
 */
export async function writeFileDurable(file: string, data: Uint8Array | string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'wx', 0o666);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (err) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    // Only remove what this call created: an EEXIST means the file is someone else's.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await rm(file, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Write `data` to `target` atomically: write a uniquely named temp file next to it,
 * fsync it, rename it over `target`, then fsync the directory. On failure the temp
 * file is removed and a Clap4ClipError naming `target` is thrown (fs error as `cause`).
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    // 'wx' inside: fails rather than clobbering if the temp name somehow exists.
    await writeFileDurable(tmp, data);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new Clap4ClipError(`atomic write failed: ${describe(err)}`, { file: target, cause: err });
  }
  await syncDirectory(path.dirname(target));
}

/** Errors of a directory fsync that mean the entries may really not be on disk. */
const FATAL_SYNC_CODES = new Set(['EIO', 'ENOSPC', 'EDQUOT']);

/**
 * fsync the directory `dir` so entries created, renamed or removed in it (files, subdirectories)
 * survive a crash or power loss; POSIX makes that a separate step from syncing the files. The one
 * directory fsync of the code base: every crash-safe writer calls this. Platforms that cannot
 * fsync a directory (Windows: EPERM/EISDIR; some filesystems: EINVAL) are skipped, since the
 * data itself is synced; an I/O error is thrown (Clap4ClipError naming `dir`).
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (FATAL_SYNC_CODES.has(code)) {
      throw new Clap4ClipError(`cannot fsync the directory (${describe(err)})`, { file: dir, cause: err });
    }
  } finally {
    if (handle !== undefined) await handle.close().catch(() => undefined);
  }
}

/**
 * Write `value` as pretty JSON (2-space indent, trailing newline) atomically.
 * Refuses values JSON would silently change (NaN/Infinity become null, undefined vanishes).
 */
export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  let text: string | undefined;
  try {
    text = JSON.stringify(
      value,
      function (this: unknown, key: string, v: unknown): unknown {
        if (typeof v === 'number' && !Number.isFinite(v)) {
          throw new Error(`value ${String(v)} at key "${key}" cannot be stored in JSON`);
        }
        return v;
      },
      2,
    );
  } catch (err) {
    throw new Clap4ClipError(`cannot serialise JSON: ${describe(err)}`, { file: target, cause: err });
  }
  if (text === undefined) {
    throw new Clap4ClipError(`cannot serialise JSON: value is ${typeof value}`, { file: target });
  }
  await writeFileAtomic(target, text + '\n');
}
