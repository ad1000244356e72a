/**
 * The types every dataset reader returns and the shape of a registry entry. Their own module so
 * the readers (cifar100.ts, imageFolder.ts, vtab.ts) depend on this interface and never on the
 * registry that imports them. `registry.ts` re-exports them.
 */
import type { RgbImage } from '../../encoders/types.js';
import type { MemoryBudget } from '../../memory/memory.js';

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
  /**
   * A class with no train or no test images (an empty class folder, one too small for the seeded
   * split, a label no list uses): 'fail' (default) refuses the dataset naming the folder; 'skip'
   * leaves the class out, with a note.
   */
  emptyClasses?: 'fail' | 'skip';
}

export interface DatasetEntry {
  summary: string;
  /** Read the images; `name` is the entry's registry key (the label a manifest records). */
  read(opts: DatasetOptions, name: string): Promise<ImageDataset>;
  /** Default prompt templates (`--templates FILE` overrides). */
  templates: readonly string[];
  /** Memory budget of the paper (section 8 of the spec). */
  memory: MemoryBudget;
}
