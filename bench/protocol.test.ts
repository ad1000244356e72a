/** The protocol benchmark's temporary run folder does not outlive the benchmark, even when it is stopped. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const PROTOCOL = fileURLToPath(new URL('./protocol.js', import.meta.url));
// A protocol run long enough to be stopped in the middle (tiny world, many epochs).
const LONG = ['--synthetic-preset', 'tiny', '--increment', '2', '--epochs', '40', '--samples', '3'];

test('SIGINT during the protocol benchmark removes its temporary run folder and exits 130', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'clap4clip-bench-tmp-'));
  try {
    const script = `const m = await import(${JSON.stringify(PROTOCOL)}); await m.measureProtocol('clap', ${JSON.stringify(LONG)}); console.log('finished');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    const runFolder = (): string | undefined => readdirSync(tmp).find((f) => f.startsWith('clap4clip-protocol-'));
    // Wait until the run has written into its folder, then stop the benchmark.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const f = runFolder();
      if (f !== undefined && readdirSync(join(tmp, f)).length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(runFolder() !== undefined, 'the run folder was made');
    child.kill('SIGINT');
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    assert.equal(code, 130);
    assert.equal(stdout, '', 'stopped before it finished');
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('clap4clip-protocol-')), []);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a benchmark child reports its own peak memory, not that of the large process that started it', async () => {
  const parent = `
    const big = new Uint8Array(400 * 2 ** 20).fill(1); // this process peaks above 400 MB
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--import', ${JSON.stringify(fileURLToPath(new URL('./reportPeakRss.js', import.meta.url)))}, '-e', '0'], { encoding: 'utf8' });
    console.log(big[123] + ' ' + r.stderr.trim());`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', parent], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  assert.equal(await new Promise<number | null>((done) => child.on('close', (c) => done(c))), 0);
  const peak = /peak-rss-mb=([\d.]+) cpu-seconds=([\d.]+)/.exec(out);
  assert.ok(peak, out);
  assert.ok(Number(peak[1]) > 10 && Number(peak[1]) < 300, `child peak ${peak[1]} MB`);
});

test('peakRssMB reads VmHWM from /proc/self/status and falls back to getrusage', async () => {
  const { peakRssMB } = await import('./peakRss.js');
  assert.equal(peakRssMB('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1000 kB\n'), 200);
  const fallback = peakRssMB(null), rusage = process.resourceUsage().maxRSS / 1024; // maxRSS may grow in between
  assert.ok(fallback <= rusage && rusage - fallback < 64, `${fallback} vs ${rusage}`);
});
