import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { meanOverGroups } from './groupMean.js';
import { drawNormalsAhead, normalsAheadSettings, normalsAheadStats } from './normalsAhead.js';
import { Rng } from './random.js';

const N = 200_000; // above minCount: drawn by the worker

function here(seed: number, n = N): Float32Array {
  const out = new Float32Array(n);
  new Rng(seed).fillNormal(out);
  return out;
}

describe('drawNormalsAhead (normals drawn on a worker thread)', () => {
  it('gives exactly the numbers fillNormal draws on this thread, request after request', () => {
    const before = normalsAheadStats.byWorker;
    for (const seed of [1, 2, 3]) {
      const pending = drawNormalsAhead(new Rng(seed), N);
      let busy = 0;
      for (let i = 0; i < 1e6; i++) busy += i; // this thread works meanwhile
      assert.ok(busy > 0);
      assert.deepEqual(pending.take(), here(seed));
    }
    assert.equal(normalsAheadStats.byWorker - before, 3, 'the worker drew all three');
  });

  it('a request left untaken is dropped by the next one, which still comes out right', () => {
    const dropped = drawNormalsAhead(new Rng(4), N);
    const next = drawNormalsAhead(new Rng(5), N);
    assert.deepEqual(next.take(), here(5));
    assert.deepEqual(dropped.take(), here(4), 'a dropped request is drawn on this thread when taken');
  });

  it('small counts, and the setting off, draw on this thread with the same numbers', () => {
    assert.deepEqual(drawNormalsAhead(new Rng(6), 100).take(), here(6, 100));
    normalsAheadSettings.enabled = false;
    try {
      assert.deepEqual(drawNormalsAhead(new Rng(7), N).take(), here(7));
    } finally {
      normalsAheadSettings.enabled = true;
    }
  });

  it('with meanOver, the worker also gives the mean over the leading groups, as computed here', () => {
    const T = 20, pending = drawNormalsAhead(new Rng(11), T * 10_000, T);
    const eps = pending.take();
    assert.deepEqual(eps, here(11, T * 10_000));
    const mean = pending.mean();
    assert.deepEqual(mean, meanOverGroups(eps, T));
    // by hand on a small case: groups [1, 2], [3, 6] -> [2, 4]
    assert.deepEqual(meanOverGroups(Float32Array.of(1, 2, 3, 6), 2), Float32Array.of(2, 4));
    normalsAheadSettings.enabled = false;
    try {
      const onThisThread = drawNormalsAhead(new Rng(11), T * 10_000, T);
      assert.throws(() => drawNormalsAhead(new Rng(12), N).mean(), /mean\(\) before take\(\)|without meanOver/);
      onThisThread.take();
      assert.deepEqual(onThisThread.mean(), mean);
    } finally {
      normalsAheadSettings.enabled = true;
    }
    const noMean = drawNormalsAhead(new Rng(13), N);
    noMean.take();
    assert.throws(() => noMean.mean(), /without meanOver/);
    assert.throws(() => drawNormalsAhead(new Rng(14), N, 4).mean(), /mean\(\) before take\(\)/);
  });

  it('take() twice is an error', () => {
    const p = drawNormalsAhead(new Rng(8), N);
    p.take();
    assert.throws(() => p.take(), /take\(\) called twice/);
  });

  it('a worker that does not answer in time is given up: the numbers are drawn here instead', () => {
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { drawNormalsAhead, normalsAheadSettings, normalsAheadStats } = await import(${JSON.stringify(new URL('./normalsAhead.js', import.meta.url).href)});
      const { Rng } = await import(${JSON.stringify(new URL('./random.js', import.meta.url).href)});
      normalsAheadSettings.timeoutMs = 0; // the first request cannot be answered within 0 ms
      const got = drawNormalsAhead(new Rng(9), ${N}).take();
      const want = new Float32Array(${N}); new Rng(9).fillNormal(want);
      const again = drawNormalsAhead(new Rng(10), ${N}).take(); // no worker any more
      const want2 = new Float32Array(${N}); new Rng(10).fillNormal(want2);
      console.log(got.every((v, i) => v === want[i]) && again.every((v, i) => v === want2[i]) && normalsAheadStats.byWorker === 0);
    `], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'true');
  });

  it('does not keep a finished program alive (the worker is unref-ed)', () => {
    const script = fileURLToPath(new URL('./normalsAhead.js', import.meta.url));
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { drawNormalsAhead } = await import(${JSON.stringify(new URL(`file://${script}`).href)});
      const { Rng } = await import(${JSON.stringify(new URL('./random.js', import.meta.url).href)});
      drawNormalsAhead(new Rng(1), ${N}).take();
      drawNormalsAhead(new Rng(2), ${N}); // even with a request in flight
      console.log('done');
    `], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(child.error, undefined, 'the program ended by itself');
    assert.equal(child.stdout.trim(), 'done');
  });
});
