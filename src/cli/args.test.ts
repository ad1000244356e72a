import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exampleLines, parseCommandLine, parseOrHelp, renderHelp, twoColumns, UsageError, wrapText, type CommandSpec } from './args.js';
import { Clap4ClipError } from '../util/errors.js';

const SPEC: CommandSpec = {
  name: 'demo',
  summary: 'A command to test the layer with, whose summary is long enough to be wrapped over more than one line at forty columns.',
  usage: ['demo [options]', 'demo --resume DIR'],
  options: [
    { name: 'memory-size', type: 'string', arg: 'N', help: 'exemplars kept', defaultText: '1000' },
    { name: 'novelty', type: 'boolean', help: 'detect novel data', negatable: true },
    { name: 'quiet', short: 'q', type: 'boolean', help: 'print nothing but errors' },
    { name: 'lr', type: 'string', arg: 'X', help: 'learning rate' },
  ],
  examples: ['demo --memory-size 10 --novelty --lr 0.1 --quiet --memory-size 20 --novelty=false'],
};

const usageError = (re: RegExp) => (e: unknown) => e instanceof UsageError && e instanceof Clap4ClipError && re.test(e.message);

test('values: --x v, --x=v, short booleans, --x=true|false and --no-x for negatable booleans', () => {
  assert.deepEqual(parseCommandLine(SPEC, ['--memory-size', '5', '-q', '--lr=1e-3']).values, { 'memory-size': '5', quiet: true, lr: '1e-3' });
  assert.deepEqual(parseCommandLine(SPEC, ['--novelty=false']).values, { novelty: false });
  assert.deepEqual(parseCommandLine(SPEC, ['--no-novelty']).values, { novelty: false });
  assert.deepEqual(parseCommandLine(SPEC, ['--novelty']).values, { novelty: true });
  assert.deepEqual(parseCommandLine(SPEC, ['--lr=-1']).values, { lr: '-1' }, 'a value starting with - is written with =');
  assert.equal(parseCommandLine(SPEC, ['-h']).help, true);
});

test('command-line mistakes are UsageErrors naming the option, with a suggestion for a misspelt one', () => {
  assert.throws(() => parseCommandLine(SPEC, ['--memry-size', '5']), usageError(/^demo: unknown option --memry-size \(did you mean --memory-size\?\); see clap4clip demo --help$/));
  assert.throws(() => parseCommandLine(SPEC, ['--no-quiet']), usageError(/unknown option --no-quiet/));
  assert.throws(() => parseCommandLine(SPEC, ['--zzz']), usageError(/^demo: unknown option --zzz; see/));
  assert.throws(() => parseCommandLine(SPEC, ['--memory-sizes', '1']), usageError(/did you mean --memory-size\?/));
  assert.throws(() => parseCommandLine(SPEC, ['--memory', '1']), usageError(/unknown option --memory \(did you mean --memory-size\?\)/));
  assert.throws(() => parseCommandLine(SPEC, ['--memory-size']), usageError(/--memory-size needs a value/));
  assert.throws(() => parseCommandLine(SPEC, ['--lr', '-1']), usageError(/--lr needs a value \(write --lr=VALUE for a value that starts with -\)/));
  assert.throws(() => parseCommandLine(SPEC, ['--quiet=yes']), usageError(/--quiet takes no value/));
  assert.throws(() => parseCommandLine(SPEC, ['--novelty=maybe']), usageError(/--novelty is true or false, got "maybe"/));
  assert.throws(() => parseCommandLine(SPEC, ['stray']), usageError(/unexpected argument "stray"/));
  // --help still prints help next to a value it cannot read.
  assert.equal(parseOrHelp(SPEC, ['--memory-size', '--help']).help, true);
});

test('help: every line within the width (a command line is broken with \\), real defaults, usage and examples', () => {
  for (const columns of [40, 80, 120]) {
    const help = renderHelp(SPEC, columns);
    for (const line of help.split('\n')) assert.ok(line.length <= columns, `${columns}: ${JSON.stringify(line)}`);
    assert.match(help, /^Usage: clap4clip demo \[options\]\n {3}or: clap4clip demo --resume DIR\n/);
    assert.match(help.replace(/\s+/g, ' '), /--memory-size N exemplars kept \(default: 1000\)/);
    assert.match(help, /-q, --quiet/);
    assert.match(help, /-h, --help/);
  }
  const lines = exampleLines('clap4clip demo --method-options \'{"a": 1, "b": 2}\' --out somewhere/long', 40);
  assert.ok(lines.length > 1 && lines.slice(0, -1).every((l) => l.endsWith(' \\')));
  assert.ok(lines.some((l) => l.includes(`'{"a": 1, "b": 2}'`)), 'a quoted word stays whole');
  assert.deepEqual(wrapText('aa bb cc', 5), ['aa bb', 'cc']);
  assert.deepEqual(twoColumns([['--x', 'one two three']], 20, 2), ['  --x  one two three']);
});
