/**
 * Synchronous access to onnxruntime-node. The public `InferenceSession.run` wraps a synchronous
 * native call in a Promise (one event-loop turn per call); the autodiff engine calls the native
 * binding directly so that forward and backward stay ordinary synchronous functions; binding.ts
 * checks that binding when this module loads.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { loadBinding, type NativeSession, type NativeTensor } from './binding.js';

const require = createRequire(import.meta.url);

const bindingModule = loadBinding();
const { Tensor: OrtTensor } = require('onnxruntime-common') as {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => unknown;
};

/** Runtime settings; change before the first session is created. */
export const runtimeSettings = {
  /** onnxruntime's intra-op threads; unset: `intraOpThreads()` reads the environment. */
  intraOpThreads: undefined as number | undefined,
};

/**
 * onnxruntime's intra-op threads: `runtimeSettings.intraOpThreads`, else CLAP4CLIP_ORT_THREADS,
 * else two when the machine has two processors or more. With the pool's spinning off, two threads
 * took the CLAP step's time inside onnxruntime from 41.5 to 31.5 ms on the project's 2-vCPU
 * AVX-512 machine (README, Performance); engine-notes.md's earlier machine saw no gain. More than
 * two were never measured. Read on use, not on load: a bad value must not break commands (help,
 * version) that load the engine without computing.
 */
export function intraOpThreads(): number {
  if (runtimeSettings.intraOpThreads !== undefined) return runtimeSettings.intraOpThreads;
  const raw = process.env['CLAP4CLIP_ORT_THREADS'];
  if (raw === undefined || raw === '') return Math.min(2, availableParallelism());
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`CLAP4CLIP_ORT_THREADS must be a whole number of threads >= 1, got "${raw}"`);
  return n;
}

/** Calls into onnxruntime and the wall ms spent in them, counted while `enabled` (the bench's floor figure). */
export const runtimeStats = { enabled: false, calls: 0, ms: 0 };

export type FeedValue =
  | { type: 'float32'; data: Float32Array; dims: readonly number[] }
  | { type: 'float64'; data: Float64Array; dims: readonly number[] }
  | { type: 'int64'; data: BigInt64Array; dims: readonly number[] }
  | { type: 'int32'; data: Int32Array; dims: readonly number[] };

/** A compiled ONNX graph with a synchronous `run`. */
export class SyncSession {
  private readonly native: NativeSession;
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly fetches: Record<string, null>;

  constructor(modelBytes: Uint8Array, threads = intraOpThreads()) {
    bindingModule.initOrt();
    this.native = new bindingModule.binding.InferenceSession();
    const copy = modelBytes.slice();
    this.native.loadModel(copy.buffer, copy.byteOffset, copy.byteLength, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableCpuMemArena: true,
      enableMemPattern: true,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    this.inputNames = this.native.inputMetadata.map((m) => m.name);
    this.outputNames = this.native.outputMetadata.map((m) => m.name);
    this.fetches = Object.fromEntries(this.outputNames.map((n) => [n, null]));
  }

  /**
   * Runs the graph. Outputs are fresh arrays owned by the caller, except those named in `into`,
   * which the binding writes into the given buffer of the output's exact size (saving a copy).
   */
  run(feeds: Record<string, FeedValue>, into?: Record<string, FeedValue>): Record<string, NativeTensor> {
    const ortFeeds: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(feeds)) ortFeeds[name] = new OrtTensor(v.type, v.data, v.dims);
    let fetches: Record<string, unknown> = this.fetches;
    if (into) {
      fetches = { ...this.fetches };
      for (const [name, v] of Object.entries(into)) fetches[name] = new OrtTensor(v.type, v.data, v.dims);
    }
    if (!runtimeStats.enabled) return this.native.run(ortFeeds, fetches, {});
    const t0 = performance.now();
    const out = this.native.run(ortFeeds, fetches, {});
    runtimeStats.ms += performance.now() - t0;
    runtimeStats.calls++;
    return out;
  }

  dispose(): void {
    this.native.dispose();
  }
}

/** Sessions by key, each built once on first use; `dispose` frees them all. */
export class SessionCache {
  private readonly sessions = new Map<string, SyncSession>();

  /** The session for `key`, building its model once with `build`. */
  get(key: string, build: () => Uint8Array): SyncSession {
    let s = this.sessions.get(key);
    if (!s) {
      s = new SyncSession(build());
      this.sessions.set(key, s);
    }
    return s;
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}

const sessionCache = new SessionCache();

/** Returns the process-wide cached session for `key`, building its model once with `build`. */
export function cachedSession(key: string, build: () => Uint8Array): SyncSession {
  return sessionCache.get(key, build);
}
