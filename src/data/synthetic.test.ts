import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clap4ClipError } from '../util/errors.js';
import type { FeaturesDataset, FeaturesSplit } from './types.js';
import {
  SYNTHETIC_DEFAULTS,
  SYNTHETIC_TINY,
  classTextFeatures,
  generateSyntheticDataset,
  nearestClassMeanAccuracy,
  resolveSyntheticConfig,
  syntheticClassNames,
  syntheticTemplates,
  zeroShotAccuracy,
  zeroShotPredictions,
  type SyntheticConfig,
} from './synthetic.js';

/** Mid-size world for the statistical tests: 50 classes in 10 superclasses, D = 128. */
const MID: Partial<SyntheticConfig> = {
  numClasses: 50,
  numSuperclasses: 10,
  dim: 128,
  trainPerClass: 100,
  testPerClass: 40,
  numTemplates: 8,
};

function bytes(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function rowNorms(data: Float32Array, d: number): Float64Array {
  const rows = data.length / d;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += data[r * d + i]! ** 2;
    out[r] = Math.sqrt(s);
  }
  return out;
}

function viewCosines(split: FeaturesSplit): Float64Array {
  const { n, dim: D, features } = split;
  const out = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    let d = 0;
    for (let i = 0; i < D; i++) d += features[2 * s * D + i]! * features[(2 * s + 1) * D + i]!;
    out[s] = d;
  }
  return out;
}

const mean = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
};

test('presets are CIFAR-100-shaped and tiny', () => {
  const d = SYNTHETIC_DEFAULTS;
  assert.deepEqual(
    [d.numClasses, d.numSuperclasses, d.trainPerClass, d.testPerClass, d.dim, d.numTemplates, d.views],
    [100, 20, 500, 100, 512, 18, 2],
  );
  const t = SYNTHETIC_TINY;
  assert.deepEqual([t.numClasses, t.dim, t.trainPerClass, t.testPerClass, t.numTemplates], [10, 32, 40, 10, 4]);
  assert.ok(Object.isFrozen(SYNTHETIC_DEFAULTS));
});

test('tiny dataset: shapes, manifest, names and templates', () => {
  const ds = generateSyntheticDataset(SYNTHETIC_TINY);
  const { numClasses: C, numTemplates: P, dim: D, trainPerClass, testPerClass } = SYNTHETIC_TINY;
  assert.equal(ds.numClasses, C);
  assert.equal(ds.numTemplates, P);
  assert.equal(ds.text.length, C * P * D);
  for (const [split, per] of [[ds.train, trainPerClass], [ds.test, testPerClass]] as const) {
    assert.equal(split.n, C * per);
    assert.equal(split.views, 2);
    assert.equal(split.dim, D);
    assert.equal(split.features.length, C * per * 2 * D);
    assert.equal(split.labels.length, C * per);
  }
  const m = ds.manifest;
  assert.equal(m.format, 'clap4clip-features');
  assert.equal(m.version, 1);
  assert.equal(m.encoder, 'synthetic');
  assert.equal(m.dim, D);
  assert.equal(m.logitScale, 100);
  assert.deepEqual(m.classNames.slice(0, 3), ['class_000', 'class_001', 'class_002']);
  assert.equal(m.classNames.length, C);
  assert.equal(m.templates.length, P);
  assert.equal(m.templates[0], 'a synthetic photo of a {}.');
  assert.equal(m.extra?.['synthetic'], true);
  assert.deepEqual(m.extra?.['generator'], { ...resolveSyntheticConfig(SYNTHETIC_TINY) });
  const sup = m.extra?.['superclassOf'] as number[];
  assert.equal(sup.length, C);
  const sizes = new Array<number>(SYNTHETIC_TINY.numSuperclasses).fill(0);
  for (const k of sup) sizes[k]! += 1;
  assert.deepEqual(sizes, [2, 2, 2, 2, 2]);
  // The manifest must survive JSON (it is written to manifest.json).
  assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
});

