import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { fillTemplate, CIFAR100_TEMPLATES } from '../data/datasets/templates.js';
import { loadFeaturesDataset } from '../data/featuresDataset.js';
import { encodeSafetensors } from '../data/safetensors.js';
import { Rng } from '../engine/random.js';
import { DataError } from '../util/errors.js';
import { extractFeatures, mergeShards, type ExtractOptions } from './featureCache.js';
import { mirrorImage, type ClipEncoder, type RgbImage } from './types.js';

const DIM = 16;

/**
 * A deterministic stand-in for CLIP: 4x4 grid of mean colours → fixed random projection → unit norm.
 * Texts: a unit vector seeded by a hash of the text. Counts the images it encodes.
 */
class TestEncoder implements ClipEncoder {
  readonly info = { id: 'test-encoder', dim: DIM, dtype: 'fp32', logitScale: 100 };
  imagesEncoded = 0;
  private readonly w = new Float32Array(49 * DIM);
  constructor(private readonly imageScale = 1, private readonly textScale = 1) {
    new Rng(42).fillNormal(this.w);
  }
  async encodeImages(images: RgbImage[]): Promise<Float32Array> {
    this.imagesEncoded += images.length;
    const out = new Float32Array(images.length * DIM);
    images.forEach((img, b) => {
      const grid = new Float64Array(49);
      grid[48] = 1; // bias: never the zero vector
      for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
        const cell = (Math.floor((y * 4) / img.height) * 4 + Math.floor((x * 4) / img.width)) * 3;
        for (let ch = 0; ch < 3; ch++) grid[cell + ch]! += img.data[(y * img.width + x) * 3 + ch]! / 255 / ((img.width * img.height) / 16);
      }
      this.write(out, b, (k) => grid.reduce((s, g, i) => s + g * this.w[i * DIM + k]!, 0), this.imageScale);
    });
    return out;
  }
  async encodeTexts(texts: string[]): Promise<Float32Array> {
    const out = new Float32Array(texts.length * DIM);
    texts.forEach((t, b) => {
      let h = 7;
      for (const ch of t) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
      const v = new Float32Array(DIM);
      new Rng(h).fillNormal(v);
      this.write(out, b, (k) => v[k]!, this.textScale);
    });
    return out;
  }
  private write(out: Float32Array, row: number, value: (k: number) => number, scale: number): void {
    const v = Array.from({ length: DIM }, (_, k) => value(k));
    const norm = Math.hypot(...v) / scale;
    v.forEach((x, k) => (out[row * DIM + k] = x / norm));
  }
  async dispose(): Promise<void> {}
}

/** CIFAR-100 binary split with varied pixels and labels. */
function cifarBinary(n: number, salt: number): Buffer {
  const out = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    out[i * 3074] = i % 20;
    out[i * 3074 + 1] = (i * 37 + salt) % 100;
    for (let p = 0; p < 3072; p++) out[i * 3074 + 2 + p] = (i * 13 + p * (1 + (i % 5)) + salt) & 255;
  }
  return out;
}

const FILES = ['manifest.json', 'text.safetensors', 'train.safetensors', 'test.safetensors', 'bad_images.json'];

async function assertSameBytes(a: string, b: string): Promise<void> {
  for (const f of FILES) assert.ok((await readFile(path.join(a, f))).equals(await readFile(path.join(b, f))), `${f} differs between ${a} and ${b}`);
}

