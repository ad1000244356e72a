/** The median of a non-empty list (the benchmarks' summary of repeated timings). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Median wall ms and median process CPU ms (all threads) per call of `step`, after `warmup`
 * untimed calls. On a shared machine CPU time is what time-slicing does not inflate.
 */
export function medianStepMs(step: () => unknown, steps: number, warmup: number): { ms: number; cpuMs: number } {
  for (let i = 0; i < warmup; i++) step();
  const times: number[] = [], cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  }
  return { ms: median(times), cpuMs: median(cpu) };
}
