/**
 * Runs the PyTorch side of the engine benchmark (`../shared/bench/torch_step.py`) so that the
 * comparison is a ratio measured in one run: absolute times drift on this machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import { MALLOC_TUNABLES } from '../src/cli/mallocTunables.js';

export interface TorchMeasurement { medianMs: number; minMs: number; maxMs: number; version: string; raw: string }

export function torchScriptPath(): string {
  return process.env['CLAP4CLIP_TORCH_STEP'] ?? join(repoRoot(), '..', 'shared', 'bench', 'torch_step.py');
}

/** Median step time of PyTorch on one OpenBLAS thread, or the reason it could not run. */
export function measureTorchStep(steps: number, opts: { mallocTunables?: boolean } = {}): TorchMeasurement | { unavailable: string } {
  const script = torchScriptPath();
  if (!existsSync(script)) return { unavailable: `no PyTorch step script at ${script}` };
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const run = spawnSync(python, [script, 'bench', '1', String(steps)], {
    encoding: 'utf8',
    env: torchEnv(opts.mallocTunables ?? false),
    timeout: 600_000,
  });
  if (run.status !== 0) return { unavailable: `PyTorch step failed (${python}): ${(run.stderr || run.error?.message || '').trim().split('\n').pop()}` };
  const m = /torch (\S+) threads=\d+ step: median ([\d.]+) ms \(min ([\d.]+), max ([\d.]+)/.exec(run.stdout);
  if (!m) return { unavailable: `could not parse PyTorch output: ${run.stdout.slice(0, 200)}` };
  return { version: m[1]!, medianMs: Number(m[2]), minMs: Number(m[3]), maxMs: Number(m[4]), raw: run.stdout.trim() };
}

/**
 * PyTorch as its users run it (glibc's default malloc), or with the malloc settings this project's
 * launcher uses (which speed PyTorch up too), so both comparisons can be reported.
 */
function torchEnv(mallocTunables: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
  for (const k of Object.keys(MALLOC_TUNABLES)) delete env[k];
  return mallocTunables ? { ...env, ...MALLOC_TUNABLES } : env;
}
