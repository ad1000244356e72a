/**
 * Prints the benchmark's JSON files as the README's performance tables (markdown), so the README
 * quotes the figures of a benchmark run: `node dist/bench/table.js [DIR]` (DIR: bench's --out,
 * ./bench-results by default).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

function load<T>(dir: string, name: string): T | null {
  const path = join(dir, name);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : null;
}

const fmt = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));

interface Lever { offOverOn: number; cpuOffOverOn: number }
interface Engine { onnxruntime?: { medianMsPerStep: number; callsPerStep: number }; onnxruntimeRatioToTorchWithMallocTunables?: number | null; levers?: Record<string, Lever> | { unavailable: string } | null; clapStep: { medianMs: number; cpuMedianMs: number }; withoutMallocTunables?: { medianMs: number; cpuMedianMs: number } | null; torch: { medianMs: number | null }; torchWithMallocTunables: { medianMs: number | null }; ratioToTorch: number | null; ratioToTorchWithMallocTunables: number | null; cpuRatioToTorchWithMallocTunables: number | null }
interface Scaling { rows: { classes: number; samples: number; dim: number; gflop: number; ms: number; torchMs: number | null; ratioToTorch: number | null; cpuMs: number; torchCpuMs: number | null; cpuRatioToTorch: number | null }[] }
interface ProtocolRow { method: string; wallSeconds: number; cpuSeconds?: number; ratioToReference?: number | null; secondsPerTask: number[]; peakRssMB: number }
interface Protocol { methods: ProtocolRow[] }

export function performanceTables(dir = resolve('bench-results')): string {
  const out: string[] = [];
  const engine = load<Engine>(dir, 'engine.json');
  if (engine) {
    out.push('| CLAP step (C = 100, B = 32, T = 20, D = 512) | ms | ratio (wall) | ratio (CPU time) |', '| --- | --- | --- | --- |');
    out.push(`| clap4clip (launcher's malloc settings; CPU ${fmt(engine.clapStep.cpuMedianMs)} ms) | ${fmt(engine.clapStep.medianMs)} | | |`);
    const plain = engine.withoutMallocTunables;
    if (plain && 'medianMs' in plain) out.push(`| clap4clip in a plain \`node\` (CPU ${fmt(plain.cpuMedianMs)} ms) | ${fmt(plain.medianMs)} | | |`);
    out.push(`| PyTorch 1.13, malloc settings of the launcher | ${fmt(engine.torchWithMallocTunables.medianMs)} | ${fmt(engine.ratioToTorchWithMallocTunables, 2)} | ${fmt(engine.cpuRatioToTorchWithMallocTunables, 2)} |`);
    out.push(`| PyTorch 1.13 as shipped | ${fmt(engine.torch.medianMs)} | ${fmt(engine.ratioToTorch, 2)} | |`);
    if (engine.onnxruntime) {
      out.push(`| time inside onnxruntime alone (${fmt(engine.onnxruntime.callsPerStep, 0)} calls per step): this engine's floor | ${fmt(engine.onnxruntime.medianMsPerStep)} | ${fmt(engine.onnxruntimeRatioToTorchWithMallocTunables, 2)} | |`);
    }
    out.push('');
    const levers = engine.levers;
    if (levers && !('unavailable' in levers)) {
      out.push('| lever (switched off by) | step without it / with it (wall) | (CPU time) |', '| --- | --- | --- |');
      const names: Record<string, string> = { sgdFold: 'SGD folded into the weight-gradient Gemm (`CLAP4CLIP_SGD_FOLD=0`)', noiseWorker: 'noise drawn on a worker thread (`CLAP4CLIP_NOISE_WORKER=0`)', onnxTwoThreads: 'two onnxruntime threads (`CLAP4CLIP_ORT_THREADS=1`)', all: 'all three' };
      for (const [k, v] of Object.entries(levers as Record<string, Lever>)) out.push(`| ${names[k] ?? k} | ${fmt(v.offOverOn, 2)} | ${fmt(v.cpuOffOverOn, 2)} |`);
      out.push('');
    }
  }
  const scaling = load<Scaling>(dir, 'scaling.json');
  if (scaling) {
    out.push('| C | T | D | GFLOP | clap4clip ms (CPU ms) | PyTorch ms (CPU ms) | ratio (wall) | ratio (CPU time) |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of scaling.rows) {
      out.push(`| ${r.classes} | ${r.samples} | ${r.dim} | ${fmt(r.gflop, 2)} | ${fmt(r.ms)} (${fmt(r.cpuMs)}) | ${fmt(r.torchMs)} (${fmt(r.torchCpuMs)}) | ${fmt(r.ratioToTorch, 2)} | ${fmt(r.cpuRatioToTorch, 2)} |`);
    }
    out.push('');
  }
  const protocol = load<Protocol>(dir, 'protocol.json');
  if (protocol) {
    out.push('| full protocol (synthetic) | wall s | of the reference\'s 907 s (clap) | CPU s | s per task | peak MB |', '| --- | --- | --- | --- | --- | --- |');
    for (const m of protocol.methods) {
      out.push(`| ${m.method} | ${fmt(m.wallSeconds, 0)} | ${fmt(m.ratioToReference, 2)} | ${fmt(m.cpuSeconds, 0)} | ${m.secondsPerTask.map((s) => fmt(s, 0)).join(' / ')} | ${fmt(m.peakRssMB, 0)} |`);
    }
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(performanceTables(process.argv[2] === undefined ? undefined : resolve(process.argv[2])));