test('template and class-name generators', () => {
  const t = syntheticTemplates(40);
  assert.equal(new Set(t).size, 40);
  for (const s of t) assert.ok(s.includes('{}') && s.includes('synthetic'), s);
  assert.equal(syntheticTemplates(18).length, 18);
  assert.deepEqual(syntheticClassNames(2), ['class_000', 'class_001']);
  assert.equal(syntheticClassNames(1001)[1000], 'class_1000');
  assert.equal(syntheticClassNames(1001)[0], 'class_0000');
});

test('every text and image row has unit norm and finite values', () => {
  for (const cfg of [SYNTHETIC_TINY, { ...SYNTHETIC_TINY, dim: 4, numSuperclasses: 1, views: 1 as const }]) {
    const ds = generateSyntheticDataset(cfg);
    const D = ds.manifest.dim;
    for (const data of [ds.text, ds.train.features, ds.test.features]) {
      for (const v of data) assert.ok(Number.isFinite(v));
      for (const n of rowNorms(data, D)) assert.ok(Math.abs(n - 1) < 1e-5, `norm ${n}`);
    }
  }
});

test('deterministic: same seed -> identical bytes, different seed -> different data', () => {
  const a = generateSyntheticDataset({ ...SYNTHETIC_TINY, seed: 7 });
  const b = generateSyntheticDataset({ ...SYNTHETIC_TINY, seed: 7 });
  const c = generateSyntheticDataset({ ...SYNTHETIC_TINY, seed: 8 });
  const arrays = (ds: FeaturesDataset) => [ds.text, ds.train.features, ds.train.labels, ds.test.features, ds.test.labels];
  const aa = arrays(a);
  const bb = arrays(b);
  const cc = arrays(c);
  for (let i = 0; i < aa.length; i++) {
    assert.ok(bytes(aa[i]!).equals(bytes(bb[i]!)), `array ${i} differs for the same seed`);
  }
  for (const i of [0, 1, 3]) assert.ok(!bytes(aa[i]!).equals(bytes(cc[i]!)), `array ${i} equal across seeds`);
  assert.deepEqual(a.manifest, b.manifest);
  // Independent streams: changing only the training size leaves the text and the test set alone.
  const d = generateSyntheticDataset({ ...SYNTHETIC_TINY, seed: 7, trainPerClass: 13 });
  assert.ok(bytes(d.text).equals(bytes(a.text)));
  assert.ok(bytes(d.test.features).equals(bytes(a.test.features)));
  assert.ok(bytes(d.test.labels).equals(bytes(a.test.labels)));
  assert.equal(d.train.n, 13 * SYNTHETIC_TINY.numClasses);
});

test('view 1 (mirror image) differs from view 0 but is close', () => {
  const ds = generateSyntheticDataset({ ...SYNTHETIC_TINY, dim: 64 });
  const cos = viewCosines(ds.train);
  for (const c of cos) assert.ok(c > 0.8 && c < 0.999, `view cosine ${c}`);
  const m = mean(cos);
  assert.ok(m >= 0.9 && m <= 0.97, `mean view cosine ${m}`);
  // views: 1 stores one row per image.
  const one = generateSyntheticDataset({ ...SYNTHETIC_TINY, views: 1 });
  assert.equal(one.train.views, 1);
  assert.equal(one.train.features.length, one.train.n * SYNTHETIC_TINY.dim);
});

