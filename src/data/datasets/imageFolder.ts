/**
 * Image-folder datasets: `root/<class>/*.{jpg,jpeg,png,webp}` (extensions case-insensitive, one level
 * deep), used for ImageNet-R, ImageNet-100, CUB-200 and a user's own data. Where the split comes from,
 * in order of precedence:
 *   1. split lists (`--train-list`, `--test-list`): `relative/path label` per line, paths relative to root;
 *   2. split folders: `root/train/<class>/` and `root/test/<class>/` (or `root/val/<class>/`);
 *   3. a seeded per-class split (default 80/20, seed 0), as the paper does for ImageNet-R.
 * Class names: `--class-names FILE` (one per line in label order, or JSON `{ "<folder>": "<name>" }`),
 * else the folder names (sorted, code-unit order). Items are ordered by label, then by path, so the
 * list (and therefore every cached chunk) is the same on every machine.
 *
 * Decoding (sharp): like PIL's `Image.open(p).convert('RGB')` that the reference's loaders use,
 * alpha is dropped (not composited), grey/palette/CMYK become sRGB, 16-bit becomes 8-bit and the
 * EXIF orientation is NOT applied (PIL does not apply it either). Truncated files fail; mere
 * decoder warnings (common in ImageNet JPEGs, which PIL also accepts) do not.
 */
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { RgbImage } from '../../encoders/types.js';
import { Rng } from '../../engine/random.js';
import { DataError } from '../../util/errors.js';
import { readInputText } from '../../util/inputFile.js';
import { withOptionalPackages } from '../../util/optionalPackage.js';
import type { DatasetOptions, ImageDataset, ImageItem } from './types.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

/** sharp, imported on first use: it is an optional package that only image decoding needs. */
async function loadSharp(): Promise<typeof import('sharp').default> {
  return (await withOptionalPackages('decoding images', () => import('sharp'))).default;
}

