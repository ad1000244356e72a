import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { createClassifier, loadClassifier } from './classifier.js';
import type { ClassExamples, IncrementalClassifier, LearnProgress } from './types.js';

// A tiny world (10 classes, D = 32, P = 4) with 100 test images per class: enough held-out data
// to check a 95 % true-positive rate within sampling error.
const world = generateSyntheticDataset({ ...SYNTHETIC_TINY, testPerClass: 100 });
const D = world.manifest.dim;
const P = world.numTemplates;
const names = world.manifest.classNames;
const dirs: string[] = [];
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-clf-'));
  dirs.push(d);
  return d;
};

/** View 0 of the samples of class c in `split`, [n, D], of the class's samples [from, to). */
function imagesOf(split: typeof world.train, c: number, from = 0, to = Infinity): Float32Array {
  const rows: number[] = [];
  let k = 0; // index of the sample within its class
  for (let i = 0; i < split.n; i++) {
    if (split.labels[i] !== c) continue;
    if (k >= from && k < to) rows.push(i);
    k++;
  }
  const out = new Float32Array(rows.length * D);
  rows.forEach((i, r) => out.set(split.features.subarray(i * split.views * D, (i * split.views + 1) * D), r * D));
  return out;
}
const classOf = (c: number): ClassExamples => ({ name: names[c]!, features: imagesOf(world.train, c), textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) });

/** Held-out images of classes [lo, hi) (their samples [from, to)) with their labels. */
function heldOut(lo: number, hi: number, from = 0, to = Infinity): { features: Float32Array; labels: number[] } {
  const parts = Array.from({ length: hi - lo }, (_, j) => imagesOf(world.test, lo + j, from, to));
  const features = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  const labels: number[] = [];
  let o = 0;
  parts.forEach((p, j) => { features.set(p, o); o += p.length; for (let i = 0; i < p.length / D; i++) labels.push(lo + j); });
  return { features, labels };
}

/** Zero-shot (argmax f . normalize(mean_p e)) accuracy over classes [0, C). */
function zeroShotAccuracy(x: { features: Float32Array; labels: number[] }, C: number): number {
  let ok = 0;
  x.labels.forEach((y, i) => {
    let best = -Infinity;
    let arg = -1;
    for (let c = 0; c < C; c++) {
      const t = new Float64Array(D);
      for (let p = 0; p < P; p++) for (let j = 0; j < D; j++) t[j]! += world.text[(c * P + p) * D + j]!;
      let s = 0;
      let n = 0;
      for (let j = 0; j < D; j++) { s += x.features[i * D + j]! * t[j]!; n += t[j]! ** 2; }
      if (s / Math.sqrt(n) > best) { best = s / Math.sqrt(n); arg = c; }
    }
    if (arg === y) ok++;
  });
  return ok / x.labels.length;
}

// One classifier learns classes 0-3, then 4-7; classes 8-9 stay unseen (novel).
const progress: LearnProgress[] = [];
let trainedPromise: Promise<IncrementalClassifier> | null = null;
function trained(): Promise<IncrementalClassifier> {
  trainedPromise ??= (async () => {
    const clf = await createClassifier({ dim: D, seed: 0 });
    await clf.learn({ classes: [0, 1, 2, 3].map(classOf), onProgress: (p) => progress.push(p) });
    await clf.learn({ classes: [4, 5, 6, 7].map(classOf), onProgress: (p) => progress.push(p) });
    return clf;
  })();
  return trainedPromise;
}

test('learns two tasks on features: held-out accuracy above zero-shot, labels in learning order, progress reported', async () => {
  const clf = await trained();
  assert.deepEqual(clf.info.classes, names.slice(0, 8));
  assert.deepEqual(clf.info.tasks, [{ index: 0, classStart: 0, classEnd: 4 }, { index: 1, classStart: 4, classEnd: 8 }]);
  assert.equal(clf.info.memorySize, 320, 'memory of 2000 in total keeps every one of the 8 x 40 training features');
  const test8 = heldOut(0, 8);
  const out = await clf.predict(test8.features, { topK: 3 });
  const accuracy = out.filter((p, i) => p.top[0]!.label === names[test8.labels[i]!]).length / out.length;
  const zeroShot = zeroShotAccuracy(test8, 8);
  assert.ok(accuracy > zeroShot + 0.03, `accuracy ${accuracy} should beat zero-shot ${zeroShot}`);
  // Progress: task 0 trains 5 epochs x ceil(160 / 32) = 25 iterations; task 1 trains on 320
  // (50 iterations) and finetunes 2 epochs on the memory (20 iterations).
  const phases = (task: number, phase: string) => progress.filter((p) => p.task === task && p.phase === phase);
  assert.deepEqual(phases(0, 'train').map((p) => p.iteration), Array.from({ length: 25 }, (_, i) => i + 1));
  assert.equal(phases(0, 'finetune').length, 0);
  assert.equal(phases(1, 'train').length, 50);
  assert.deepEqual(phases(1, 'finetune').map((p) => p.total), Array(20).fill(20));
  assert.ok(progress.every((p) => Number.isFinite(p.loss) && p.loss > 0));
});

