/**
 * Post-hoc calibration in the run loop: a run without a hold-out computes exactly what it did
 * before calibration existed (fixture written by tests/fixtures/no-holdout/generate.mjs), the
 * hold-out is disjoint from training and memory and recorded, and the calibrated metrics agree
 * with the raw evaluation where they must.
 */
import { runtimeSettings } from '../engine/onnx/runtime.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readLatestCheckpoint } from './checkpoint.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { createMethod } from '../methods/registry.js';
import { repoRoot } from '../util/paths.js';
import { holdOutRows } from './calibration.js';
import { resolveRunConfig } from './config.js';
import { calibrationPlanFor, methodSetupFor, runClassIncremental, scenarioFor } from './loop.js';
import { runStreams } from './loop.js';
import { summarizeRun } from './results.js';

/** The pinned `clap4clip run` results of the tiny world (tests/fixtures/pinned), written before calibration existed. */
interface Pinned {
  args: string[];
  results: Record<string, Record<string, unknown> & { steps: Record<string, unknown>[] }>;
}
// The pinned numbers were computed with one onnxruntime thread (the last bits of a product can
// depend on how it is split); set before this process creates its first session.
runtimeSettings.intraOpThreads = 1;
const PINNED = JSON.parse(readFileSync(join(repoRoot(), 'tests', 'fixtures', 'pinned', 'tinyRuns.json'), 'utf8')) as Pinned;
/** The pinned run's arguments as a config (they are checked to be these). */
const PINNED_CONFIG = { syntheticPreset: 'tiny', increment: 5, epochs: 2, finetuneEpochs: 1, samples: 3, seed: 0 };
const dataset = generateSyntheticDataset(SYNTHETIC_TINY);

async function run(partial: Record<string, unknown>, runDir?: string) {
  const config = resolveRunConfig(partial);
  const method = await createMethod(config.method, methodSetupFor(config, dataset));
  return { config, loop: await runClassIncremental(config, dataset, method, runDir === undefined ? {} : { runDir }) };
}

test('without a hold-out (calibration none or memory) every method computes the pinned numbers of before calibration existed', async () => {
  assert.deepEqual(PINNED.args, ['--synthetic-preset', 'tiny', '--increment', '5', '--epochs', '2', '--finetune-epochs', '1', '--samples', '3', '--seed', '0', '--progress', 'never']);
  for (const [method, pinned] of Object.entries(PINNED.results)) {
    for (const calibration of ['none', 'memory']) {
      const { loop } = await run({ ...PINNED_CONFIG, method, calibration });
      const what = `${method}, calibration ${calibration}`;
      assert.deepEqual(loop.accuracyMatrix, pinned['accuracyMatrix'], what);
      const ece = pinned['ece'] as { perBatchMean: number[]; dataset: number[] };
      assert.deepEqual(loop.ece, { perBatchMean: ece.perBatchMean, dataset: ece.dataset }, what);
      assert.deepEqual(loop.reliability, pinned['reliability'], what);
      assert.deepEqual(loop.novelty, pinned['novelty'], what);
      assert.deepEqual(loop.steps.map((s) => [s.loss, s.iterations, s.trainSamples, s.memorySize]), pinned.steps.map((s) => [s['loss'], s['iterations'], s['trainSamples'], s['memorySize']]), what);
      // none fits nothing; memory fits on the exemplars (methods without replay have none).
      const replay = method !== 'zeroshot';
      assert.equal(loop.calibration.length, calibration === 'memory' && replay ? loop.steps.length : 0, what);
      for (const c of loop.calibration) assert.equal(c.samples, loop.steps[c.step]!.memorySize, what);
    }
  }
});

test('holdout: min(perClass, n_c / 2) rows of every class, disjoint from training, drawn the same every time', () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, shots: 6 });
  const scenario = scenarioFor(config, dataset);
  const h = holdOutRows(scenario, 4, runStreams(0).calibration);
  for (const task of scenario.tasks) {
    const t = task.index;
    const all = scenario.trainIndices[t]!;
    const held = h.heldOut[t]!;
    assert.equal(h.trainRows[t]!.length + held.length, all.length);
    const heldSet = new Set(held);
    assert.equal(heldSet.size, held.length);
    assert.ok(h.trainRows[t]!.every((i) => !heldSet.has(i)), 'held-out rows do not train');
    assert.deepEqual([...h.trainRows[t]!, ...held].sort((a, b) => a - b), [...all].sort((a, b) => a - b));
    // Task 0 has 40 samples per class -> 4; later tasks have 6 shots -> at most half = 3.
    const perClass = new Map<number, number>();
    for (const i of held) perClass.set(scenario.trainLabels[i]!, (perClass.get(scenario.trainLabels[i]!) ?? 0) + 1);
    assert.equal(perClass.size, task.classEnd - task.classStart);
    for (const k of perClass.values()) assert.equal(k, t === 0 ? 4 : 3);
  }
  const again = calibrationPlanFor({ ...config, calibrationPerClass: 4 }, scenario)!;
  assert.deepEqual(again.holdOut!.heldOut, h.heldOut, 'a pure function of seed and scenario (resume holds out the same rows)');
  const other = holdOutRows(scenario, 4, runStreams(1).calibration);
  assert.notDeepEqual(other.heldOut, h.heldOut, 'another seed, another draw');
});

