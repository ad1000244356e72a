/**
 * Assembly half of the feature cache: finished chunks are checked against the plan and
 * concatenated (streamed) into text/train/test.safetensors, then bad_images.json, then
 * manifest.json last; `mergeShards` does the same across shard directories.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { MANIFEST_FILE, TEST_FILE, TEXT_FILE, TRAIN_FILE, parseManifest } from '../data/featuresDataset.js';
import { readSafetensors, writeSafetensors } from '../data/safetensors.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { acquireDirLock, type DirLock } from '../util/dirLock.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import {
  BAD_IMAGES_FILE, CHUNK_TEXT_FILE, CHUNKS_DIR, PLAN_FILE, SHARD_FILE, chunkPath, exists, manifestOf, planChunks, planId, readJson,
  type BadImage, type CachePlan, type ChunkRef, type SplitName,
} from './featurePlan.js';

/** Read a chunk and check it against the plan; errors name the chunk file. */
export async function readChunk(file: string, plan: CachePlan, c: ChunkRef): Promise<{ features: Float32Array; labels: Int32Array; bad: BadImage[] }> {
  const { tensors, metadata } = await readSafetensors(file);
  const f = tensors['features'], l = tensors['labels'];
  const bad = JSON.parse(metadata['bad'] ?? '[]') as BadImage[];
  if (metadata['plan'] !== planId(plan)) throw new DataError(file, `chunk belongs to plan ${metadata['plan']}, expected ${planId(plan)}`);
  if (f?.dtype !== 'F32' || l?.dtype !== 'I32') throw new DataError(file, 'chunk needs F32 "features" and I32 "labels"');
  const n = l.shape[0]!, images = c.last - c.first + 1, shape = [n, plan.views[c.split], plan.dim];
  if (f.shape.join() !== shape.join() || n + bad.length !== images) {
    throw new DataError(file, `chunk has features [${f.shape.join(', ')}] and ${bad.length} bad images, expected ${images} images of [V=${shape[1]}, D=${plan.dim}]`);
  }
  const labels = l.data as Int32Array;
  if (labels.some((y) => y < 0 || y >= plan.classNames.length)) throw new DataError(file, `label out of range 0..${plan.classNames.length - 1}`);
  return { features: f.data as Float32Array, labels, bad };
}

