#!/usr/bin/env node
/**
 * The `clap4clip` executable. On Linux it re-runs the command line once with glibc's malloc kept
 * from returning large blocks to the system: the engine allocates many multi-megabyte buffers per
 * training step, and with glibc's defaults each one is a fresh mmap whose pages fault in one by
 * one (measured: a 4 MB Float32Array costs 2.5 ms instead of 0.12 ms; a CLAP step ~115 ms instead
 * of ~78 ms). Set CLAP4CLIP_NO_REEXEC=1 to run in this process as it is.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MALLOC_TUNABLES } from './mallocTunables.js';

const needsReexec = process.platform === 'linux'
  && process.env['CLAP4CLIP_NO_REEXEC'] !== '1'
  && Object.keys(MALLOC_TUNABLES).some((k) => process.env[k] === undefined);

if (needsReexec) {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, main, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...MALLOC_TUNABLES, CLAP4CLIP_NO_REEXEC: '1' },
  });
  // A terminal's Ctrl-C reaches the whole process group, the child included: only signals sent
  // to this process alone (kill PID) are passed on, so the child never sees one twice.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signal !== 'SIGINT' || !process.stdin.isTTY) child.kill(signal);
    });
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
} else {
  const { main } = await import('./main.js');
  process.exitCode = await main(process.argv.slice(2));
}
