/**
 * End-to-end figure: the full CIFAR-100-sized protocol on synthetic features (50,000 train /
 * 10,000 test, D = 512, reference hyperparameters: 5 epochs, 2 finetuning epochs, T = 20, memory
 * 2000), one child process per method so that its peak resident memory is its own. The authors'
 * PyTorch loop needs about 907 s for CLAP on exactly this on this machine kind (one thread).
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  /** CPU seconds of the child (user + system, all threads). */
  cpuSeconds: number;
  peakRssMB: number;
  averageAccuracy: number;
  lastAccuracy: number;
  secondsPerTask: number[];
  /** The authors' PyTorch loop on this machine (CLAP only; null for the other methods). */
  referencePyTorchSeconds: number | null;
  /** wallSeconds / referencePyTorchSeconds (CLAP only). */
  ratioToReference: number | null;
}

/**
 * Runs `clap4clip run --full --method <method>` in a child process and reads its results. The
 * temporary run directory is removed however it ends, Ctrl-C included (the child, in the same
 * process group, stops too; this process then exits with 130).
 */
export async function measureProtocol(method = 'clap', extraArgs: string[] = []): Promise<ProtocolMeasurement> {
  const out = mkdtempSync(join(tmpdir(), 'clap4clip-protocol-'));
  const cleanUp = (): void => rmSync(out, { recursive: true, force: true });
  let child: ChildProcess | null = null;
  // A signal to this process alone (a terminal's Ctrl-C reaches the child as well): stop the
  // child first, so nothing writes into the folder after it is removed.
  const onSignal = (signal: NodeJS.Signals): void => {
    const exit = (): never => {
      cleanUp();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    if (child === null || child.exitCode !== null || child.signalCode !== null) exit();
    else {
      child.once('close', exit);
      child.kill('SIGKILL');
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const t0 = performance.now();
    // /usr/bin/time is not everywhere; the child prints its own peak RSS on exit instead.
    const started = spawn(process.execPath, ['--import', fileURLToPath(new URL('./reportPeakRss.js', import.meta.url)), cli, 'run', '--full', '--method', method, '--out', out, '--progress', 'never', ...extraArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...MALLOC_TUNABLES },
    });
    child = started;
    let stderr = '';
    started.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-64 * 1024); });
    const status = await new Promise<number | null>((done) => started.on('close', (code) => done(code)));
    const wallSeconds = (performance.now() - t0) / 1e3;
    if (status !== 0) throw new Error(`protocol run failed (${status}): ${stderr.slice(-2000)}`);
    const peak = /peak-rss-mb=([\d.]+)/.exec(stderr);
    const cpu = /cpu-seconds=([\d.]+)/.exec(stderr);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { averageAccuracy: number; lastAccuracy: number; timing: number[] };
    return {
      method,
      wallSeconds,
      cpuSeconds: cpu ? Number(cpu[1]) : NaN,
      peakRssMB: peak ? Number(peak[1]) : NaN,
      averageAccuracy: results.averageAccuracy,
      lastAccuracy: results.lastAccuracy,
      secondsPerTask: results.timing,
      referencePyTorchSeconds: method === 'clap' ? REFERENCE_PYTORCH_SECONDS : null,
      ratioToReference: method === 'clap' ? wallSeconds / REFERENCE_PYTORCH_SECONDS : null,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    cleanUp();
  }
}