test('outputs: probabilities sorted and summing to at most 1, entropy in [0, log C], MC variance >= 0, topK capped at C', async () => {
  const clf = await trained();
  const x = heldOut(0, 10, 0, 2);
  for (const p of await clf.predict(x.features, { topK: 20 })) {
    assert.equal(p.top.length, 8);
    assert.deepEqual(new Set(p.top.map((t) => t.label)), new Set(names.slice(0, 8)));
    const probs = p.top.map((t) => t.probability);
    assert.ok(probs.every((q, i) => i === 0 || q <= probs[i - 1]!));
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.ok(p.entropy >= 0 && p.entropy <= Math.log(8) + 1e-12);
    assert.ok(p.mcVariance >= 0 && Number.isFinite(p.noveltyScore));
    assert.equal(p.isNovel, null, 'no threshold before calibrateNovelty');
  }
  assert.equal((await clf.predict(x.features))[0]!.top.length, 5, 'topK defaults to 5');
});

test('the prediction of an input does not depend on what else is in the call', async () => {
  const clf = await trained();
  const x = heldOut(0, 10, 0, 3); // 30 inputs
  const all = await clf.predict(x.features);
  const row = (i: number) => x.features.slice(i * D, (i + 1) * D);
  for (const i of [0, 7, 29]) {
    assert.deepEqual(await clf.predict(row(i)), [all[i]], `input ${i} alone`);
    assert.deepEqual((await clf.predict([row(3), row(i), row(11)]))[1], all[i], `input ${i} among others`);
  }
  // Reversed order, after many other predictions.
  const reversed = await clf.predict(Array.from({ length: 30 }, (_, k) => row(29 - k)));
  assert.deepEqual(reversed.reverse(), all);
  // Features are normalized: a scaled copy predicts the same up to float rounding.
  const scaled = (await clf.predict(Float32Array.from(row(5), (v) => 3 * v)))[0]!;
  assert.deepEqual(scaled.top.map((t) => t.label), all[5]!.top.map((t) => t.label));
  assert.ok(Math.abs(scaled.noveltyScore - all[5]!.noveltyScore) < 1e-3);
});

test('novelty threshold at 95 % TPR on held-out known data: ~95 % TPR on other known data, novel classes flagged more often', async () => {
  const clf = await trained();
  const calibration = await clf.calibrateNovelty(heldOut(0, 8, 0, 50).features, { truePositiveRate: 0.95 });
  assert.equal(calibration.samples, 400);
  assert.equal(calibration.truePositiveRate, 380 / 400, 'exactly ceil(0.95 n) of the calibration inputs at or below the threshold');
  assert.deepEqual(clf.info.novelty, calibration);
  const known = await clf.predict(heldOut(0, 8, 50, 100).features);
  const novel = await clf.predict(heldOut(8, 10).features);
  const tpr = known.filter((p) => p.isNovel === false).length / known.length;
  // Sampling error of a rate over 400 + 400 inputs: sd about 0.015; allow 3.5 sd.
  assert.ok(Math.abs(tpr - 0.95) < 0.055, `TPR on other held-out known data ${tpr}`);
  // The tiny world's unseen classes sit close to the learned ones: over seeds 0-4 the classifier
  // flags 6-20 % of them against 4-5 % of known inputs. So the test asks for the direction, in
  // the flag rate and in the mean score, not for a margin.
  const flaggedNovel = novel.filter((p) => p.isNovel).length / novel.length;
  assert.ok(flaggedNovel > 1 - tpr, `novel flagged ${flaggedNovel}, known flagged ${1 - tpr}`);
  const meanScore = (ps: typeof known) => ps.reduce((s, p) => s + p.noveltyScore, 0) / ps.length;
  assert.ok(meanScore(novel) > meanScore(known), `mean novelty score: novel ${meanScore(novel)}, known ${meanScore(known)}`);
  assert.ok(known.every((p) => p.isNovel === p.noveltyScore > calibration.threshold));
});

