import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { featuresCommand } from '../../cli/commands/features.js';
import { recordingIO } from '../../cli/commands/io.js';
import { runCommand } from '../../cli/commands/run.js';
import { writeFeaturesDataset } from '../featuresDataset.js';
import { generateSyntheticDataset } from '../synthetic.js';
import { SYNTHETIC_TINY } from '../syntheticConfig.js';
import type { FeaturesDataset } from '../types.js';
import { DataError } from '../../util/errors.js';
import { readDataset } from './registry.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'clap4clip-empty-class-'));
  dirs.push(d);
  return d;
}

async function writeImages(dir: string, n: number, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    await sharp(Buffer.alloc(4 * 4 * 3, (seed * 31 + i * 7) & 255), { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path.join(dir, `${i}.png`));
  }
}

/** root/{cat,dog,owl,yak}: owl has no images (just a stray text file); the others five each. */
async function folderWithEmptyClass(): Promise<string> {
  const root = await tempDir();
  for (const [i, c] of ['cat', 'dog', 'yak'].entries()) await writeImages(path.join(root, c), 5, i);
  await mkdir(path.join(root, 'owl'));
  await writeFile(path.join(root, 'owl', 'README.txt'), 'photos to come');
  return root;
}

async function refused(p: Promise<unknown>, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, file);
    assert.match(e.problem, problem);
    return true;
  });
}

test('an image-folder class with no images is refused, naming its folder', async () => {
  const root = await folderWithEmptyClass();
  await refused(readDataset('image-folder', { root }), path.join(root, 'owl'), /^class "owl" has no images \(looked for \.jpg.*--on-empty-class skip/);
});

test('with emptyClasses "skip" the class is left out with a note, and the labels after it move down', async () => {
  const root = await folderWithEmptyClass();
  const { images } = await readDataset('image-folder', { root, emptyClasses: 'skip' });
  assert.deepEqual(images.classNames, ['cat', 'dog', 'yak']);
  assert.deepEqual([...new Set(images.train.map((it) => it.label))].sort(), [0, 1, 2]);
  assert.ok(images.train.filter((it) => it.label === 2).every((it) => it.key.startsWith('yak/')));
  assert.equal(images.train.length + images.test.length, 15);
  assert.ok(images.notes!.some((n) => n.includes(`skipped class "owl" (${path.join(root, 'owl')}): it has no images`)), images.notes!.join('\n'));
});

test('the whole family: a test folder without images, a class too small for the seeded split, a label no list uses', async () => {
  const folders = await tempDir();
  for (const c of ['cat', 'owl']) await writeImages(path.join(folders, 'train', c), 3, 1);
  await writeImages(path.join(folders, 'test', 'cat'), 2, 2);
  await mkdir(path.join(folders, 'test', 'owl'));
  await refused(readDataset('image-folder', { root: folders }), path.join(folders, 'test', 'owl'), /^class "owl" has 3 images but none in the test split/);

  const small = await tempDir();
  await writeImages(path.join(small, 'cat'), 10, 1);
  await writeImages(path.join(small, 'owl'), 1, 2);
  await refused(readDataset('image-folder', { root: small }), path.join(small, 'owl'), /^class "owl" has 1 image but none in the test split/);

  const lists = await tempDir();
  await writeImages(path.join(lists, 'cat'), 2, 1);
  await writeImages(path.join(lists, 'owl'), 2, 2);
  await writeFile(path.join(lists, 'train.txt'), 'cat/0.png 0\nowl/0.png 1\n');
  await writeFile(path.join(lists, 'test.txt'), 'cat/1.png 0\n');
  await refused(readDataset('image-folder', { root: lists, trainList: path.join(lists, 'train.txt'), testList: path.join(lists, 'test.txt') }), path.join(lists, 'test.txt'), /^class "owl" has 1 image but none in the test split/);

  // VTAB reads one image folder per task: the same refusal, naming the task's class folder.
  const vtab = await tempDir();
  for (const t of ['a', 'b']) for (const c of ['x', 'y']) await writeImages(path.join(vtab, t, c), 5, 3);
  await mkdir(path.join(vtab, 'b', 'z'));
  await refused(readDataset('vtab', { root: vtab }), path.join(vtab, 'b', 'z'), /^class "z" has no images/);
});

test('`features` refuses an image folder with an empty class before loading any model', async () => {
  const root = await folderWithEmptyClass();
  const out = path.join(await tempDir(), 'feats');
  let loaded = false;
  const io = recordingIO();
  await refused(
    featuresCommand(['--dataset', 'image-folder', '--root', root, '--encoder', 'no-such-model', '--out', out], io, { loadEncoder: async () => { loaded = true; throw new Error('not reached'); } }),
    path.join(root, 'owl'),
    /class "owl" has no images/,
  );
  assert.equal(loaded, false);
  await assert.rejects(featuresCommand(['--dataset', 'image-folder', '--root', root, '--encoder', 'x', '--out', out, '--on-empty-class', 'sometimes'], io), /--on-empty-class must be one of \[skip, fail\]/);
});

/** The tiny synthetic world with every training sample of dataset class `drop` removed. */
function withoutTrainingSamplesOf(drop: number): FeaturesDataset {
  const ds = generateSyntheticDataset(SYNTHETIC_TINY);
  const { train } = ds;
  const keep = Array.from(train.labels.keys()).filter((i) => train.labels[i] !== drop);
  const D = ds.manifest.dim * train.views;
  const features = new Float32Array(keep.length * D);
  keep.forEach((i, r) => features.set(train.features.subarray(i * D, (i + 1) * D), r * D));
  return { ...ds, train: { ...train, n: keep.length, features, labels: Int32Array.from(keep.map((i) => train.labels[i]!)) } };
}

test('`run` on a features dataset with a class without training samples names the class by name and the dataset', async () => {
  const dir = path.join(await tempDir(), 'feats');
  const ds = withoutTrainingSamplesOf(3);
  await writeFeaturesDataset(dir, ds);
  const name = ds.manifest.classNames[3]!;
  await assert.rejects(
    runCommand(['--data', dir, '--method', 'zeroshot', '--out', path.join(await tempDir(), 'run')], recordingIO()),
    (e: Error) => e.message.includes(`dataset class 3 ${JSON.stringify(name)} has no training samples in ${dir}`),
  );
});
