import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { readVtab } from './vtab.js';

async function writePng(file: string, seed: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp(Buffer.alloc(8 * 8 * 3, seed), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(file);
}

describe('VTAB (one image folder per task)', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'clap4clip-vtab-'));
    // dtd: train/test folders; eurosat: flat class folders (seeded split). "forest" occurs in both.
    for (const split of ['train', 'test']) for (const c of ['banded', 'forest']) await writePng(path.join(root, 'dtd', split, c, `${split}.png`), 1);
    for (const c of ['forest', 'river', 'sea_lake']) for (let i = 0; i < 5; i++) await writePng(path.join(root, 'eurosat', c, `${i}.png`), i);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('concatenates tasks in sorted order with contiguous labels and namespaced duplicates', async () => {
    const ds = await readVtab({ root });
    assert.deepEqual(ds.classNames, ['banded', 'forest (dtd)', 'forest (eurosat)', 'river', 'sea_lake']);
    assert.deepEqual(ds.extra!['tasks'], [
      { name: 'dtd', classes: [0, 2], layout: 'train/test folders' },
      { name: 'eurosat', classes: [2, 5], layout: 'class folders, seeded split' },
    ]);
    assert.deepEqual(ds.train.slice(0, 2).map((it) => [it.key, it.label]), [['dtd/train/banded/train.png', 0], ['dtd/train/forest/train.png', 1]]);
    assert.equal(ds.train.filter((it) => it.label >= 2).length, 12);
    assert.equal(ds.test.filter((it) => it.label >= 2).length, 3);
    assert.equal((await ds.test.at(-1)!.load()).width, 8);
  });

  it('tasks.txt sets the task order; unknown tasks and single-task roots are refused', async () => {
    await writeFile(path.join(root, 'tasks.txt'), 'eurosat\ndtd\n');
    const ds = await readVtab({ root });
    assert.deepEqual(ds.classNames.slice(0, 3), ['forest (eurosat)', 'river', 'sea_lake']);
    await writeFile(path.join(root, 'tasks.txt'), 'eurosat\npets\n');
    await assert.rejects(readVtab({ root }), /tasks\.txt: task "pets" has no folder/);
    await rm(path.join(root, 'tasks.txt'));
    await assert.rejects(readVtab({ root: path.join(root, 'eurosat', 'river') }), /VTAB needs one sub-folder per dataset/);
  });
});
