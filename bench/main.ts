/**
 * `npm run bench`: engine figures written as JSON (in --out DIR, ./bench-results by default).
 *   - the CLAP-shaped training step (C = 100, B = 32, T = 20, D = 512), median and per phase, wall
 *     and CPU time, against PyTorch on one OpenBLAS thread measured in the same run, as shipped and
 *     with the launcher's malloc settings (ratio < 1 = faster), and the step in a child without
 *     those settings (engine.json); matrix-product throughput of the onnxruntime path.
 *   - the step for C = 100..1000, T = 1..20, D = 512/768, each with its PyTorch twin (scaling.json;
 *     min(--steps, 10) steps per shape).
 *   - the full CIFAR-100-sized protocol on synthetic features per method (wall time, peak memory;
 *     CLAP against the reference's 907 s), protocol.json; --methods a,b picks them (default: all).
 *   - float64 Cholesky factorisation and solve (src/linalg) at n = 1000 and 4000, the sizes of
 *     RanPAC's lambda search (linalg.json).
 *   - feature extraction on a random ViT-B/16-sized vision tower at batch 32: images per second of
 *     the full pipeline (decode, preprocess, encode) and of bare onnxruntime (features.json).
 * Options: see BENCH_SPEC (`clap4clip bench --help`); the JSON files go to --out DIR (./bench-results);
 * `node dist/bench/table.js DIR` prints them as the README's performance tables.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { gemm } from '../src/engine/ops/matmul.js';
import { runtimeStats } from '../src/engine/onnx/runtime.js';
import { writeJsonAtomic } from '../src/util/atomicWrite.js';
import { choiceValue, intValue, parseOrHelp, renderHelp, stringValue } from '../src/cli/args.js';
import { BENCH_PARTS as PARTS, BENCH_SPEC } from '../src/cli/commands/benchSpec.js';
import { createClapStep, type PhaseTimes } from './clapStep.js';
import { measureTorchStep, type TorchResult } from './torchReference.js';
import { MALLOC_TUNABLES } from '../src/cli/mallocTunables.js';
import { measureProtocol, type ProtocolMeasurement } from './protocol.js';
import { METHOD_NAMES } from '../src/methods/registry.js';
import { UsageError } from '../src/cli/args.js';
import { benchLinalg } from './linalg.js';
import { measureScaling } from './scaling.js';
import { median } from './stats.js';

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

interface BenchOptions { out: string; steps: number; warmup: number; withTorch: boolean; log: (line: string) => void }

export async function runBench(args: string[], io: { stdout: { write(s: string): unknown } } = process): Promise<number> {
  const p = parseOrHelp(BENCH_SPEC, args);
  if (p.help) {
    io.stdout.write(renderHelp(BENCH_SPEC) + '\n');
    return 0;
  }
  const only = choiceValue(BENCH_SPEC, p, 'only', PARTS);
  const json = p.values['json'] === true, quiet = p.values['quiet'] === true;
  const opts: BenchOptions = {
    out: resolve(stringValue(p, 'out') ?? 'bench-results'),
    steps: intValue(BENCH_SPEC, p, 'steps', 1) ?? 30,
    warmup: intValue(BENCH_SPEC, p, 'warmup', 0) ?? 5,
    withTorch: p.values['no-torch'] !== true,
    // With --json the JSON document is all of stdout: progress goes to stderr.
    log: quiet ? () => undefined : (line) => (json ? process.stderr : io.stdout).write(line + '\n'),
  };
  const methods = stringValue(p, 'methods')?.split(',').map((m) => m.trim()) ?? [...METHOD_NAMES];
  for (const m of methods) if (!(METHOD_NAMES as readonly string[]).includes(m)) throw new UsageError(`bench: --methods: unknown method "${m}": must be one of [${METHOD_NAMES.join(', ')}]`);
  const written: Record<string, string> = {};
  if (only === undefined || only === 'engine') written['engine'] = await benchEngine(opts);
  if (only === undefined || only === 'scaling') written['scaling'] = await benchScaling(opts);
  if (only === undefined || only === 'features') written['features'] = await benchFeatures(opts);
  if (only === undefined || only === 'linalg') written['linalg'] = await benchLinalg(join(opts.out, 'linalg.json'), opts.log);
  if (only === undefined || only === 'protocol') written['protocol'] = await benchProtocol(opts, methods);
  if (json) io.stdout.write(JSON.stringify({ files: written }) + '\n');
  return 0;
}

async function benchFeatures(opts: BenchOptions): Promise<string> {
  const out = join(opts.out, 'features.json');
  opts.log('feature extraction on a random ViT-B/16-sized vision tower (builds a 345 MB model once)...');
  // Imported here: loading transformers.js (and sharp) into the process slows the engine step.
  const { benchFeatureExtraction } = await import('./featureExtraction.js');
  const r = await benchFeatureExtraction({ batches: 4, threads: 2, batch: 32 });
  mkdirSync(dirname(out), { recursive: true });
  await writeJsonAtomic(out, { date: new Date().toISOString(), ...r });
  opts.log(`features: pipeline ${r.imagesPerSecond.toFixed(2)} images/s, bare onnxruntime ${r.bareOnnxImagesPerSecond.toFixed(2)} images/s, ratio ${r.ratio.toFixed(3)}${r.disturbed ? ' (machine was busy)' : ''}`);
  opts.log(`wrote ${out}`);
  return out;
}

/** Run options a method's protocol figure needs to be the authors' setting (RAPF trains CIFAR-100 at batch 100). */
const PROTOCOL_ARGS: Readonly<Record<string, readonly string[]>> = { rapf: ['--batch-size', '100'] };

