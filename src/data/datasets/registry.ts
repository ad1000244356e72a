/**
 * The image datasets `clap4clip features` can read: one table, name → reader, default templates and
 * the paper's memory budget. The table is the only list of dataset names: `DATASET_NAMES`,
 * `DatasetName` and every message or help text listing them derive from it.
 */
import type { MemoryBudget } from '../../memory/memory.js';
import { Clap4ClipError } from '../../util/errors.js';
import { readCifar100 } from './cifar100.js';
import { readCub200, readImageFolder } from './imageFolder.js';
import { CIFAR100_TEMPLATES, IMAGENET_TEMPLATES } from './templates.js';
import type { DatasetEntry, DatasetOptions, ImageDataset } from './types.js';
import { readVtab } from './vtab.js';

export type { DatasetEntry, DatasetOptions, ImageDataset, ImageItem } from './types.js';

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
    read: (o, name) => readImageFolder({ ...o, name }),
    templates: IMAGENET_TEMPLATES,
    memory: PER_CLASS_20,
  },
  'imagenet-100': {
    summary: 'ImageNet-100: root/train/<wnid>/ + root/val/<wnid>/, or split lists (e.g. train_100.txt / val_100.txt); needs --class-names',
    read: (o, name) => readImageFolder({ ...o, name }),
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
    read: (o, name) => readImageFolder({ ...o, name }),
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

/** True when `name` is a key of the table (own keys only: `toString` is not a dataset). */
export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASETS, name);
}

/** The registry entry for `name`; unknown names fail listing the valid ones. */
export function datasetEntry(name: string): DatasetEntry {
  if (!isDatasetName(name)) {
    throw new Clap4ClipError(`unknown dataset ${JSON.stringify(name)}: must be one of [${DATASET_NAMES.join(', ')}]`);
  }
  return DATASETS[name];
}

/**
 * Read dataset `name`. The paper's memory budget is recorded in `extra.memory`, so a features
 * dataset made from it carries the default `run` should use.
 */
export async function readDataset(name: string, opts: DatasetOptions): Promise<{ images: ImageDataset; entry: DatasetEntry }> {
  const entry = datasetEntry(name);
  const images = await entry.read(opts, name);
  images.extra = { ...images.extra, memory: entry.memory };
  return { images, entry };
}