test('holdout run: held-out samples never train nor enter the memory; T, raw and calibrated metrics in results.json', async () => {
  const partial = { syntheticPreset: 'tiny', method: 'clap', increment: 5, epochs: 1, finetuneEpochs: 1, samples: 3, memorySize: 20, seed: 2, calibrationPerClass: 5 };
  const runDir = await mkdtemp(join(tmpdir(), 'clap4clip-cal-'));
  after(() => rm(runDir, { recursive: true, force: true }));
  const { config, loop } = await run(partial, runDir);
  const plan = calibrationPlanFor(config, loop.scenario)!;
  // 50 held out per task of 5 classes x 40: task 0 trains on 150, task 1 on 150 + memory.
  assert.deepEqual(plan.holdOut!.heldOut.map((r) => r.length), [25, 25]);
  assert.equal(loop.steps[0]!.trainSamples, 200 - 25);
  assert.equal(loop.steps[1]!.trainSamples, 200 - 25 + loop.steps[0]!.memorySize);
  const results = summarizeRun(config, dataset, 'clap', loop);
  assert.deepEqual(results.calibration.heldOut, [25, 25]);
  assert.equal(results.calibration.source, 'holdout');
  assert.equal(results.calibration.perClass, 5);
  assert.equal(results.calibration.steps.length, 2);
  for (const c of results.calibration.steps) {
    assert.equal(c.samples, 25 * (c.step + 1), 'fitted on the held-out samples of every seen task');
    assert.ok(c.temperature > 0 && Number.isFinite(c.temperature));
    assert.ok(c.fitNll.after <= c.fitNll.before);
    // Raw = the evaluation's own numbers, to the bit; both bin sets count every test sample.
    assert.equal(c.raw.eceDataset, loop.ece.dataset[c.step]);
    assert.ok(Math.abs(c.raw.ecePerBatchMean - loop.ece.perBatchMean[c.step]!) < 1e-12);
    assert.deepEqual(c.raw.bins, loop.reliability[c.step]!.bins);
    const tested = 10 * 5 * (c.step + 1);
    for (const m of [c.raw, c.calibrated]) {
      assert.equal(m.bins.reduce((n, b) => n + b.count, 0), tested);
      assert.ok(m.nll > 0 && m.brier >= 0 && m.brier <= 2);
    }
    // Scaling keeps every prediction: the accuracy in the bins is the same before and after.
    const hits = (bins: typeof c.raw.bins): number => bins.reduce((n, b) => n + Math.round(b.accuracy * b.count), 0);
    assert.equal(hits(c.calibrated.bins), hits(c.raw.bins));
    assert.equal(loop.steps[c.step]!.temperature, c.temperature);
  }
  // No held-out row is in the memory after the run.
  const held = new Set(plan.holdOut!.heldOut.flatMap((r) => [...r]));
  const memory = (await readLatestCheckpoint(runDir))!.state.memory.classes.flatMap(([, rows]) => rows);
  assert.ok(memory.length > 0 && memory.every((i) => !held.has(i)), 'the memory holds no held-out sample');
  const other = await run({ ...partial, calibration: 'none' });
  assert.notDeepEqual(loop.accuracyMatrix, other.loop.accuracyMatrix, 'holding out changes training (documented)');
  assert.ok(held.size === 50);
});

test('config: calibration source and per-class count are validated', () => {
  assert.equal(resolveRunConfig({}).calibration, 'holdout');
  assert.equal(resolveRunConfig({}).calibrationPerClass, 10);
  assert.throws(() => resolveRunConfig({ calibration: 'test' }), /"calibration" must be one of \[holdout, memory, none\]/);
  assert.throws(() => resolveRunConfig({ calibrationPerClass: 0 }), /"calibrationPerClass"/);
});