async function benchScaling(opts: BenchOptions): Promise<string> {
  const out = join(opts.out, 'scaling.json');
  const steps = Math.min(opts.steps, 10);
  opts.log('step cost against classes, samples and feature width, each with its PyTorch twin (a few minutes)...');
  const rows = measureScaling(steps, opts.withTorch);
  for (const r of rows) {
    opts.log(`C=${r.classes} T=${r.samples} D=${r.dim}: ${r.ms.toFixed(1)} ms, PyTorch ${r.torchMs?.toFixed(1) ?? 'n/a'} ms, ratio ${r.ratioToTorch?.toFixed(2) ?? 'n/a'} (CPU ratio ${r.cpuRatioToTorch?.toFixed(2) ?? 'n/a'})`);
  }
  mkdirSync(dirname(out), { recursive: true });
  await writeJsonAtomic(out, { date: new Date().toISOString(), batch: 32, steps, torchMallocTunables: true, rows });
  opts.log(`wrote ${out}`);
  return out;
}

async function benchProtocol(opts: BenchOptions, methods: readonly string[]): Promise<string> {
  const out = join(opts.out, 'protocol.json');
  const runs: ProtocolMeasurement[] = [];
  for (const method of methods) {
    opts.log(`full CIFAR-100-sized protocol with ${method} on synthetic features...`);
    // Novelty detection is this project's addition: off, so the workload is the reference's.
    const m = await measureProtocol(method, ['--no-novelty', ...(PROTOCOL_ARGS[method] ?? [])]);
    runs.push(m);
    const ref = m.referencePyTorchSeconds === null ? '' : ` (reference PyTorch ${m.referencePyTorchSeconds} s)`;
    opts.log(`protocol ${method}: ${m.wallSeconds.toFixed(0)} s wall${ref}, CPU ${m.cpuSeconds.toFixed(0)} s, tasks ${m.secondsPerTask.map((t) => t.toFixed(0)).join('/')} s, peak RSS ${m.peakRssMB.toFixed(0)} MB, average ${(100 * m.averageAccuracy).toFixed(2)} / last ${(100 * m.lastAccuracy).toFixed(2)} (synthetic)`);
    // Written after every method: a long bench stopped part-way keeps what it measured.
    mkdirSync(dirname(out), { recursive: true });
    await writeJsonAtomic(out, { date: new Date().toISOString(), synthetic: true, methods: runs });
  }
  opts.log(`wrote ${out}`);
  return out;
}

type ChildStep = { medianMs: number; cpuMedianMs: number } | { unavailable: string };

