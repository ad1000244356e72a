import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { Rng } from '../engine/random.js';
import { buildTinyClip } from '../encoders/fixtures/tinyClip.js';
import type { RgbImage } from '../encoders/types.js';
import { createClassifier, loadClassifier } from './classifier.js';
import type { IncrementalClassifier } from './types.js';

// A tiny random CLIP (D = 16, 32 px) in the transformers.js layout, loaded offline from its folder.
let root = '';
let modelDir = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'clap4clip-enc-'));
  modelDir = join(root, 'tiny-clip');
  await buildTinyClip(modelDir);
});
after(async () => { await rm(root, { recursive: true, force: true }); });

/** A 32 x 32 RGB image: a base colour plus seeded noise. */
function pixels(rgb: [number, number, number], seed: number): RgbImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(32 * 32 * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, rgb[i % 3]! + Math.round(40 * (rng.uniform() - 0.5))));
  return { width: 32, height: 32, data };
}
const png = (im: RgbImage): Promise<Buffer> => sharp(Buffer.from(im.data), { raw: { width: im.width, height: im.height, channels: 3 } }).png().toBuffer();
const pngs = (rgb: [number, number, number], seeds: number[]): Promise<Buffer[]> => Promise.all(seeds.map((s) => png(pixels(rgb, s))));

const TEMPLATES = ['a photo of a {}.', 'a {}.'];
const options = { templates: TEMPLATES, samples: 4, batchSize: 8, options: { epochs: 1, finetuneEpochs: 1, vga: { ffDim: 64 } } };

test('encoder mode: learn from PNG buffers (and a path and pixels), predict with shapes and determinism, save and load', async () => {
  const clf: IncrementalClassifier = await createClassifier({ encoder: modelDir, ...options });
  assert.equal(clf.info.dim, 16);
  assert.equal(clf.info.encoder, modelDir);
  const file = join(root, 'red-extra.png');
  await writeFile(file, await png(pixels([220, 30, 30], 99)));
  const r = await clf.learn({
    classes: [
      { name: 'red square', images: [...(await pngs([220, 30, 30], [1, 2, 3, 4, 5])), file] },
      { name: 'blue square', images: [...(await pngs([30, 30, 220], [6, 7, 8, 9, 10])), pixels([30, 30, 220], 11)] },
    ],
  });
  assert.equal(r.trainSamples, 12);
  await clf.learn({ classes: [{ name: 'green_square', images: await pngs([30, 220, 30], [12, 13, 14, 15]) }] });
  assert.deepEqual(clf.info.classes, ['red square', 'blue square', 'green_square']);
  assert.equal(clf.info.memorySize, 16);

  const queries = await pngs([200, 60, 60], [20, 21, 22]);
  const out = await clf.predict(queries, { topK: 2 });
  assert.equal(out.length, 3);
  for (const p of out) {
    assert.equal(p.top.length, 2);
    assert.ok(p.top.every((t) => clf.info.classes.includes(t.label) && t.probability >= 0 && t.probability <= 1));
    assert.ok(p.top[0]!.probability >= p.top[1]!.probability);
    assert.ok(Number.isFinite(p.entropy) && p.mcVariance >= 0 && Number.isFinite(p.noveltyScore));
  }
  // Determinism: the same image alone, among others, or as decoded pixels gives the same output.
  assert.deepEqual(await clf.predict([queries[1]!]), [(await clf.predict(queries))[1]]);
  assert.deepEqual((await clf.predict([queries[2]!, queries[0]!]))[0], (await clf.predict(queries))[2]);
  assert.deepEqual(await clf.predict([pixels([200, 60, 60], 20)]), [(await clf.predict(queries))[0]]);

  // The save records the encoder folder: loading brings the encoder back and predicts the same.
  await clf.calibrateNovelty(await pngs([220, 30, 30], [30, 31, 32, 33]));
  const saved = join(root, 'saved');
  await clf.save(saved);
  const loaded = await loadClassifier(saved);
  assert.deepEqual(await loaded.predict(queries), await clf.predict(queries));
  assert.ok((await loaded.predict(queries)).every((p) => typeof p.isNovel === 'boolean'));
  const featuresOnly = await loadClassifier(saved, { encoder: null });
  assert.deepEqual(featuresOnly.info.classes, clf.info.classes);
  await assert.rejects(() => featuresOnly.predict(queries), /images need a classifier created with an encoder/);

  await assert.rejects(() => clf.predict([Buffer.from('not an image')]), /predict \[0\] image 0: cannot decode the image/);
  await assert.rejects(() => clf.learn({ classes: [{ name: 'x', images: [join(root, 'missing.png')] }] }), /missing\.png: cannot decode the image/);
  await Promise.all([clf.dispose(), loaded.dispose()]);
});
