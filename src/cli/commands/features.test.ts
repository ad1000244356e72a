import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadFeaturesDataset } from '../../data/featuresDataset.js';
import type { ClipEncoder, RgbImage } from '../../encoders/types.js';
import { featuresCommand, parseShard, type LoadClipEncoder } from './features.js';
import { recordingIO } from './io.js';

const DIM = 8;

/** Unit vector from a seed (deterministic). */
function unit(seed: number): Float32Array {
  const v = Float32Array.from({ length: DIM }, (_, k) => Math.sin(seed * 12.9898 + k * 78.233) + 1.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** A tiny deterministic encoder: images by their pixel sum (position-weighted, so mirrors differ), texts by length. */
function fakeEncoder(): ClipEncoder {
  const rows = (xs: Float32Array[]) => {
    const out = new Float32Array(xs.length * DIM);
    xs.forEach((x, i) => out.set(x, i * DIM));
    return out;
  };
  return {
    info: { id: 'fake', dim: DIM, dtype: 'fp32', logitScale: 100 },
    encodeImages: async (imgs: RgbImage[]) => rows(imgs.map((im) => unit(Array.from(im.data).reduce((s, v, i) => s + v * ((i % (im.width * 3)) + 1), 0) % 9973))),
    encodeTexts: async (texts: string[]) => rows(texts.map((t) => unit(t.length))),
    dispose: async () => undefined,
  };
}


describe('clap4clip features', () => {
  let tmp: string, root: string;
  const calls: Array<[string, unknown]> = [];
  const loadEncoder: LoadClipEncoder = async (id, opts) => {
    calls.push([id, opts]);
    return fakeEncoder();
  };
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'clap4clip-features-cli-'));
    root = path.join(tmp, 'cifar-100-binary');
    await mkdir(root);
    const split = (n: number) => Buffer.from(Array.from({ length: n * 3074 }, (_, i) => (i % 3074 < 2 ? (Math.floor(i / 3074) * 3) % 20 : (i * 7) & 255)));
    await writeFile(path.join(root, 'train.bin'), split(40));
    await writeFile(path.join(root, 'test.bin'), split(10));
    await writeFile(path.join(root, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `c${i}`).join('\n'));
    await writeFile(path.join(tmp, 'templates.txt'), 'a photo of a {}.\nart of the {}.\n');
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const run = (args: string[], io = recordingIO()) => featuresCommand(args, io, { loadEncoder }).then((code) => ({ code, io }));

  it('prints help listing the datasets', async () => {
    const { code, io } = await run(['--help']);
    assert.equal(code, 0);
    for (const name of ['cifar100', 'imagenet-r', 'imagenet-100', 'cub200', 'image-folder', 'vtab']) assert.match(io.out.join(''), new RegExp(`\\n  ${name} +\\S`));
    assert.match(io.out.join(''), /features merge --out DIR SHARD_DIR/);
  });

  it('rejects bad arguments with clear messages', async () => {
    const need = ['--dataset', 'cifar100', '--root', root, '--encoder', 'x', '--out', path.join(tmp, 'never')];
    await assert.rejects(run(need.slice(2)), /--dataset is required/);
    await assert.rejects(run(['--dataset', 'cifar10', ...need.slice(2)]), /--dataset must be one of \[cifar100, /);
    await assert.rejects(run([...need, '--views', '3']), /--views must be 1 or 2/);
    await assert.rejects(run([...need, '--shard', '3/3']), /--shard must be i\/N with 0 <= i < N/);
    await assert.rejects(run([...need, '--on-bad-image', 'ignore']), /must be one of \[skip, fail\]/);
    await assert.rejects(run([...need, '--batch-size', '0']), /--batch-size must be an integer >= 1/);
    await assert.rejects(run([...need, '--frobnicate']), /unknown option --frobnicate/);
    await assert.rejects(run(['merge', '--out', path.join(tmp, 'm')]), /give the shard directories/);
    assert.deepEqual(parseShard('2/5'), { index: 2, count: 5 });
  });

  it('extracts a dataset (custom templates, progress on stderr), and shards + merge give the same bytes', async () => {
    const common = ['--dataset', 'cifar100', '--root', root, '--encoder', 'Xenova/clip-vit-base-patch16', '--batch-size', '8', '--chunk-size', '16', '--templates', path.join(tmp, 'templates.txt')];
    const full = path.join(tmp, 'full');
    const { code, io } = await run([...common, '--out', full, '--offline', '--threads', '2', '--cache-dir', path.join(tmp, 'models')]);
    assert.equal(code, 0);
    assert.deepEqual(calls[0], ['Xenova/clip-vit-base-patch16', { offline: true, cacheDir: path.join(tmp, 'models'), dtype: undefined, device: undefined, threads: 2 }]);
    assert.match(io.out.join(''), /wrote features of cifar100 with fake \(D = 8\) -> .*full \(4 chunks computed, 0 reused\)/);
    assert.match(io.err.join(''), /features: test 50\/50 images, [\d.]+ images\/s/);
    const ds = await loadFeaturesDataset(full);
    assert.deepEqual(ds.manifest.templates, ['a photo of a {}.', 'art of the {}.']);
    assert.deepEqual([ds.train.n, ds.train.views, ds.test.views], [40, 2, 1]);

    const shards = [0, 1].map((i) => path.join(tmp, `s${i}`));
    for (const [i, dir] of shards.entries()) {
      // --quiet prints nothing but errors; --json the result alone.
      const r = await run([...common, '--out', dir, '--shard', `${i}/2`, ...(i === 0 ? ['--quiet'] : ['--json'])]);
      if (i === 0) assert.deepEqual(r.io.out, []);
      else {
        const doc = JSON.parse(r.io.out.join('')) as Record<string, unknown>;
        assert.deepEqual([doc['directory'], doc['encoder'], doc['dim'], doc['complete'], doc['shard']], [dir, 'fake', 8, false, { index: 1, count: 2 }]);
      }
      if (i === 0) assert.deepEqual(r.io.err, []);
    }
    const merged = path.join(tmp, 'merged');
    const m = await run(['merge', '--out', merged, ...shards]);
    assert.match(m.io.out.join(''), /merged 2 shards/);
    for (const f of ['manifest.json', 'text.safetensors', 'train.safetensors', 'test.safetensors']) {
      assert.ok((await readFile(path.join(full, f))).equals(await readFile(path.join(merged, f))), f);
    }
  });
});
