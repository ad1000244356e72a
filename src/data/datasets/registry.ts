/**
 * The image datasets `clap4clip features` can read: one table, name → reader, default templates and
 * the paper's memory budget. Also the types every reader returns, so the feature cache depends on
 * this interface only.
 */
import type { RgbImage } from '../../encoders/types.js';
import type { MemoryBudget } from '../../memory/memory.js';
import { Clap4ClipError } from '../../util/errors.js';
import { readCifar100 } from './cifar100.js';
import { readCub200, readImageFolder } from './imageFolder.js';
import { CIFAR100_TEMPLATES, IMAGENET_TEMPLATES } from './templates.js';
import { readVtab } from './vtab.js';

/** One image of a split. */
export interface ImageItem {
  /**
   * Stable name of the image, independent of where the dataset is mounted: a path relative to the
   * dataset root with `/` separators, or `train.bin#17` for a record of a binary file. Used in
   * `bad_images.json` and to check that shards were cut from the same image list.
   */
  key: string;
  /** Label in `classNames` order. */
  label: number;
  /** Absolute path (or `file#record`) for messages. */
  source: string;
  /** Decode to RGB. Rejects (any error) when the image is unreadable or corrupt. */
  load(): Promise<RgbImage>;
}

/** A dataset as images: the input of the feature cache. */
export interface ImageDataset {
  /** Registry name (or a user label). */
  name: string;
  /** Class names in label order (unique). */
  classNames: string[];
  train: ImageItem[];
  test: ImageItem[];
  /** Facts recorded in the manifest's `extra` (split seed, VTAB task boundaries, layout...). */
  extra?: Record<string, unknown>;
  /** Things the user should know (e.g. files ignored because of their extension). */
  notes?: string[];
}

/** Options every reader accepts; each uses the ones that make sense for its layout. */
export interface DatasetOptions {
  root: string;
  /** Class names: text file (one per line, label order) or JSON `{ "<folder>": "<name>" }`. */
  classNamesFile?: string;
  /** Split lists: `relative/path label` per line, paths relative to `root`. */
  trainList?: string;
  testList?: string;
  /** Seeded per-class split for layouts without one (ImageNet-R). Default seed 0, fraction 0.2. */
  splitSeed?: number;
  testFraction?: number;
}

export interface DatasetEntry {
  summary: string;
  read(opts: DatasetOptions): Promise<ImageDataset>;
  /** Default prompt templates (`--templates FILE` overrides). */
  templates: readonly string[];
  /** Memory budget of the paper (section 8 of the spec). */
  memory: MemoryBudget;
}

const PER_CLASS_20: MemoryBudget = { kind: 'perClass', size: 20 };

export const DATASETS = {
  cifar100: {
    summary: 'CIFAR-100: cifar-100-binary/ (train.bin, test.bin, fine_label_names.txt) or cifar-100-python/ (train, test, meta)',
    read: (o) => readCifar100(o.root),
    templates: CIFAR100_TEMPLATES,
    memory: { kind: 'total', size: 2000 },
  },
  'imagenet-r': {
    summary: 'ImageNet-R: root/<wnid>/*.jpg, seeded 80/20 split per class unless split lists are given; needs --class-names (folders are WordNet ids)',
    read: (o) => readImageFolder({ ...o, name: 'imagenet-r' }),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
  'imagenet-100': {
    summary: 'ImageNet-100: root/train/<wnid>/ + root/val/<wnid>/, or split lists (e.g. train_100.txt / val_100.txt); needs --class-names',
    read: (o) => readImageFolder({ ...o, name: 'imagenet-100' }),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
  cub200: {
    summary: 'CUB-200-2011: root with images/, images.txt, image_class_labels.txt, train_test_split.txt, classes.txt (or split lists)',
    read: (o) => readCub200(o),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
  'image-folder': {
    summary: 'your own data: root/<class>/*.{jpg,jpeg,png,webp}, with root/train + root/test (or val) folders, split lists, or a seeded 80/20 split',
    read: (o) => readImageFolder({ ...o, name: 'image-folder' }),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
  vtab: {
    summary: 'VTAB as in the paper: root/<sub-dataset>/... one image folder per task (order from root/tasks.txt, else sorted)',
    read: (o) => readVtab(o),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
} satisfies Record<string, DatasetEntry>;

export type DatasetName = keyof typeof DATASETS;
export const DATASET_NAMES = Object.keys(DATASETS) as DatasetName[];

/** The registry entry for `name`; unknown names fail listing the valid ones. */
export function datasetEntry(name: string): DatasetEntry {
  if (!Object.hasOwn(DATASETS, name)) {
    throw new Clap4ClipError(`unknown dataset ${JSON.stringify(name)}: must be one of [${DATASET_NAMES.join(', ')}]`);
  }
  return DATASETS[name as DatasetName];
}

/**
 * Read dataset `name`. The paper's memory budget is recorded in `extra.memory`, so a features
 * dataset made from it carries the default `run` should use.
 */
export async function readDataset(name: string, opts: DatasetOptions): Promise<{ images: ImageDataset; entry: DatasetEntry }> {
  const entry = datasetEntry(name);
  const images = await entry.read(opts);
  images.extra = { ...images.extra, memory: entry.memory };
  return { images, entry };
}
