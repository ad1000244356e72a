/**
 * A run survives being stopped: interrupted after a task (in process, through the CLI's hook),
 * stopped mid-task, SIGINT and SIGKILL of a real `clap4clip run` process; every time
 * `--resume` finishes with the same results.json as an uninterrupted run (timing aside).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { runCommand } from '../cli/commands/run.js';
import { COMPARED_METHODS } from './invocation/index.js';
import { recordingIO } from '../cli/commands/io.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { createMethod } from '../methods/registry.js';
import { readLatestCheckpoint } from './checkpoint.js';
import { restoreMethod } from './snapshot.js';
import { resolveRunConfig } from './config.js';
import { methodSetupFor, runClassIncremental, type LoopResult } from './loop.js';
import type { ProgressFactory } from './progress.js';
import { RunInterrupted, StopRequest } from './signals.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-life-'));
  dirs.push(d);
  return d;
}


/** results.json without what may differ between equal runs: timing, creation time, the directory. */
function comparable(r: Record<string, unknown>): Record<string, unknown> {
  const c = structuredClone(r) as Record<string, any>;
  for (const k of ['createdAt', 'timing', 'totalSeconds']) delete c[k];
  delete c['config']?.out;
  delete c['config']?.progress;
  for (const s of c['steps'] ?? []) delete s.seconds;
  return c;
}
async function results(dir: string): Promise<Record<string, unknown>> {
  return comparable(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Record<string, unknown>);
}
async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

// 10 classes in 5 tasks of 2; few epochs.
const TINY = ['--synthetic-preset', 'tiny', '--increment', '2', '--epochs', '2', '--finetune-epochs', '1', '--samples', '3'];

// RanPAC with a small projection (M = 64) keeps the test fast; its state is the same kind at M = 10000.
const RESUMED: [string, string[]][] = [['clap', []], ['clip-adapter', []], ['simplecil', []], ['ranpac', ['--method-options', '{"M":64}']], ['rapf', []]];
for (const [method, options] of RESUMED) {
  test(`${method}: stopped after task 2, then --resume: the same results.json as an uninterrupted run`, async () => {
    const root = await tempDir();
    const args = [...TINY, '--method', method, ...options];
    assert.equal(await runCommand([...args, '--out', join(root, 'whole')], recordingIO()), 0);

    const dir = join(root, 'parts');
    const stop = new StopRequest();
    const io = recordingIO();
    const code = await runCommand([...args, '--out', dir], io, { stop, onStep: (_dir, s) => { if (s.task === 1) stop.request('SIGINT'); } });
    assert.equal(code, 130);
    assert.match(io.err.join(''), new RegExp(`interrupted by SIGINT after task 2/5; resume with \`clap4clip run --resume ${dir}\``));
    assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, 1);
    assert.equal(await exists(join(dir, 'results.json')), false);

    const resumed = recordingIO();
    assert.equal(await runCommand(['--resume', dir], resumed), 0);
    assert.match(resumed.out.join(''), /resuming .* after task 2\/5/);
    assert.deepEqual(await results(dir), await results(join(root, 'whole')));
    assert.ok(await exists(join(dir, 'report.html')));
  });
}

test('comparison and repeated runs: stopped inside the second run directory, resumed to the same results and summary', async () => {
  const root = await tempDir();
  const cases: [string, string[], string[]][] = [
    ['compare', [...TINY, '--increment', '5'], [...COMPARED_METHODS]],
    ['runs', [...TINY, '--method', 'clap', '--runs', '2'], ['run-0', 'run-1']],
    ['methods', [...TINY, '--increment', '5', '--methods', 'simplecil,ranpac,zeroshot', '--method-options', '{"ranpac":{"M":64}}'], ['simplecil', 'ranpac', 'zeroshot']],
  ];
  for (const [name, args, leaves] of cases) {
    assert.equal(await runCommand([...args, '--out', join(root, `${name}-whole`)], recordingIO()), 0);
    const dir = join(root, `${name}-parts`);
    const stop = new StopRequest();
    const io = recordingIO();
    const onStep = (leaf: string, s: { task: number }): void => { if (leaf.endsWith(leaves[1]!) && s.task === 0) stop.request('SIGTERM'); };
    assert.equal(await runCommand([...args, '--out', dir], io, { stop, onStep }), 143);
    assert.match(io.err.join(''), new RegExp(`interrupted by SIGTERM after task 1/\\d of ${join(dir, leaves[1]!)}; resume with`));
    assert.equal(await exists(join(dir, leaves[2] ?? leaves[1]!, 'results.json')), false);
    assert.equal(await runCommand(['--resume', dir], recordingIO()), 0);
    for (const leaf of leaves) assert.deepEqual(await results(join(dir, leaf)), await results(join(root, `${name}-whole`, leaf)), `${name} ${leaf}`);
    assert.ok(await exists(join(dir, 'report.html')), `${name}: report.html`);
  }
  const summary = async (d: string) => {
    const s = JSON.parse(await readFile(join(d, 'summary.json'), 'utf8')) as Record<string, unknown>;
    delete s['createdAt'];
    return s;
  };
  assert.deepEqual(await summary(join(root, 'runs-parts')), await summary(join(root, 'runs-whole')));
});

