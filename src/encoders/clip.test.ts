/**
 * `loadClipEncoder` on the tiny CLIP built into a temp folder and loaded OFFLINE through
 * transformers.js, the same code path as a real model. The SigLIP row of the family table is not
 * exercised (no such model can be built or downloaded here).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutoImageProcessor, AutoTokenizer, RawImage } from '@huggingface/transformers';
import { Rng } from '../engine/random.js';
import { Clap4ClipError } from '../util/errors.js';
import { classTextFeatures, fitTokenIds, loadClipEncoder } from './clip.js';
import { referenceImageEmbeds, referenceTextEmbeds } from './fixtures/referenceClip.js';
import { buildTinyClip, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, type TinyClip } from './fixtures/tinyClip.js';
import { mirrorImage, type ClipEncoder, type RgbImage } from './types.js';

const D = 16, S = 32;

type Processor = Record<string, unknown> & ((images: unknown[]) => Promise<{ pixel_values: { dims: number[]; data: Float32Array } }>);
type Tokenizer = (t: string[], o: object) => { input_ids: number[][] };

function randomImage(rng: Rng, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { width, height, data };
}

function normalize(v: ArrayLike<number>): number[] {
  const n = Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
  return Array.from(v, (x) => x / n);
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

function assertUnitRows(x: Float32Array, rows: number): void {
  assert.equal(x.length, rows * D);
  for (let r = 0; r < rows; r++) assert.ok(Math.abs(Math.hypot(...x.subarray(r * D, (r + 1) * D)) - 1) < 1e-5, `row ${r} norm`);
}

/** Expects a Clap4ClipError whose message contains every one of `parts`. */
async function rejectsNaming(load: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(load, (e: unknown) => {
    assert.ok(e instanceof Clap4ClipError, `not a Clap4ClipError: ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" does not name ${p}`);
    return true;
  });
}

