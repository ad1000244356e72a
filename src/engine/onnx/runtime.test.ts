/** onnxruntime settings read from the environment, and outputs written into a caller's buffer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { GraphBuilder } from './onnxModel.js';
import { SyncSession } from './runtime.js';

const runtimeUrl = new URL('./runtime.js', import.meta.url).href;

function threadsWith(value: string | undefined): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env['CLAP4CLIP_ORT_THREADS'];
  if (value !== undefined) env['CLAP4CLIP_ORT_THREADS'] = value;
  return spawnSync(process.execPath, ['--input-type=module', '-e', `const { intraOpThreads } = await import(${JSON.stringify(runtimeUrl)}); console.log('loaded'); console.log(intraOpThreads());`], { encoding: 'utf8', env });
}

test('intra-op threads: two when the machine has two processors, else one; CLAP4CLIP_ORT_THREADS overrides', () => {
  assert.equal(threadsWith(undefined).stdout.trim(), `loaded\n${Math.min(2, availableParallelism())}`);
  assert.equal(threadsWith('1').stdout.trim(), 'loaded\n1');
  assert.equal(threadsWith('3').stdout.trim(), 'loaded\n3');
});

test('a bad CLAP4CLIP_ORT_THREADS is refused by name when the threads are needed, not when the engine loads', () => {
  for (const bad of ['two', '0', '1.5']) {
    const r = threadsWith(bad);
    assert.equal(r.stdout.trim(), 'loaded', bad);
    assert.notEqual(r.status, 0, bad);
    assert.match(r.stderr, new RegExp(`CLAP4CLIP_ORT_THREADS must be a whole number of threads >= 1, got "${bad.replace('.', '\\.')}"`));
  }
});

test('run(feeds, into) writes the named output into the given buffer', () => {
  const g = new GraphBuilder('add');
  g.input('A', 'float32', ['N']);
  g.input('B', 'float32', ['N']);
  g.node('Add', ['A', 'B'], {}, ['Y']);
  g.output('Y', 'float32', ['N']);
  const s = new SyncSession(g.toBytes());
  const a = Float32Array.of(1, 2, 3);
  // Y into A's own buffer: the in-place form the SGD fold uses (Gemm's C is its output).
  s.run({ A: { type: 'float32', data: a, dims: [3] }, B: { type: 'float32', data: Float32Array.of(10, 20, 30), dims: [3] } }, { Y: { type: 'float32', data: a, dims: [3] } });
  assert.deepEqual([...a], [11, 22, 33]);
});
