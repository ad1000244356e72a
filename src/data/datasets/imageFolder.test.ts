import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DataError } from '../../util/errors.js';
import { decodeImageFile, parseSplitList, readCub200, readImageFolder, seededSplit } from './imageFolder.js';
import { datasetEntry, DATASET_NAMES, readDataset } from './registry.js';

/** Known RGB pixels for image `seed`. */
function pixels(w: number, h: number, seed: number, channels = 3): Buffer {
  const b = Buffer.alloc(w * h * channels);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + seed * 29) & 255;
  return b;
}

async function writeImage(file: string, seed: number, format: 'png' | 'jpeg' = 'png', w = 12, h = 10): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const img = sharp(pixels(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
  await (format === 'png' ? img.png() : img.jpeg()).toFile(file);
}

describe('image decoding (sharp)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'clap4clip-decode-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('PNG is exact; RGBA loses alpha; grey becomes RGB; JPEG decodes', async () => {
    await writeImage(path.join(dir, 'a.png'), 3);
    const a = await decodeImageFile(path.join(dir, 'a.png'));
    assert.deepEqual([a.width, a.height], [12, 10]);
    assert.deepEqual(Buffer.from(a.data), pixels(12, 10, 3));
    const rgba = pixels(4, 4, 1, 4);
    await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toFile(path.join(dir, 'rgba.png'));
    const b = await decodeImageFile(path.join(dir, 'rgba.png'));
    assert.deepEqual(Array.from(b.data.subarray(0, 6)), [rgba[0], rgba[1], rgba[2], rgba[4], rgba[5], rgba[6]]);
    await sharp(Buffer.alloc(16, 77), { raw: { width: 4, height: 4, channels: 1 } }).png().toFile(path.join(dir, 'grey.png'));
    assert.deepEqual(Array.from((await decodeImageFile(path.join(dir, 'grey.png'))).data), new Array(48).fill(77));
    await writeImage(path.join(dir, 'c.jpg'), 2, 'jpeg');
    assert.equal((await decodeImageFile(path.join(dir, 'c.jpg'))).data.length, 12 * 10 * 3);
  });

  it('corrupt and truncated files reject', async () => {
    await writeFile(path.join(dir, 'junk.jpg'), 'not an image');
    await assert.rejects(decodeImageFile(path.join(dir, 'junk.jpg')));
    await writeImage(path.join(dir, 'full.jpg'), 1, 'jpeg', 64, 64);
    const full = await readFile(path.join(dir, 'full.jpg'));
    await writeFile(path.join(dir, 'half.jpg'), full.subarray(0, full.length >> 1));
    await assert.rejects(decodeImageFile(path.join(dir, 'half.jpg')), /premature end/i);
  });
});