/** Decode an image file (or its encoded bytes) to 8-bit RGB HWC. Rejects on unreadable or corrupt input. */
export async function decodeImageFile(file: string | Buffer): Promise<RgbImage> {
  // sharp says "unsupported image format" for a folder: say what it is.
  if (typeof file === 'string' && (await isDir(file))) throw new DataError(file, 'is a directory, not an image file');
  const sharp = await loadSharp();
  const { data, info } = await sharp(file, { failOn: 'truncated' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const isImage = (name: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function readText(file: string, what: string): Promise<string> {
  return readInputText(file, what);
}

/** Non-empty lines with their 1-based line numbers (blank lines and `#` comments skipped). */
function lines(text: string): Array<[string, number]> {
  return text.split(/\r?\n/).map((l, i) => [l.trim(), i + 1] as [string, number]).filter(([l]) => l !== '' && !l.startsWith('#'));
}

/** An item for `root`-relative `key` (always `/`-separated). */
export function fileItem(root: string, key: string, label: number): ImageItem {
  const source = path.join(root, ...key.split('/'));
  return { key, label, source, load: () => decodeImageFile(source) };
}

/** Sorted class sub-folders of `dir` and, per folder, its sorted image files; other files are reported. */
async function scanClassFolders(dir: string, notes: string[]): Promise<Array<{ name: string; files: string[] }>> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new DataError(dir, `cannot list image folder (${(err as Error).message})`, { cause: err });
  }
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodeUnit);
  const ignored: string[] = [];
  const out = [];
  for (const name of classes) {
    const files = await readdir(path.join(dir, name), { withFileTypes: true });
    const images = files.filter((f) => f.isFile() && isImage(f.name)).map((f) => f.name).sort(byCodeUnit);
    for (const f of files) if (!f.name.startsWith('.') && !(f.isFile() && isImage(f.name))) ignored.push(`${name}/${f.name}`);
    out.push({ name, files: images });
  }
  if (ignored.length > 0) {
    notes.push(`${dir}: ignored ${ignored.length} entries that are not ${IMAGE_EXTENSIONS.join('/')} files (e.g. ${ignored.slice(0, 3).join(', ')})`);
  }
  return out;
}

/**
 * Resolve display names for class `folders` (label order). A text file gives one name per line in
 * label order; a JSON object maps folder → name. Without a file, folder names are used, except
 * WordNet ids (`n01443537`), which would make meaningless prompts.
 */
export async function resolveClassNames(folders: string[], file: string | undefined, root: string): Promise<string[]> {
  let names: string[];
  if (file !== undefined) {
    const text = await readText(file, 'class names file');
    if (text.trim().startsWith('{')) {
      let map: Record<string, unknown>;
      try {
        map = JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        throw new DataError(file, `not valid JSON (${(err as Error).message})`, { cause: err });
      }
      names = folders.map((f) => {
        const v = map[f];
        if (typeof v !== 'string' || v.trim() === '') throw new DataError(file, `no name for class folder ${JSON.stringify(f)}`);
        return v.trim();
      });
    } else {
      names = lines(text).map(([l]) => l);
      if (names.length !== folders.length) {
        throw new DataError(file, `has ${names.length} class names but the dataset has ${folders.length} classes (${folders.slice(0, 3).join(', ')}...)`);
      }
    }
  } else {
    if (folders.length > 0 && folders.every((f) => /^n\d{8}$/.test(f))) {
      throw new DataError(root, `class folders are WordNet ids (${folders[0]}, ...): prompts need readable names; pass --class-names FILE (one name per line in sorted-folder order, or JSON {"${folders[0]}": "name"})`);
    }
    names = folders.slice();
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new DataError(file ?? root, `class name ${JSON.stringify(n)} appears twice; class names must be unique`);
    seen.add(n);
  }
  return names;
}

/** Parse a split list: `relative/path label` per line (the label is the last field, so paths may contain spaces). */
export async function parseSplitList(file: string): Promise<Array<{ key: string; label: number }>> {
  const out = [];
  for (const [line, no] of lines(await readText(file, 'split list'))) {
    const m = /^(.*\S)\s+(\S+)$/.exec(line);
    if (m === null) throw new DataError(file, `line ${no}: expected "relative/path label", got ${JSON.stringify(line)}`);
    const label = Number(m[2]);
    if (!/^\d+$/.test(m[2]!) || !Number.isSafeInteger(label)) throw new DataError(file, `line ${no}: label ${JSON.stringify(m[2])} is not a non-negative integer`);
    const key = m[1]!.replaceAll('\\', '/').replace(/^\.\//, '');
    if (path.isAbsolute(key) || key.split('/').includes('..')) throw new DataError(file, `line ${no}: path ${JSON.stringify(m[1])} must be relative to the dataset root`);
    out.push({ key, label });
  }
  if (out.length === 0) throw new DataError(file, 'split list is empty');
  return out;
}

/** Sort by label, then key. */
function ordered(items: ImageItem[]): ImageItem[] {
  return items.sort((a, b) => a.label - b.label || byCodeUnit(a.key, b.key));
}

/** Per class, a seeded shuffle puts round(n * testFraction) images in test and the rest in train. */
export function seededSplit(items: ImageItem[], seed: number, testFraction: number): { train: ImageItem[]; test: ImageItem[] } {
  if (!(testFraction >= 0 && testFraction < 1)) throw new RangeError(`testFraction must be in [0, 1), got ${testFraction}`);
  const rng = new Rng(seed);
  const byLabel = new Map<number, ImageItem[]>();
  for (const it of ordered(items.slice())) {
    const list = byLabel.get(it.label) ?? [];
    list.push(it);
    byLabel.set(it.label, list);
  }
  const train: ImageItem[] = [], test: ImageItem[] = [];
  for (const list of byLabel.values()) {
    const perm = rng.permutation(list.length);
    const nTest = Math.round(list.length * testFraction);
    perm.forEach((j, r) => (r < nTest ? test : train).push(list[j]!));
  }
  return { train: ordered(train), test: ordered(test) };
}

export interface ImageFolderOptions extends DatasetOptions {
  /** Dataset label recorded in the manifest. */
  name: string;
}

/** Read an image-folder dataset (see the module comment for the layouts). */
export async function readImageFolder(opts: ImageFolderOptions): Promise<ImageDataset> {
  const { root } = opts;
  if (!(await isDir(root))) throw new DataError(root, 'dataset root is not a folder');
  if ((opts.trainList === undefined) !== (opts.testList === undefined)) {
    throw new DataError(opts.trainList ?? opts.testList!, 'split lists come in pairs: give both --train-list and --test-list');
  }
  const notes: string[] = [];
  if (opts.trainList !== undefined && opts.testList !== undefined) {
    return fromSplitLists(opts, await parseSplitList(opts.trainList), await parseSplitList(opts.testList));
  }
  const testDir = (await isDir(path.join(root, 'test'))) ? 'test' : (await isDir(path.join(root, 'val'))) ? 'val' : undefined;
  if ((await isDir(path.join(root, 'train'))) && testDir !== undefined) {
    const train = await scanClassFolders(path.join(root, 'train'), notes);
    const test = await scanClassFolders(path.join(root, testDir), notes);
    const folders = train.map((c) => c.name);
    const index = new Map(folders.map((f, i) => [f, i]));
    for (const c of test) {
      if (!index.has(c.name)) throw new DataError(path.join(root, testDir, c.name), `class folder has no counterpart in ${path.join(root, 'train')}`);
    }
    const items = (dir: string, cs: typeof train) => cs.flatMap((c) => c.files.map((f) => fileItem(root, `${dir}/${c.name}/${f}`, index.get(c.name)!)));
    const classNames = await resolveClassNames(folders, opts.classNamesFile, root);
    const from = (c: number, split: 'train' | 'test') => path.join(root, split === 'train' ? 'train' : testDir, folders[c]!);
    return finish(opts, classNames, items('train', train), items(testDir, test), { layout: `train/${testDir} folders` }, notes, from);
  }
  const classes = await scanClassFolders(root, notes);
  const all = classes.flatMap((c, label) => c.files.map((f) => fileItem(root, `${c.name}/${f}`, label)));
  const seed = opts.splitSeed ?? 0, testFraction = opts.testFraction ?? 0.2;
  const { train, test } = seededSplit(all, seed, testFraction);
  const classNames = await resolveClassNames(classes.map((c) => c.name), opts.classNamesFile, root);
  const from = (c: number) => path.join(root, classes[c]!.name);
  return finish(opts, classNames, train, test, { layout: 'class folders, seeded split', splitSeed: seed, testFraction }, notes, from);
}

/** Split lists: labels index class names; names come from the file, else from each label's parent folder. */
async function fromSplitLists(
  opts: ImageFolderOptions,
  trainList: Array<{ key: string; label: number }>,
  testList: Array<{ key: string; label: number }>,
): Promise<ImageDataset> {
  const { root } = opts;
  const all = [...trainList, ...testList];
  const numClasses = Math.max(...all.map((e) => e.label)) + 1;
  const folders: Array<string | undefined> = Array.from({ length: numClasses }, () => undefined);
  const named = opts.classNamesFile !== undefined;
  for (const e of all) {
    const parts = e.key.split('/');
    const folder = parts.length >= 2 ? parts[parts.length - 2]! : '';
    if (folders[e.label] === undefined) folders[e.label] = folder;
    else if (!named && folders[e.label] !== folder) {
      throw new DataError(opts.trainList!, `label ${e.label} is used for folders ${JSON.stringify(folders[e.label])} and ${JSON.stringify(folder)}; pass --class-names FILE`);
    }
  }
  for (let c = 0; c < numClasses; c++) {
    if (folders[c] === undefined && !named) {
      throw new DataError(opts.trainList!, `label ${c} never occurs, so it has no name; pass --class-names FILE`);
    }
  }
  const classNames = await resolveClassNames(folders.map((f, c) => f ?? `class ${c}`), opts.classNamesFile, root);
  const items = (list: typeof trainList) => list.map((e) => fileItem(root, e.key, e.label));
  return finish(opts, classNames, items(trainList), items(testList), { layout: 'split lists' }, [], (_, split) => (split === 'train' ? opts.trainList! : opts.testList!));
}

/** Where class `c`'s images of `split` come from (a class folder, a list file), for messages. */
type ClassSource = (c: number, split: 'train' | 'test') => string;

/**
 * Classes with no train or no test image: a features dataset with one cannot be trained or scored
 * (`run` would stop at that class much later). Refused naming the folder, or with `emptyClasses:
 * 'skip'` left out (labels renumbered) with a note.
 */
function dropEmptyClasses(opts: ImageFolderOptions, classNames: string[], train: ImageItem[], test: ImageItem[], from: ClassSource, notes: string[]) {
  const count = { train: new Int32Array(classNames.length), test: new Int32Array(classNames.length) };
  for (const it of train) count.train[it.label]!++;
  for (const it of test) count.test[it.label]!++;
  const empty = classNames.map((_, c) => (count.train[c] === 0 ? 'train' : count.test[c] === 0 ? 'test' : null));
  if (empty.every((e) => e === null)) return { classNames, train, test };
  const why = (c: number, split: 'train' | 'test'): string => {
    const n = count.train[c]! + count.test[c]!;
    return n === 0 ? `has no images (looked for ${IMAGE_EXTENSIONS.join(', ')} files)` : `has ${n} image${n === 1 ? '' : 's'} but none in the ${split} split`;
  };
  if (opts.emptyClasses !== 'skip') {
    const c = empty.findIndex((e) => e !== null);
    const split = empty[c]!;
    const others = empty.filter((e) => e !== null).length - 1;
    throw new DataError(from(c, split), `class ${JSON.stringify(classNames[c])} ${why(c, split)}${others > 0 ? ` (and ${others} more class${others === 1 ? '' : 'es'})` : ''}; add images, remove the class, or pass --on-empty-class skip to leave such classes out`);
  }
  const keep = classNames.map((_, c) => c).filter((c) => empty[c] === null);
  const newLabel = new Int32Array(classNames.length).fill(-1);
  keep.forEach((c, i) => (newLabel[c] = i));
  for (const [c, split] of empty.entries()) if (split !== null) notes.push(`skipped class ${JSON.stringify(classNames[c])} (${from(c, split)}): it ${why(c, split)}`);
  const relabel = (items: ImageItem[]): ImageItem[] => items.filter((it) => newLabel[it.label]! >= 0).map((it) => ({ ...it, label: newLabel[it.label]! }));
  return { classNames: keep.map((c) => classNames[c]!), train: relabel(train), test: relabel(test) };
}

function finish(opts: ImageFolderOptions, allNames: string[], allTrain: ImageItem[], allTest: ImageItem[], extra: Record<string, unknown>, notes: string[], from: ClassSource | null): ImageDataset {
  for (const [split, items] of [['train', allTrain], ['test', allTest]] as const) {
    if (items.length === 0) throw new DataError(opts.root, `the ${split} split has no images (looked for ${IMAGE_EXTENSIONS.join(', ')} files)`);
  }
  const { classNames, train, test } = from === null ? { classNames: allNames, train: allTrain, test: allTest } : dropEmptyClasses(opts, allNames, allTrain, allTest, from, notes);
  if (classNames.length === 0) throw new DataError(opts.root, 'every class was skipped: no class has both train and test images');
  return { name: opts.name, classNames, train: ordered(train), test: ordered(test), extra, notes };
}

/**
 * CUB-200-2011 in its own layout: `images/`, `images.txt` (id path), `image_class_labels.txt`
 * (id label, 1-based), `train_test_split.txt` (id is_train), `classes.txt` (id `001.Black_footed_Albatross`;
 * the number prefix is dropped from the name). `root` may also be the folder containing `CUB_200_2011/`.
 * With split lists given, it is read as a plain image folder instead.
 */
export async function readCub200(opts: DatasetOptions): Promise<ImageDataset> {
  if (opts.trainList !== undefined || opts.testList !== undefined) return readImageFolder({ ...opts, name: 'cub200' });
  const root = (await isDir(path.join(opts.root, 'CUB_200_2011'))) ? path.join(opts.root, 'CUB_200_2011') : opts.root;
  const table = async (name: string): Promise<Map<number, string>> => {
    const file = path.join(root, name);
    const out = new Map<number, string>();
    for (const [line, no] of lines(await readText(file, `CUB-200 ${name}`))) {
      const m = /^(\d+)\s+(.+)$/.exec(line);
      if (m === null) throw new DataError(file, `line ${no}: expected "<id> <value>", got ${JSON.stringify(line)}`);
      out.set(Number(m[1]), m[2]!);
    }
    return out;
  };
  const [images, labels, split, classes] = await Promise.all(['images.txt', 'image_class_labels.txt', 'train_test_split.txt', 'classes.txt'].map(table));
  const numClasses = classes!.size;
  const rawNames = Array.from({ length: numClasses }, (_, c) => {
    const v = classes!.get(c + 1);
    if (v === undefined) throw new DataError(path.join(root, 'classes.txt'), `class id ${c + 1} missing (ids must be 1..${numClasses})`);
    return v.replace(/^\d+\./, '');
  });
  const classNames = await resolveClassNames(rawNames, opts.classNamesFile, root);
  const train: ImageItem[] = [], test: ImageItem[] = [];
  for (const [id, rel] of images!) {
    const label = Number(labels!.get(id)) - 1, isTrain = split!.get(id);
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) throw new DataError(path.join(root, 'image_class_labels.txt'), `image id ${id}: missing or out-of-range class (expected 1..${numClasses})`);
    if (isTrain !== '0' && isTrain !== '1') throw new DataError(path.join(root, 'train_test_split.txt'), `image id ${id}: expected 0 or 1, got ${JSON.stringify(isTrain)}`);
    (isTrain === '1' ? train : test).push(fileItem(root, `images/${rel.replaceAll('\\', '/')}`, label));
  }
  // The authors' own split is kept as it is (no empty-class check: there are no class folders to name).
  return finish({ ...opts, root, name: 'cub200' }, classNames, train, test, { layout: 'CUB_200_2011' }, [], null);
}
