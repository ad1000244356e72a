/**
 * An incremental classifier on the built-in synthetic benchmark (the CLIP-like feature world of
 * `clap4clip run`, preset `benchmark`: 100 classes, D = 256): learn two tasks of 10 classes, set
 * the novelty threshold on held-out images of the learned classes, then predict learned and never
 * seen classes with their uncertainty. Features mode: each class brings its image features and
 * its per-template text features, as a CLIP encoder would produce them.
 *
 *   npx tsc -p tsconfig.json && node dist/examples/incremental.js
 *
 * Columns: p = probability (softmax of the mean over T = 20 samples of the logits); entropy of
 * those probabilities (nats); MC var = variance of the logits over the T samples (mean over
 * classes); novelty = -logsumexp(mean logits), higher = more novel; novel? = novelty above the
 * threshold. CLAP's probabilities are very peaked on this world (logit scale 100 times VGA
 * outputs of norm about sqrt(D)), so its uncertainty shows in the novelty score more than in p.
 *
 * Expected output (timings vary; the last digits may vary between machines):
 *
 *   synthetic world: 100 classes, D = 256, 18 templates (synthetic features, not real images)
 *   task 1: learned class_000 .. class_009 from 600 images: 95 iterations, loss 9.88 (2.0 s)
 *   task 2: learned class_010 .. class_019 from 600 images: 190 iterations, loss 7.41, finetuning 76 iterations, loss 12.54 (4.2 s)
 *   novelty threshold -252.9: 95.0 % of 300 held-out images of learned classes lie below it
 *
 *   input       truth      prediction   p      runner-up    p      entropy  MC var   novelty  novel?
 *   learned #1  class_000  class_006    1.000  class_000    0.000  0.000    1904.8   -249.0   yes
 *   learned #2  class_004  class_004    1.000  class_003    0.000  0.000    1881.8   -603.1   no
 *   learned #3  class_008  class_008    1.000  class_014    0.000  0.000    1979.6   -396.2   no
 *   learned #4  class_012  class_012    1.000  class_007    0.000  0.000    1829.3   -197.5   yes
 *   learned #5  class_016  class_016    1.000  class_012    0.000  0.000    2136.3   -455.8   no
 *   unseen #1   class_020  class_001    0.825  class_009    0.175  0.463    1811.4   -164.2   yes
 *   unseen #2   class_022  class_006    0.934  class_017    0.066  0.245    1931.6   -63.6    yes
 *   unseen #3   class_024  class_015    1.000  class_002    0.000  0.000    1909.9   -164.6   yes
 *   unseen #4   class_026  class_008    1.000  class_019    0.000  0.000    1822.9   -141.2   yes
 *   unseen #5   class_028  class_009    1.000  class_008    0.000  0.000    1966.1   -211.9   yes
 *
 *   accuracy on 300 held-out images of the 20 learned classes: 0.920
 *   flagged novel: 3.0 % of held-out learned-class images, 42.7 % of 300 images of 10 unseen classes
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

// The novelty threshold: 95 % of held-out images of learned classes must not be flagged.
const learned = [TASKS[0][0], TASKS[TASKS.length - 1]![1]] as const;
const calibration = await clf.calibrateNovelty(testSet(learned[0], learned[1], 0, CALIBRATION_PER_CLASS).features, { truePositiveRate: 0.95 });
console.log(`novelty threshold ${calibration.threshold.toFixed(1)}: ${(100 * calibration.truePositiveRate).toFixed(1)} % of ${calibration.samples} held-out images of learned classes lie below it`);

// Predictions on images the classifier has not seen: of learned classes, and of unseen classes.
const known = testSet(learned[0], learned[1], CALIBRATION_PER_CLASS, Infinity);
const unseen = testSet(UNSEEN[0], UNSEEN[1], 0, Infinity);
const knownOut = await clf.predict(known.features, { topK: 2 });
const unseenOut = await clf.predict(unseen.features, { topK: 2 });

const row = (cells: (string | number)[]): string => cells.map((c, i) => String(c).padEnd([12, 11, 13, 7, 13, 7, 9, 9, 9, 6][i]!)).join('').trimEnd();
const show = (name: string, truth: string, p: Prediction): string => row([
  name, truth, p.top[0]!.label, p.top[0]!.probability.toFixed(3), p.top[1]!.label, p.top[1]!.probability.toFixed(3),
  p.entropy.toFixed(3), p.mcVariance.toFixed(1), p.noveltyScore.toFixed(1), p.isNovel ? 'yes' : 'no',
]);
console.log();
console.log(row(['input', 'truth', 'prediction', 'p', 'runner-up', 'p', 'entropy', 'MC var', 'novelty', 'novel?']));
// Every 60th held-out image: a few learned classes and a few unseen ones.
for (let i = 0; i < knownOut.length; i += 60) console.log(show(`learned #${i / 60 + 1}`, known.truth[i]!, knownOut[i]!));
for (let i = 0; i < unseenOut.length; i += 60) console.log(show(`unseen #${i / 60 + 1}`, unseen.truth[i]!, unseenOut[i]!));

const accuracy = knownOut.filter((p, i) => p.top[0]!.label === known.truth[i]).length / knownOut.length;
const flagged = (out: Prediction[]): string => (100 * out.filter((p) => p.isNovel).length / out.length).toFixed(1);
console.log();
console.log(`accuracy on ${knownOut.length} held-out images of the ${learned[1] - learned[0]} learned classes: ${accuracy.toFixed(3)}`);
console.log(`flagged novel: ${flagged(knownOut)} % of held-out learned-class images, ${flagged(unseenOut)} % of ${unseenOut.length} images of ${UNSEEN[1] - UNSEEN[0]} unseen classes`);
await clf.dispose();
