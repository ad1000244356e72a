/**
 * `calibrate(heldOut)`: a temperature fitted on labelled held-out examples of learned classes,
 * applied to `predict`'s probabilities and entropy (never to the ranking), kept by save/load,
 * cleared by learn; novelty scores stay raw unless asked.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { createClassifier, loadClassifier } from './classifier.js';
import { parseStateFile } from './persist.js';
import { runStreams, streamsFromStates } from '../cl/streams.js';
import type { HeldOutSet } from './types.js';

const world = generateSyntheticDataset({ ...SYNTHETIC_TINY, testPerClass: 60 });
const D = world.manifest.dim;
const P = world.numTemplates;
const names = world.manifest.classNames;
const dirs: string[] = [];
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

/** View 0 of class c's samples [from, to) of `split`, [n, D]. */
function imagesOf(split: typeof world.train, c: number, from: number, to: number): Float32Array {
  const rows: number[] = [];
  let k = 0;
  for (let i = 0; i < split.n; i++) {
    if (split.labels[i] !== c) continue;
    if (k >= from && k < to) rows.push(i);
    k++;
  }
  const out = new Float32Array(rows.length * D);
  rows.forEach((i, r) => out.set(split.features.subarray(i * split.views * D, (i * split.views + 1) * D), r * D));
  return out;
}
const learnOf = (c: number) => ({ name: names[c]!, features: imagesOf(world.train, c, 0, Infinity), textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) });
const heldOutOf = (classes: number[], from: number, to: number): HeldOutSet => ({ classes: classes.map((c) => ({ name: names[c]!, features: imagesOf(world.test, c, from, to) })) });
const LEARNED = [0, 1, 2, 3, 4, 5];

async function trained() {
  const clf = await createClassifier({ dim: D, seed: 1, samples: 4, options: { epochs: 2, finetuneEpochs: 1 } });
  await clf.learn({ classes: [0, 1, 2].map(learnOf) });
  await clf.learn({ classes: [3, 4, 5].map(learnOf) });
  return clf;
}

test('calibrate: T lowers the held-out NLL; probabilities and entropy change, the ranking never; novelty stays raw; save/load keeps T; learn clears it', async () => {
  const clf = await trained();
  const query = heldOutOf(LEARNED, 30, 60);
  const queryFeatures = new Float32Array(query.classes.reduce((n, c) => n + c.features!.length, 0));
  let o = 0;
  for (const c of query.classes) { queryFeatures.set(c.features!, o); o += c.features!.length; }
  const before = await clf.predict(queryFeatures, { topK: LEARNED.length });
  assert.ok(before.every((p) => p.calibrated === false));
  assert.equal(clf.info.calibration, null);

  const fit = await clf.calibrate(heldOutOf(LEARNED, 0, 30));
  assert.equal(fit.temperature.samples, 30 * LEARNED.length);
  assert.ok(fit.temperature.temperature > 0 && fit.temperature.temperature !== 1);
  assert.ok(fit.temperature.nllAfter <= fit.temperature.nllBefore);
  assert.equal(fit.temperature.novelty, 'raw');
  assert.equal(fit.novelty.samples, 30 * LEARNED.length, 'the same call sets the novelty threshold');
  assert.deepEqual(clf.info.calibration, fit.temperature);
  assert.deepEqual(clf.info.novelty, fit.novelty);

  const afterCal = await clf.predict(queryFeatures, { topK: LEARNED.length });
  const T = fit.temperature.temperature;
  afterCal.forEach((p, i) => {
    const q = before[i]!;
    assert.equal(p.calibrated, true);
    assert.deepEqual(p.top.map((x) => x.label), q.top.map((x) => x.label), 'scaling never changes the order');
    assert.equal(p.noveltyScore, q.noveltyScore, 'novelty stays on the raw logits');
    assert.equal(p.mcVariance, q.mcVariance);
    // p_j proportional to q_j^(1/T): the raw probabilities raised to 1/T and renormalised.
    const powered = q.top.map((x) => x.probability ** (1 / T));
    const z = powered.reduce((a, b) => a + b, 0);
    p.top.forEach((x, j) => assert.ok(Math.abs(x.probability - powered[j]! / z) < 1e-6, `input ${i} class ${j}`));
    const entropy = -p.top.reduce((s, x) => s + (x.probability > 0 ? x.probability * Math.log(x.probability) : 0), 0);
    assert.ok(Math.abs(p.entropy - entropy) < 1e-6, 'entropy of the calibrated probabilities');
  });
  // save -> load keeps the temperature and the calibrated predictions.
  const dir = await tempDir();
  await clf.save(dir);
  const loaded = await loadClassifier(dir);
  assert.deepEqual(loaded.info.calibration, fit.temperature);
  assert.deepEqual(await loaded.predict(queryFeatures, { topK: LEARNED.length }), afterCal);

  // learn clears it (the model changed).
  await loaded.learn({ classes: [6, 7].map(learnOf) });
  assert.equal(loaded.info.calibration, null);
  assert.ok((await loaded.predict(queryFeatures.subarray(0, D))).every((p) => p.calibrated === false));
  await clf.dispose();
  await loaded.dispose();
});