describe('image folders', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'clap4clip-folder-'));
    // flat/<class>/: 10 images per class, PNG and JPEG, plus a non-image and a hidden file.
    for (const [c, cls] of ['zebra', 'ant', 'moth'].entries()) {
      for (let i = 0; i < 10; i++) await writeImage(path.join(root, 'flat', cls, `img${i}.${i % 2 ? 'JPG' : 'png'}`), c * 10 + i, i % 2 ? 'jpeg' : 'png');
    }
    await writeFile(path.join(root, 'flat', 'ant', 'notes.txt'), 'not an image');
    await writeFile(path.join(root, 'flat', 'ant', '.DS_Store'), '');
    for (const split of ['train', 'val']) for (const cls of ['n01443537', 'n01484850']) await writeImage(path.join(root, 'tv', split, cls, 'x.jpeg'), 1, 'jpeg');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('class folders: sorted names, seeded per-class 80/20 split, deterministic order, ignored files noted', async () => {
    const ds = await readImageFolder({ root: path.join(root, 'flat'), name: 'mine' });
    assert.deepEqual(ds.classNames, ['ant', 'moth', 'zebra']);
    assert.equal(ds.train.length, 24);
    assert.equal(ds.test.length, 6);
    for (let c = 0; c < 3; c++) assert.equal(ds.test.filter((it) => it.label === c).length, 2);
    const keys = [...ds.train, ...ds.test].map((it) => it.key).sort();
    assert.equal(new Set(keys).size, 30);
    assert.ok(keys.includes('ant/img1.JPG'));
    for (const split of [ds.train, ds.test]) {
      const sorted = [...split].sort((a, b) => a.label - b.label || (a.key < b.key ? -1 : 1));
      assert.deepEqual(split.map((it) => it.key), sorted.map((it) => it.key));
    }
    assert.match(ds.notes!.join('\n'), /ignored 1 entries .*ant\/notes\.txt/);
    const again = await readImageFolder({ root: path.join(root, 'flat'), name: 'mine' });
    assert.deepEqual(again.test.map((it) => it.key), ds.test.map((it) => it.key));
    const other = await readImageFolder({ root: path.join(root, 'flat'), name: 'mine', splitSeed: 7, testFraction: 0.5 });
    assert.equal(other.test.length, 15);
    assert.deepEqual(ds.extra, { layout: 'class folders, seeded split', splitSeed: 0, testFraction: 0.2 });
    assert.equal((await ds.test[0]!.load()).width, 12);
  });

  it('seededSplit rounds per class and keeps every item once', () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ key: `k${i}`, label: 0, source: '', load: async () => ({ width: 1, height: 1, data: new Uint8Array(3) }) }));
    const { train, test } = seededSplit(items, 1, 0.2);
    assert.equal(test.length, 1);
    assert.equal(train.length + test.length, 7);
  });

  it('train/val folders; WordNet-id folders need class names (text or JSON)', async () => {
    const tv = path.join(root, 'tv');
    await assert.rejects(readImageFolder({ root: tv, name: 'imagenet-100' }), (e: unknown) => e instanceof DataError && /WordNet ids \(n01443537, \.\.\.\).*--class-names/.test(e.message));
    await writeFile(path.join(root, 'names.txt'), 'goldfish\ngreat_white_shark\n');
    const ds = await readImageFolder({ root: tv, name: 'imagenet-100', classNamesFile: path.join(root, 'names.txt') });
    assert.deepEqual(ds.classNames, ['goldfish', 'great_white_shark']);
    assert.deepEqual(ds.test.map((it) => [it.key, it.label]), [['val/n01443537/x.jpeg', 0], ['val/n01484850/x.jpeg', 1]]);
    await writeFile(path.join(root, 'names.json'), '{"n01484850": "shark", "n01443537": "fish"}');
    assert.deepEqual((await readImageFolder({ root: tv, name: 'x', classNamesFile: path.join(root, 'names.json') })).classNames, ['fish', 'shark']);
    await writeFile(path.join(root, 'short.txt'), 'one\n');
    await assert.rejects(readImageFolder({ root: tv, name: 'x', classNamesFile: path.join(root, 'short.txt') }), /has 1 class names but the dataset has 2 classes/);
  });

  it('split lists: order kept, names from folders or a file, bad lines rejected with file and line', async () => {
    const flat = path.join(root, 'flat');
    await writeFile(path.join(root, 'train.txt'), 'zebra/img0.png 1\nant/img3.JPG 0\n\n');
    await writeFile(path.join(root, 'test.txt'), './ant/img4.png 0\nzebra/img5.JPG 1\n');
    const ds = await readImageFolder({ root: flat, name: 'x', trainList: path.join(root, 'train.txt'), testList: path.join(root, 'test.txt') });
    assert.deepEqual(ds.classNames, ['ant', 'zebra']);
    assert.deepEqual(ds.train.map((it) => it.key), ['ant/img3.JPG', 'zebra/img0.png']);
    assert.deepEqual(ds.test.map((it) => it.key), ['ant/img4.png', 'zebra/img5.JPG']);
    await writeFile(path.join(root, 'bad.txt'), 'ant/img3.JPG 0\nzebra/img0.png x\n');
    await assert.rejects(parseSplitList(path.join(root, 'bad.txt')), (e: unknown) => e instanceof DataError && /line 2: label "x"/.test(e.message));
    await writeFile(path.join(root, 'mixed.txt'), 'ant/img3.JPG 0\nzebra/img0.png 0\n');
    await assert.rejects(readImageFolder({ root: flat, name: 'x', trainList: path.join(root, 'mixed.txt'), testList: path.join(root, 'test.txt') }), /label 0 is used for folders "ant" and "zebra"/);
    await assert.rejects(readImageFolder({ root: flat, name: 'x', trainList: path.join(root, 'train.txt') }), /split lists come in pairs/);
    await writeFile(path.join(root, 'up.txt'), '../secret.png 0\n');
    await assert.rejects(parseSplitList(path.join(root, 'up.txt')), /must be relative to the dataset root/);
  });

  it('CUB-200-2011 native layout', async () => {
    const cub = path.join(root, 'cubroot', 'CUB_200_2011');
    await writeImage(path.join(cub, 'images', '001.Black_footed_Albatross', 'a.jpg'), 1, 'jpeg');
    await writeImage(path.join(cub, 'images', '001.Black_footed_Albatross', 'b.jpg'), 2, 'jpeg');
    await writeImage(path.join(cub, 'images', '002.Laysan_Albatross', 'c.jpg'), 3, 'jpeg');
    await writeFile(path.join(cub, 'images.txt'), '1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n3 002.Laysan_Albatross/c.jpg\n');
    await writeFile(path.join(cub, 'image_class_labels.txt'), '1 1\n2 1\n3 2\n');
    await writeFile(path.join(cub, 'train_test_split.txt'), '1 1\n2 0\n3 1\n');
    await writeFile(path.join(cub, 'classes.txt'), '1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n');
    const ds = await readCub200({ root: path.join(root, 'cubroot') });
    assert.deepEqual(ds.classNames, ['Black_footed_Albatross', 'Laysan_Albatross']);
    assert.deepEqual(ds.train.map((it) => [it.key, it.label]), [['images/001.Black_footed_Albatross/a.jpg', 0], ['images/002.Laysan_Albatross/c.jpg', 1]]);
    assert.deepEqual(ds.test.map((it) => it.key), ['images/001.Black_footed_Albatross/b.jpg']);
    await writeFile(path.join(cub, 'train_test_split.txt'), '1 1\n2 2\n3 1\n');
    await assert.rejects(readCub200({ root: cub }), /train_test_split\.txt: image id 2: expected 0 or 1/);
  });
});

