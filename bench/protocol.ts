/**
 * End-to-end figure: the full CIFAR-100-sized protocol on synthetic features (50,000 train /
 * 10,000 test, D = 512, reference hyperparameters: 5 epochs, 2 finetuning epochs, T = 20, memory
 * 2000), one child process per method so that its peak resident memory is its own. The authors'
 * PyTorch loop needs about 907 s for CLAP on exactly this on this machine kind (one thread).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MALLOC_TUNABLES } from '../src/cli/mallocTunables.js';

/** The authors' CLAP training loop on this protocol, measured once on this machine kind (seconds). */
export const REFERENCE_PYTORCH_SECONDS = 907;

export interface ProtocolMeasurement {
  method: string;
  /** The whole child process: start-up, data generation, every task's training and evaluation. */
  wallSeconds: number;
  /** wallSeconds / REFERENCE_PYTORCH_SECONDS (the reference figure is CLAP's). */
  ratioToReference: number;
  peakRssMB: number;
  /** CPU seconds of the child (user + system, all threads). */
  cpuSeconds: number;
  averageAccuracy: number;
  lastAccuracy: number;
  secondsPerTask: number[];
  referencePyTorchSeconds: number;
}

/** Runs `clap4clip run --full --method <method>` in a child process and reads its results. */
export function measureProtocol(method = 'clap', extraArgs: string[] = []): ProtocolMeasurement {
  const out = mkdtempSync(join(tmpdir(), 'clap4clip-protocol-'));
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const t0 = performance.now();
  // /usr/bin/time is not everywhere; the child prints its own peak RSS on exit instead.
  const child = spawnSync(process.execPath, ['--import', fileURLToPath(new URL('./reportPeakRss.js', import.meta.url)), cli, 'run', '--full', '--method', method, '--out', out, '--progress', 'never', ...extraArgs], {
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, ...MALLOC_TUNABLES },
  });
  const wallSeconds = (performance.now() - t0) / 1e3;
  if (child.status !== 0) throw new Error(`protocol run failed (${child.status}): ${child.stderr.slice(-2000)}`);
  const peak = /peak-rss-mb=([\d.]+)/.exec(child.stderr);
  const cpu = /cpu-seconds=([\d.]+)/.exec(child.stderr);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { averageAccuracy: number; lastAccuracy: number; timing: number[] };
  rmSync(out, { recursive: true, force: true });
  return {
    method,
    wallSeconds,
    peakRssMB: peak ? Number(peak[1]) : NaN,
    cpuSeconds: cpu ? Number(cpu[1]) : NaN,
    averageAccuracy: results.averageAccuracy,
    lastAccuracy: results.lastAccuracy,
    secondsPerTask: results.timing,
    ratioToReference: wallSeconds / REFERENCE_PYTORCH_SECONDS,
    referencePyTorchSeconds: REFERENCE_PYTORCH_SECONDS,
  };
}
