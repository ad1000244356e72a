// This process's peak resident memory (bench/reportPeakRss.ts prints it from a benchmark child).
import { readFileSync } from 'node:fs';

/**
 * This process's peak resident memory in MB. Linux's VmHWM belongs to the process image and
 * starts afresh at exec; getrusage's maxRSS (the fallback elsewhere) keeps the parent's peak
 * across fork and exec, so a child of a large benchmark process (the feature-extraction part
 * grows it past 3 GB) reported the parent's figure.
 */
export function peakRssMB(status = readStatus()): number {
  const hwm = status === null ? null : /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return hwm ? Number(hwm[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

function readStatus(): string | null {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return null;
  }
}