test('a stop during a task abandons it: the checkpoint of the task before is kept, and resuming redoes the task', async () => {
  const dataset = generateSyntheticDataset(SYNTHETIC_TINY);
  const config = resolveRunConfig({ syntheticPreset: 'tiny', method: 'clap', increment: 5, epochs: 2, finetuneEpochs: 1, samples: 2 });
  const build = async () => {
    const context = methodSetupFor(config, dataset);
    return { context, method: await createMethod('clap', context) };
  };
  const whole = await build();
  const reference = await runClassIncremental(config, dataset, whole.method, {});

  const dir = await tempDir();
  const stop = new StopRequest();
  // Asks to stop at the 3rd training iteration of task 2 (the bar's ticks are the iterations).
  const progress: ProgressFactory = (label) => {
    let ticks = 0;
    return { tick: () => { if (label.includes('task 2/2 train') && ++ticks === 3) stop.request('SIGINT'); }, done: () => undefined };
  };
  const first = await build();
  await assert.rejects(runClassIncremental(config, dataset, first.method, { runDir: dir, stop, progress }), (e: unknown) => {
    assert.ok(e instanceof RunInterrupted);
    assert.equal(e.message, 'interrupted by SIGINT after task 1/2');
    assert.equal(e.completedTask, 0);
    return true;
  });
  const snapshot = (await readLatestCheckpoint(dir))!;
  assert.equal(snapshot.state.completedTask, 0);
  const second = await build();
  restoreMethod(second.method, snapshot);
  const resumed = await runClassIncremental(config, dataset, second.method, { runDir: dir, resume: snapshot });
  const strip = (r: LoopResult) => ({ ...r, timing: [], steps: r.steps.map((s) => ({ ...s, seconds: null })) });
  assert.deepEqual(strip(resumed), strip(reference));
  assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, 1);
});

// ---------------------------------------------------------------------------------------------
// Real processes: `node dist/src/cli/main.js run ...`

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `control` may signal it (it gets the process and a promise of stderr text matching a pattern). */
function cli(args: string[], control?: (child: ReturnType<typeof spawn>, stderrMatches: (re: RegExp) => Promise<void>) => void | Promise<void>): Promise<Child> {
  const child = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of waiters.splice(0)) if (w.re.test(stderr)) w.resolve(); else waiters.push(w);
  });
  const done = new Promise<Child>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  void control?.(child, (re) => new Promise((resolve) => { if (re.test(stderr)) resolve(); else waiters.push({ re, resolve }); }));
  return done;
}

// Long enough per task (~0.3 s) for a signal to land inside one.
const LONG = ['--synthetic-preset', 'tiny', '--increment', '2', '--method', 'clap', '--epochs', '25', '--finetune-epochs', '2', '--samples', '3', '--progress', 'always'];
let longReference: Promise<Record<string, unknown>> | null = null;
/** results.json of an uninterrupted LONG run (computed once, in its own process). */
function reference(): Promise<Record<string, unknown>> {
  longReference ??= (async () => {
    const dir = join(await tempDir(), 'reference');
    const r = await cli([...LONG, '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    return results(dir);
  })();
  return longReference;
}

test('SIGINT during a task: exits 130 with the resume command, keeps the last complete checkpoint; --resume completes it identically', async () => {
  const ref = reference();
  const dir = join(await tempDir(), 'run');
  const r = await cli([...LONG, '--out', dir], async (child, seen) => {
    await seen(/clap task 1\/5: acc/); // task 2 has just started
    child.kill('SIGINT');
  });
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /SIGINT received: stopping at the next safe point/);
  const m = /clap4clip: interrupted by SIGINT after task (\d)\/5; resume with `clap4clip run --resume (.*)`\n/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(m[2], dir);
  assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, Number(m[1]) - 1);
  assert.ok(Number(m[1]) < 5);
  const resumed = await cli(['--resume', dir]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(await results(dir), await ref);
});

test('SIGKILL at random moments, then --resume (the original command while nothing was recorded): the same results', async () => {
  const ref = reference();
  const dir = join(await tempDir(), 'run');
  const delays: number[] = [];
  const deadline = Date.now() + 20_000;
  for (let round = 0; round < 4 && Date.now() < deadline; round++) {
    const started = await exists(join(dir, 'config.json'));
    const delay = 150 + Math.floor(Math.random() * 1500);
    delays.push(delay);
    const r = await cli(started ? ['--resume', dir] : [...LONG, '--out', dir], (child) => { setTimeout(() => child.kill('SIGKILL'), delay); });
    if (r.signal !== 'SIGKILL') assert.equal(r.code, 0, `round ${round} (delays ${delays}): ${r.stderr}`);
  }
  const started = await exists(join(dir, 'config.json'));
  const last = await cli(started ? ['--resume', dir] : [...LONG, '--out', dir]);
  assert.equal(last.code, 0, `delays ${delays}: ${last.stderr}`);
  assert.deepEqual(await results(dir), await ref, `delays ${delays}`);
});

test('after the first signal the handlers are gone: a second signal ends the process at once, even in synchronous work', async () => {
  const signals = new URL('./signals.js', import.meta.url).href;
  const script = `
    import { listenForStopSignals, StopRequest } from ${JSON.stringify(signals)};
    const stop = new StopRequest();
    listenForStopSignals(stop, process.stderr);
    process.kill(process.pid, 'SIGTERM');
    while (stop.reason === null) await new Promise((r) => setTimeout(r, 5));
    console.log('first: ' + stop.reason);
    process.kill(process.pid, 'SIGINT');
    const until = Date.now() + 2000;
    while (Date.now() < until) {} // busy: a JavaScript handler could not run here
    console.log('survived');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  assert.equal(out, 'first: SIGTERM\n');
  assert.equal(signal, 'SIGINT', `exit code ${code}`);
});
