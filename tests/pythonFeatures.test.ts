/**
 * examples/write_features.py (the README's "Bring your own features") writes a folder that
 * loadFeaturesDataset accepts with the layout the script describes. Python with numpy runs it; the
 * safetensors package is used when installed, else tests/pyshim's stand-in that writes the same
 * published format (the development machine has no safetensors package).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadFeaturesDataset } from '../src/index.js';
import { repoRoot } from '../src/util/paths.js';

const root = repoRoot();
const exec = promisify(execFile);

/** 'real' / 'stand-in' for the safetensors package, or why Python cannot run the script. */
async function pythonSetup(): Promise<{ safetensors: 'real' | 'stand-in' } | { skip: string }> {
  try {
    await exec('python3', ['-c', 'import numpy']);
  } catch (err) {
    return { skip: `python3 with numpy is not available (${(err as Error).message.split('\n')[0]})` };
  }
  try {
    await exec('python3', ['-c', 'import safetensors.numpy']);
    return { safetensors: 'real' };
  } catch {
    return { safetensors: 'stand-in' };
  }
}

test('examples/write_features.py writes a features dataset that loads and has the described layout', async (t) => {
  const setup = await pythonSetup();
  if ('skip' in setup) {
    t.skip(setup.skip);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'clap4clip-pyfeatures-'));
  try {
    const env = setup.safetensors === 'real' ? process.env : { ...process.env, PYTHONPATH: join(root, 'tests', 'pyshim') };
    await exec('python3', [join(root, 'examples', 'write_features.py'), join(dir, 'feats')], { env, timeout: 60_000 });
    const ds = await loadFeaturesDataset(join(dir, 'feats'));
    assert.deepEqual(ds.manifest, {
      format: 'clap4clip-features', version: 1, encoder: 'demo: random vectors', dim: 16, logitScale: 100,
      classNames: ['fox', 'owl', 'hare'], templates: ['a photo of a {}.', 'a drawing of a {}.'],
    });
    assert.deepEqual([ds.numClasses, ds.numTemplates, ds.text.length], [3, 2, 3 * 2 * 16]);
    assert.deepEqual([ds.train.n, ds.train.views, ds.train.dim, ds.test.n, ds.test.views], [60, 1, 16, 15, 1]);
    assert.deepEqual([...ds.train.labels.slice(0, 21)], [...Array(20).fill(0), 1]);
    // The demo puts each image near the mean of its class's text rows: nearest-text prediction
    // recovers every label only if text is [C, P, D] and features [N, V, D] as written.
    const D = 16;
    for (const split of [ds.train, ds.test]) {
      for (let i = 0; i < split.n; i++) {
        const f = split.features.subarray(i * D, (i + 1) * D);
        const scores = [0, 1, 2].map((c) => {
          let s = 0;
          for (let p = 0; p < 2; p++) for (let j = 0; j < D; j++) s += f[j]! * ds.text[(c * 2 + p) * D + j]!;
          return s;
        });
        assert.equal(scores.indexOf(Math.max(...scores)), split.labels[i], `sample ${i}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
