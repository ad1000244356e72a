/**
 * Progress bars on stderr, hand-rolled: one line redrawn with `\r` at most every 100 ms, ended
 * with a newline. Off unless stderr is a terminal (mode `auto`) or asked for (`always`), so test
 * and CI output stay clean.
 */
import type { ProgressMode } from './config.js';

export interface Progress {
  /** Advance by `n` steps; `info` is shown after the counter (e.g. the running loss). */
  tick(n?: number, info?: string): void;
  done(): void;
}

/** Opens a progress bar for a phase of `total` steps. */
export type ProgressFactory = (label: string, total: number) => Progress;

const NONE: Progress = { tick() {}, done() {} };

export const silentProgress: ProgressFactory = () => NONE;

interface Writable { write(s: string): unknown; isTTY?: boolean }

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

/** Bars on `stream` (stderr by default) when `mode` asks for them, else silent. */
export function progressFactory(mode: ProgressMode, stream: Writable = process.stderr): ProgressFactory {
  if (mode === 'never' || (mode === 'auto' && !stream.isTTY)) return silentProgress;
  return (label, total) => {
    const start = Date.now();
    let done = 0;
    let lastDraw = 0;
    let info = '';
    const draw = (force: boolean): void => {
      const now = Date.now();
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const width = 24;
      const filled = Math.round(frac * width);
      const elapsed = (now - start) / 1000;
      const eta = done > 0 ? (elapsed * (total - done)) / done : NaN;
      const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
      stream.write(`\r${label} [${bar}] ${done}/${total} ${formatSeconds(elapsed)} eta ${formatSeconds(eta)}${info ? ` ${info}` : ''}\x1b[K`);
    };
    return {
      tick(n = 1, i) {
        done += n;
        if (i !== undefined) info = i;
        draw(false);
      },
      done() {
        draw(true);
        stream.write('\n');
      },
    };
  };
}