describe('feature cache', () => {
  let tmp: string, cifarRoot: string, full: string;
  const base = (out: string, extra: Partial<ExtractOptions> = {}): ExtractOptions => ({
    dataset: 'cifar100', root: cifarRoot, encoder: new TestEncoder(), out, batchSize: 16, chunkSize: 64, ...extra,
  });

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'clap4clip-cache-'));
    cifarRoot = path.join(tmp, 'cifar-100-binary');
    await mkdir(cifarRoot);
    await writeFile(path.join(cifarRoot, 'train.bin'), cifarBinary(300, 0));
    await writeFile(path.join(cifarRoot, 'test.bin'), cifarBinary(100, 3));
    await writeFile(path.join(cifarRoot, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `class_${i}`).join('\n'));
    full = path.join(tmp, 'full');
    const r = await extractFeatures(base(full));
    assert.deepEqual([r.complete, r.chunksComputed, r.chunksReused, r.badImages.length], [true, 7, 0, 0]);
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes a features dataset that loadFeaturesDataset accepts, with mirror views for train only', async () => {
    const ds = await loadFeaturesDataset(full);
    assert.equal(ds.manifest.encoder, 'test-encoder');
    assert.deepEqual(ds.manifest.templates, [...CIFAR100_TEMPLATES]);
    assert.equal(ds.manifest.classNames[7], 'class_7');
    assert.deepEqual(ds.manifest.extra?.['views'], { train: 2, test: 1 });
    assert.equal(ds.manifest.extra?.['dtype'], 'fp32');
    assert.deepEqual(ds.manifest.extra?.['memory'], { kind: 'total', size: 2000 });
    assert.deepEqual([ds.train.n, ds.train.views, ds.test.n, ds.test.views, ds.manifest.dim], [300, 2, 100, 1, DIM]);
    assert.equal(ds.train.labels[5], (5 * 37) % 100);
    assert.deepEqual(await readdir(full).then((f) => f.sort()), [...FILES].sort());
    // Row 5: view 0 is the image, view 1 its mirror image, exactly as the encoder gives them.
    const { readCifar100 } = await import('../data/datasets/cifar100.js');
    const img = await (await readCifar100(cifarRoot)).train[5]!.load();
    const enc = new TestEncoder();
    assert.deepEqual(ds.train.features.subarray(5 * 2 * DIM, 5 * 2 * DIM + DIM), await enc.encodeImages([img]));
    assert.deepEqual(ds.train.features.subarray(5 * 2 * DIM + DIM, 6 * 2 * DIM), await enc.encodeImages([mirrorImage(img)]));
    // Text e[c, p] is the prompt of template p with class c's name.
    const e = await enc.encodeTexts([fillTemplate(CIFAR100_TEMPLATES[4]!, 'class_7')]);
    assert.deepEqual(ds.text.subarray((7 * 18 + 4) * DIM, (7 * 18 + 5) * DIM), e);
    // The streamed split file is byte-identical to what the safetensors encoder writes.
    const expected = encodeSafetensors({ features: { dtype: 'F32', shape: [300, 2, DIM], data: ds.train.features }, labels: { dtype: 'I32', shape: [300], data: ds.train.labels } });
    assert.ok(Buffer.from(expected).equals(await readFile(path.join(full, 'train.safetensors'))));
  });

  it('an interrupted run resumes without recomputing finished chunks and gives identical bytes', async () => {
    const out = path.join(tmp, 'resumed');
    const ctl = new AbortController();
    await assert.rejects(extractFeatures(base(out, { signal: ctl.signal, progress: (p) => p.done >= 150 && ctl.abort() })), { name: 'AbortError' });
    const finished = await readdir(path.join(out, '.chunks', 'train'));
    assert.deepEqual(finished.filter((f) => f.endsWith('.safetensors')).sort(), ['0-63.safetensors', '64-127.safetensors']);
    await assert.rejects(readFile(path.join(out, 'manifest.json')), { code: 'ENOENT' });
    const encoder = new TestEncoder();
    const r = await extractFeatures(base(out, { encoder }));
    assert.deepEqual([r.chunksComputed, r.chunksReused], [5, 2]);
    assert.equal(encoder.imagesEncoded, (300 - 128) * 2 + 100);
    await assertSameBytes(full, out);
  });

  it('shards + merge equal the unsharded run byte for byte', async () => {
    const dirs = [0, 1, 2].map((i) => path.join(tmp, `shard${i}`));
    for (const [index, dir] of dirs.entries()) {
      const r = await extractFeatures(base(dir, { shard: { index, count: 3 } }));
      assert.equal(r.complete, false);
      assert.equal(r.chunksComputed, index === 0 ? 3 : 2);
    }
    await assert.rejects(mergeShards(dirs.slice(0, 2), path.join(tmp, 'm0')), /missing shard\(s\) 2 of 3/);
    await assert.rejects(mergeShards([dirs[0]!, dirs[0]!, dirs[1]!], path.join(tmp, 'm0')), /shard 0 given twice/);
    await assert.rejects(mergeShards([cifarRoot], path.join(tmp, 'm0')), /not a shard directory/);
    const merged = path.join(tmp, 'merged');
    await mergeShards([dirs[2]!, dirs[0]!, dirs[1]!], merged);
    await assertSameBytes(full, merged);
    await assert.rejects(extractFeatures(base(dirs[1]!, { shard: { index: 0, count: 3 } })), /holds shard 1\/3/);
  });

  it('refuses a finished dataset or chunks of another extraction unless overwrite', async () => {
    await assert.rejects(extractFeatures(base(full)), /already contains a features dataset/);
    const out = path.join(tmp, 'other');
    const ctl = new AbortController();
    await assert.rejects(extractFeatures(base(out, { signal: ctl.signal, progress: () => ctl.abort() })), { name: 'AbortError' });
    await assert.rejects(extractFeatures(base(out, { views: 1 })), (e: unknown) => e instanceof DataError && /different extraction \(differs in: views\)/.test(e.message));
    await extractFeatures(base(out, { overwrite: true }));
    await assertSameBytes(full, out);
  });

  it('fails on an encoder that returns non-unit embeddings, naming the prompt or image', async () => {
    await assert.rejects(extractFeatures(base(path.join(tmp, 'nonunit-text'), { encoder: new TestEncoder(1, 2) })), /norm 2\.00000 \(expected 1\) for prompt "a photo of a class 0\."/);
    const trainBin = path.join(cifarRoot, 'train.bin');
    await assert.rejects(extractFeatures(base(path.join(tmp, 'nonunit-image'), { encoder: new TestEncoder(0.5, 1) })), (e: unknown) => e instanceof Error && e.message.includes(`norm 0.500000 (expected 1) for image ${trainBin}#0`));
  });
});