test('calibrate with novelty "calibrated": the score is -T logsumexp(z / T) and the threshold is set on it', async () => {
  const clf = await trained();
  const x = heldOutOf([0], 40, 41).classes[0]!.features!;
  const [rawP] = await clf.predict(x, { topK: LEARNED.length });
  const fit = await clf.calibrate(heldOutOf(LEARNED, 0, 30), { novelty: 'calibrated', truePositiveRate: 0.9 });
  const [p] = await clf.predict(x, { topK: LEARNED.length });
  const T = fit.temperature.temperature;
  assert.equal(fit.temperature.novelty, 'calibrated');
  // With raw probabilities q: T lse(z / T) = lse(z) + T log sum_j q_j^(1/T), and the score is its negative.
  const expected = rawP!.noveltyScore - T * Math.log(rawP!.top.reduce((s, x) => s + x.probability ** (1 / T), 0));
  assert.ok(Math.abs(p!.noveltyScore - expected) < 1e-4 * Math.max(1, Math.abs(expected)), `${p!.noveltyScore} vs ${expected}`);
  assert.notEqual(p!.noveltyScore, rawP!.noveltyScore);
  assert.ok(fit.novelty.truePositiveRate >= 0.9);
  // The threshold is on the same score: the calibrated held-out scores keep >= 90 % at or below it.
  const held = heldOutOf(LEARNED, 0, 30).classes.map((c) => c.features!);
  const scores = (await Promise.all(held.map((f) => clf.predict(f)))).flat().map((q) => q.noveltyScore);
  assert.ok(scores.filter((s) => s <= fit.novelty.threshold).length / scores.length >= 0.9);
  await clf.dispose();
});

test('calibrate: errors name the problem; a save written before calibration existed loads with none', async () => {
  const fresh = await createClassifier({ dim: D });
  await assert.rejects(fresh.calibrate(heldOutOf([0], 0, 5)), /learned no classes yet/);
  const clf = await trained();
  await assert.rejects(clf.calibrate(heldOutOf([9], 0, 5)), /"class_009" is not a learned class|is not a learned class/);
  await assert.rejects(clf.calibrate({ classes: [] }), /expected \{ classes/);
  await assert.rejects(clf.calibrate(heldOutOf([0], 0, 5), { novelty: 'scaled' as 'raw' }), /"novelty" must be one of \[raw, calibrated\]/);
  await assert.rejects(clf.calibrate(heldOutOf([0], 0, 5), { truePositiveRate: 2 }), /truePositiveRate must be in \(0, 1\]/);
  await assert.rejects(clf.calibrate({ classes: [{ name: names[0]!, features: new Float32Array(0) }] }), /whole number of rows/);
  // An older state.json: no "calibration" key and no "calibration" generator stream.
  const dir = await tempDir();
  const sub = await clf.save(dir);
  const state = JSON.parse(await readFile(join(sub, 'state.json'), 'utf8')) as Record<string, any>;
  delete state['calibration'];
  delete state['rng']['streams']['calibration'];
  const parsed = parseStateFile(state, 'state.json');
  assert.equal(parsed.calibration, null);
  assert.equal(parsed.rng.streams.calibration, undefined);
  const streams = streamsFromStates(parsed.rng.streams, parsed.settings.seed);
  assert.deepEqual(streams.calibration.state(), runStreams(parsed.settings.seed).calibration.state(), 'the appended stream comes fresh from the seed');
  assert.deepEqual(streams.loop.state(), state['rng']['streams']['loop']);
  assert.throws(() => streamsFromStates({ ...parsed.rng.streams, loop: undefined }, 1), /generator state "loop" is missing/);
  assert.throws(() => parseStateFile({ ...state, calibration: { temperature: -1, nllBefore: 1, nllAfter: 1, samples: 3, novelty: 'raw' } }, 'state.json'), /state\.json.*calibration\.temperature must be > 0/);
  await clf.dispose();
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-cal-'));
  dirs.push(d);
  return d;
}
