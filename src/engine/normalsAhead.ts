/**
 * Standard normals drawn on a worker thread while the calling thread computes (engine-notes.md:
 * a million normals are about a tenth of a CLAP step, and the second core is otherwise idle).
 * `drawNormalsAhead(rng, n)` starts drawing what `rng.fillNormal` would give for n values;
 * `take()` returns them, waiting if the worker is not done. The numbers are the same with or
 * without the worker (it runs the same generator from the same state), so the worker is only a
 * matter of speed: a failed or missing worker falls back to drawing on the calling thread.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { meanOverGroups } from './groupMean.js';
import { Rng, type RngState } from './random.js';

export const CONTROL_PENDING = 0;
export const CONTROL_DONE = 1;
export const CONTROL_FAILED = 2;

/** What the worker is sent: a request number, a generator state, a count, and the groups to average over (0: none). */
export interface NormalsRequest { id: number; state: RngState; count: number; meanOver: number }

/** The worker's answer: the normals and, when asked, their mean over the leading groups. */
export interface NormalsReply { id: number; out: Float32Array; mean: Float32Array | null }

export const normalsAheadSettings = {
  /** CLAP4CLIP_NOISE_WORKER=0 draws every normal on the calling thread. */
  enabled: process.env['CLAP4CLIP_NOISE_WORKER'] !== '0',
  /** Below this many values a worker round trip costs more than it hides. */
  minCount: 65536,
  /** How long `take` waits for the worker before drawing on the calling thread instead. */
  timeoutMs: 60_000,
};

/** How many requests the worker answered. */
export const normalsAheadStats = { byWorker: 0 };

/**
 * Normals being drawn; `take` may be called once. `mean` (after `take`) gives their mean over the
 * `meanOver` leading groups, computed by the worker alongside when it drew them.
 */
export interface NormalsAhead { take(): Float32Array; mean(): Float32Array }

let worker: Worker | null = null;
let workerFailed = false;
let replies: MessagePort | null = null;
const control = new Int32Array(new SharedArrayBuffer(4));
/** The request the worker is on (or finished and not yet taken); 0 when none. */
let current = 0;
let requests = 0;

function startWorker(): Worker | null {
  if (worker || workerFailed) return worker;
  try {
    // No inherited flags: the worker loads one plain module.
    worker = new Worker(new URL('./normalsWorker.js', import.meta.url), { execArgv: [] });
    worker.unref(); // never keeps a finished program alive
    worker.on('error', () => stopWorker());
    const channel = new MessageChannel();
    channel.port1.unref();
    replies = channel.port1;
    worker.postMessage({ reply: channel.port2, control: control.buffer }, [channel.port2]);
  } catch {
    workerFailed = true;
  }
  return worker;
}

function stopWorker(): void {
  workerFailed = true;
  void worker?.terminate();
  worker = null;
  replies?.close();
  replies = null;
  current = 0;
}

/** Waits for the worker's current request: its reply, or null when it failed or did not answer in time. */
function awaitWorker(id: number): NormalsReply | null {
  const answered = Atomics.wait(control, 0, CONTROL_PENDING, normalsAheadSettings.timeoutMs) !== 'timed-out';
  if (!answered || Atomics.load(control, 0) !== CONTROL_DONE) return null;
  // Synchronous receipt of the buffer the worker moved over: no copy, no event-loop turn.
  const msg = replies ? receiveMessageOnPort(replies)?.message as NormalsReply | undefined : undefined;
  return msg?.id === id ? msg : null;
}

function drawHere(state: RngState, n: number): Float32Array {
  const eps = new Float32Array(n);
  Rng.fromState(state).fillNormal(eps);
  return eps;
}

/** Normals drawn on this thread, and their mean computed here when asked for. */
function aheadHere(state: RngState, n: number, meanOver: number): NormalsAhead {
  let eps: Float32Array | null = null;
  return {
    take: () => (eps = drawHere(state, n)),
    mean: () => {
      if (eps === null) throw new Error('drawNormalsAhead: mean() before take()');
      return meanOverGroups(eps, groupsAskedFor(meanOver));
    },
  };
}

function groupsAskedFor(meanOver: number): number {
  if (meanOver < 1) throw new Error('drawNormalsAhead: mean() of a request made without meanOver');
  return meanOver;
}

/**
 * Starts drawing `n` standard normals from `rng`, which is handed over: the caller must not draw
 * from it again (fork a child stream for this). With `meanOver` = T, the worker also averages the
 * [T, n / T] normals over T (CLAP's mean noise). A request left untaken is dropped by the next one.
 */
export function drawNormalsAhead(rng: Rng, n: number, meanOver = 0): NormalsAhead {
  const state = rng.state();
  const here = aheadHere(state, n, meanOver);
  if (!normalsAheadSettings.enabled || n < normalsAheadSettings.minCount || !startWorker()) return here;
  // One control word and one reply port: a request still running must finish (its normals are
  // read off the port and dropped) before the next starts.
  if (current !== 0 && awaitWorker(current) === null) stopWorker();
  if (!worker) return here;
  const id = ++requests;
  current = id;
  Atomics.store(control, 0, CONTROL_PENDING);
  worker.postMessage({ id, state, count: n, meanOver } satisfies NormalsRequest);
  let taken = false;
  let mean = here.mean; // the worker's mean once it has answered
  return {
    take(): Float32Array {
      if (taken) throw new Error('drawNormalsAhead: take() called twice');
      taken = true;
      if (current !== id) return here.take(); // dropped by a later request
      current = 0;
      const reply = awaitWorker(id);
      if (reply === null || reply.out.length !== n) {
        stopWorker(); // a stuck or failed worker: the same numbers are drawn here
        return here.take();
      }
      normalsAheadStats.byWorker++;
      mean = () => reply.mean ?? meanOverGroups(reply.out, groupsAskedFor(meanOver));
      return reply.out;
    },
    mean: () => mean(),
  };
}
