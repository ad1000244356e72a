/**
 * The numbers of `clap4clip run` on the tiny synthetic world, pinned: the fixture was written by
 * the build before the one-core redesign (tests/fixtures/pinned/generate.mjs says how), so this
 * proves the redesign changed no result, and it catches any later change that alters numbers
 * without meaning to. Every computed field of results.json is compared exactly; timings are not.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

interface PinnedFixture {
  args: string[];
  keys: string[];
  stepKeys: string[];
  results: Record<string, Record<string, unknown> & { steps: Record<string, unknown>[] }>;
}

const FIXTURE = fileURLToPath(new URL('../../tests/fixtures/pinned/tinyRuns.json', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  // One onnxruntime thread, as the generator: how a product is split across threads can change
  // its last bits, and the pinned numbers must not depend on the machine's processor count.
  const child = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CLAP4CLIP_ORT_THREADS: '1' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

const fixture = JSON.parse(await readFile(FIXTURE, 'utf8')) as PinnedFixture;
// The pinned numbers predate post-hoc calibration, whose default (`holdout`) keeps training samples
// out of training. Fitting the temperature on the memory trains exactly as before, so with it
// every pinned number must come out unchanged (src/run/calibration.test.ts checks `none` too).
const NO_HOLDOUT = ['--calibration', 'memory'];

for (const [method, pinned] of Object.entries(fixture.results)) {
  test(`${method}: results.json of the tiny run equal the pinned numbers exactly`, async () => {
    const out = await mkdtemp(join(tmpdir(), `clap4clip-pinned-${method}-`));
    dirs.push(out);
    const { code, stderr } = await run([...fixture.args, ...NO_HOLDOUT, '--method', method, '--out', out]);
    assert.equal(code, 0, stderr);
    const r = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Record<string, unknown> & { steps: Record<string, unknown>[] };
    for (const key of fixture.keys) assert.deepEqual(r[key], pinned[key], `${method}: ${key}`);
    assert.equal(r.steps.length, pinned.steps.length);
    r.steps.forEach((s, i) => {
      for (const key of fixture.stepKeys) assert.deepEqual(s[key], pinned.steps[i]![key], `${method}: steps[${i}].${key}`);
    });
  });
}

test('the pinned fixture covers training, memory and detection (the comparison above is not vacuous)', () => {
  const clap = fixture.results['clap']!;
  assert.ok(clap.steps.length >= 2, 'several tasks');
  assert.ok(clap.steps.every((s) => (s['loss'] as { train: number | null }).train !== null), 'clap trained on every task');
  assert.ok((clap.steps.at(-1)!['memorySize'] as number) > 0, 'a memory was kept');
  assert.ok(Array.isArray(clap['novelty']) && (clap['novelty'] as unknown[]).length > 0, 'novelty detection ran');
});
