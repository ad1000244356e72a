/**
 * The feature cache: images of a dataset → a features dataset directory (see featuresDataset.ts).
 *
 * Work is cut into chunks of `chunkSize` images per split, numbered globally (train chunks first).
 * Each finished chunk is written atomically to `out/.chunks/<split>/<first>-<last>.safetensors`
 * (features [n, V, D], labels [n], metadata: plan id and the chunk's bad images), so an interrupted
 * run resumes without recomputing finished chunks. Batches never cross a chunk boundary, so every
 * chunk's bytes depend only on its own images: resumed, sharded and merged runs give byte-identical
 * files. A shard `i/N` computes the chunks with global number ≡ i (mod N); `mergeShards` joins them.
 * When all chunks exist they are concatenated (streamed, not held in memory) into
 * text/train/test.safetensors, then `bad_images.json`, then `manifest.json` LAST.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { MANIFEST_FILE, NORM_TOLERANCE, parseManifest } from '../data/featuresDataset.js';
import { readSafetensors, writeSafetensors } from '../data/safetensors.js';
import { readDataset, type DatasetOptions, type ImageDataset, type ImageItem } from '../data/datasets/registry.js';
import { fillTemplate, IMAGENET_TEMPLATES, validateTemplates } from '../data/datasets/templates.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { withDirLock } from '../util/dirLock.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { mirrorImage, type ClipEncoder, type RgbImage } from './types.js';
import { finalize, readChunk } from './featureAssembly.js';
import {
  CHUNK_TEXT_FILE, CHUNKS_DIR, PLAN_FILE, SHARD_FILE, chunkPath, exists, manifestOf, planChunks, planId, readJson,
  type BadImage, type CachePlan, type ChunkRef, type SplitName,
} from './featurePlan.js';

export { mergeShards } from './featureAssembly.js';
export { BAD_IMAGES_FILE, CHUNKS_DIR, chunkPath, planChunks, planId, type BadImage, type CachePlan, type ChunkRef, type SplitName } from './featurePlan.js';

export interface ExtractProgress {
  split: SplitName;
  /** Images done (computed or found in finished chunks) of `total` in this run (this shard). */
  done: number;
  total: number;
  /** Rate of images computed in this run (reused chunks excluded). */
  imagesPerSecond: number;
  /** Seconds left at the current rate, null before the first batch. */
  etaSeconds: number | null;
}

export interface ExtractOptions {
  /** Registry name (with `root`) or an already read dataset. */
  dataset: string | ImageDataset;
  root?: string;
  datasetOptions?: Omit<DatasetOptions, 'root'>;
  encoder: ClipEncoder;
  out: string;
  /** Views per train image: 2 = the image and its mirror image (default), 1 = the image only. Test always 1. */
  views?: 1 | 2;
  /** Encoder inputs per call (a train image with its mirror counts 2). Default 32. */
  batchSize?: number;
  /** Images per chunk file. Default 1024. */
  chunkSize?: number;
  /** Compute only chunk numbers ≡ index (mod count); `index` is 0-based. */
  shard?: { index: number; count: number };
  /** Corrupt/unreadable image: skip it (listed in bad_images.json) or fail (default). */
  onBadImage?: 'skip' | 'fail';
  /** Prompt templates (default: the registry's for a dataset name, else CLIP's 80 ImageNet ones). */
  templates?: readonly string[];
  progress?: (p: ExtractProgress) => void;
  /** One-line messages for people (bad images, notes); default: none. */
  log?: (line: string) => void;
  /** Checked before each batch; an aborted run keeps its finished chunks. */
  signal?: AbortSignal;
  /** Replace a finished dataset (or chunks of a different extraction) in `out`. */
  overwrite?: boolean;
  /** What a second writer of `out` is told holds it (default: the command line). */
  lockCommand?: string;
}

export interface ExtractResult {
  out: string;
  /** True when the features dataset was written (false for one shard of several). */
  complete: boolean;
  chunksComputed: number;
  chunksReused: number;
  badImages: BadImage[];
}

