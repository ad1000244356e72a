/**
 * The one command-line layer of every `clap4clip` command: a command declares its options in a
 * typed table (`CommandSpec`), and this module parses its arguments with Node's `util.parseArgs`
 * and renders its `--help` from the same table, so the two cannot disagree.
 *
 * Exit codes (the one convention of every command, printed by `clap4clip --help`):
 *   0 success; 1 the command failed (bad input data or config file, a file problem, a bug);
 *   2 the command line is wrong (unknown command or option, missing or invalid value, unexpected
 *   argument); 130 / 143 stopped by SIGINT / SIGTERM (a run then prints how to resume).
 */
import { parseArgs } from 'node:util';
import { didYouMean } from '../run/config.js';
import { Clap4ClipError } from '../util/errors.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export const EXIT_CODES_HELP: readonly (readonly [string, string])[] = [
  ['0', 'success'],
  ['1', 'the command failed: bad input data or config file, a file problem, an internal error'],
  ['2', 'the command line is wrong: unknown command or option, missing or invalid value'],
  ['130, 143', 'stopped by SIGINT (Ctrl-C) / SIGTERM; `run --resume DIR` continues a run'],
];

/** The command line cannot be understood, or a value given on it is invalid: exit code 2. */
export class UsageError extends Clap4ClipError {}

export interface OptionSpec {
  /** Long name without the dashes (`memory-size`). */
  name: string;
  short?: string;
  type: 'boolean' | 'string';
  /** What the value looks like (`N`, `DIR`); string options only. */
  arg?: string;
  help: string;
  /** Shown as "(default ...)"; omitted when undefined. */
  defaultText?: string;
  /** Boolean options also accept `--name=true|false` and `--no-name`. */
  negatable?: boolean;
}

export interface CommandSpec {
  /** As typed after `clap4clip` (`run`, `features merge`). */
  name: string;
  summary: string;
  /** Lines after "Usage:", each without the leading `clap4clip `. */
  usage: readonly string[];
  /** Paragraphs printed after the usage. */
  description?: readonly string[];
  options: readonly OptionSpec[];
  /** Positional arguments allowed (their names for --help). */
  positionals?: readonly (readonly [string, string])[];
  /** Extra sections (title, rows of name and text), e.g. the methods of `run`. */
  sections?: readonly { title: string; rows: readonly (readonly [string, string])[] }[];
  /** Complete command lines, each runnable as written (tested). */
  examples?: readonly string[];
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', help: 'print this help and exit' };
export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', help: 'print the result as one JSON document on stdout (nothing else on stdout)' };
export const QUIET_OPTION: OptionSpec = { name: 'quiet', short: 'q', type: 'boolean', help: 'print nothing but errors' };

export interface ParsedCommandLine {
  /** Given options by long name: string values, or true/false for booleans. */
  values: Record<string, string | boolean>;
  positionals: string[];
  help: boolean;
}

const allOptions = (spec: CommandSpec): OptionSpec[] => [...spec.options, HELP_OPTION];

/** `--name` of every option, for suggestions. */
function flagNames(spec: CommandSpec): string[] {
  return allOptions(spec).flatMap((o) => [`--${o.name}`, ...(o.negatable ? [`--no-${o.name}`] : [])]);
}

function unknownOption(spec: CommandSpec, flag: string): UsageError {
  const names = flagNames(spec);
  // A near miss, or an option the flag begins with or abbreviates (--output for --out, --meth for --method).
  const hint = flag.startsWith('--') && flag.length > 3 ? didYouMean(flag, names) ?? names.find((n) => flag.startsWith(n) || n.startsWith(flag)) ?? null : null;
  return new UsageError(`${spec.name}: unknown option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}; see clap4clip ${spec.name} --help`);
}

/**
 * Parses `args` against `spec`. Throws UsageError naming the option (with a suggestion for a
 * misspelt one). `--help` anywhere wins over every other problem but an unknown option.
 */
export function parseCommandLine(spec: CommandSpec, args: readonly string[]): ParsedCommandLine {
  const options = allOptions(spec);
  const byName = new Map(options.map((o) => [o.name, o]));
  const explicit: Record<string, boolean> = {};
  const rest: string[] = [];
  // Booleans written `--x=false` or `--no-x` are read here: parseArgs of Node 20 knows neither.
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      rest.push(...args.slice(i));
      break;
    }
    const m = /^--(no-)?([^=]+)(?:=(.*))?$/s.exec(arg);
    const o = m ? byName.get(m[2]!) : undefined;
    if (m && o?.type === 'boolean' && o.negatable && (m[1] !== undefined || m[3] !== undefined)) {
      if (m[1] !== undefined && m[3] !== undefined) throw new UsageError(`${spec.name}: --no-${o.name} takes no value`);
      const v = m[1] !== undefined ? 'false' : m[3]!;
      if (v !== 'true' && v !== 'false') throw new UsageError(`${spec.name}: --${o.name} is true or false, got ${JSON.stringify(v)}`);
      explicit[o.name] = v === 'true';
    } else if (m && m[1] !== undefined && byName.get(m[2]!)?.negatable !== true && !byName.has(`no-${m[2]}`)) {
      throw unknownOption(spec, arg.split('=')[0]!);
    } else rest.push(arg);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(options.map((o) => [o.name, o.short ? { type: o.type, short: o.short } : { type: o.type }])),
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw translateParseError(spec, err, args);
  }
  const values = { ...(parsed.values as Record<string, string | boolean>), ...explicit };
  const help = values['help'] === true;
  delete values['help'];
  if (!help && parsed.positionals.length > 0 && !spec.positionals?.length) {
    const p = parsed.positionals[0]!;
    throw new UsageError(`${spec.name}: unexpected argument ${JSON.stringify(p)} (options start with --); see clap4clip ${spec.name} --help`);
  }
  return { values, positionals: parsed.positionals, help };
}

