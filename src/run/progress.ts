/**
 * Progress of runs on stderr. The loop opens a `Progress` per phase (`ProgressFactory`); the
 * command line shows them through a `ProgressBoard`: on a terminal one live line per method
 * (redrawn with `\r` at most every 100 ms, cut to the terminal's width, with the run's ETA),
 * and one permanent line per finished task that folds its phases in; elsewhere (a log file, a
 * pipe) only the per-task lines, as plain lines. The line texts come from pure functions
 * (`liveLine`, `taskLine`), tested without a terminal.
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

export interface ProgressStream { write(s: string): unknown; isTTY?: boolean; columns?: number }

/** `12.3s`, `4m05s`, `1h02m`; `?` when unknown. */
export function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `line` cut to at most `columns` characters (ending in `…` when cut). */
export function fitLine(line: string, columns: number): string {
  if (line.length <= columns) return line;
  return columns <= 1 ? line.slice(0, Math.max(0, columns)) : `${line.slice(0, columns - 1)}…`;
}

/** What the live line of a method shows. */
export interface LiveState {
  method: string;
  /** 1-based task being learned, of `tasks`. */
  task: number;
  tasks: number;
  /** train, finetune, eval, novelty, ... */
  phase: string;
  done: number;
  total: number;
  /** e.g. the running loss. */
  info: string;
  /** Seconds since the run started, and the estimate of the seconds it has left (null: unknown yet). */
  runSeconds: number;
  runEtaSeconds: number | null;
}

/**
 * The live line: `clap task 3/10 train [#####.....] 45/120 · run 1m05s, eta 2m10s · loss 1.23`,
 * at most `columns - 1` characters (a full-width line wraps in some terminals). The bar shrinks
 * first, then the extra info goes, then the end is cut.
 */
