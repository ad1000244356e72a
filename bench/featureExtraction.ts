/**
 * Feature-extraction throughput on a ViT-B/16-sized vision tower with random weights (built once
 * by the tiny-CLIP builder into a cache folder under os.tmpdir(), about 350 MB, reused after):
 *   (a) bare onnxruntime on pre-made pixel tensors, batch 32;
 *   (b) the full pipeline at batch 32: decode PNG/JPEG buffers (made with sharp) -> transformers.js
 *       CLIPImageProcessor (resize 224 bicubic, center crop, mean/std) -> encode -> L2-normalize.
 * Both use the same session settings (2 intra-op threads by default) and run interleaved, batch by
 * batch, so drift of the machine hits both alike. The target is ratio = (b) / (a) >= 0.9.
 * Run alone: `node dist/bench/featureExtraction.js [--batches N] [--threads N] [--batch N] [--width W --height H]`.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadClipEncoder } from '../src/encoders/clip.js';
import { buildTinyClip, VIT_B16_VISION } from '../src/encoders/fixtures/tinyClip.js';
import type { RgbImage } from '../src/encoders/types.js';
import { Rng } from '../src/engine/random.js';

export interface FeatureBenchOptions {
  /** Images per batch (32). */
  batch?: number;
  /** onnxruntime intra-op threads for both sides (2). */
  threads?: number;
  /** Timed batches per side (4), after one warm-up batch each. */
  batches?: number;
  /** Where the random ViT-B/16 folder is cached (`<os.tmpdir()>/clap4clip-bench`). */
  cacheDir?: string;
  /** Size of the source images, ImageNet-like by default (500 x 375). */
  sourceWidth?: number;
  sourceHeight?: number;
  log?: (message: string) => void;
}

export interface FeatureBenchResult {
  model: string;
  modelBuiltSeconds: number | null;
  batch: number;
  threads: number;
  batches: number;
  source: string;
  /** Medians over the timed batches. */
  bareOnnxImagesPerSecond: number;
  imagesPerSecond: number;
  ratio: number;
  bareOnnxMsPerBatch: number;
  pipelineMsPerBatch: number;
  decodeMsPerBatch: number;
  /** From the fastest batch of each side: other jobs only ever add time, so on a shared machine
   *  this is the least disturbed figure (when `disturbed`, trust neither much). */
  best: { bareOnnxImagesPerSecond: number; imagesPerSecond: number; ratio: number };
  /** The 1-minute load average exceeded the core count + 1 (this run itself keeps the cores busy):
   *  other jobs shared the CPU. A heuristic: the load average lags by about a minute. */
  disturbed: boolean;
  cpus: string;
  /** 1-minute load average before and after the run. */
  loadAverage: [number, number];
}

const MODEL_NAME = 'vit-b16-random-seed0-v1';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The cached random ViT-B/16 folder, built when missing (the builder renames it into place whole). */
async function benchModel(cacheDir: string, log: (m: string) => void): Promise<{ dir: string; builtSeconds: number | null }> {
  const dir = join(cacheDir, MODEL_NAME);
  if (existsSync(join(dir, 'onnx', 'vision_model.onnx'))) return { dir, builtSeconds: null };
  log(`building the random ViT-B/16 model in ${dir} (about 350 MB)...`);
  const t0 = performance.now();
  await buildTinyClip(dir, { ...VIT_B16_VISION, seed: 0, overwrite: true });
  return { dir, builtSeconds: (performance.now() - t0) / 1000 };
}

/** Smooth random images (gradients + blobs, so JPEG sizes are realistic), half PNG, half JPEG. */
async function sourceImages(n: number, width: number, height: number, rng: Rng): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const data = Buffer.alloc(width * height * 3);
    const f = [rng.uniform() * 0.05, rng.uniform() * 0.05, rng.uniform() * 6], base = [rng.int(256), rng.int(256), rng.int(256)];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = (base[c]! + 100 * Math.sin(f[0]! * x + f[1]! * y + f[2]! + c) + rng.int(16)) & 255;
      }
    }
    const img = sharp(data, { raw: { width, height, channels: 3 } });
    out.push(await (i % 2 ? img.png() : img.jpeg({ quality: 90 })).toBuffer());
  }
  return out;
}

