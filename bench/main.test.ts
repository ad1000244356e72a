/** `npm run bench` starts dist/bench/main.js directly (not through the CLI); it must run and exit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

test('node dist/bench/main.js runs a benchmark through the CLI and exits (no import deadlock)', () => {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const out = mkdtempSync(join(tmpdir(), 'clap4clip-bench-main-'));
  try {
    // One step, no PyTorch; CLAP4CLIP_BENCH_CHILD skips the child-process comparisons.
    const r = spawnSync(process.execPath, [main, '--only', 'engine', '--steps', '1', '--warmup', '0', '--no-torch', '--quiet', '--out', out], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, CLAP4CLIP_BENCH_CHILD: '1' },
    });
    assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
    const engine = JSON.parse(readFileSync(join(out, 'engine.json'), 'utf8')) as { clapStep: { medianMs: number }; onnxruntime: { callsPerStep: number } };
    assert.ok(engine.clapStep.medianMs > 0);
    assert.ok(engine.onnxruntime.callsPerStep > 0, 'the time inside onnxruntime is counted');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