export function liveLine(s: LiveState, columns: number): string {
  const limit = columns - 1;
  const head = `${s.method} task ${s.task}/${s.tasks} ${s.phase}`;
  const count = `${s.done}/${s.total}`;
  const run = ` · run ${formatSeconds(s.runSeconds)}, eta ${formatSeconds(s.runEtaSeconds)}`;
  const info = s.info ? ` · ${s.info}` : '';
  const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 1;
  const bar = (width: number): string => {
    const filled = Math.round(frac * width);
    return ` [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  };
  const room = limit - head.length - count.length - run.length - 1;
  for (const extra of [info, '']) {
    const width = Math.min(20, room - extra.length - 3);
    if (width >= 5) return `${head}${bar(width)} ${count}${run}${extra}`;
  }
  // Narrow terminals: the ETA matters more than the elapsed time.
  const short = `${head} ${count}${run}`;
  return fitLine(short.length <= limit ? short : `${head} ${count} · eta ${formatSeconds(s.runEtaSeconds)}`, limit);
}

/** What one finished task reports (a subset of the loop's `StepRecord`). */
export interface TaskSummary {
  /** 0-based. */
  task: number;
  accuracies: readonly number[];
  eceDataset: number;
  seconds: Readonly<Record<string, number>> & { total: number };
}

const pct = (x: number): string => (100 * x).toFixed(2);

/**
 * The permanent line of a finished task, its phases folded in:
 * `clap task 3/10: acc 85.12% (90.0 84.1 81.3), ECE 0.0312, 12.3s (train 8.1s, eval 1.2s)`.
 * Cut to `columns - 1` characters when `columns` is given (a terminal).
 */
export function taskLine(method: string, s: TaskSummary, tasks: number, columns?: number): string {
  const mean = s.accuracies.reduce((a, b) => a + b, 0) / Math.max(1, s.accuracies.length);
  const phases = Object.entries(s.seconds).filter(([k, v]) => k !== 'total' && v >= 0.05).map(([k, v]) => `${k} ${formatSeconds(v)}`);
  const perTask = s.accuracies.length > 1 ? ` (${s.accuracies.map(pct).join(' ')})` : '';
  const line = `${method} task ${s.task + 1}/${tasks}: acc ${pct(mean)}%${perTask}, ECE ${s.eceDataset.toFixed(4)}, ${formatSeconds(s.seconds.total)}${phases.length ? ` (${phases.join(', ')})` : ''}`;
  return columns === undefined ? line : fitLine(line, columns - 1);
}

/** Whether `mode` draws the live line on `stream`, prints plain lines, or nothing. */
export function progressStyle(mode: ProgressMode, stream: { isTTY?: boolean }): 'live' | 'plain' | 'off' {
  if (mode === 'never') return 'off';
  return mode === 'always' || stream.isTTY === true ? 'live' : 'plain';
}

/** The phase and task of a loop label such as `clap task 3/10 train` (see `src/run/loop.ts`). */
export function parsePhaseLabel(label: string): { task: number; tasks: number; phase: string } | null {
  const m = /task (\d+)\/(\d+)(?: (.+))?$/.exec(label);
  return m ? { task: Number(m[1]), tasks: Number(m[2]), phase: m[3] ?? 'train' } : null;
}

/** The progress of one run: its live line and its per-task lines. */
export interface RunProgress {
  /** The factory the loop's phases report to. */
  phases: ProgressFactory;
  /** A task finished: print its line. */
  taskDone(summary: TaskSummary): void;
  /** Remove the live line (before printing anything else on the terminal). */
  clear(): void;
}

/**
 * The progress lines of the runs of one command, on `stream` in `style` (`progressStyle`).
 * `now` is replaceable for tests (milliseconds).
 */
export class ProgressBoard {
  #live = '';
  constructor(
    private readonly stream: ProgressStream,
    private readonly style: 'live' | 'plain' | 'off',
    private readonly now: () => number = Date.now,
  ) {}

  #columns(): number {
    return this.stream.columns && this.stream.columns > 10 ? this.stream.columns : 80;
  }

  /** Erase the live line, if one is shown. */
  clear(): void {
    if (this.#live !== '') this.stream.write('\r\x1b[K');
    this.#live = '';
  }

  #draw(line: string): void {
    this.#live = line;
    this.stream.write(`\r${line}\x1b[K`);
  }

  /** The progress of one run of `method` with `tasks` tasks, `completed` of them done before (a resume). */
  run(method: string, tasks: number, completed = 0): RunProgress {
    if (this.style === 'off') return { phases: silentProgress, taskDone() {}, clear() {} };
    const start = this.now();
    let taskStart = start;
    let doneHere = 0;
    let done = completed;
    const etaSeconds = (): number | null => {
      if (doneHere === 0) return null;
      const perTask = (taskStart - start) / 1000 / doneHere;
      return Math.max(0, perTask * (tasks - done) - (this.now() - taskStart) / 1000);
    };
    const phases: ProgressFactory = (label, total) => {
      if (this.style !== 'live') return NONE;
      const where = parsePhaseLabel(label) ?? { task: done + 1, tasks, phase: label.split(' ').at(-1) ?? '' };
      let count = 0;
      let info = '';
      let lastDraw = -Infinity;
      const draw = (force: boolean): void => {
        const t = this.now();
        if (!force && t - lastDraw < 100) return;
        lastDraw = t;
        this.#draw(liveLine({ method, ...where, done: count, total, info, runSeconds: (t - start) / 1000, runEtaSeconds: etaSeconds() }, this.#columns()));
      };
      draw(true);
      return {
        tick(n = 1, i) {
          count += n;
          if (i !== undefined) info = i;
          draw(false);
        },
        done() {
          draw(true);
        },
      };
    };
    return {
      phases,
      taskDone: (s) => {
        done = s.task + 1;
        doneHere++;
        taskStart = this.now();
        this.clear();
        this.stream.write(`${taskLine(method, s, tasks, this.style === 'live' ? this.#columns() : undefined)}\n`);
      },
      clear: () => this.clear(),
    };
  }
}
