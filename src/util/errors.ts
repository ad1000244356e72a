/**
 * Error types of clap4clip. Every error caused by a file carries the file's path
 * both as a field (for programs) and at the start of the message (for people).
 */

export interface Clap4ClipErrorOptions {
  /** Path (or label) of the file the error is about; prefixed to the message. */
  file?: string;
  /** Underlying error, kept for debugging (e.g. the fs error with its `code`). */
  cause?: unknown;
}

/** Base class of all errors thrown on purpose by clap4clip. */
export class Clap4ClipError extends Error {
  /** The file the error is about, when there is one. */
  readonly file: string | undefined;
  /** The message without the `<file>: ` prefix. */
  readonly problem: string;

  constructor(problem: string, options: Clap4ClipErrorOptions = {}) {
    const { file, cause } = options;
    super(file === undefined ? problem : `${file}: ${problem}`, cause === undefined ? undefined : { cause });
    // `new.target.name` makes subclasses report their own name without repeating this line.
    this.name = new.target.name;
    this.file = file;
    this.problem = problem;
  }
}

/** Who holds a folder's lock (`util/dirLock.ts`), as recorded in its lock file. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** What holds it: the command line, or the library call ("save", "features"). */
  command: string;
}

/**
 * A folder another writer holds (`util/dirLock.ts`): a second `run` on the same --out, a `save()`
 * into a folder being saved into, a second `features` into one output folder. Its own class so a
 * front end can tell "try again later" from bad input. `holder` is null when the lock file could
 * not be read.
 */
export class FolderBusyError extends Clap4ClipError {
  declare readonly file: string;
  readonly holder: LockHolder | null;

  constructor(folder: string, problem: string, holder: LockHolder | null) {
    super(problem, { file: folder });
    this.holder = holder;
  }
}

/** Bad input data: truncated file, wrong dtype/shape, NaN, unknown class, bad manifest... */
export class DataError extends Clap4ClipError {
  declare readonly file: string;

  constructor(file: string, problem: string, options: { cause?: unknown } = {}) {
    super(problem, { file, cause: options.cause });
  }
}

/**
 * A bad setting, naming its config key (`increment`, `classOrder`, ...) so a front end can say it
 * in its user's terms: the flag given (`--increment`), or the config file that set it.
 */
export class ConfigError extends Clap4ClipError {
  /** The config key. */
  readonly key: string;

  constructor(key: string, problem: string, options: Clap4ClipErrorOptions = {}) {
    super(problem, options);
    this.key = key;
  }
}

/**
 * A value as an error message shows it: numbers as numbers (NaN stays NaN, where JSON would say
 * null), strings quoted, other values as JSON.
 */
export function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x)) ?? String(v);
  } catch {
    return String(v);
  }
}