function listHash(items: ImageItem[]): string {
  const h = createHash('sha256');
  for (const it of items) h.update(`${it.key}\t${it.label}\n`);
  return h.digest('hex');
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new Clap4ClipError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Refuse or clear a finished dataset in `out`; refuse chunks of another plan. Writes plan.json. */
async function prepareOut(out: string, plan: CachePlan, overwrite: boolean): Promise<string> {
  const chunksDir = path.join(out, CHUNKS_DIR);
  if (await exists(path.join(out, MANIFEST_FILE))) {
    if (!overwrite) throw new DataError(out, `already contains a features dataset (${MANIFEST_FILE}); pass --overwrite to replace it or choose another --out`);
    await rm(path.join(out, MANIFEST_FILE));
  }
  const planFile = path.join(chunksDir, PLAN_FILE);
  if (await exists(planFile)) {
    const old = (await readJson(planFile)) as Record<string, unknown>;
    const differs = Object.keys(plan).filter((k) => JSON.stringify(old[k]) !== JSON.stringify((plan as unknown as Record<string, unknown>)[k]));
    if (differs.length > 0) {
      if (!overwrite) throw new DataError(planFile, `holds chunks of a different extraction (differs in: ${differs.join(', ')}); use another --out, or --overwrite to discard them`);
      await rm(chunksDir, { recursive: true, force: true });
    }
  }
  for (const split of ['train', 'test']) await mkdir(path.join(chunksDir, split), { recursive: true });
  if (!(await exists(planFile))) await writeJsonAtomic(planFile, plan);
  return chunksDir;
}

/** True when `file` is a readable chunk of this plan (anything else is recomputed). */
async function chunkDone(file: string, id: string, log: (l: string) => void): Promise<boolean> {
  if (!(await exists(file))) return false;
  try {
    if ((await readSafetensors(file)).metadata['plan'] === id) return true;
  } catch (err) {
    log(`${file}: unreadable chunk, recomputing (${(err as Error).message})`);
  }
  return false;
}

function checkRows(data: Float32Array, rows: number, dim: number, what: (row: number) => string, encoderId: string): void {
  if (data.length !== rows * dim) throw new Clap4ClipError(`encoder ${encoderId} returned ${data.length} values for ${rows} inputs of dim ${dim}`);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let k = r * dim; k < (r + 1) * dim; k++) sq += data[k]! * data[k]!;
    const norm = Math.sqrt(sq);
    if (!(Math.abs(norm - 1) <= NORM_TOLERANCE)) throw new Clap4ClipError(`encoder ${encoderId} returned an embedding of norm ${norm.toPrecision(6)} (expected 1) for ${what(r)}`);
  }
}

/** Text features e[c, p] [C, P, D], in batches of `batchSize` prompts. */
export async function encodePrompts(encoder: ClipEncoder, classNames: string[], templates: string[], batchSize: number): Promise<Float32Array> {
  const prompts = classNames.flatMap((c) => templates.map((t) => fillTemplate(t, c)));
  const D = encoder.info.dim;
  const out = new Float32Array(prompts.length * D);
  for (let i = 0; i < prompts.length; i += batchSize) {
    const batch = prompts.slice(i, i + batchSize);
    const e = await encoder.encodeTexts(batch);
    checkRows(e, batch.length, D, (r) => `prompt ${JSON.stringify(batch[r])}`, encoder.info.id);
    out.set(e, i * D);
  }
  return out;
}

type Decoded = { ok: true; img: RgbImage } | { ok: false; error: string };

async function decode(item: ImageItem): Promise<Decoded> {
  try {
    const img = await item.load();
    if (!(img.width > 0 && img.height > 0 && img.data.length === img.width * img.height * 3)) throw new Error(`decoded to an invalid ${img.width}x${img.height} image`);
    return { ok: true, img };
  } catch (err) {
    // The absolute path is machine-specific; keep the key so shards from different mounts agree.
    return { ok: false, error: (err instanceof Error ? err.message : String(err)).replaceAll(item.source, item.key) };
  }
}

interface ChunkContext {
  encoder: ClipEncoder;
  views: number;
  batchSize: number;
  onBadImage: 'skip' | 'fail';
  log: (l: string) => void;
  signal: AbortSignal | undefined;
  tick: (split: SplitName, images: number, computed: boolean) => void;
}

