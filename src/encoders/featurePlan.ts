/**
 * The feature cache's plan and chunk layout, shared by extraction (featureCache.ts) and assembly
 * (featureAssembly.ts): what the output's bytes depend on, how work is cut into chunks, and where
 * each chunk lives.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { FeaturesManifest } from '../data/types.js';
import { DataError } from '../util/errors.js';
import { readInputText } from '../util/inputFile.js';

export type SplitName = 'train' | 'test';
export const CHUNKS_DIR = '.chunks';
export const BAD_IMAGES_FILE = 'bad_images.json';
export const PLAN_FILE = 'plan.json';
export const SHARD_FILE = 'shard.json';
export const CHUNK_TEXT_FILE = 'text.safetensors';

export interface BadImage {
  split: SplitName;
  /** Index in the split's image list. */
  index: number;
  /** Root-relative key (see ImageItem.key). */
  key: string;
  error: string;
}

/** Everything the bytes of the output depend on; chunks from another plan are never mixed in. */
export interface CachePlan {
  format: 'clap4clip-feature-chunks';
  version: 1;
  dataset: string;
  encoder: string;
  dtype: string;
  dim: number;
  logitScale: number;
  views: { train: number; test: number };
  batchSize: number;
  chunkSize: number;
  classNames: string[];
  templates: string[];
  splits: { train: { n: number; sha256: string }; test: { n: number; sha256: string } };
  extra: Record<string, unknown>;
}

export interface ChunkRef {
  split: SplitName;
  /** First and last (inclusive) index in the split's image list. */
  first: number;
  last: number;
  /** Global chunk number (train chunks first), used for sharding. */
  number: number;
}

export function planChunks(plan: CachePlan): ChunkRef[] {
  const out: ChunkRef[] = [];
  for (const split of ['train', 'test'] as const) {
    for (let first = 0; first < plan.splits[split].n; first += plan.chunkSize) {
      out.push({ split, first, last: Math.min(first + plan.chunkSize, plan.splits[split].n) - 1, number: out.length });
    }
  }
  return out;
}

export const chunkPath = (chunksDir: string, c: ChunkRef): string => path.join(chunksDir, c.split, `${c.first}-${c.last}.safetensors`);
export const planId = (plan: CachePlan): string => createHash('sha256').update(JSON.stringify(plan)).digest('hex').slice(0, 16);

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function readJson(file: string): Promise<unknown> {
  const text = await readInputText(file, 'JSON file');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DataError(file, `cannot read JSON (${(err as Error).message})`, { cause: err });
  }
}

export function manifestOf(plan: CachePlan, images: Record<SplitName, number>, badImages: number): FeaturesManifest {
  const { encoder, dim, logitScale, classNames, templates } = plan;
  const extra = { dataset: plan.dataset, dtype: plan.dtype, views: plan.views, images, badImages, ...plan.extra };
  return { format: 'clap4clip-features', version: 1, encoder, dim, logitScale, classNames, templates, extra };
}