describe('dataset registry', () => {
  it('has the paper datasets, their templates and memory budgets', () => {
    assert.deepEqual(DATASET_NAMES, ['cifar100', 'imagenet-r', 'imagenet-100', 'cub200', 'image-folder', 'vtab']);
    assert.equal(datasetEntry('cifar100').templates.length, 18);
    assert.deepEqual(datasetEntry('cifar100').memory, { kind: 'total', size: 2000 });
    assert.equal(datasetEntry('imagenet-r').templates.length, 80);
    assert.deepEqual(datasetEntry('cub200').memory, { kind: 'perClass', size: 20 });
  });

  it('unknown names fail listing the valid ones', () => {
    assert.throws(() => datasetEntry('cifar10'), /unknown dataset "cifar10": must be one of \[cifar100, imagenet-r, imagenet-100, cub200, image-folder, vtab\]/);
    assert.throws(() => datasetEntry('toString'), /must be one of/);
  });

  it('readDataset labels the images with the registry key and records its memory budget', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'clap4clip-registry-'));
    try {
      // Listing and splitting read no pixels, so empty files are enough.
      for (const c of ['cat', 'dog']) {
        await mkdir(path.join(root, c));
        for (const f of ['a.png', 'b.png', 'c.png']) await writeFile(path.join(root, c, f), '');
      }
      for (const name of ['image-folder', 'imagenet-r', 'imagenet-100'] as const) {
        const { images, entry } = await readDataset(name, { root });
        assert.equal(images.name, name);
        assert.deepEqual(images.extra?.['memory'], { kind: 'perClass', size: 20 });
        assert.equal(entry, datasetEntry(name));
      }
      await assert.rejects(readDataset('toString', { root }), /unknown dataset "toString"/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