/** Encode one chunk. Decoding of the next group runs while the current one is encoded. */
async function computeChunk(items: ImageItem[], c: ChunkRef, views: number, ctx: ChunkContext): Promise<{ features: Float32Array; labels: Int32Array; bad: BadImage[] }> {
  const D = ctx.encoder.info.dim;
  const group = Math.max(1, Math.floor(ctx.batchSize / views));
  const slice = items.slice(c.first, c.last + 1);
  const features: Float32Array[] = [], labels: number[] = [], bad: BadImage[] = [];
  let next: Promise<Decoded[]> | undefined = Promise.all(slice.slice(0, group).map(decode));
  for (let g = 0; g < slice.length; g += group) {
    ctx.signal?.throwIfAborted();
    const decoded: Decoded[] = await next!;
    next = g + group < slice.length ? Promise.all(slice.slice(g + group, g + 2 * group).map(decode)) : undefined;
    const inputs: RgbImage[] = [], sources: string[] = [];
    decoded.forEach((d, j) => {
      const item = slice[g + j]!;
      if (!d.ok) {
        if (ctx.onBadImage === 'fail') throw new DataError(item.source, `cannot decode image (${d.error}); pass --on-bad-image skip to skip bad images`);
        ctx.log(`bad image skipped: ${item.source}: ${d.error}`);
        bad.push({ split: c.split, index: c.first + g + j, key: item.key, error: d.error });
        return;
      }
      inputs.push(d.img);
      if (views === 2) inputs.push(mirrorImage(d.img));
      sources.push(item.source);
      labels.push(item.label);
    });
    if (inputs.length > 0) {
      const e = await ctx.encoder.encodeImages(inputs);
      checkRows(e, inputs.length, D, (r) => `image ${sources[Math.floor(r / views)]}`, ctx.encoder.info.id);
      features.push(e);
    }
    ctx.tick(c.split, decoded.length, true);
  }
  const all = new Float32Array(labels.length * views * D);
  let at = 0;
  for (const f of features) {
    all.set(f, at);
    at += f.length;
  }
  return { features: all, labels: Int32Array.from(labels), bad };
}

function makePlan(ds: ImageDataset, encoder: ClipEncoder, templates: string[], views: number, batchSize: number, chunkSize: number): CachePlan {
  const { info } = encoder;
  return {
    format: 'clap4clip-feature-chunks',
    version: 1,
    dataset: ds.name,
    encoder: info.id,
    dtype: info.dtype,
    dim: info.dim,
    logitScale: info.logitScale,
    views: { train: views, test: 1 },
    batchSize,
    chunkSize,
    classNames: ds.classNames.slice(),
    templates,
    splits: { train: { n: ds.train.length, sha256: listHash(ds.train) }, test: { n: ds.test.length, sha256: listHash(ds.test) } },
    extra: structuredClone(ds.extra ?? {}),
  };
}

/**
 * Extract features (or one shard of them) into `opts.out`. See the module comment. The folder is
 * locked meanwhile (`util/dirLock.ts`): a second extraction into it is refused, naming the first.
 */
export async function extractFeatures(opts: ExtractOptions): Promise<ExtractResult> {
  return withDirLock(opts.out, { command: opts.lockCommand }, () => extractInto(opts));
}