test('errors say what is wrong', async () => {
  const clf = await trained();
  const empty = await createClassifier({ dim: D });
  const text = classOf(9).textFeatures!;
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['no encoder, no dim', () => createClassifier({}), /"encoder" .* or the feature width "dim"/],
    ['unknown option', () => createClassifier({ dim: D, methd: 'clap' } as never), /unknown option "methd": must be one of \[encoder, /],
    ['unknown method', () => createClassifier({ dim: D, method: 'clapp' as never }), /unknown method "clapp": must be one of \[clap, /],
    ['unknown method option', () => createClassifier({ dim: D, options: { laspWeigth: 1 } }), /laspWeigth.*did you mean "laspWeight"/],
    ['samples inside options', () => createClassifier({ dim: D, options: { samples: 4 } }), /"samples" is a classifier option/],
    ['unknown selector', () => createClassifier({ dim: D, selector: 'herd' as never }), /unknown exemplar selector "herd"/],
    ['no classes', () => empty.learn({ classes: [] }), /"classes" must be a non-empty array/],
    ['unknown class key', () => empty.learn({ classes: [{ name: 'a', feature: new Float32Array(D) } as never] }), /classes\[0\]: unknown key "feature"/],
    ['empty class', () => empty.learn({ classes: [{ name: 'a', textFeatures: text }] }), /class "a" \(classes\[0\]\): no examples/],
    ['duplicate in a task', () => empty.learn({ classes: [classOf(8), classOf(8)] }), /class "class_008" \(classes\[1\]\): appears twice/],
    ['already learned', () => clf.learn({ classes: [classOf(8), classOf(2)] }), /class "class_002" \(classes\[1\]\): already learned/],
    ['wrong feature width', () => empty.learn({ classes: [{ ...classOf(8), features: new Float32Array(D + 1).fill(1) }] }), /class "class_008".*33 values is not a whole number of rows of D = 32/],
    ['NaN feature', () => empty.learn({ classes: [{ ...classOf(8), features: Float32Array.from(imagesOf(world.train, 8), (v, i) => (i === 40 ? NaN : v)) }] }), /class "class_008".* row 1 holds a non-finite value \(NaN\) at column 8/],
    ['zero feature', () => empty.learn({ classes: [{ ...classOf(8), features: new Float32Array(D) }] }), /row 0 is all zeros/],
    ['no text features', () => empty.learn({ classes: [{ name: 'a', features: imagesOf(world.train, 8) }] }), /"textFeatures" \[P, 32\] is required without an encoder/],
    ['other template count', () => clf.learn({ classes: [{ ...classOf(8), textFeatures: text.slice(0, 2 * D) }] }), /2 templates, the classifier uses P = 4/],
    ['images without encoder', () => empty.learn({ classes: [{ ...classOf(8), images: ['cat.png'] }] }), /images need a classifier created with an encoder/],
    ['predict before learn', () => empty.predict(new Float32Array(D).fill(1)), /has learned no classes yet/],
    ['predict wrong width', () => clf.predict([new Float32Array(D - 1).fill(1)]), /predict \[0\]: a feature must have D = 32 values, got 31/],
    ['predict image without encoder', () => clf.predict(['x.png']), /images need a classifier created with an encoder/],
    ['bad topK', () => clf.predict(new Float32Array(D).fill(1), { topK: 0 }), /"topK" must be an integer >= 1/],
    ['bad rate', () => clf.calibrateNovelty(new Float32Array(D).fill(1), { truePositiveRate: 1.5 }), /truePositiveRate must be in \(0, 1\]/],
    ['nothing saved there', () => loadClassifier(join(tmpdir(), 'clap4clip-no-such-save')), /latest: save pointer .* is missing/],
  ];
  const before = await clf.predict(heldOut(0, 8, 0, 1).features);
  for (const [name, fn, pattern] of cases) await assert.rejects(fn, pattern, name);
  // Failed calls changed nothing.
  assert.deepEqual(clf.info.classes, names.slice(0, 8));
  assert.deepEqual(await clf.predict(heldOut(0, 8, 0, 1).features), before);
  assert.deepEqual(empty.info.classes, []);
});

test('save -> load: identical predictions and threshold; learning continues identically; corruption is refused', async () => {
  const clf = await trained();
  await clf.calibrateNovelty(heldOut(0, 8, 0, 20).features);
  const dir = await tempDir();
  await clf.save(dir);
  const second = await clf.save(dir); // replaces the first save
  const entries = (await readdir(dir)).sort();
  assert.deepEqual(entries, ['latest', second.split('/').at(-1)!].sort());
  const loaded = await loadClassifier(dir);
  assert.deepEqual(loaded.info, clf.info);
  const x = heldOut(0, 10, 0, 5).features;
  assert.deepEqual(await loaded.predict(x), await clf.predict(x));

  // The generator states are saved too: the next task is learned exactly as without the save.
  await loaded.learn({ classes: [classOf(8), classOf(9)] });
  await clf.learn({ classes: [classOf(8), classOf(9)] });
  assert.equal(clf.info.novelty, null, 'learning clears the threshold');
  assert.deepEqual(await loaded.predict(x), await clf.predict(x));

  // A modified parameter file fails its checksum; a save directory without COMPLETE is not loaded.
  const params = join(second, 'params.safetensors');
  const bytes = await readFile(params);
  bytes[bytes.length - 1] ^= 1;
  await writeFile(params, bytes);
  await assert.rejects(() => loadClassifier(dir), /params\.safetensors: content does not match the checksum/);
  await rm(join(second, 'COMPLETE'));
  await assert.rejects(() => loadClassifier(dir), /COMPLETE: COMPLETE marker \(the save is incomplete\) is missing/);
  await Promise.all([clf.dispose(), loaded.dispose()]);
  await assert.rejects(() => clf.predict(x), /predict: the classifier was disposed/);
});
