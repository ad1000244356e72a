/**
 * Reading a file the user named (a config, a class order, a list, a checkpoint, an image...): every
 * reader of the code base turns a failure into one of these messages, naming the file and saying
 * what was expected there, never a bare `EISDIR: illegal operation on a directory, read`.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { DataError } from './errors.js';

/** The problem with reading `what` (e.g. "class-order file"), from the fs error `err`. */
export function readProblem(what: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'EISDIR':
      return `${what} is a directory, not a file`;
    case 'ENOENT':
      return `${what} not found`;
    case 'ENOTDIR':
      return `${what} not found (a part of its path is a file, not a folder)`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read the ${what}: permission denied`;
    default:
      return `cannot read the ${what} (${err instanceof Error ? err.message : String(err)})`;
  }
}

/** The DataError naming `file` for a failure to read it as `what`. */
export function readFailure(file: string, what: string, err: unknown): DataError {
  return new DataError(file, readProblem(what, err), { cause: err });
}

/** A DataError unless `st` is a regular file (a directory named as a file is refused before reading). */
function checkStats(file: string, what: string, st: Stats): void {
  if (st.isDirectory()) throw new DataError(file, `${what} is a directory, not a file`);
}

/** The size of `file`, checked to be a file (not a directory): for readers that refuse large files unread. */
export async function inputFileSize(file: string, what: string): Promise<number> {
  let st: Stats;
  try {
    st = await stat(file);
  } catch (err) {
    throw readFailure(file, what, err);
  }
  checkStats(file, what, st);
  return st.size;
}

/** `inputFileSize`, synchronously. */
export function inputFileSizeSync(file: string, what: string): number {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    throw readFailure(file, what, err);
  }
  checkStats(file, what, st);
  return st.size;
}

/** The bytes of `file` (the `what` the user gave); failures are DataErrors naming it. */
export async function readInputFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw readFailure(file, what, err);
  }
}

/** The text of `file` (UTF-8); failures are DataErrors naming it. */
export async function readInputText(file: string, what: string): Promise<string> {
  return (await readInputFile(file, what)).toString('utf8');
}

/** `readInputFile`, synchronously. */
export function readInputFileSync(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw readFailure(file, what, err);
  }
}
