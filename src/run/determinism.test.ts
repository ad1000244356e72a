/**
 * Same config and seed, same numbers: two fresh `clap4clip run` processes write identical
 * results.json files (timing aside), and pausing inside `trainPhase` changes no computation.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { COMPARED_METHODS } from './invocation/index.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { Rng } from '../engine/random.js';
import { createMethod } from '../methods/registry.js';
import { resolveRunConfig } from './config.js';
import { methodSetupFor, scenarioFor, taskClassesOf } from './loop.js';
import { silentProgress } from './progress.js';
import { Pacer, RunInterrupted, StopRequest } from './signals.js';
import { trainPhase } from '../cl/trainPhase.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** A results.json without what may differ between equal runs: timing, creation time, the directory. */
function comparable(text: string): unknown {
  const r = JSON.parse(text) as Record<string, any>;
  for (const k of ['createdAt', 'timing', 'totalSeconds']) delete r[k];
  delete r['config'].out;
  for (const s of r['steps']) delete s.seconds;
  return r;
}

test('two fresh processes with the same config and seed write the same results.json (timing aside), for every compared method', async () => {
  const root = await mkdtemp(join(tmpdir(), 'clap4clip-det-'));
  dirs.push(root);
  const args = ['--synthetic-preset', 'tiny', '--increment', '5', '--epochs', '2', '--samples', '3', '--seed', '4'];
  const [a, b] = await Promise.all([cli([...args, '--out', join(root, 'a')]), cli([...args, '--out', join(root, 'b')])]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  for (const method of COMPARED_METHODS) {
    const [ra, rb] = await Promise.all(['a', 'b'].map((d) => readFile(join(root, d, method, 'results.json'), 'utf8')));
    assert.deepEqual(comparable(ra!), comparable(rb!), method);
  }
  // And a different seed does change them (the comparison above is not vacuous).
  assert.equal(await cli([...args, '--seed', '5', '--method', 'clap', '--out', join(root, 'c')]).then((r) => r.code), 0);
  const rc = comparable(await readFile(join(root, 'c', 'results.json'), 'utf8')) as { accuracyMatrix: unknown };
  const ra = comparable(await readFile(join(root, 'a', 'clap', 'results.json'), 'utf8')) as { accuracyMatrix: unknown };
  assert.notDeepEqual(rc.accuracyMatrix, ra.accuracyMatrix);
});

test('pausing after every trainPhase iteration changes nothing: same iterations, loss, parameters and generator state', async () => {
  const dataset = generateSyntheticDataset(SYNTHETIC_TINY);
  const config = resolveRunConfig({ syntheticPreset: 'tiny', method: 'clap', increment: 5, samples: 2 });
  const scenario = scenarioFor(config, dataset);
  const task = scenario.tasks[0]!;
  const runs = [];
  for (const paced of [false, true]) {
    const context = methodSetupFor(config, dataset);
    const methodRng = new Rng(3);
    const method = await createMethod('clap', { ...context, samples: 2, batchSize: 16 });
    method.beginTask(task, taskClassesOf(dataset, scenario, task), methodRng);
    const rng = new Rng(9);
    const ctx = { split: dataset.train, labels: scenario.trainLabels, batchSize: 16, rng, methodRng, progress: silentProgress, label: 'x' };
    const schedule = { epochs: 2, lr: 0.01, shape: 'warmup-cosine' as const };
    const pacer = new Pacer(undefined, () => new RunInterrupted('x', 'x'), 0);
    const out = await trainPhase(method, 'train', scenario.trainIndices[0]!, schedule, paced ? { ...ctx, pause: () => pacer.pause() } : ctx);
    runs.push({ out, params: method.namedParameters().map(([n, t]) => [n, Array.from(t.data)]), rng: rng.state(), methodRng: methodRng.state() });
  }
  assert.deepEqual(runs[1], runs[0]);
});

test('Pacer: gives the event loop a turn when its interval has passed, and throws once a stop is requested', async () => {
  const stop = new StopRequest();
  const pacer = new Pacer(stop, (reason) => new RunInterrupted(reason, 'after task 1/3', 0), 0);
  let turned = false;
  setImmediate(() => { turned = true; });
  await pacer.pause();
  assert.ok(turned);
  stop.request('SIGTERM');
  stop.request('SIGINT');
  assert.equal(stop.reason, 'SIGTERM', 'the first request is the reason');
  await assert.rejects(pacer.pause(), /interrupted by SIGTERM after task 1\/3/);
});