/** Atomic write of a file produced piecewise (temp file in the same folder, fsync, rename). */
async function writeStreamAtomic(target: string, write: (h: FileHandle) => Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const h = await open(tmp, 'wx');
  try {
    await write(h);
    await h.sync();
    await h.close();
    await rename(tmp, target);
  } catch (err) {
    await h.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Concatenate chunk files into one split file, streamed chunk by chunk. The bytes are exactly what
 * `encodeSafetensors` writes for { features: F32 [N, V, D], labels: I32 [N] } (same header, padding
 * and data order; little-endian), without holding the whole split in memory.
 */
async function concatSplit(target: string, plan: CachePlan, chunks: ChunkRef[], dirOf: (c: ChunkRef) => string): Promise<{ n: number; bad: BadImage[] }> {
  const read = (c: ChunkRef) => readChunk(chunkPath(dirOf(c), c), plan, c);
  const labels: Int32Array[] = [], bad: BadImage[] = [];
  for (const c of chunks) {
    const r = await read(c);
    labels.push(r.labels);
    bad.push(...r.bad);
  }
  const n = labels.reduce((s, l) => s + l.length, 0), views = plan.views[chunks[0]!.split], dim = plan.dim;
  if (n === 0) throw new DataError(target, 'no image of this split could be decoded (see bad_images.json)');
  const fBytes = n * views * dim * 4;
  const json = `{"features":{"dtype":"F32","shape":[${n},${views},${dim}],"data_offsets":[0,${fBytes}]},"labels":{"dtype":"I32","shape":[${n}],"data_offsets":[${fBytes},${fBytes + 4 * n}]}}`;
  const raw = Buffer.from(json, 'utf8');
  const head = Buffer.alloc(8 + Math.ceil(raw.length / 8) * 8, 0x20); // space padding, as encodeSafetensors
  head.writeBigUInt64LE(BigInt(head.length - 8), 0);
  raw.copy(head, 8);
  const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await writeStreamAtomic(target, async (h) => {
    await h.writeFile(head);
    for (const c of chunks) await h.writeFile(bytes((await read(c)).features));
    for (const l of labels) await h.writeFile(bytes(l));
  });
  return { n, bad };
}

/** Concatenate all chunks (found via `dirOf`) into the features dataset in `out`; manifest last. */
export async function finalize(out: string, plan: CachePlan, dirOf: (c: ChunkRef | 'text') => string): Promise<BadImage[]> {
  const id = planId(plan);
  const chunks = planChunks(plan);
  const textFile = path.join(dirOf('text'), CHUNK_TEXT_FILE);
  const text = await readSafetensors(textFile);
  if (text.metadata['plan'] !== id || text.tensors['e'] === undefined) throw new DataError(textFile, `not the text features of plan ${id}`);
  const e = text.tensors['e'];
  await writeSafetensors(path.join(out, TEXT_FILE), { e: { dtype: 'F32', shape: e.shape, data: e.data as Float32Array } });
  const counts: Record<SplitName, number> = { train: 0, test: 0 };
  const badImages: BadImage[] = [];
  for (const split of ['train', 'test'] as const) {
    const r = await concatSplit(path.join(out, split === 'train' ? TRAIN_FILE : TEST_FILE), plan, chunks.filter((c) => c.split === split), dirOf);
    counts[split] = r.n;
    badImages.push(...r.bad);
  }
  await writeJsonAtomic(path.join(out, BAD_IMAGES_FILE), badImages);
  const manifestFile = path.join(out, MANIFEST_FILE);
  const manifest = manifestOf(plan, counts, badImages.length);
  await writeJsonAtomic(manifestFile, parseManifest(manifest, manifestFile));
  return badImages;
}

/**
 * Join shard directories (each made by `extractFeatures` with `shard: {index, count}`) into a
 * features dataset in `out`. All shards of one plan must be given, each once.
 */
export async function mergeShards(dirs: string[], out: string, opts: { overwrite?: boolean } = {}): Promise<{ out: string; badImages: BadImage[] }> {
  if (dirs.length === 0) throw new Clap4ClipError('mergeShards: no shard directories given');
  // `out` is written and the shards are read: a shard still being extracted is refused, naming its process.
  const locks: DirLock[] = [];
  try {
    for (const d of new Set([out, ...dirs].map((x) => path.resolve(x)))) locks.push(await acquireDirLock(d));
    return await mergeLocked(dirs, out, opts);
  } finally {
    for (const l of locks.reverse()) await l.release();
  }
}

async function mergeLocked(dirs: string[], out: string, opts: { overwrite?: boolean }): Promise<{ out: string; badImages: BadImage[] }> {
  const shards = await Promise.all(dirs.map(async (dir) => {
    const file = path.join(dir, SHARD_FILE);
    if (!(await exists(file))) throw new DataError(dir, `not a shard directory (no ${SHARD_FILE}); shards are made with --shard i/N`);
    return { dir, ...((await readJson(file)) as { plan: string; index: number; count: number }) };
  }));
  const first = shards[0]!;
  const byIndex = new Map<number, string>();
  for (const s of shards) {
    if (s.plan !== first.plan || s.count !== first.count) throw new DataError(s.dir, `shard of plan ${s.plan} (${s.count} shards) does not match ${first.dir} (plan ${first.plan}, ${first.count} shards)`);
    if (byIndex.has(s.index)) throw new DataError(s.dir, `shard ${s.index} given twice (also ${byIndex.get(s.index)})`);
    byIndex.set(s.index, s.dir);
  }
  const missing = Array.from({ length: first.count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) throw new Clap4ClipError(`mergeShards: missing shard(s) ${missing.join(', ')} of ${first.count}`);
  const plan = (await readJson(path.join(first.dir, CHUNKS_DIR, PLAN_FILE))) as CachePlan;
  if (planId(plan) !== first.plan) throw new DataError(path.join(first.dir, CHUNKS_DIR, PLAN_FILE), 'does not match shard.json');
  await mkdir(out, { recursive: true });
  if (await exists(path.join(out, MANIFEST_FILE))) {
    if (opts.overwrite !== true) throw new DataError(out, `already contains a features dataset (${MANIFEST_FILE}); pass --overwrite to replace it`);
    await rm(path.join(out, MANIFEST_FILE));
  }
  const dirOf = (c: ChunkRef | 'text') => path.join(byIndex.get(c === 'text' ? 0 : c.number % first.count)!, CHUNKS_DIR);
  const badImages = await finalize(out, plan, dirOf);
  return { out, badImages };
}
