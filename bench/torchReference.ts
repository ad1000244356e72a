/**
 * Runs the PyTorch side of the engine benchmarks (`bench/torch_step.py`, the same computation as
 * bench/clapStep.ts) so that every comparison is a ratio measured in one run: absolute times drift
 * on this machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import { MALLOC_TUNABLES } from '../src/cli/mallocTunables.js';

/** Wall ms per step (median, min, max) and the median process CPU ms per step. */
export interface TorchMeasurement { medianMs: number; minMs: number; maxMs: number; cpuMedianMs: number; version: string; raw: string }
export type TorchResult = TorchMeasurement | { unavailable: string };
export interface TorchOptions { mallocTunables?: boolean }
/** A step shape of the scaling grid: C classes, T samples, D feature width (B = 32). */
export interface GridShape { classes: number; samples: number; dim: number }

export function torchScriptPath(): string {
  return process.env['CLAP4CLIP_TORCH_STEP'] ?? join(repoRoot(), 'bench', 'torch_step.py');
}

/** Runs the script with one BLAS thread; stdout, or the reason it could not run. */
function runTorch(args: string[], opts: TorchOptions): { stdout: string } | { unavailable: string } {
  const script = torchScriptPath();
  if (!existsSync(script)) return { unavailable: `no PyTorch step script at ${script}` };
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const run = spawnSync(python, [script, ...args], { encoding: 'utf8', env: torchEnv(opts.mallocTunables ?? false), timeout: 1_200_000 });
  if (run.status !== 0) return { unavailable: `PyTorch step failed (${python}): ${(run.stderr || run.error?.message || '').trim().split('\n').pop()}` };
  return { stdout: run.stdout };
}

/** Median step time of PyTorch on one OpenBLAS thread at the default shape (C = 100, T = 20, D = 512). */
export function measureTorchStep(steps: number, opts: TorchOptions = {}): TorchResult {
  const run = runTorch(['bench', '1', String(steps)], opts);
  if ('unavailable' in run) return run;
  const m = /torch (\S+) threads=\d+ step: median ([\d.]+) ms \(min ([\d.]+), max ([\d.]+), n=\d+\) cpu ([\d.]+) ms/.exec(run.stdout);
  if (!m) return { unavailable: `could not parse PyTorch output: ${run.stdout.slice(0, 200)}` };
  return { version: m[1]!, medianMs: Number(m[2]), minMs: Number(m[3]), maxMs: Number(m[4]), cpuMedianMs: Number(m[5]), raw: run.stdout.trim() };
}

/** The step at each shape of the grid, in one PyTorch process; one result per shape, in order. */
export function measureTorchGrid(steps: number, shapes: readonly GridShape[], opts: TorchOptions = {}): TorchResult[] {
  const run = runTorch(['grid', String(steps), ...shapes.map((s) => `${s.classes},${s.samples},${s.dim}`)], opts);
  if ('unavailable' in run) return shapes.map(() => run);
  const lines = run.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  return shapes.map((_, i) => {
    const line = lines[i];
    if (line === undefined) return { unavailable: `PyTorch grid printed ${lines.length} of ${shapes.length} shapes` };
    const r = JSON.parse(line) as { torch: string; medianMs: number; minMs: number; maxMs: number; cpuMedianMs: number };
    return { version: r.torch, medianMs: r.medianMs, minMs: r.minMs, maxMs: r.maxMs, cpuMedianMs: r.cpuMedianMs, raw: line };
  });
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
