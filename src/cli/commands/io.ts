/** Where a command writes: stdout for results, stderr for progress and messages (replaceable in tests). */
export interface CommandIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

/** The process's own streams. */
export const PROCESS_IO: CommandIO = { stdout: process.stdout, stderr: process.stderr };

/** An IO that records everything written (stderr is not a TTY, so no progress bars are drawn). */
export function recordingIO(): CommandIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s), isTTY: false } };
}
