#!/usr/bin/env node
/**
 * The `clap4clip` command line. One table of commands drives dispatch, `help <command>` and the
 * top-level help; each command lives in `commands/`, parses its own arguments through the shared
 * layer (`args.ts`) and returns its exit code. Exit codes: see `EXIT_CODES_HELP`.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { intraOpThreads } from '../engine/onnx/runtime.js';
import { didYouMean } from '../run/config.js';
import { packageVersion } from '../run/provenance.js';
import { Clap4ClipError } from '../util/errors.js';
import { asksForHelp, EXIT, EXIT_CODES_HELP, outputColumns, twoColumns, UsageError, wrapText } from './args.js';
import { commands } from './commands/index.js';

export function usage(columns = 80): string {
  const rows = Object.entries(commands).map(([name, c]) => [name, c.summary] as const);
  return [
    'Usage: clap4clip <command> [options]',
    '   or: clap4clip help <command>',
    '',
    ...wrapText('Continual learning with probabilistic finetuning for CLIP (CLAP4CLIP) and the methods it is compared with.', columns),
    '',
    'Commands:',
    ...twoColumns(rows, columns),
    '',
    'Options:',
    ...twoColumns([['-h, --help', 'print this help (`clap4clip <command> --help`: the command\'s)'], ['-V, --version', 'print the version']], columns),
    '',
    'Exit codes:',
    ...twoColumns(EXIT_CODES_HELP, columns),
    '',
    'Examples:',
    '  clap4clip run --synthetic-preset tiny --increment 5 --out runs/tiny',
    '  clap4clip help run',
  ].join('\n');
}

export function version(): string {
  return packageVersion();
}

interface Out { write(s: string): unknown }

function unknownCommand(name: string): UsageError {
  const hint = didYouMean(name, Object.keys(commands));
  return new UsageError(`unknown command "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; the commands are ${Object.keys(commands).join(', ')} (see clap4clip --help)`);
}

/** Runs the command line `argv` (without `node main.js`); returns the exit code. Throws what the command throws. */
export async function dispatch(argv: readonly string[], stdout: Out = process.stdout): Promise<number> {
  const [name, ...rest] = argv;
  const columns = outputColumns(stdout as { isTTY?: boolean; columns?: number });
  if (name === undefined || name === '--help' || name === '-h') {
    stdout.write(usage(columns) + '\n');
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    stdout.write(version() + '\n');
    return EXIT.ok;
  }
  if (name === 'help') {
    if (rest.length === 0) {
      stdout.write(usage(columns) + '\n');
      return EXIT.ok;
    }
    const command = commands[rest[0]!];
    if (!command) throw unknownCommand(rest[0]!);
    return command.run([...rest.slice(1), '--help']);
  }
  if (name.startsWith('-')) {
    const hint = didYouMean(name, ['--help', '--version']);
    throw new UsageError(`unknown option ${name}${hint ? ` (did you mean ${hint}?)` : ''}; give a command first (see clap4clip --help)`);
  }
  const command = commands[name];
  if (!command) throw unknownCommand(name);
  if (!asksForHelp(rest)) checkEngineEnvironment();
  return command.run(rest);
}

/**
 * The engine reads its environment settings on first use, deep inside a command; a bad value is
 * reported here instead, before the command writes anything, as a failure of the command (exit 1)
 * rather than an internal error.
 */
function checkEngineEnvironment(): void {
  try {
    intraOpThreads();
  } catch (err) {
    throw new Clap4ClipError(err instanceof Error ? err.message : String(err));
  }
}

/** `dispatch`, with errors printed: one line for expected failures, the stack for bugs. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (err instanceof Clap4ClipError) {
      process.stderr.write(`clap4clip: ${err.message}\n`);
      return err instanceof UsageError ? EXIT.usage : EXIT.failed;
    }
    process.stderr.write(`clap4clip: internal error (please report it): ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return EXIT.failed;
  }
}

// Run only as the program (tests import `dispatch` and `usage`).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