test('labels: in range, balanced, shuffled', () => {
  const ds = generateSyntheticDataset({ ...SYNTHETIC_TINY, numClasses: 12, numSuperclasses: 5 });
  for (const [split, per] of [[ds.train, SYNTHETIC_TINY.trainPerClass], [ds.test, SYNTHETIC_TINY.testPerClass]] as const) {
    const counts = new Array<number>(12).fill(0);
    for (const l of split.labels) {
      assert.ok(Number.isInteger(l) && l >= 0 && l < 12);
      counts[l]! += 1;
    }
    assert.deepEqual(counts, new Array<number>(12).fill(per));
    let sorted = true;
    for (let i = 1; i < split.n; i++) if (split.labels[i]! < split.labels[i - 1]!) sorted = false;
    assert.ok(!sorted, 'labels should come in a shuffled order');
  }
  // Uneven superclasses: 12 classes over 5 groups -> sizes 3,3,2,2,2.
  const sizes = new Array<number>(5).fill(0);
  for (const k of ds.manifest.extra?.['superclassOf'] as number[]) sizes[k]! += 1;
  assert.deepEqual([...sizes].sort(), [2, 2, 2, 3, 3]);
});

test('mid-size world: zero-shot in band and clearly below nearest class mean; CLIP-like cosines', () => {
  for (const seed of [0, 1]) {
    const ds = generateSyntheticDataset({ ...MID, seed });
    const zs = zeroShotAccuracy(ds, 'test');
    const zsTrain = zeroShotAccuracy(ds, 'train');
    const ncm = nearestClassMeanAccuracy(ds);
    assert.ok(zs >= 0.55 && zs <= 0.75, `seed ${seed}: zero-shot test accuracy ${zs}`);
    assert.ok(zsTrain >= 0.55 && zsTrain <= 0.75, `seed ${seed}: zero-shot train accuracy ${zsTrain}`);
    assert.ok(ncm >= 0.8 && ncm <= 0.97, `seed ${seed}: nearest class mean accuracy ${ncm}`);
    assert.ok(ncm - zs >= 0.1, `seed ${seed}: NCM ${ncm} not 10 points above zero-shot ${zs}`);

    // Image-text cosines like real CLIP: ~0.3 with the own class, lower with the others.
    const t = classTextFeatures(ds);
    const { n, dim: D, features, labels } = ds.test;
    let own = 0;
    let other = 0;
    for (let s = 0; s < n; s++) {
      for (let c = 0; c < ds.numClasses; c++) {
        let d = 0;
        for (let i = 0; i < D; i++) d += features[2 * s * D + i]! * t[c * D + i]!;
        if (c === labels[s]) own += d;
        else other += d;
      }
    }
    own /= n;
    other /= n * (ds.numClasses - 1);
    assert.ok(own >= 0.2 && own <= 0.35, `own-class image-text cosine ${own}`);
    assert.ok(other >= 0.1 && other < own - 0.05, `other-class image-text cosine ${other}`);
  }
});

test('zero-shot confuses siblings (same superclass) far more than other classes', () => {
  const ds = generateSyntheticDataset({ ...MID, seed: 3 });
  const sup = ds.manifest.extra?.['superclassOf'] as number[];
  const C = ds.numClasses;
  const groupSize = new Array<number>(MID.numSuperclasses!).fill(0);
  for (const k of sup) groupSize[k]! += 1;
  const pred = zeroShotPredictions(ds, 'test');
  let within = 0;
  let across = 0;
  let withinPairs = 0;
  let acrossPairs = 0;
  for (let s = 0; s < ds.test.n; s++) {
    const c = ds.test.labels[s]!;
    const siblings = groupSize[sup[c]!]! - 1;
    withinPairs += siblings;
    acrossPairs += C - 1 - siblings;
    const p = pred[s]!;
    if (p === c) continue;
    if (sup[p] === sup[c]) within++;
    else across++;
  }
  const withinRate = within / withinPairs; // errors per (sample, wrong sibling class)
  const acrossRate = across / acrossPairs; // errors per (sample, wrong non-sibling class)
  assert.ok(within > 0, 'some within-superclass confusion expected');
  assert.ok(withinRate > 5 * acrossRate, `within ${withinRate} vs across ${acrossRate}`);
  assert.ok(within / (within + across) > 0.4, `only ${within} of ${within + across} errors within superclass`);
});