describe('loadClipEncoder (tiny CLIP, offline)', () => {
  let root: string, dir: string, model: TinyClip, enc: ClipEncoder;
  const rng = new Rng(5);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'clap4clip-clip-'));
    dir = join(root, 'tiny');
    model = await buildTinyClip(dir, { seed: 1, imageSize: S });
    enc = await loadClipEncoder(dir, { cacheDir: join(root, 'cache') });
  });
  after(async () => {
    await enc.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  /** A copy of the tiny model folder at `name`, for breaking. */
  const copy = (name: string): string => {
    const d = join(root, name);
    cpSync(dir, d, { recursive: true });
    return d;
  };

  it('reports the model; the logit scale is 100 unless config.json stores a trained one', async () => {
    assert.deepEqual(enc.info, { id: dir, dim: D, dtype: 'fp32', logitScale: 100 });
    const scaled = join(root, 'scaled');
    await buildTinyClip(scaled, { seed: 1, logitScale: 50 });
    const e = await loadClipEncoder(scaled, { cacheDir: join(root, 'cache') });
    assert.ok(Math.abs(e.info.logitScale - 50) < 1e-9);
    await e.dispose();
  });

  it('configures CLIPImageProcessor as CLIP at the fixture size', async () => {
    const p = (await AutoImageProcessor.from_pretrained(dir)) as unknown as Processor;
    assert.deepEqual([p['size'], p['crop_size'], p['do_center_crop'], p['resample']], [{ shortest_edge: S }, { height: S, width: S }, true, 3]);
    assert.deepEqual([p['image_mean'], p['image_std'], p['do_normalize'], p['do_rescale']], [CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, true, true]);
    // A wide image, thirds red / green / blue: resized to height S it is 3S wide, and the center crop
    // keeps the green third only (columns away from the edges, where bicubic mixes colors).
    const w = 120, h = 40, data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(y * w + x) * 3 + Math.floor(x / 40)] = 255;
    const { pixel_values } = await p([new RawImage(data, w, h, 3)]);
    assert.deepEqual(pixel_values.dims, [1, 3, S, S]);
    for (let c = 0; c < 3; c++) {
      const expected = ((c === 1 ? 1 : 0) - CLIP_IMAGE_MEAN[c]!) / CLIP_IMAGE_STD[c]!;
      for (let y = 0; y < S; y++) for (let x = 3; x < S - 3; x++) assert.ok(Math.abs(pixel_values.data[(c * S + y) * S + x]! - expected) < 1e-5, `c${c} y${y} x${x}`);
    }
  });

  it('image embeddings: [B, D], unit norm, equal to the reference forward of the processed pixels', async () => {
    const images = [randomImage(rng, 40, 32), randomImage(rng, 32, 50), randomImage(rng, 64, 64)];
    const e = await enc.encodeImages(images);
    assertUnitRows(e, 3);
    const p = (await AutoImageProcessor.from_pretrained(dir)) as unknown as Processor;
    const { pixel_values } = await p(images.map((im) => new RawImage(im.data, im.width, im.height, 3)));
    for (let i = 0; i < 3; i++) {
      const ref = normalize(referenceImageEmbeds(model.vision, pixel_values.data.subarray(i * 3 * S * S, (i + 1) * 3 * S * S)));
      assertClose(e.subarray(i * D, (i + 1) * D), ref, 1e-5, `image ${i}`);
    }
  });

  it('image embeddings: deterministic, batch-independent, and the mirror view differs', async () => {
    const images = [randomImage(rng, 48, 40), randomImage(rng, 33, 33), randomImage(rng, 100, 70)];
    const batch = await enc.encodeImages(images);
    assert.deepEqual(await enc.encodeImages(images), batch);
    for (let i = 0; i < 3; i++) assertClose(await enc.encodeImages([images[i]!]), batch.subarray(i * D, (i + 1) * D), 1e-6, `image ${i} alone`);
    const mirrored = await enc.encodeImages([mirrorImage(images[0]!)]);
    assertUnitRows(mirrored, 1);
    assert.ok(Math.max(...mirrored.map((v, j) => Math.abs(v - batch[j]!))) > 1e-3, 'mirror view should give another embedding');
    assert.equal((await enc.encodeImages([])).length, 0);
    await assert.rejects(enc.encodeImages([{ width: 4, height: 4, data: new Uint8Array(10) }]), Clap4ClipError);
  });

  it('text embeddings: [N, D], unit norm, equal to the reference forward of the token ids', async () => {
    const texts = ['a photo of a cat.', 'a blurry photo of the maple tree.', 'Café 東京'];
    const e = await enc.encodeTexts(texts);
    assertUnitRows(e, 3);
    const tok = (await AutoTokenizer.from_pretrained(dir)) as unknown as Tokenizer;
    const { input_ids } = tok(texts, { padding: false, truncation: false, return_tensor: false });
    input_ids.forEach((ids, i) => assertClose(e.subarray(i * D, (i + 1) * D), normalize(referenceTextEmbeds(model.text, ids)), 1e-5, `text ${i}`));
    // Padding to the longest text in the batch does not change a text's embedding (causal, EOS pooling).
    for (let i = 0; i < 3; i++) assertClose(await enc.encodeTexts([texts[i]!]), e.subarray(i * D, (i + 1) * D), 1e-6, `text ${i} alone`);
    assert.deepEqual(await enc.encodeTexts(texts), e);
  });

  it('texts longer than 77 tokens keep their EOS', async () => {
    const fit = fitTokenIds([[9, 1, 2, 3, 4, 8], [9, 5, 8]], 4, 8, 'longest');
    assert.deepEqual(Array.from(fit.ids, Number), [9, 1, 2, 8, 9, 5, 8, 8]);
    assert.deepEqual(Array.from(fit.mask, Number), [1, 1, 1, 1, 1, 1, 1, 0]);
    assert.equal(fitTokenIds([[9, 8]], 5, 0, 'max_length').length, 5);
    const long = await enc.encodeTexts([`a photo of ${'a very '.repeat(60)}big cat`]);
    assertUnitRows(long, 1);
  });

  it('classTextFeatures: [C, P, D], underscores become spaces', async () => {
    const templates = ['a photo of a {}.', 'a drawing of the {}.'];
    const f = await classTextFeatures(enc, ['maple_tree', 'cat'], templates);
    assertUnitRows(f, 4);
    assertClose(f.subarray(D, 2 * D), await enc.encodeTexts(['a drawing of the maple tree.']), 1e-6, 'e[0, 1]');
    assertClose(f.subarray(2 * D, 3 * D), await enc.encodeTexts(['a photo of a cat.']), 1e-6, 'e[1, 0]');
    await assert.rejects(classTextFeatures(enc, ['cat'], ['no placeholder']), Clap4ClipError);
  });

  it('loads a hub id from the cache folder laid out <org>/<name>', async () => {
    const cache = join(root, 'hub-cache');
    mkdirSync(join(cache, 'test-org'), { recursive: true });
    cpSync(dir, join(cache, 'test-org', 'tiny-clip'), { recursive: true });
    const e = await loadClipEncoder('test-org/tiny-clip', { cacheDir: cache });
    assert.deepEqual(await e.encodeTexts(['a photo of a cat.']), await enc.encodeTexts(['a photo of a cat.']));
    await e.dispose();
  });

  it('says what is missing and where it looked', async () => {
    const cache = join(root, 'empty-cache');
    await rejectsNaming(loadClipEncoder('Xenova/clip-vit-base-patch16', { cacheDir: cache }), 'not available offline', join(cache, 'Xenova', 'clip-vit-base-patch16'));
    await rejectsNaming(loadClipEncoder(join(root, 'nowhere')), 'not found', join(root, 'nowhere'));
    const noVision = copy('no-vision');
    rmSync(join(noVision, 'onnx', 'vision_model.onnx'));
    await rejectsNaming(loadClipEncoder(noVision), 'missing', join(noVision, 'onnx', 'vision_model.onnx'));
    await rejectsNaming(loadClipEncoder(dir, { dtype: 'q8' }), join(dir, 'onnx', 'text_model_quantized.onnx'), join(dir, 'onnx', 'vision_model_quantized.onnx'));
    await rejectsNaming(loadClipEncoder(dir, { dtype: 'fp64' }), 'unknown dtype');
  });

  it('names the file of a corrupt tokenizer, config or ONNX model', async () => {
    const badJson = copy('bad-json');
    writeFileSync(join(badJson, 'tokenizer.json'), '{"version": "1.0", "model": {');
    await rejectsNaming(loadClipEncoder(badJson), 'not valid JSON', join(badJson, 'tokenizer.json'));
    const badTok = copy('bad-tokenizer');
    writeFileSync(join(badTok, 'tokenizer.json'), '{"version": "1.0"}');
    await rejectsNaming(loadClipEncoder(badTok), 'cannot load the tokenizer', join(badTok, 'tokenizer.json'));
    const badOnnx = copy('bad-onnx');
    writeFileSync(join(badOnnx, 'onnx', 'text_model.onnx'), 'not a protobuf');
    await rejectsNaming(loadClipEncoder(badOnnx), 'cannot load the text tower', join(badOnnx, 'onnx', 'text_model.onnx'));
    const badVision = copy('bad-vision');
    writeFileSync(join(badVision, 'onnx', 'vision_model.onnx'), new Uint8Array(64));
    await rejectsNaming(loadClipEncoder(badVision), 'cannot load the vision tower', join(badVision, 'onnx', 'vision_model.onnx'));
    const otherType = copy('other-type');
    writeFileSync(join(otherType, 'config.json'), '{"model_type": "bert"}');
    await rejectsNaming(loadClipEncoder(otherType), 'unsupported model_type "bert"', join(otherType, 'config.json'));
  });
});
