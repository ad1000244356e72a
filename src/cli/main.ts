#!/usr/bin/env node
/**
 * The `clap4clip` command line. One table of commands drives both dispatch and `--help`;
 * each command lives in `commands/` and receives the raw arguments after its name.
 */
import { readFileSync } from 'node:fs';
import { Clap4ClipError } from '../util/errors.js';
import { commands } from './commands/index.js';

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['Usage: clap4clip <command> [options]', '', 'Commands:', ...rows, '', 'Run `clap4clip <command> --help` for its options.'].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`clap4clip: unknown command "${name}". Must be one of [${Object.keys(commands).join(', ')}].`);
    return 2;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // Expected failures (bad input, bad config) print one clear line; anything else is a bug.
    if (err instanceof Clap4ClipError) console.error(`clap4clip: ${err.message}`);
    else console.error(err);
    process.exitCode = 1;
  },
);
