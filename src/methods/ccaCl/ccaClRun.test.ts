/**
 * CCA-CL through the command line and the library: results.json holds accuracy, ECE, reliability
 * bins and the novelty scores; every evaluation batching gives the same numbers (a prediction does
 * not depend on its batch); --runs; a run stopped after a task and resumed ends with the same
 * results.json as an uninterrupted one; the run loop and the library's learn() learn the same model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createClassifier } from '../../api/classifier.js';
import { unitRows } from '../../api/inputs.js';
import { recordingIO } from '../../cli/commands/io.js';
import { runCommand } from '../../cli/commands/run.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../../data/synthetic.js';
import type { FeaturesSplit } from '../../data/types.js';
import { readLatestCheckpoint } from '../../run/checkpoint.js';
import { resolveRunConfig } from '../../run/config.js';
import { methodSetupFor, runClassIncremental } from '../../run/loop.js';
import { StopRequest } from '../../run/signals.js';
import { getMethodEntry } from '../registry.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-cca-'));
  dirs.push(d);
  return d;
}
type Results = Record<string, any>;
async function results(dir: string): Promise<Results> {
  const r = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  for (const k of ['createdAt', 'timing', 'totalSeconds']) delete r[k];
  delete r['config']?.out;
  delete r['config']?.progress;
  for (const s of r['steps'] ?? []) delete s.seconds;
  return r;
}

// 10 classes in 5 tasks of 2, D' = 64.
const TINY = ['--synthetic-preset', 'tiny', '--increment', '2', '--method', 'cca-cl', '--method-options', '{"rffDim":64}'];

test('run --method cca-cl: accuracy, ECE, reliability bins and energy/MSP/entropy novelty; the same under every evaluation batching', async () => {
  const root = await tempDir();
  const by: Record<string, Results> = {};
  for (const batching of ['mixed', 'per-task', 'single']) {
    assert.equal(await runCommand([...TINY, '--eval-batching', batching, '--out', join(root, batching)], recordingIO()), 0);
    by[batching] = await results(join(root, batching));
  }
  const r = by['mixed']!;
  assert.equal(r['method'], 'cca-cl');
  assert.equal(r['accuracyMatrix'].length, 5);
  assert.ok(r['lastAccuracy'] > 0.3, `last accuracy ${r['lastAccuracy']} well above chance (0.1)`);
  assert.equal(r['ece'].dataset.length, 5);
  assert.equal(r['reliability'].length, 5);
  assert.deepEqual(Object.keys(r['noveltyMean']).sort(), ['energy', 'entropy', 'msp']);
  for (const s of ['energy', 'msp', 'entropy']) assert.ok(r['noveltyMean'][s].auroc >= 0 && r['noveltyMean'][s].auroc <= 1, s);
  for (const batching of ['per-task', 'single']) {
    const o = by[batching]!;
    for (let i = 0; i < 5; i++) for (let j = 0; j <= i; j++) assert.ok(Math.abs(o['accuracyMatrix'][i][j] - r['accuracyMatrix'][i][j]) <= 0.011, `${batching}: accuracy [${i}][${j}]`);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(o['ece'].dataset[i] - r['ece'].dataset[i]) < 0.01, `${batching}: ECE step ${i}`);
  }
});

test('cca-cl: stopped after task 2, then --resume: the same results.json as an uninterrupted run; --runs 2 differ by seed', async () => {
  const root = await tempDir();
  assert.equal(await runCommand([...TINY, '--out', join(root, 'whole')], recordingIO()), 0);
  const dir = join(root, 'parts');
  const stop = new StopRequest();
  const code = await runCommand([...TINY, '--out', dir], recordingIO(), { stop, onStep: (_dir, s) => { if (s.task === 1) stop.request('SIGINT'); } });
  assert.equal(code, 130);
  assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, 1);
  assert.equal(await runCommand(['--resume', dir], recordingIO()), 0);
  assert.deepEqual(await results(dir), await results(join(root, 'whole')));
  const report = await readFile(join(dir, 'report.html'), 'utf8');
  for (const word of ['cca-cl', 'ECE', 'Reliability', 'energy', 'msp', 'entropy']) assert.ok(report.includes(word), `report.html shows ${word}`);

  assert.equal(await runCommand([...TINY, '--runs', '2', '--out', join(root, 'runs')], recordingIO()), 0);
  const [a, b] = [await results(join(root, 'runs', 'run-0')), await results(join(root, 'runs', 'run-1'))];
  assert.deepEqual(a['accuracyMatrix'], (await results(join(root, 'whole')))['accuracyMatrix'], 'run 0 is seed 0');
  assert.notDeepEqual(a['accuracyMatrix'], b['accuracyMatrix']);
  const summary = JSON.parse(await readFile(join(root, 'runs', 'summary.json'), 'utf8')) as Results;
  assert.ok(JSON.stringify(summary).includes('lastAccuracy'));
});

test('cca-cl: the run loop and the library\'s learn() fit the same model', async () => {
  // The classifier renormalises what it is given: features and text at a float32 fixed point of
  // that renormalisation make both front ends see the same numbers (as tests/oneCore.test.ts does).
  const raw = generateSyntheticDataset({ ...SYNTHETIC_TINY, views: 1 });
  const fixed = (x: Float32Array) => {
    for (let k = 0; k < 10; k++) {
      const y = unitRows(x, raw.manifest.dim, 'fixture');
      if (y.every((v, i) => v === x[i])) return y;
      x = y;
    }
    throw new Error('no float32 fixed point of unitRows');
  };
  // Train rows class by class, so that the loop's task rows (ascending) list what learn() gets, in the same order.
  const order = Array.from({ length: raw.train.n }, (_, i) => i).sort((a, b) => raw.train.labels[a]! - raw.train.labels[b]! || a - b);
  const D = raw.manifest.dim;
  const sorted = new Float32Array(raw.train.features.length);
  order.forEach((i, r) => sorted.set(raw.train.features.subarray(i * D, (i + 1) * D), r * D));
  const train = { ...raw.train, features: fixed(sorted), labels: Int32Array.from(order, (i) => raw.train.labels[i]!) };
  const world = { ...raw, train, test: { ...raw.test, features: fixed(raw.test.features) }, text: fixed(raw.text) };
  const P = world.numTemplates, names = world.manifest.classNames;
  const config = resolveRunConfig({ syntheticPreset: 'tiny', method: 'cca-cl', increment: 2, classOrder: 'identity', evalBatching: 'single', novelty: false, memorySize: 0, seed: 3, methodOptions: { rffDim: 64 }, calibration: 'none' }); // no hold-out: learn() trains on every example
  const loop = await runClassIncremental(config, world, await getMethodEntry('cca-cl').create(methodSetupFor(config, world)), { untilTask: 1 });
  const rowsOf = (split: FeaturesSplit, c: number) => {
    const rows: number[] = [];
    for (let i = 0; i < split.n; i++) if (split.labels[i] === c) rows.push(i);
    const out = new Float32Array(rows.length * D);
    rows.forEach((i, r) => out.set(split.features.subarray(i * D, (i + 1) * D), r * D));
    return out;
  };
  const clf = await createClassifier({ dim: D, logitScale: world.manifest.logitScale, method: 'cca-cl', options: { rffDim: 64 }, memory: { kind: 'total', size: 0 }, seed: 3 });
  const matrix: number[][] = [];
  for (let t = 0; t < 2; t++) {
    await clf.learn({ classes: [2 * t, 2 * t + 1].map((c) => ({ name: names[c]!, features: rowsOf(world.train, c), textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) })) });
    const row: number[] = [];
    for (let j = 0; j <= t; j++) {
      let correct = 0, n = 0;
      for (const c of [2 * j, 2 * j + 1]) {
        const preds = await clf.predict(rowsOf(world.test, c));
        for (const p of preds) correct += p.top[0]!.label === names[c] ? 1 : 0;
        n += preds.length;
      }
      row.push(correct / n);
    }
    matrix.push(row);
  }
  await clf.dispose();
  assert.deepEqual(matrix, loop.accuracyMatrix);
});
