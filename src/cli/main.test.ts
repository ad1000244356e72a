/**
 * The command line as a user meets it (real processes): help everywhere, the version, suggestions
 * for commands and options, one exit-code convention, --json and --quiet, and errors said in the
 * user's own terms (the flag given, the file read).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { commands } from './commands/index.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const cwd = mkdtempSync(join(tmpdir(), 'clap4clip-main-'));
after(() => rmSync(cwd, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CLAP4CLIP_NO_REEXEC: '1' }, timeout: 120_000 });
const TINY = ['--synthetic-preset', 'tiny', '--increment', '5'];

test('--help, help <command> and <command> --help; -V and --version', () => {
  const top = cli('--help');
  assert.equal(top.status, 0);
  assert.match(top.stdout.replace(/\s+/g, ' '), /Exit codes: 0 success 1 the command failed: .* 2 the command line is wrong: .* 130, 143 stopped by SIGINT/);
  for (const line of top.stdout.split('\n')) assert.ok(line.length <= 80, line);
  assert.equal(cli().stdout, top.stdout);
  assert.equal(cli('help').stdout, top.stdout);
  for (const name of Object.keys(commands)) {
    const own = cli(name, '--help');
    assert.equal(own.status, 0, name);
    assert.match(own.stdout, new RegExp(`^Usage: clap4clip ${name} `), name);
    assert.equal(cli('help', name).stdout, own.stdout, `help ${name}`);
    assert.equal(cli(name, '-h').stdout, own.stdout, `${name} -h`);
    for (const line of own.stdout.split('\n')) assert.ok(line.length <= 80, `${name}: ${line}`);
  }
  for (const v of ['-V', '--version']) assert.match(cli(v).stdout, /^\d+\.\d+\.\d+\n$/);
});

test('exit codes: 2 for a wrong command line (with suggestions), 1 for a failure; one line, no stack', () => {
  const cases: [string[], number, RegExp][] = [
    [['rn'], 2, /^clap4clip: unknown command "rn" \(did you mean "run"\?\)/],
    [['help', 'reprot'], 2, /unknown command "reprot" \(did you mean "report"\?\)/],
    [['--verison'], 2, /unknown option --verison \(did you mean --version\?\)/],
    [['run', '--memry-size', '5'], 2, /run: unknown option --memry-size \(did you mean --memory-size\?\)/],
    [['bench', '--only', 'engin'], 2, /bench: --only must be one of \[engine, scaling, protocol, features, linalg\], got "engin" \(did you mean engine\?\)/],
    [['run', '--increment', '0'], 2, /run: --increment must be >= 1, got 0/],
    [['run', '--lr', 'NaN'], 2, /run: --lr must be a finite number or null, got NaN$/m],
    [['run', ...TINY.slice(0, 2), '--few-shot'], 2, /run: --few-shot \(a first task of 60 classes\): base task size must be an integer in \[1, 10\], got 60/],
    [['run', ...TINY.slice(0, 2), '--increment', '7'], 2, /run: --increment 7: 10 classes do not split/],
    [['synth'], 2, /synth: --out is required/],
    [['run', '--config', 'missing.json'], 1, /^clap4clip: missing\.json: config file not found$/m],
  ];
  for (const [args, code, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
});

test('a bad engine setting in the environment: one line naming it, exit 1, nothing written; help still works', () => {
  const env = { ...process.env, CLAP4CLIP_NO_REEXEC: '1', CLAP4CLIP_ORT_THREADS: 'two' };
  const run = spawnSync(process.execPath, [MAIN, 'run', ...TINY, '--out', 'bad-env'], { cwd, encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(run.status, 1, run.stderr);
  assert.equal(run.stderr, 'clap4clip: CLAP4CLIP_ORT_THREADS must be a whole number of threads >= 1, got "two"\n');
  assert.equal(existsSync(join(cwd, 'bad-env')), false);
  const help = spawnSync(process.execPath, [MAIN, 'run', '--help'], { cwd, encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: clap4clip run /);
});

test('errors read from a file name that file', () => {
  writeFileSync(join(cwd, 'order.json'), '[0, 1, 2]');
  writeFileSync(join(cwd, 'settings.json'), '{"increment": 0}');
  const order = cli('run', ...TINY, '--class-order', 'order.json');
  assert.equal(order.status, 1);
  assert.match(order.stderr, /^clap4clip: order\.json: class-order file: the class order lists 3 labels but the dataset has 10 classes\n$/);
  const config = cli('run', '--config', 'settings.json');
  assert.equal(config.status, 1);
  assert.match(config.stderr, /^clap4clip: settings\.json: "increment" must be >= 1, got 0\n$/);
  cli('synth', '--preset', 'tiny', '--out', 'feats');
  const again = cli('synth', '--preset', 'tiny', '--out', 'feats');
  assert.equal(again.status, 1);
  assert.match(again.stderr, /feats: already contains a features dataset \(manifest\.json\); give --overwrite to replace it/);
});

test('bench --help prints help and runs nothing; --only misspelt writes nothing', () => {
  const r = cli('bench', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout.replace(/\s+/g, ' '), /--out DIR directory for the JSON files \(default: bench-results in the current directory\)/);
  cli('bench', '--only', 'engin');
  assert.equal(existsSync(join(cwd, 'bench-results')), false);
});

test('--json prints one JSON document and nothing else on stdout; --quiet prints nothing', () => {
  const jsonRuns: [string, string[], (doc: Record<string, unknown>) => void][] = [
    ['run', ['run', ...TINY, '--method', 'zeroshot', '--out', 'r-json', '--json'], (d) => assert.deepEqual([d['status'], d['directory'], (d['runs'] as { method: string }[])[0]!.method], ['complete', 'r-json', 'zeroshot'])],
    ['synth', ['synth', '--preset', 'tiny', '--out', 's-json', '--json'], (d) => assert.deepEqual([d['directory'], d['classes']], ['s-json', 10])],
    ['report', ['report', 'r-json', '--json'], (d) => assert.deepEqual(d, { report: join('r-json', 'report.html'), runs: 1 })],
    ['params', ['params', '--method', 'clip-adapter', '--dim', '8', '--classes', '4', '--tasks', '2', '--json'], (d) => assert.equal(d['method'], 'clip-adapter')],
    ['bench', ['bench', '--only', 'engine', '--steps', '1', '--warmup', '0', '--no-torch', '--out', 'b-json', '--json'], (d) => assert.deepEqual(d, { files: { engine: join(cwd, 'b-json', 'engine.json') } })],
  ];
  for (const [name, args, check] of jsonRuns) {
    const r = cli(...args);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    check(JSON.parse(r.stdout) as Record<string, unknown>);
  }
  const quietRuns = [
    ['run', ...TINY, '--method', 'zeroshot', '--out', 'r-quiet', '--quiet'],
    ['synth', '--preset', 'tiny', '--out', 's-quiet', '--quiet'],
    ['report', 'r-quiet', '--quiet'],
    ['params', '--method', 'clip-adapter', '--dim', '8', '--classes', '4', '--tasks', '2', '-q'],
    ['bench', '--only', 'engine', '--steps', '1', '--warmup', '0', '--no-torch', '--out', 'b-quiet', '--quiet'],
  ];
  for (const args of quietRuns) {
    const r = cli(...args);
    assert.equal(r.status, 0, `${args[0]}: ${r.stderr}`);
    assert.deepEqual([r.stdout, r.stderr], ['', ''], args.join(' '));
  }
  assert.ok(readdirSync(join(cwd, 'r-quiet')).includes('results.json'));
  assert.ok(existsSync(join(cwd, 'b-quiet', 'engine.json')));
});
