/**
 * Reader/writer for the safetensors format (https://github.com/huggingface/safetensors):
 *   [u64 little-endian header length n][n bytes of JSON header][data buffer]
 * The header maps tensor names to {dtype, shape, data_offsets:[begin,end]} (offsets relative
 * to the data buffer) plus an optional "__metadata__" map of strings.
 *
 * F16 and BF16 tensors are held in memory as Float32Array (widening is exact); when encoding,
 * they are narrowed with round-to-nearest-even.
 */
import { endianness } from 'node:os';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { DataError } from '../util/errors.js';
import { readInputFile } from '../util/inputFile.js';

export type SafeDType = 'F32' | 'F64' | 'I32' | 'I64' | 'U8' | 'F16' | 'BF16';

export interface SafeTensor {
  /** On-disk dtype. F16/BF16 data is held as Float32Array. */
  dtype: SafeDType;
  /** Dimensions; [] is a scalar (1 element). */
  shape: number[];
  /** Row-major elements; length must equal the product of `shape`. */
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
}

export interface SafetensorsContent {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Headers beyond this are certainly corrupt (real ones are a few KB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = '__metadata__';

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Uint8ArrayConstructor;

interface DTypeInfo {
  itemSize: number;
  /** In-memory array type for this dtype. */
  ctor: TypedArrayCtor;
}

const DTYPES: Record<SafeDType, DTypeInfo> = {
  F64: { itemSize: 8, ctor: Float64Array },
  I64: { itemSize: 8, ctor: BigInt64Array },
  F32: { itemSize: 4, ctor: Float32Array },
  I32: { itemSize: 4, ctor: Int32Array },
  F16: { itemSize: 2, ctor: Float32Array },
  BF16: { itemSize: 2, ctor: Float32Array },
  U8: { itemSize: 1, ctor: Uint8Array },
};
const DTYPE_NAMES = Object.keys(DTYPES).join(', ');

function isSafeDType(x: unknown): x is SafeDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

/** Raw byte copies below assume the host stores numbers little-endian like the format. */
function assertLittleEndianHost(label: string): void {
  if (endianness() !== 'LE') throw new DataError(label, 'safetensors I/O needs a little-endian host');
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Element count of `shape`, or an error message if the shape is not valid. */
function checkShape(shape: unknown, what: string): number | string {
  if (!Array.isArray(shape)) return `${what} shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`;
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return `${what} shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`;
    }
    count *= d;
  }
  if (!Number.isSafeInteger(count)) return `${what} shape ${JSON.stringify(shape)} has too many elements`;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions (exact when widening, round-to-nearest-even when narrowing).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

function numberToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf, or quiet NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // Subnormal half: value / 2^-24 = (1.mant * 2^23) >> (14 - e).
    if (e < -10) return sign; // below half the smallest subnormal -> signed zero
    const full = mant | 0x800000;
    const shift = 14 - e;
    let q = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (q & 1) === 1)) q++;
    return sign | q; // q may carry into the exponent field, which is still correct
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // carry may round up to Inf, correctly
  return h;
}

function numberToBF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0]!;
  if (Number.isNaN(x)) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  // Round to nearest even on the 16 bits dropped.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function widenHalf(raw: Uint16Array, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(raw.length);
  if (dtype === 'BF16') {
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < raw.length; i++) outBits[i] = raw[i]! << 16;
  } else {
    for (let i = 0; i < raw.length; i++) out[i] = f16BitsToNumber(raw[i]!);
  }
  return out;
}

function narrowHalf(data: Float32Array, dtype: 'F16' | 'BF16'): Uint16Array {
  const out = new Uint16Array(data.length);
  const convert = dtype === 'BF16' ? numberToBF16Bits : numberToF16Bits;
  for (let i = 0; i < data.length; i++) out[i] = convert(data[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Parse a safetensors file held in memory. `fileLabel` (usually the path) prefixes every error.
 * The returned arrays are fresh copies, properly aligned, independent of `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array, fileLabel: string): SafetensorsContent {
  const fail = (problem: string): never => {
    throw new DataError(fileLabel, problem);
  };
  assertLittleEndianHost(fileLabel);
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for a safetensors header (needs at least 8)`);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLenBig = view.getBigUint64(0, true);
  if (headerLenBig > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLenBig} is absurd (limit ${MAX_HEADER_BYTES} bytes); not a safetensors file or corrupt`);
  }
  const headerLen = Number(headerLenBig);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} exceeds the file size (${bytes.length} bytes); file truncated?`);
  }

  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    fail(`header is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isPlainObject(header)) fail('header must be a JSON object');
  const entries = header as Record<string, unknown>;

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata = parseMetadata(entries[METADATA_KEY], fail);

  interface Span { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }
  const spans: Span[] = [];
  for (const [name, info] of Object.entries(entries)) {
    if (name === METADATA_KEY) continue;
    const what = `tensor "${name}"`;
    if (!isPlainObject(info)) fail(`${what}: header entry must be an object`);
    const entry = info as Record<string, unknown>;
    const dtype = entry['dtype'];
    if (!isSafeDType(dtype)) fail(`${what} has unknown dtype ${JSON.stringify(dtype)} (supported: ${DTYPE_NAMES})`);
    const dt = dtype as SafeDType;
    const count = checkShape(entry['shape'], what);
    if (typeof count === 'string') fail(count);
    const offsets = entry['data_offsets'];
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`${what} data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) {
      fail(`${what} data_offsets [${begin}, ${end}] out of bounds (data buffer is ${dataLen} bytes; file truncated?)`);
    }
    const expected = (count as number) * DTYPES[dt].itemSize;
    if (end - begin !== expected) {
      fail(`${what} data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dt} shape ${JSON.stringify(entry['shape'])} needs ${expected}`);
    }
    spans.push({ name, dtype: dt, shape: (entry['shape'] as number[]).slice(), begin, end });
  }

  // The format requires tensors to tile the data buffer exactly: no overlap, no holes, no tail.
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Span | undefined;
  for (const s of sorted) {
    if (s.begin < cursor) fail(`tensor "${s.name}" overlaps tensor "${prev!.name}" in the data buffer`);
    if (s.begin > cursor) fail(`gap of ${s.begin - cursor} unused bytes before tensor "${s.name}" in the data buffer`);
    cursor = s.end;
    prev = s;
  }
  if (cursor !== dataLen) fail(`trailing garbage: ${dataLen - cursor} bytes after the last tensor`);

  const tensors = Object.fromEntries(
    spans.map((s) => {
      // Copy into a fresh ArrayBuffer so typed-array views are aligned and independent of `bytes`.
      // (Not bytes.slice(): on a Node Buffer that returns a view into the shared pool.)
      const raw = new Uint8Array(s.end - s.begin);
      raw.set(bytes.subarray(dataStart + s.begin, dataStart + s.end));
      let data: SafeTensor['data'];
      if (s.dtype === 'F16' || s.dtype === 'BF16') {
        data = widenHalf(new Uint16Array(raw.buffer, 0, raw.length / 2), s.dtype);
      } else {
        const info = DTYPES[s.dtype];
        data = new info.ctor(raw.buffer, 0, raw.length / info.itemSize);
      }
      return [s.name, { dtype: s.dtype, shape: s.shape, data }] as const;
    }),
  );
  return { tensors, metadata };
}

