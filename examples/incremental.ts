/**
 * An incremental classifier on the built-in synthetic benchmark (the CLIP-like feature world of
 * `clap4clip run`, preset `benchmark`: 100 classes, D = 256): learn two tasks of 10 classes,
 * predict, calibrate (temperature and novelty threshold) on held-out images of the learned
 * classes, then predict learned and never seen classes again with their uncertainty. Features mode: each class brings its image features and
 * its per-template text features, as a CLIP encoder would produce them.
 *
 *   npx tsc -p tsconfig.json && node dist/examples/incremental.js
 *
 * Columns: p(raw) = probability before calibration (softmax of the mean over T = 20 samples of the
 * logits), p(cal) = after temperature scaling; entropy of the calibrated probabilities (nats);
 * MC-var = variance of the logits over the T samples (mean over classes); novelty =
 * -logsumexp(mean logits) (raw logits), higher = more novel; novel? = novelty above the
 * threshold. CLAP's raw probabilities are very peaked on this world (logit scale 100 times VGA
 * outputs of norm about sqrt(D)): almost every prediction, right or wrong, known class or not, has
 * p = 1.000. The temperature fitted on held-out images (T of about 40) makes them mean something;
 * the ranking, and so every predicted label, is unchanged.
 *
 * Expected output (timings vary; the last digits may vary between machines):
 *
 *   synthetic world: 100 classes, D = 256, 18 templates (synthetic features, not real images)
 *   task 1: learned class_000 .. class_009 from 600 images: 95 iterations, loss 9.83 (17.8 s)
 *   task 2: learned class_010 .. class_019 from 600 images: 190 iterations, loss 6.43, finetuning 76 iterations, loss 11.31 (39.8 s)
 *   temperature T = 39.04 fitted on 300 held-out images (NLL 6.882 -> 0.302)
 *   novelty threshold -225.8: 95.0 % of 300 held-out images of learned classes lie below it
 *
 *   input       truth      prediction   p(raw) p(cal) runner-up    p(cal) entropy  MC-var   novelty  novel?
 *   learned #1  class_000  class_000    1.000  0.871  class_006    0.080  0.532    1669.9   -289.8   no
 *   learned #2  class_004  class_004    1.000  0.953  class_003    0.047  0.189    1684.5   -597.7   no
 *   learned #3  class_008  class_008    1.000  0.997  class_014    0.002  0.023    1949.6   -376.0   no
 *   learned #4  class_012  class_012    0.998  0.307  class_007    0.263  1.728    1571.4   -204.1   yes
 *   learned #5  class_016  class_016    1.000  0.998  class_010    0.001  0.014    1799.3   -424.5   no
 *   unseen #1   class_020  class_001    1.000  0.450  class_000    0.160  1.731    1746.4   -186.8   yes
 *   unseen #2   class_022  class_017    1.000  0.313  class_000    0.181  2.139    1697.1   -98.5    yes
 *   unseen #3   class_024  class_015    1.000  0.593  class_017    0.131  1.513    1768.9   -173.9   yes
 *   unseen #4   class_026  class_008    1.000  0.399  class_019    0.251  1.640    1707.6   -136.3   yes
 *   unseen #5   class_028  class_018    1.000  0.463  class_012    0.190  1.582    1837.9   -225.1   yes
 *
 *   learned classes: raw mean p 0.999, 98.7 % at p >= 0.999; calibrated mean p 0.905, 16.7 % at p >= 0.999
 *   unseen classes:  raw mean p 0.991, 93.3 % at p >= 0.999; calibrated mean p 0.672, 1.3 % at p >= 0.999
 *
 *   accuracy on 300 held-out images of the 20 learned classes: 0.933
 *   flagged novel: 3.3 % of held-out learned-class images, 44.0 % of 300 images of 10 unseen classes
 */
import { createClassifier, generateSyntheticDataset, SYNTHETIC_PRESETS, type FeaturesDataset, type LearnProgress, type Prediction } from '../src/index.js';

const TASKS = [[0, 10], [10, 20]] as const; // two tasks of 10 classes, in label order
const UNSEEN: readonly [number, number] = [20, 30]; // classes never learned
const CALIBRATION_PER_CLASS = 15; // of the 30 test images per class; the other 15 are for evaluation

const world = generateSyntheticDataset(SYNTHETIC_PRESETS.benchmark);
const { dim: D, classNames } = world.manifest;
const P = world.numTemplates;
console.log(`synthetic world: ${world.numClasses} classes, D = ${D}, ${P} templates (synthetic features, not real images)`);

/** View 0 of the samples of `split` with label c: [n, D] (`from`, `to`: which of the class's samples). */
function imagesOf(split: FeaturesDataset['train'], c: number, from = 0, to = Infinity): Float32Array {
  const rows: Float32Array[] = [];
  let k = 0;
  for (let i = 0; i < split.n; i++) {
    if (split.labels[i] !== c) continue;
    if (k >= from && k < to) rows.push(split.features.subarray(i * split.views * D, (i * split.views + 1) * D));
    k++;
  }
  const out = new Float32Array(rows.length * D);
  rows.forEach((r, i) => out.set(r, i * D));
  return out;
}

/** The held-out images of classes [lo, hi) with their true labels. */
function testSet(lo: number, hi: number, from: number, to: number): { features: Float32Array; truth: string[] } {
  const parts = [];
  const truth: string[] = [];
  for (let c = lo; c < hi; c++) {
    const f = imagesOf(world.test, c, from, to);
    parts.push(f);
    for (let i = 0; i < f.length / D; i++) truth.push(classNames[c]!);
  }
  const features = new Float32Array(truth.length * D);
  let o = 0;
  for (const f of parts) { features.set(f, o); o += f.length; }
  return { features, truth };
}