/** parseArgs's errors, in the command's terms (`--help` still works after a bad value). */
function translateParseError(spec: CommandSpec, err: unknown, args: readonly string[]): Error {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message;
  const flag = /(--[\w-]+)/.exec(message)?.[1] ?? /'(-[^' ,]*)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return unknownOption(spec, flag.split('=')[0]!);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (asksForHelp(args)) return new HelpRequested();
    if (/does not take an argument/.test(message)) return new UsageError(`${spec.name}: ${flag} takes no value`);
    if (/ambiguous/.test(message)) return new UsageError(`${spec.name}: ${flag} needs a value (write ${flag}=VALUE for a value that starts with -)`);
    return new UsageError(`${spec.name}: ${flag} needs a value; see clap4clip ${spec.name} --help`);
  }
  return new UsageError(`${spec.name}: ${message}`);
}

/** Whether a command's arguments ask for its help (`--help` or `-h` anywhere among them). */
export function asksForHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

/** Thrown by the parser when `--help` is given next to an option it cannot read. */
export class HelpRequested extends Error {}

/** `parseCommandLine`, with a bad value next to `--help` reported as a help request. */
export function parseOrHelp(spec: CommandSpec, args: readonly string[]): ParsedCommandLine {
  try {
    return parseCommandLine(spec, args);
  } catch (err) {
    if (err instanceof HelpRequested) return { values: {}, positionals: [], help: true };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Values

/** The string value of `--name`, or undefined. */
export function stringValue(p: ParsedCommandLine, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** `--name` as an integer >= min (UsageError naming the flag otherwise). */
export function intValue(spec: CommandSpec, p: ParsedCommandLine, name: string, min: number): number | undefined {
  const v = stringValue(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v)) || Number(v) < min) {
    throw new UsageError(`${spec.name}: --${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** `--name`, which must be given. */
export function requiredValue(spec: CommandSpec, p: ParsedCommandLine, name: string): string {
  const v = stringValue(p, name);
  if (v === undefined) throw new UsageError(`${spec.name}: --${name} is required; see clap4clip ${spec.name} --help`);
  return v;
}

/** `--name`, one of `choices`. */
export function choiceValue<T extends string>(spec: CommandSpec, p: ParsedCommandLine, name: string, choices: readonly T[]): T | undefined {
  const v = stringValue(p, name);
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) {
    const hint = didYouMean(v, choices);
    throw new UsageError(`${spec.name}: --${name} must be one of [${choices.join(', ')}], got ${JSON.stringify(v)}${hint ? ` (did you mean ${hint}?)` : ''}`);
  }
  return v as T;
}

// ---------------------------------------------------------------------------------------------
// Help

/** `text` broken into lines of at most `width` characters (words longer than that stay whole). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines.length > 0 ? lines : [''];
}

/** Rows of a name column and a wrapped text column, within `columns`. */
export function twoColumns(rows: readonly (readonly [string, string])[], columns: number, indent = 2): string[] {
  const nameWidth = Math.min(24, Math.max(0, ...rows.map(([n]) => n.length)));
  const textWidth = Math.max(20, columns - indent - nameWidth - 2);
  const out: string[] = [];
  for (const [name, text] of rows) {
    const wrapped = wrapText(text, textWidth);
    const pad = ' '.repeat(indent + nameWidth + 2);
    if (name.length > nameWidth) out.push(' '.repeat(indent) + name, ...wrapped.map((l) => pad + l));
    else out.push(' '.repeat(indent) + name.padEnd(nameWidth) + '  ' + wrapped[0], ...wrapped.slice(1).map((l) => pad + l));
  }
  return out;
}

/**
 * A command line as shell lines of at most `columns` characters: broken between words with ` \\`,
 * continuation lines indented (a quoted word is never broken).
 */
export function exampleLines(command: string, columns: number): string[] {
  const words = command.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  const lines: string[] = [];
  let line = '  ';
  for (const w of words) {
    const candidate = line.trim() === '' ? `${line}${w}` : `${line} ${w}`;
    if (candidate.length + 2 > columns && line.trim() !== '') {
      lines.push(`${line} \\`);
      line = `      ${w}`;
    } else line = candidate;
  }
  lines.push(line);
  return lines;
}

function optionLabel(o: OptionSpec): string {
  const long = `--${o.name}${o.type === 'string' ? ` ${o.arg || 'VALUE'}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

/** The `--help` text of `spec`, every line at most `columns` characters (but unbreakable words). */
export function renderHelp(spec: CommandSpec, columns = 80): string {
  const out: string[] = [];
  spec.usage.forEach((u, i) => out.push(`${i === 0 ? 'Usage: ' : '   or: '}clap4clip ${u}`));
  out.push('', ...wrapText(spec.summary, columns));
  for (const p of spec.description ?? []) out.push('', ...wrapText(p, columns));
  if (spec.positionals?.length) out.push('', 'Arguments:', ...twoColumns(spec.positionals, columns));
  const rows = allOptions(spec).map((o) => [optionLabel(o), o.defaultText === undefined ? o.help : `${o.help} (default: ${o.defaultText})`] as const);
  out.push('', 'Options:', ...twoColumns(rows, columns));
  for (const s of spec.sections ?? []) out.push('', `${s.title}:`, ...twoColumns(s.rows, columns));
  if (spec.examples?.length) out.push('', 'Examples:', ...spec.examples.flatMap((e) => exampleLines(`clap4clip ${e}`, columns)));
  return out.join('\n');
}

/** Width of help and tables: the terminal's (at most 100), else 80. */
export function outputColumns(stream: { columns?: number; isTTY?: boolean } = process.stdout): number {
  return stream.isTTY && stream.columns ? Math.min(100, Math.max(40, stream.columns)) : 80;
}
