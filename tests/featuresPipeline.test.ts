/**
 * Issue 5 end to end, offline, through the same code path as a real model: a tiny random CLIP in
 * the transformers.js layout encodes a generated CIFAR-100 binary distribution and a generated
 * image folder with `clap4clip features`; `clap4clip run --data DIR` then learns on the result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { featuresCommand } from '../src/cli/commands/features.js';
import { recordingIO } from '../src/cli/commands/io.js';
import { runCommand } from '../src/cli/commands/run.js';
import { loadFeaturesDataset } from '../src/data/featuresDataset.js';
import { CIFAR100_CLASS_NAMES } from '../src/data/datasets/cifar100.js';
import { buildTinyClip } from '../src/encoders/fixtures/tinyClip.js';
import { Rng } from '../src/engine/random.js';


/** n CIFAR-100 binary records, `perClass` of each fine label in turn, with seeded pixels. */
function cifarRecords(perClass: number, rng: Rng): Buffer {
  const n = 100 * perClass;
  const out = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    const fine = i % 100;
    out[i * 3074] = fine % 20;
    out[i * 3074 + 1] = fine;
    // class-dependent colour plus noise, so the images differ by class and by sample
    for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) out[i * 3074 + 2 + ch * 1024 + p] = ((fine * 37 + ch * 80) % 256 + rng.int(40)) & 255;
  }
  return out;
}

test('a CIFAR-100 binary distribution goes through features (tiny CLIP, offline) and then a short clap run', async () => {
  const root = await mkdtemp(join(tmpdir(), 'clap4clip-pipeline-'));
  try {
    const model = join(root, 'tiny-clip');
    await buildTinyClip(model, { seed: 3 });
    const cifar = join(root, 'cifar-100-binary');
    await mkdir(cifar);
    const rng = new Rng(5);
    await writeFile(join(cifar, 'train.bin'), cifarRecords(2, rng));
    await writeFile(join(cifar, 'test.bin'), cifarRecords(1, rng));
    await writeFile(join(cifar, 'fine_label_names.txt'), CIFAR100_CLASS_NAMES.join('\n') + '\n');
    const out = join(root, 'features');
    const io = recordingIO();
    const code = await featuresCommand(['--dataset', 'cifar100', '--root', root, '--encoder', model, '--out', out, '--offline', '--quiet'], io);
    assert.equal(code, 0, io.err.join(''));
    const ds = await loadFeaturesDataset(out);
    assert.equal(ds.train.n, 200);
    assert.equal(ds.train.views, 2);
    assert.equal(ds.test.n, 100);
    assert.equal(ds.test.views, 1);
    assert.equal(ds.numTemplates, 18);
    assert.equal(ds.manifest.encoder, model);
    assert.deepEqual(ds.manifest.classNames.slice(0, 3), CIFAR100_CLASS_NAMES.slice(0, 3));
    // The mirror view is a different image: its feature differs from view 0.
    const d = ds.manifest.dim;
    let diff = 0;
    for (let j = 0; j < d; j++) diff += Math.abs(ds.train.features[j]! - ds.train.features[d + j]!);
    assert.ok(diff > 1e-4, 'mirror view equals the image');

    const runIo = recordingIO();
    const runOut = join(root, 'run');
    const runCode = await runCommand(['--data', out, '--method', 'clap', '--increment', '50', '--epochs', '1', '--finetune-epochs', '1',
      '--samples', '2', '--memory-kind', 'perClass', '--memory-size', '1', '--out', runOut, '--progress', 'never'], runIo);
    assert.equal(runCode, 0, runIo.err.join(''));
    const results = JSON.parse(await readFile(join(runOut, 'results.json'), 'utf8')) as { accuracyMatrix: number[][]; synthetic: boolean };
    assert.equal(results.accuracyMatrix.length, 2);
    assert.equal(results.synthetic, false);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('an image folder (PNG and JPEG) goes through features and then a zero-shot run', async () => {
  const root = await mkdtemp(join(tmpdir(), 'clap4clip-folder-'));
  try {
    const model = join(root, 'tiny-clip');
    await buildTinyClip(model, { seed: 4 });
    const images = join(root, 'images');
    const classes = ['red_fox', 'blue_whale', 'green_frog', 'grey_owl'];
    const rng = new Rng(9);
    for (const [c, name] of classes.entries()) {
      await mkdir(join(images, name), { recursive: true });
      for (let k = 0; k < 5; k++) {
        const px = Buffer.alloc(20 * 16 * 3);
        for (let i = 0; i < px.length; i++) px[i] = ((c * 60 + (i % 3) * 50) + rng.int(30)) & 255;
        const img = sharp(px, { raw: { width: 20, height: 16, channels: 3 } });
        await (k % 2 ? img.jpeg() : img.png()).toFile(join(images, name, `img${k}.${k % 2 ? 'jpg' : 'png'}`));
      }
    }
    const out = join(root, 'features');
    const io = recordingIO();
    const code = await featuresCommand(['--dataset', 'image-folder', '--root', images, '--encoder', model, '--out', out, '--offline', '--quiet', '--views', '1'], io);
    assert.equal(code, 0, io.err.join(''));
    const ds = await loadFeaturesDataset(out);
    assert.equal(ds.train.n + ds.test.n, 20);
    assert.deepEqual([...ds.manifest.classNames].sort(), [...classes].sort());
    const runIo = recordingIO();
    const runCode = await runCommand(['--data', out, '--method', 'zeroshot', '--increment', '2', '--class-order', 'identity', '--out', join(root, 'run'), '--progress', 'never'], runIo);
    assert.equal(runCode, 0, runIo.err.join(''));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
