/**
 * Errors about settings, said in the terms the user gave them in: the flag typed (`--increment`),
 * the flag that implied a value (`--few-shot`), or the file it came from (the --config file, a
 * class-order file), instead of the config key the core names.
 */
import { flagOf, RUN_CONFIG_FIELDS } from '../run/config.js';
import { Clap4ClipError, ConfigError } from '../util/errors.js';
import { UsageError } from './args.js';

export interface SettingSources {
  /** The command (`run`, `params`). */
  command: string;
  /** Keys given as flags, with the value as typed. */
  flags: Readonly<Record<string, unknown>>;
  /** The --config file and the keys it set. */
  configFile: string | null;
  fileKeys: ReadonlySet<string>;
  /** Keys whose value a flag implied: key -> that flag and what it set (e.g. `--few-shot (a first task of 60 classes)`). */
  implied?: Readonly<Record<string, string>>;
}

/** The problem without the core's `config: "key" ` / `scenario: ` prefix. */
function bareProblem(err: ConfigError): string {
  return err.problem.replace(/^config: "[^"]*" /, '').replace(/^config: /, '').replace(/^scenario: /, '');
}

/** "differing keys: memorySize (1000 -> 5)" of a run directory's check, with the keys as flags. */
export function keysAsFlags(problem: string): string {
  const at = problem.indexOf('differing keys: ');
  if (at < 0) return problem;
  const keys = new Set<string>(RUN_CONFIG_FIELDS.map((f) => f.key));
  const list = problem.slice(at).replace(/(: |, )([A-Za-z]+)(?= \(|,|$)/g, (m, sep: string, key: string) => (keys.has(key) ? `${sep}${flagOf(key)}` : m));
  return problem.slice(0, at) + list;
}

/** `err` in the user's terms when it is a ConfigError about a setting they gave; else `err` itself. */
export function inUserTerms(err: unknown, src: SettingSources): unknown {
  if (err instanceof Clap4ClipError && !(err instanceof ConfigError) && err.problem.includes('differing keys: ')) {
    return new Clap4ClipError(keysAsFlags(err.problem), { file: err.file, cause: err });
  }
  if (!(err instanceof ConfigError) || err.file !== undefined) return err;
  const { key } = err;
  const problem = bareProblem(err);
  const isRangeOrType = /^config: "/.test(err.problem);
  const unknownKey = /^config: unknown key/.test(err.problem);
  if (key in src.flags) {
    const value = src.flags[key];
    // A class order read from a file: the problem is the file's.
    if (key === 'classOrder' && typeof value === 'string' && !/^(reference|identity|[\d,\s]+)$/.test(value)) {
      return new Clap4ClipError(`class-order file: ${problem}`, { file: value, cause: err });
    }
    const flag = flagOf(key);
    const message = isRangeOrType ? `${flag} ${problem}` : `${flag} ${typeof value === 'string' ? value : JSON.stringify(value)}: ${problem}`;
    return new UsageError(`${src.command}: ${message}`, { cause: err });
  }
  const implied = src.implied?.[key];
  if (implied !== undefined) return new UsageError(`${src.command}: ${implied}: ${problem}`, { cause: err });
  if (src.configFile !== null && src.fileKeys.has(key)) {
    return new Clap4ClipError(unknownKey ? err.problem.replace(/^config: /, '') : `"${key}" ${problem}`, { file: src.configFile, cause: err });
  }
  if (!unknownKey && !isRangeOrType) {
    // A default the data does not fit (e.g. 10 classes per task on 15 classes): name its flag.
    return new Clap4ClipError(`${src.command}: ${problem} (set ${flagOf(key)})`, { cause: err });
  }
  return err;
}

/** `err` with the library's way of saying an option (`pass { overwrite: true }`) replaced by the flag. */
export function inFlagTerms(err: unknown, librarySyntax: string, flag: string): unknown {
  if (!(err instanceof Clap4ClipError) || !err.problem.includes(librarySyntax)) return err;
  const problem = err.problem.replace(`pass ${librarySyntax}`, `give ${flag}`).replace(librarySyntax, flag);
  return new Clap4ClipError(problem, { file: err.file, cause: err });
}