/** Decodes to 8-bit RGB, as a dataset loader would (grayscale and alpha folded to sRGB). */
async function decode(buf: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(buf).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

export async function benchFeatureExtraction(opts: FeatureBenchOptions = {}): Promise<FeatureBenchResult> {
  const { batch = 32, threads = 2, batches = 4, sourceWidth = 500, sourceHeight = 375, log = (m: string) => console.error(m) } = opts;
  const { dir, builtSeconds } = await benchModel(opts.cacheDir ?? join(tmpdir(), 'clap4clip-bench'), log);
  const S = VIT_B16_VISION.imageSize!, rng = new Rng(0);

  // (a) onnxruntime alone, with the session options transformers.js gets from loadClipEncoder.
  const bare = await ort.InferenceSession.create(join(dir, 'onnx', 'vision_model.onnx'), { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 });
  const pixels = new Float32Array(batch * 3 * S * S);
  rng.fillNormal(pixels);
  const feeds = { pixel_values: new ort.Tensor('float32', pixels, [batch, 3, S, S]) };
  // (b) the pipeline, on `batches + 1` distinct batches of encoded images.
  const encoder = await loadClipEncoder(dir, { threads });
  const buffers = await sourceImages(batch * (batches + 1), sourceWidth, sourceHeight, rng);

  const loadBefore = loadavg()[0]!;
  const bareMs: number[] = [], pipeMs: number[] = [], decodeMs: number[] = [];
  for (let k = 0; k <= batches; k++) {
    const t0 = performance.now();
    await bare.run(feeds);
    const t1 = performance.now();
    const images = await Promise.all(buffers.slice(k * batch, (k + 1) * batch).map(decode));
    const t2 = performance.now();
    const e = await encoder.encodeImages(images);
    const t3 = performance.now();
    if (e.length !== batch * encoder.info.dim) throw new Error(`pipeline returned ${e.length} values`);
    log(`batch ${k}${k === 0 ? ' (warm-up)' : ''}: bare ${(t1 - t0).toFixed(0)} ms, pipeline ${(t3 - t1).toFixed(0)} ms (decode ${(t2 - t1).toFixed(0)} ms)`);
    if (k === 0) continue;
    bareMs.push(t1 - t0);
    pipeMs.push(t3 - t1);
    decodeMs.push(t2 - t1);
  }
  await encoder.dispose();
  await bare.release();

  const loadAfter = loadavg()[0]!;
  const bareBest = Math.min(...bareMs), pipeBest = Math.min(...pipeMs);
  const bareMedian = median(bareMs), pipeMedian = median(pipeMs);
  return {
    model: dir,
    modelBuiltSeconds: builtSeconds,
    batch,
    threads,
    batches,
    source: `${sourceWidth}x${sourceHeight}, half PNG half JPEG`,
    bareOnnxImagesPerSecond: (1000 * batch) / bareMedian,
    imagesPerSecond: (1000 * batch) / pipeMedian,
    ratio: bareMedian / pipeMedian,
    bareOnnxMsPerBatch: bareMedian,
    pipelineMsPerBatch: pipeMedian,
    decodeMsPerBatch: median(decodeMs),
    best: { bareOnnxImagesPerSecond: (1000 * batch) / bareBest, imagesPerSecond: (1000 * batch) / pipeBest, ratio: bareBest / pipeBest },
    disturbed: Math.max(loadBefore, loadAfter) > cpus().length + 1,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    loadAverage: [loadBefore, loadAfter],
  };
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args[i + 1]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const result = await benchFeatureExtraction({
    batches: flag(args, '--batches', 4),
    threads: flag(args, '--threads', 2),
    batch: flag(args, '--batch', 32),
    sourceWidth: flag(args, '--width', 500),
    sourceHeight: flag(args, '--height', 375),
  });
  console.log(JSON.stringify(result, null, 2));
}