test('accuracy helpers on a hand-made dataset', () => {
  // 2 classes, D = 2: texts point along x and y; test images are rotated so zero-shot gets 1 of 3,
  // while the class means of the training images classify all 3.
  const u = (a: number): [number, number] => [Math.cos(a), Math.sin(a)];
  const split = (pts: [number, number][], labels: number[]): FeaturesSplit => ({
    features: Float32Array.from(pts.flat()),
    labels: Int32Array.from(labels),
    n: labels.length,
    views: 1,
    dim: 2,
  });
  const ds: FeaturesDataset = {
    manifest: {
      format: 'clap4clip-features', version: 1, encoder: 'test', dim: 2, logitScale: 100,
      classNames: ['a', 'b'], templates: ['{}', 'x {}'],
    },
    text: Float32Array.from([1, 0, 1, 0, 0, 1, 0, 1]),
    numClasses: 2,
    numTemplates: 2,
    train: split([u(0.9), u(1.0), u(1.5), u(1.55)], [0, 0, 1, 1]),
    test: split([u(0.95), u(0.85), u(1.52)], [0, 0, 1]),
  };
  assert.equal(zeroShotAccuracy(ds, 'test'), 1 / 3);
  assert.equal(zeroShotAccuracy(ds, 'train'), 2 / 4);
  assert.equal(nearestClassMeanAccuracy(ds), 1);
});

test('config validation gives clear errors', () => {
  const bad: [Partial<SyntheticConfig>, RegExp][] = [
    [{ numClasses: 0 }, /numClasses must be an integer >= 1, got 0/],
    [{ numClasses: 2.5 }, /numClasses/],
    [{ trainPerClass: -1 }, /trainPerClass/],
    [{ testPerClass: 0 }, /testPerClass/],
    [{ dim: 3 }, /dim must be an integer >= 4/],
    [{ numTemplates: 0 }, /numTemplates/],
    [{ views: 3 as unknown as 1 }, /views must be 1 or 2/],
    [{ numClasses: 10, numSuperclasses: 11 }, /numSuperclasses must be an integer in \[1, 10\]/],
    [{ numSuperclasses: 0 }, /numSuperclasses/],
    [{ superclassShare: 1.5 }, /superclassShare must be a finite number in \[0, 1\]/],
    [{ withinClassNoise: Number.NaN }, /withinClassNoise/],
    [{ imageGap: -1 }, /imageGap/],
    [{ mirrorSemantic: 2 }, /mirrorSemantic/],
    [{ semanticDim: 0 }, /semanticDim/],
    [{ seed: 1.5 }, /seed must be a safe integer/],
    [{ numClass: 10 } as unknown as Partial<SyntheticConfig>, /unknown field "numClass"/],
    [{ numClasses: 100000, trainPerClass: 100000 }, /train split would hold/],
  ];
  for (const [cfg, re] of bad) {
    assert.throws(() => generateSyntheticDataset(cfg), (e: unknown) => {
      assert.ok(e instanceof Clap4ClipError, `expected Clap4ClipError for ${JSON.stringify(cfg)}`);
      assert.match(e.message, re);
      assert.match(e.message, /^synthetic dataset config: /);
      return true;
    });
  }
  // Missing fields take the defaults (undefined is the same as missing); a missing numSuperclasses
  // follows numClasses (groups of 5, as in CIFAR-100).
  assert.equal(resolveSyntheticConfig({}).numSuperclasses, 20);
  assert.equal(resolveSyntheticConfig({ numClasses: 50, numSuperclasses: undefined }).numSuperclasses, 10);
  assert.equal(resolveSyntheticConfig({ numClasses: 7 }).numSuperclasses, 1);
  assert.equal(resolveSyntheticConfig({ numClasses: 7, numSuperclasses: 7 }).numSuperclasses, 7);
  assert.equal(resolveSyntheticConfig({ numClasses: 7 }).dim, 512);
});