describe('feature cache: bad images', () => {
  let root: string, tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'clap4clip-bad-'));
    root = path.join(tmp, 'data');
    for (const cls of ['cat', 'dog']) {
      for (let i = 0; i < 6; i++) {
        const img = sharp(Buffer.alloc(10 * 8 * 3, i * 40 + (cls === 'dog' ? 7 : 0)), { raw: { width: 10, height: 8, channels: 3 } });
        await mkdir(path.join(root, cls), { recursive: true });
        await (i % 2 ? img.jpeg() : img.png()).toFile(path.join(root, cls, `${i}.${i % 2 ? 'jpg' : 'png'}`));
      }
    }
    await writeFile(path.join(root, 'cat', 'corrupt.jpg'), 'definitely not a jpeg');
    await writeFile(path.join(root, 'dog', 'readme.txt'), 'not an image: ignored, and said so');
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const run = (out: string, extra: Partial<ExtractOptions>) => extractFeatures({ dataset: 'image-folder', root, encoder: new TestEncoder(), out, chunkSize: 4, batchSize: 4, ...extra });

  it('fail (default) stops with a DataError naming the file', async () => {
    const file = path.join(root, 'cat', 'corrupt.jpg');
    await assert.rejects(run(path.join(tmp, 'fail'), {}), (e: unknown) => e instanceof DataError && e.file === file && /cannot decode image .*--on-bad-image skip/.test(e.message));
  });

  it('skip lists the image in bad_images.json and in the log, and keeps every good image', async () => {
    const out = path.join(tmp, 'skip');
    const lines: string[] = [];
    const r = await run(out, { onBadImage: 'skip', log: (l) => lines.push(l) });
    assert.equal(r.badImages.length, 1);
    const bad = JSON.parse(await readFile(path.join(out, 'bad_images.json'), 'utf8')) as Array<{ key: string; split: string }>;
    assert.deepEqual(bad.map((b) => b.key), ['cat/corrupt.jpg']);
    assert.ok(lines.some((l) => l.includes(path.join(root, 'cat', 'corrupt.jpg'))), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('dog/readme.txt')));
    const ds = await loadFeaturesDataset(out);
    assert.equal(ds.train.n + ds.test.n, 12);
    assert.equal(ds.manifest.extra?.['badImages'], 1);
    assert.deepEqual(ds.manifest.classNames, ['cat', 'dog']);
    assert.equal(ds.manifest.templates.length, 80);
  });
});