/** Median wall and CPU ms of the step in a child process run with `env` (null: remove the variable). */
function stepInChild(steps: number, warmup: number, env: Record<string, string | null>): ChildStep {
  const dir = mkdtempSync(join(tmpdir(), 'clap4clip-bench-'));
  const childEnv: Record<string, string | undefined> = { ...process.env, CLAP4CLIP_BENCH_CHILD: '1' };
  for (const [k, v] of Object.entries(env)) {
    if (v === null) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--only', 'engine', '--no-torch', '--quiet', '--steps', String(steps), '--warmup', String(warmup), '--out', dir], { encoding: 'utf8', env: childEnv });
  try {
    if (child.status !== 0) return { unavailable: `child failed: ${child.stderr.slice(-500)}` };
    const r = JSON.parse(readFileSync(join(dir, 'engine.json'), 'utf8')) as { clapStep: { medianMs: number; cpuMedianMs: number } };
    return { medianMs: r.clapStep.medianMs, cpuMedianMs: r.clapStep.cpuMedianMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The step's speed levers, each switchable by its environment variable (README, Performance). */
const LEVERS = {
  sgdFold: { CLAP4CLIP_SGD_FOLD: '0' },
  noiseWorker: { CLAP4CLIP_NOISE_WORKER: '0' },
  onnxTwoThreads: { CLAP4CLIP_ORT_THREADS: '1' },
  all: { CLAP4CLIP_SGD_FOLD: '0', CLAP4CLIP_NOISE_WORKER: '0', CLAP4CLIP_ORT_THREADS: '1' },
} as const;

/**
 * What each lever is worth: child processes with everything on and with the lever off, in turn,
 * `rounds` times; per lever the median over rounds of (step with it off) / (step with all on),
 * so > 1 means the lever speeds the step up. Pairing neighbours keeps a drifting machine out.
 */
function measureLevers(steps: number, warmup: number, rounds = 2) {
  const ratios = Object.fromEntries(Object.keys(LEVERS).map((k) => [k, { wall: [] as number[], cpu: [] as number[] }])) as Record<keyof typeof LEVERS, { wall: number[]; cpu: number[] }>;
  for (let r = 0; r < rounds; r++) {
    for (const [name, env] of Object.entries(LEVERS) as [keyof typeof LEVERS, Record<string, string>][]) {
      const on = stepInChild(steps, warmup, {});
      const off = stepInChild(steps, warmup, env);
      if ('unavailable' in on) return on;
      if ('unavailable' in off) return off;
      ratios[name].wall.push(off.medianMs / on.medianMs);
      ratios[name].cpu.push(off.cpuMedianMs / on.cpuMedianMs);
    }
  }
  return Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, {
    switchedOffBy: LEVERS[k as keyof typeof LEVERS], offOverOn: median(v.wall), cpuOffOverOn: median(v.cpu), rounds: v.wall,
  }]));
}

async function benchEngine(opts: BenchOptions): Promise<string> {
  const { steps, warmup, withTorch } = opts;
  const out = join(opts.out, 'engine.json');
  const shape = { classes: 100, batch: 32, samples: 20, dim: 512 };

  const skipped: TorchResult = { unavailable: 'skipped (--no-torch)' };
  const torchBefore = withTorch ? measureTorchStep(steps) : skipped;
  const torchTunedBefore = withTorch ? measureTorchStep(steps, { mallocTunables: true }) : skipped;
  const { step, parameterCount } = createClapStep(shape);
  for (let i = 0; i < warmup; i++) step();
  const phases: PhaseTimes[] = [];
  const nativeMs: number[] = [];
  let loss = 0;
  const rssBefore = process.memoryUsage().rss;
  runtimeStats.enabled = true;
  for (let i = 0; i < steps; i++) {
    const before = runtimeStats.ms;
    const r = step();
    nativeMs.push(runtimeStats.ms - before);
    phases.push(r.times);
    loss = r.loss;
  }
  runtimeStats.enabled = false;
  const rssAfter = process.memoryUsage().rss;
  const onnxruntimeMs = median(nativeMs);
  const child = process.env['CLAP4CLIP_BENCH_CHILD'] === '1';
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
    withoutMallocTunables: mallocTunables && !child ? withRatio(stepInChild(steps, warmup, Object.fromEntries(Object.keys(MALLOC_TUNABLES).map((k) => [k, null]))), stepMs) : null,
    // Time inside onnxruntime per step (every matrix product, the fused head's graphs, GELU):
    // a floor that no change to the JavaScript side can go below.
    onnxruntime: { medianMsPerStep: onnxruntimeMs, callsPerStep: runtimeStats.calls / steps, shareOfStep: onnxruntimeMs / stepMs },
    levers: child ? null : measureLevers(steps, warmup),
    // PyTorch as users run it (glibc's default malloc): the comparison the issue asks for.
    torch: { before: torchBefore, after: torchAfter, medianMs: torchMs },
    ratioToTorch: torchMs === null ? null : stepMs / torchMs,
    // PyTorch with the same malloc settings as this engine's launcher.
    torchWithMallocTunables: { before: torchTunedBefore, after: torchTunedAfter, medianMs: torchTunedMs },
    ratioToTorchWithMallocTunables: torchTunedMs === null ? null : stepMs / torchTunedMs,
    // The same comparison in process CPU time per step (all threads), which a busy machine's
    // time-slicing does not inflate.
    cpuRatioToTorchWithMallocTunables: torchTunedCpuMs === null ? null : cpuMs / torchTunedCpuMs,
    // onnxruntime's time alone against PyTorch's whole step: the best ratio this engine can reach.
    onnxruntimeRatioToTorchWithMallocTunables: torchTunedMs === null ? null : onnxruntimeMs / torchTunedMs,
    gemmGflops: {
      '512x512x512': gemmThroughput(512, 512, 512),
      '100x512x2048': gemmThroughput(100, 512, 2048),
      '32x512x2000': gemmThroughput(32, 512, 2000),
    },
  };
  mkdirSync(dirname(out), { recursive: true });
  await writeJsonAtomic(out, result);
  const ratio = result.ratioToTorch === null ? 'n/a' : result.ratioToTorch.toFixed(2);
  opts.log(`CLAP step: ${stepMs.toFixed(1)} ms median (${Object.entries(phaseMedians).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')})`);
  opts.log(`PyTorch 1 thread: ${torchMs === null ? JSON.stringify(torchBefore) : `${torchMs.toFixed(1)} ms`}; ratio ${ratio}`);
  if (torchTunedMs !== null) opts.log(`PyTorch 1 thread with the same malloc settings: ${torchTunedMs.toFixed(1)} ms; ratio ${(stepMs / torchTunedMs).toFixed(2)} (CPU time: ${cpuMs.toFixed(1)} / ${torchTunedCpuMs!.toFixed(1)} ms, ratio ${(cpuMs / torchTunedCpuMs!).toFixed(2)})`);
  opts.log(`onnxruntime: ${onnxruntimeMs.toFixed(1)} ms of the step (${result.onnxruntime.callsPerStep.toFixed(0)} calls)${torchTunedMs === null ? '' : `, ${(onnxruntimeMs / torchTunedMs).toFixed(2)} of PyTorch's step`}`);
  if (result.levers && !('unavailable' in result.levers)) {
    for (const [k, v] of Object.entries(result.levers)) opts.log(`lever ${k}: step ${(v as { offOverOn: number }).offOverOn.toFixed(2)}x slower without it`);
  }
  opts.log(`wrote ${out}`);
  return out;
}

function withRatio(r: ChildStep, stepMs: number) {
  return 'unavailable' in r ? r : { ...r, ratioToWithSettings: r.medianMs / stepMs };
}

// `node dist/bench/main.js` runs the benchmark directly (`npm run bench`).
// No top-level await here: the CLI's bench command imports this module, and awaiting that import
// while this module is still evaluating would never settle (Node exits with code 13).
if (import.meta.url === `file://${process.argv[1]}`) {
  void import('../src/cli/main.js').then(async ({ main }) => {
    process.exitCode = await main(['bench', ...process.argv.slice(2)]);
  });
}
