/**
 * The float64 Cholesky factorisation and SPD solve of `src/linalg` at the sizes RanPAC uses:
 * n = 1000 and 4000 (its dual lambda search factors an [n_v, n_v] system 17 times per task,
 * n_v = 4000 on CIFAR-100), seconds and GFLOP/s (n^3 / 3 for the factorisation).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { cholesky, choleskySolve, linalgSettings } from '../src/linalg/cholesky.js';
import { Rng } from '../src/engine/random.js';
import { gemm } from '../src/engine/ops/matmul.js';
import { writeJsonAtomic } from '../src/util/atomicWrite.js';

export interface LinalgMeasurement {
  n: number;
  rhs: number;
  choleskySeconds: number;
  choleskyGflops: number;
  solveSeconds: number;
}

/** A Gram matrix H H^T + n I of n random rows of width 512 (float32 product, float64 result). */
function spd(n: number): Float64Array {
  const rng = new Rng(1);
  const h = new Float32Array(n * 512);
  rng.fillNormal(h);
  const g = gemm(h, h, n, 512, n, false, true);
  const a = Float64Array.from(g);
  for (let i = 0; i < n; i++) a[i * n + i]! += n;
  return a;
}

export async function benchLinalg(out: string, log: (line: string) => void, sizes = [1000, 4000], rhs = 100): Promise<string> {
  const results: LinalgMeasurement[] = [];
  for (const n of sizes) {
    const a = spd(n);
    const b = new Float64Array(n * rhs).fill(1);
    const t0 = performance.now();
    const L = cholesky(a, n);
    const t1 = performance.now();
    choleskySolve(L, b, n, rhs);
    const t2 = performance.now();
    const m = { n, rhs, choleskySeconds: (t1 - t0) / 1e3, choleskyGflops: n ** 3 / 3 / ((t1 - t0) / 1e3) / 1e9, solveSeconds: (t2 - t1) / 1e3 };
    results.push(m);
    log(`linalg n = ${n}: cholesky ${m.choleskySeconds.toFixed(2)} s (${m.choleskyGflops.toFixed(1)} GFLOP/s), solve with ${rhs} right-hand sides ${m.solveSeconds.toFixed(2)} s`);
  }
  mkdirSync(dirname(out), { recursive: true });
  await writeJsonAtomic(out, { date: new Date().toISOString(), block: linalgSettings.block, updateRows: linalgSettings.updateRows, results });
  log(`wrote ${out}`);
  return out;
}