function parseMetadata(raw: unknown, fail: (problem: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (!isPlainObject(raw)) fail(`"${METADATA_KEY}" must be an object of strings`);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`"${METADATA_KEY}" value for key "${k}" must be a string, got ${JSON.stringify(v)}`);
  }
  return Object.fromEntries(Object.entries(raw as Record<string, string>));
}

// ---------------------------------------------------------------------------------------------
// Encoding

function expectedArrayName(dtype: SafeDType): string {
  return DTYPES[dtype].ctor.name;
}

/**
 * Serialise tensors (and optional string metadata) to safetensors bytes. Tensors are laid out by
 * item size (largest first) then name, so every tensor is aligned to its item size within the file
 * (the header is padded with spaces so the data buffer starts at a multiple of 8).
 * `fileLabel` only prefixes error messages.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
  fileLabel = 'safetensors',
): Uint8Array {
  const fail = (problem: string): never => {
    throw new DataError(fileLabel, problem);
  };
  assertLittleEndianHost(fileLabel);

  const items = Object.entries(tensors).map(([name, t]) => {
    const what = `tensor "${name}"`;
    if (name === METADATA_KEY) fail(`tensor name "${METADATA_KEY}" is reserved for metadata`);
    if (!isSafeDType(t.dtype)) fail(`${what} has unknown dtype ${JSON.stringify(t.dtype)} (supported: ${DTYPE_NAMES})`);
    const count = checkShape(t.shape, what);
    if (typeof count === 'string') fail(count);
    const info = DTYPES[t.dtype];
    if (!(t.data instanceof info.ctor)) {
      fail(`${what} has dtype ${t.dtype}, so data must be a ${expectedArrayName(t.dtype)}, got ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    if (t.data.length !== count) {
      fail(`${what} data has ${t.data.length} elements, but shape ${JSON.stringify(t.shape)} needs ${count as number}`);
    }
    const payload =
      t.dtype === 'F16' || t.dtype === 'BF16' ? narrowHalf(t.data as Float32Array, t.dtype) : t.data;
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    return { name, dtype: t.dtype, shape: t.shape.slice(), itemSize: info.itemSize, bytes };
  });
  items.sort((a, b) => b.itemSize - a.itemSize || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Built by hand so the key order is exactly metadata first, then data order
  // (a JS object would move integer-like names such as "0" to the front).
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`metadata value for key "${k}" must be a string, got ${typeof v}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const it of items) {
    const end = offset + it.bytes.length;
    parts.push(`${JSON.stringify(it.name)}:${JSON.stringify({ dtype: it.dtype, shape: it.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const headerRaw = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(headerRaw.length / 8) * 8;

  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(headerRaw, 8);
  out.fill(0x20, 8 + headerRaw.length, 8 + headerLen); // space padding, valid JSON whitespace
  let pos = 8 + headerLen;
  for (const it of items) {
    out.set(it.bytes, pos);
    pos += it.bytes.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files

/** Read and decode a safetensors file; errors name `path`. */
export async function readSafetensors(path: string): Promise<SafetensorsContent> {
  return decodeSafetensors(await readInputFile(path, 'safetensors file'), path);
}

/** Encode and write a safetensors file atomically (an existing file survives any failure). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata, path));
}

/**
 * Convert I64 values to numbers, failing (naming `fileLabel`) if any is beyond ±2^53
 * where a JS number would silently lose precision.
 */
export function int64ToNumbers(data: BigInt64Array, fileLabel: string, what = 'I64 tensor'): number[] {
  const out = new Array<number>(data.length);
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v > max || v < -max) throw new DataError(fileLabel, `${what} element ${i} = ${v} is outside the safe integer range`);
    out[i] = Number(v);
  }
  return out;
}