const clf = await createClassifier({ dim: D, logitScale: world.manifest.logitScale, seed: 0 });

/** A live progress line on a terminal (nothing when the output is piped). */
function showProgress(p: LearnProgress): void {
  if (process.stdout.isTTY) process.stdout.write(`\r  task ${p.task + 1} ${p.phase} ${p.iteration}/${p.total}, loss ${p.loss.toFixed(2)}\x1b[K`);
}

for (const [t, [lo, hi]] of TASKS.entries()) {
  const classes = [];
  for (let c = lo; c < hi; c++) {
    classes.push({ name: classNames[c]!, features: imagesOf(world.train, c), textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) });
  }
  const images = classes.reduce((n, c) => n + c.features.length / D, 0);
  const r = await clf.learn({ classes, onProgress: showProgress });
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
  const finetune = r.iterations.finetune > 0 ? `, finetuning ${r.iterations.finetune} iterations, loss ${r.loss.finetune!.toFixed(2)}` : '';
  console.log(`task ${t + 1}: learned ${classNames[lo]} .. ${classNames[hi - 1]} from ${images} images: ${r.iterations.train} iterations, loss ${r.loss.train!.toFixed(2)}${finetune} (${r.seconds.toFixed(1)} s)`);
}

// Predictions on images the classifier has not seen: of learned classes, and of unseen classes.
const learned = [TASKS[0][0], TASKS[TASKS.length - 1]![1]] as const;
const known = testSet(learned[0], learned[1], CALIBRATION_PER_CLASS, Infinity);
const unseen = testSet(UNSEEN[0], UNSEEN[1], 0, Infinity);
const rawOut = await clf.predict(known.features, { topK: 2 });
const rawUnseen = await clf.predict(unseen.features, { topK: 2 });

// Calibration on held-out labelled images of the learned classes (never trained on): the
// temperature of the probabilities, and the novelty threshold at 95 % of them kept as known.
const heldOut = [];
for (let c = learned[0]; c < learned[1]; c++) heldOut.push({ name: classNames[c]!, features: imagesOf(world.test, c, 0, CALIBRATION_PER_CLASS) });
const calibration = await clf.calibrate({ classes: heldOut }, { truePositiveRate: 0.95 });
const t = calibration.temperature;
console.log(`temperature T = ${t.temperature.toFixed(2)} fitted on ${t.samples} held-out images (NLL ${t.nllBefore.toFixed(3)} -> ${t.nllAfter.toFixed(3)})`);
console.log(`novelty threshold ${calibration.novelty.threshold.toFixed(1)}: ${(100 * calibration.novelty.truePositiveRate).toFixed(1)} % of ${calibration.novelty.samples} held-out images of learned classes lie below it`);
const knownOut = await clf.predict(known.features, { topK: 2 });
const unseenOut = await clf.predict(unseen.features, { topK: 2 });

const row = (cells: (string | number)[]): string => cells.map((c, i) => String(c).padEnd([12, 11, 13, 7, 7, 13, 7, 9, 9, 9, 6][i]!)).join('').trimEnd();
const show = (name: string, truth: string, raw: Prediction, p: Prediction): string => row([
  name, truth, p.top[0]!.label, raw.top[0]!.probability.toFixed(3), p.top[0]!.probability.toFixed(3), p.top[1]!.label, p.top[1]!.probability.toFixed(3),
  p.entropy.toFixed(3), p.mcVariance.toFixed(1), p.noveltyScore.toFixed(1), p.isNovel ? 'yes' : 'no',
]);
console.log();
console.log(row(['input', 'truth', 'prediction', 'p(raw)', 'p(cal)', 'runner-up', 'p(cal)', 'entropy', 'MC-var', 'novelty', 'novel?']));
// Every 60th held-out image: a few learned classes and a few unseen ones.
for (let i = 0; i < knownOut.length; i += 60) console.log(show(`learned #${i / 60 + 1}`, known.truth[i]!, rawOut[i]!, knownOut[i]!));
for (let i = 0; i < unseenOut.length; i += 60) console.log(show(`unseen #${i / 60 + 1}`, unseen.truth[i]!, rawUnseen[i]!, unseenOut[i]!));

/** Mean top-1 probability and the share of predictions at p >= 0.999. */
const confidence = (out: Prediction[]): string => `mean p ${(out.reduce((s, p) => s + p.top[0]!.probability, 0) / out.length).toFixed(3)}, ${(100 * out.filter((p) => p.top[0]!.probability >= 0.999).length / out.length).toFixed(1)} % at p >= 0.999`;
console.log();
console.log(`learned classes: raw ${confidence(rawOut)}; calibrated ${confidence(knownOut)}`);
console.log(`unseen classes:  raw ${confidence(rawUnseen)}; calibrated ${confidence(unseenOut)}`);
const accuracy = knownOut.filter((p, i) => p.top[0]!.label === known.truth[i]).length / knownOut.length;
const flagged = (out: Prediction[]): string => (100 * out.filter((p) => p.isNovel).length / out.length).toFixed(1);
console.log();
console.log(`accuracy on ${knownOut.length} held-out images of the ${learned[1] - learned[0]} learned classes: ${accuracy.toFixed(3)}`);
console.log(`flagged novel: ${flagged(knownOut)} % of held-out learned-class images, ${flagged(unseenOut)} % of ${unseenOut.length} images of ${UNSEEN[1] - UNSEEN[0]} unseen classes`);
await clf.dispose();