async function extractInto(opts: ExtractOptions): Promise<ExtractResult> {
  const log = opts.log ?? (() => undefined);
  const views = opts.views ?? 2;
  if (views !== 1 && views !== 2) throw new Clap4ClipError(`views must be 1 or 2, got ${String(views)}`);
  const batchSize = positiveInt('batchSize', opts.batchSize ?? 32);
  const chunkSize = positiveInt('chunkSize', opts.chunkSize ?? 1024);
  const shard = opts.shard ?? { index: 0, count: 1 };
  positiveInt('shard count', shard.count);
  if (!Number.isSafeInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new Clap4ClipError(`shard index must be in 0..${shard.count - 1} (0-based), got ${shard.index}`);
  }
  let ds: ImageDataset, defaults: readonly string[] = IMAGENET_TEMPLATES;
  if (typeof opts.dataset === 'string') {
    if (opts.root === undefined) throw new Clap4ClipError('extractFeatures: root is required with a dataset name');
    const { images, entry } = await readDataset(opts.dataset, { ...opts.datasetOptions, root: opts.root });
    ds = images;
    defaults = entry.templates;
  } else ds = opts.dataset;
  for (const note of ds.notes ?? []) log(note);
  const templates = validateTemplates(opts.templates ?? defaults, 'templates');
  const plan = makePlan(ds, opts.encoder, templates, views, batchSize, chunkSize);
  const id = planId(plan);
  parseManifest(manifestOf(plan, { train: 0, test: 0 }, 0), path.join(opts.out, MANIFEST_FILE)); // fail now, not after hours of encoding
  const chunksDir = await prepareOut(opts.out, plan, opts.overwrite ?? false);
  if (shard.count > 1) await claimShard(opts.out, id, shard, opts.overwrite ?? false);

  if (shard.index === 0 && !(await chunkDone(path.join(chunksDir, CHUNK_TEXT_FILE), id, log))) {
    const e = await encodePrompts(opts.encoder, plan.classNames, templates, batchSize);
    const shape = [plan.classNames.length, templates.length, plan.dim];
    await writeSafetensors(path.join(chunksDir, CHUNK_TEXT_FILE), { e: { dtype: 'F32', shape, data: e } }, { plan: id });
  }

  const mine = planChunks(plan).filter((c) => c.number % shard.count === shard.index);
  const total = mine.reduce((s, c) => s + c.last - c.first + 1, 0);
  const started = performance.now();
  let done = 0, computedImages = 0, computed = 0, reused = 0;
  const tick = (split: SplitName, images: number, fresh: boolean): void => {
    done += images;
    if (fresh) computedImages += images;
    const rate = computedImages / Math.max(1e-9, (performance.now() - started) / 1000);
    opts.progress?.({ split, done, total, imagesPerSecond: rate, etaSeconds: computedImages > 0 ? (total - done) / rate : null });
  };
  const ctx: ChunkContext = { encoder: opts.encoder, views, batchSize, onBadImage: opts.onBadImage ?? 'fail', log, signal: opts.signal, tick };
  for (const c of mine) {
    opts.signal?.throwIfAborted();
    const file = chunkPath(chunksDir, c);
    if (await chunkDone(file, id, log)) {
      reused++;
      tick(c.split, c.last - c.first + 1, false);
      continue;
    }
    const splitViews = plan.views[c.split];
    const r = await computeChunk(c.split === 'train' ? ds.train : ds.test, c, splitViews, ctx);
    await writeSafetensors(
      file,
      { features: { dtype: 'F32', shape: [r.labels.length, splitViews, plan.dim], data: r.features }, labels: { dtype: 'I32', shape: [r.labels.length], data: r.labels } },
      { plan: id, bad: JSON.stringify(r.bad) },
    );
    computed++;
  }
  if (shard.count > 1) {
    const badImages: BadImage[] = [];
    for (const c of mine) badImages.push(...(await readChunk(chunkPath(chunksDir, c), plan, c)).bad);
    return { out: opts.out, complete: false, chunksComputed: computed, chunksReused: reused, badImages };
  }
  const badImages = await finalize(opts.out, plan, () => chunksDir);
  await rm(chunksDir, { recursive: true, force: true });
  await rm(path.join(opts.out, SHARD_FILE), { force: true }); // a shard folder resumed without --shard is now complete
  return { out: opts.out, complete: true, chunksComputed: computed, chunksReused: reused, badImages };
}

/** Record (or check) which shard `out` holds, so a resumed shard cannot change identity. */
async function claimShard(out: string, id: string, shard: { index: number; count: number }, overwrite: boolean): Promise<void> {
  const file = path.join(out, SHARD_FILE);
  const want = { plan: id, index: shard.index, count: shard.count };
  if (await exists(file)) {
    const have = (await readJson(file)) as typeof want;
    if (JSON.stringify(have) === JSON.stringify(want)) return;
    if (!overwrite) throw new DataError(file, `holds shard ${have.index}/${have.count} of plan ${have.plan}, not shard ${shard.index}/${shard.count} of plan ${id}; use another --out`);
  }
  await writeJsonAtomic(file, want);
}

