/**
 * Stopping a run cleanly (SIGINT / SIGTERM), and the pauses that let a stop request be seen.
 *
 * A run writes a complete, crash-safe checkpoint after every task, so "stop cleanly" means: stop
 * at the next safe point and keep the last complete checkpoint. A task cut short is NOT saved
 * half-way (a checkpoint only ever describes whole tasks); `clap4clip run --resume DIR` redoes it
 * from the start, with the same draws, so the results equal an uninterrupted run's.
 *
 *   - The first SIGINT or SIGTERM sets the run's `StopRequest` and removes the handlers again, so
 *     the operating system's default action (terminate) is back in force for the next one.
 *   - The loop sees the request at its next pause point: between training iterations, between
 *     groups of evaluation batches, between phases, and right after each checkpoint is committed
 *     (a checkpoint being written when the signal arrives is finished first: it is asynchronous
 *     file work, so the handler runs during it and the stop is honoured once it is committed).
 *     It then throws `RunInterrupted`; the CLI prints where it stopped and how to resume, and
 *     exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
 *   - A second signal terminates the process at once, even inside synchronous work. That, like
 *     SIGKILL or a power loss, is safe: checkpoints are committed by an atomic rename.
 *
 * Training and evaluation are synchronous; JavaScript only sees a signal when the event loop gets
 * a turn, which `Pacer` gives it at most every `intervalMs` (a few microseconds each).
 */
import { Clap4ClipError } from '../util/errors.js';

/** A request to stop, shared by whoever asks (a signal handler, a test) and the loop that honours it. */
export class StopRequest {
  #reason: string | null = null;

  /** What asked first (e.g. "SIGINT"); null while no stop was requested. */
  get reason(): string | null {
    return this.#reason;
  }

  /** Asks the run to stop at its next safe point (later requests keep the first reason). */
  request(reason: string): void {
    this.#reason ??= reason;
  }
}

/** Thrown by the loop (and the CLI between runs) when it stops on a `StopRequest`. */
export class RunInterrupted extends Clap4ClipError {
  readonly reason: string;
  /** Last task whose checkpoint is committed (-1: none yet); null when stopped outside the task loop. */
  readonly completedTask: number | null;

  /** `where`: e.g. "after task 2/5" (see `afterTask`), "before the report". */
  constructor(reason: string, where: string, completedTask: number | null = null) {
    super(`interrupted by ${reason} ${where}`);
    this.reason = reason;
    this.completedTask = completedTask;
  }
}

/** Where a run stands when the checkpoint of task `completedTask` (0-based; -1: none) is the last one. */
export function afterTask(completedTask: number, numTasks: number): string {
  return completedTask < 0 ? 'before the first task was complete' : `after task ${completedTask + 1}/${numTasks}`;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** Exit code of a run stopped by `reason`: 128 + the signal number, as a shell reports it; 1 otherwise. */
export function exitCodeFor(reason: string): number {
  const n = SIGNAL_NUMBERS[reason];
  return n === undefined ? 1 : 128 + n;
}

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Turns the first SIGINT/SIGTERM into `stop.request(signal)` and a note on `stderr`, then gives the
 * signals back to their default action (see the file comment). Returns the function removing the
 * handlers (call it when the run ends).
 */
export function listenForStopSignals(stop: StopRequest, stderr: { write(s: string): unknown }): () => void {
  const dispose = (): void => {
    for (const s of STOP_SIGNALS) process.removeListener(s, handler);
  };
  function handler(signal: NodeJS.Signals): void {
    dispose();
    stop.request(signal);
    stderr.write(`\nclap4clip: ${signal} received: stopping at the next safe point, keeping the last complete checkpoint (send it again to quit at once)\n`);
  }
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return dispose;
}

/** One turn of the event loop (lets signal handlers and I/O callbacks run). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Pause points of long synchronous work: `pause()` gives the event loop a turn when `intervalMs`
 * have passed since the last one, then throws `RunInterrupted` if a stop was requested. Pausing
 * changes no computation, so results do not depend on where the pauses fall.
 */
export class Pacer {
  #last = performance.now();

  constructor(
    private readonly stop: StopRequest | undefined,
    /** The interruption to throw (which task is the last complete one). */
    private readonly interrupted: (reason: string) => RunInterrupted,
    private readonly intervalMs = 25,
  ) {}

  async pause(): Promise<void> {
    const now = performance.now();
    if (now - this.#last >= this.intervalMs) {
      await nextTurn();
      this.#last = performance.now();
    }
    this.check();
  }

  /** Throws if a stop was requested (no turn of the event loop). */
  check(): void {
    const reason = this.stop?.reason;
    if (reason != null) throw this.interrupted(reason);
  }
}
