/**
 * `npm run bench`: engine figures written as JSON to bench/results/ (`node dist/bench/table.js`
 * prints them as the README's performance table).
 *   - engine.json: the CLAP-shaped training step (C = 100, B = 32, T = 20, D = 512), median and per
 *     phase, against PyTorch on one OpenBLAS thread measured in the same run, as shipped and with
 *     the launcher's malloc settings (ratio < 1 = faster); matrix-product throughput of onnxruntime.
 *   - scaling.json: the step for C = 100..1000, T = 1..20, D = 512/768, each with its PyTorch twin.
 *   - protocol.json: the full CIFAR-100-sized protocol on synthetic features, per method (wall
 *     time, seconds per task, peak memory), against the authors' 907 s for CLAP.
 *   - features.json: feature extraction on a random ViT-B/16-sized vision tower at batch 32.
 * Options: --steps N (30), --warmup N (5), --grid-steps N (10), --out FILE (engine.json),
 * --no-torch, --only engine|scaling|protocol|features, --methods a,b (protocol; default: every
 * registered method).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { gemm } from '../src/engine/ops/matmul.js';
import { METHOD_NAMES } from '../src/methods/registry.js';
import { writeJsonAtomic } from '../src/util/atomicWrite.js';
import { repoRoot } from '../src/util/paths.js';
import { createClapStep, type PhaseTimes } from './clapStep.js';
import { measureTorchStep, type TorchResult } from './torchReference.js';
import { MALLOC_TUNABLES } from '../src/cli/mallocTunables.js';
import { measureProtocol, REFERENCE_PYTORCH_SECONDS } from './protocol.js';
import { measureScaling } from './scaling.js';
import { median } from './stats.js';

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer, got ${args[i + 1]}`);
  return v;
}

const resultsDir = () => join(repoRoot(), 'bench', 'results');

async function writeResult(out: string, value: object): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  await writeJsonAtomic(out, value);
  console.log(`wrote ${out}`);
}

function gemmThroughput(m: number, k: number, n: number): number {
  const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25);
  for (let i = 0; i < 3; i++) gemm(a, b, m, k, n);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    gemm(a, b, m, k, n);
    times.push(performance.now() - t0);
  }
  return (2 * m * k * n) / median(times) / 1e6;
}

export async function runBench(args: string[]): Promise<number> {
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : null;
  const parts = ['engine', 'scaling', 'protocol', 'features'];
  if (only !== null && !parts.includes(only ?? '')) throw new Error(`--only must be one of [${parts.join(', ')}], got ${only}`);
  if (only === null || only === 'engine') await benchEngine(args);
  if (only === null || only === 'scaling') await benchScaling(args);
  if (only === null || only === 'features') await benchFeatures();
  if (only === null || only === 'protocol') await benchProtocol(args);
  return 0;
}

async function benchFeatures(): Promise<void> {
  const out = join(resultsDir(), 'features.json');
  console.log('feature extraction on a random ViT-B/16-sized vision tower (builds a 345 MB model once)...');
  // Imported here: loading transformers.js (and sharp) into the process slows the engine step.
  const { benchFeatureExtraction } = await import('./featureExtraction.js');
  const r = await benchFeatureExtraction({ batches: 4, threads: 2, batch: 32 });
  console.log(`features: pipeline ${r.imagesPerSecond.toFixed(2)} images/s, bare onnxruntime ${r.bareOnnxImagesPerSecond.toFixed(2)} images/s, ratio ${r.ratio.toFixed(3)}${r.disturbed ? ' (machine was busy)' : ''}`);
  await writeResult(out, { date: new Date().toISOString(), ...r });
}

async function benchScaling(args: string[]): Promise<void> {
  const steps = flag(args, '--grid-steps', 10);
  console.log('step cost against classes, samples and feature width, each with its PyTorch twin (a few minutes)...');
  const rows = measureScaling(steps, !args.includes('--no-torch'));
  for (const r of rows) {
    console.log(`C=${r.classes} T=${r.samples} D=${r.dim}: ${r.ms.toFixed(1)} ms, PyTorch ${r.torchMs?.toFixed(1) ?? 'n/a'} ms, ratio ${r.ratioToTorch?.toFixed(2) ?? 'n/a'} (CPU ratio ${r.cpuRatioToTorch?.toFixed(2) ?? 'n/a'})`);
  }
  await writeResult(join(resultsDir(), 'scaling.json'), { date: new Date().toISOString(), batch: 32, steps, torchMallocTunables: true, rows });
}

async function benchProtocol(args: string[]): Promise<void> {
  const i = args.indexOf('--methods');
  const known: readonly string[] = METHOD_NAMES;
  const chosen = i >= 0 ? (args[i + 1] ?? '').split(',') : [...known];
  const unknown = chosen.filter((m) => !known.includes(m));
  if (unknown.length > 0) throw new Error(`--methods: unknown ${unknown.join(', ')}; known: ${known.join(', ')}`);
  // Written after every method, merged into the file's earlier figures: `--methods x` refreshes
  // one method's row, and a long run interrupted midway keeps what it measured.
  const out = join(resultsDir(), 'protocol.json');
  const earlier = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { methods?: Record<string, unknown> }).methods ?? {} : {};
  const methods: Record<string, unknown> = { ...earlier };
  for (const method of chosen) {
    console.log(`full CIFAR-100-sized protocol with ${method} on synthetic features (CLAP: about 5 minutes)...`);
    // Novelty detection is this project's addition: off, so the workload is the reference's.
    const m = measureProtocol(method, ['--novelty=false']);
    methods[method] = { date: new Date().toISOString(), ...m };
    console.log(`protocol ${method}: ${m.wallSeconds.toFixed(0)} s wall (${m.ratioToReference.toFixed(2)} of the reference CLAP loop's ${REFERENCE_PYTORCH_SECONDS} s), CPU ${m.cpuSeconds.toFixed(0)} s, tasks ${m.secondsPerTask.map((t) => t.toFixed(0)).join('/')} s, peak RSS ${m.peakRssMB.toFixed(0)} MB, average ${(100 * m.averageAccuracy).toFixed(2)} / last ${(100 * m.lastAccuracy).toFixed(2)} (synthetic)`);
    await writeResult(out, { synthetic: true, referencePyTorchSeconds: REFERENCE_PYTORCH_SECONDS, methods });
  }
}

/** Median wall and CPU ms of the step in a child process whose environment lacks the malloc settings. */
function stepWithoutMallocTunables(steps: number, warmup: number, stepMs: number): { medianMs: number; cpuMedianMs: number; ratioToWithSettings: number } | { unavailable: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clap4clip-bench-'));
  const out = join(dir, 'engine.json');
  const env = { ...process.env };
  for (const k of Object.keys(MALLOC_TUNABLES)) delete env[k];
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--only', 'engine', '--no-torch', '--steps', String(steps), '--warmup', String(warmup), '--out', out], { encoding: 'utf8', env });
  try {
    if (child.status !== 0) return { unavailable: `child failed: ${child.stderr.slice(-500)}` };
    const r = JSON.parse(readFileSync(out, 'utf8')) as { clapStep: { medianMs: number; cpuMedianMs: number } };
    const { medianMs, cpuMedianMs } = r.clapStep;
    return { medianMs, cpuMedianMs, ratioToWithSettings: medianMs / stepMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchEngine(args: string[]): Promise<void> {
  const steps = flag(args, '--steps', 30), warmup = flag(args, '--warmup', 5);
  const outIndex = args.indexOf('--out');
  const out = outIndex >= 0 ? args[outIndex + 1]! : join(resultsDir(), 'engine.json');
  const withTorch = !args.includes('--no-torch');
  const shape = { classes: 100, batch: 32, samples: 20, dim: 512 };

  const skipped: TorchResult = { unavailable: 'skipped (--no-torch)' };
  const torchBefore = withTorch ? measureTorchStep(steps) : skipped;
  const torchTunedBefore = withTorch ? measureTorchStep(steps, { mallocTunables: true }) : skipped;
  const { step, parameterCount } = createClapStep(shape);
  for (let i = 0; i < warmup; i++) step();
  const phases: PhaseTimes[] = [];
  let loss = 0;
  const rssBefore = process.memoryUsage().rss;
  for (let i = 0; i < steps; i++) {
    const r = step();
    phases.push(r.times);
    loss = r.loss;
  }
  const rssAfter = process.memoryUsage().rss;
  const torchAfter = withTorch ? measureTorchStep(steps) : skipped;
  const torchTunedAfter = withTorch ? measureTorchStep(steps, { mallocTunables: true }) : skipped;
  const phaseMedians = Object.fromEntries(Object.keys(phases[0]!).map((k) => [k, median(phases.map((p) => p[k as keyof PhaseTimes]))]));
  const stepMs = phaseMedians['total']!;
  const cpuMs = phaseMedians['cpu']!;
  const meanOf = (a: TorchResult, b: TorchResult, key: 'medianMs' | 'cpuMedianMs') => ('medianMs' in a && 'medianMs' in b ? (a[key] + b[key]) / 2 : null);
  const torchMs = meanOf(torchBefore, torchAfter, 'medianMs');
  const torchTunedMs = meanOf(torchTunedBefore, torchTunedAfter, 'medianMs');
  const torchTunedCpuMs = meanOf(torchTunedBefore, torchTunedAfter, 'cpuMedianMs');
  const mallocTunables = Object.keys(MALLOC_TUNABLES).every((k) => process.env[k] !== undefined);
  const result = {
    date: new Date().toISOString(),
    shape,
    parameterCount,
    steps,
    clapStep: { medianMs: stepMs, cpuMedianMs: cpuMs, phasesMedianMs: phaseMedians, lastLoss: loss, rssGrowthMB: (rssAfter - rssBefore) / 2 ** 20 },
    engineMallocTunables: mallocTunables,
    // The same step in a child started without the malloc settings: what a library user who
    // starts Node plainly gets (ratio > 1 = slower than with the settings).
    withoutMallocTunables: mallocTunables ? stepWithoutMallocTunables(steps, warmup, stepMs) : null,
    // PyTorch as users run it (glibc's default malloc): the comparison the issue asks for.
    torch: { before: torchBefore, after: torchAfter, medianMs: torchMs },
    ratioToTorch: torchMs === null ? null : stepMs / torchMs,
    // PyTorch with the same malloc settings as this engine's launcher.
    torchWithMallocTunables: { before: torchTunedBefore, after: torchTunedAfter, medianMs: torchTunedMs },
    ratioToTorchWithMallocTunables: torchTunedMs === null ? null : stepMs / torchTunedMs,
    // The same comparison in process CPU time per step (all threads), which a busy machine's
    // time-slicing does not inflate.
    cpuRatioToTorchWithMallocTunables: torchTunedCpuMs === null ? null : cpuMs / torchTunedCpuMs,
    gemmGflops: {
      '512x512x512': gemmThroughput(512, 512, 512),
      '100x512x2048': gemmThroughput(100, 512, 2048),
      '32x512x2000': gemmThroughput(32, 512, 2000),
    },
  };
  const ratio = result.ratioToTorch === null ? 'n/a' : result.ratioToTorch.toFixed(2);
  console.log(`CLAP step: ${stepMs.toFixed(1)} ms median (${Object.entries(phaseMedians).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')})`);
  console.log(`PyTorch 1 thread: ${torchMs === null ? JSON.stringify(torchBefore) : `${torchMs.toFixed(1)} ms`}; ratio ${ratio}`);
  if (torchTunedMs !== null) console.log(`PyTorch 1 thread with the same malloc settings: ${torchTunedMs.toFixed(1)} ms; ratio ${(stepMs / torchTunedMs).toFixed(2)} (CPU time: ${cpuMs.toFixed(1)} / ${torchTunedCpuMs!.toFixed(1)} ms, ratio ${(cpuMs / torchTunedCpuMs!).toFixed(2)})`);
  await writeResult(out, result);
}

// `node dist/bench/main.js` runs the benchmark directly (`npm run bench`).
if (import.meta.url === `file://${process.argv[1]}`) {
  runBench(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => { console.error(e); process.exitCode = 1; });
}
