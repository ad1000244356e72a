/**
 * CIFAR-100 readers. Two distributions of the same data:
 *   cifar-100-binary/  train.bin, test.bin: records of [coarse u8][fine u8][3072 u8 CHW 32x32];
 *                      fine_label_names.txt: 100 names, one per line, in label order.
 *   cifar-100-python/  train, test, meta: Python pickles (protocol 2, written by Python 2 with
 *                      numpy); read by the minimal unpickler below, which understands exactly the
 *                      opcodes such files use and refuses everything else (it never runs code).
 * `root` may be either folder itself or the folder that contains it.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { RgbImage } from '../../encoders/types.js';
import { DataError } from '../../util/errors.js';
import { readInputFile } from '../../util/inputFile.js';
import type { ImageDataset, ImageItem } from './types.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3; // 3072
const RECORD = 2 + PIXELS; // 3074
const NUM_FINE = 100;
const NUM_COARSE = 20;

/** CIFAR-100 fine label names in label order (the dataset's own `fine_label_names`). */
export const CIFAR100_CLASS_NAMES: readonly string[] = Object.freeze([
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
]);

/** One split in memory: `pixels` holds N images of 3072 bytes (CHW), `labels` N fine labels. */
interface CifarSplit {
  file: string;
  pixels: Uint8Array;
  labels: ArrayLike<number>;
  n: number;
}

/** One 32x32 CHW record → HWC `RgbImage` (the layout the encoders take). */
export function cifarRecordToImage(pixels: Uint8Array, index: number): RgbImage {
  const base = index * PIXELS;
  const plane = SIDE * SIDE;
  const data = new Uint8Array(PIXELS);
  for (let p = 0; p < plane; p++) {
    data[p * 3] = pixels[base + p]!;
    data[p * 3 + 1] = pixels[base + plane + p]!;
    data[p * 3 + 2] = pixels[base + 2 * plane + p]!;
  }
  return { width: SIDE, height: SIDE, data };
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function readBytes(file: string, what: string): Promise<Buffer> {
  return readInputFile(file, what);
}

/** Parse a binary split file; every record is checked (size and label ranges). */
export function parseCifarBinary(bytes: Uint8Array, file: string): CifarSplit {
  if (bytes.length === 0) throw new DataError(file, 'file is empty');
  if (bytes.length % RECORD !== 0) {
    throw new DataError(file, `size ${bytes.length} bytes is not a multiple of the ${RECORD}-byte record (1 coarse + 1 fine label + ${PIXELS} pixels): file truncated or not CIFAR-100 binary (CIFAR-10 records have 1 label byte)`);
  }
  const n = bytes.length / RECORD;
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const at = i * RECORD;
    const coarse = bytes[at]!, fine = bytes[at + 1]!;
    if (coarse >= NUM_COARSE) throw new DataError(file, `record ${i} (byte ${at}) has coarse label ${coarse}, expected 0..${NUM_COARSE - 1}`);
    if (fine >= NUM_FINE) throw new DataError(file, `record ${i} (byte ${at + 1}) has fine label ${fine}, expected 0..${NUM_FINE - 1}`);
    labels[i] = fine;
    pixels.set(bytes.subarray(at + 2, at + RECORD), i * PIXELS);
  }
  return { file, pixels, labels, n };
}

/** `fine_label_names.txt`: exactly 100 non-empty unique lines (trailing blank lines allowed). */
export function parseLabelNames(text: string, file: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return checkNames(lines, file);
}

function checkNames(names: string[], file: string): string[] {
  if (names.length !== NUM_FINE) throw new DataError(file, `has ${names.length} class names, expected ${NUM_FINE}`);
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (name === '') throw new DataError(file, `class name ${i} (line ${i + 1}) is empty`);
    if (seen.has(name)) throw new DataError(file, `class name ${JSON.stringify(name)} appears twice`);
    seen.add(name);
  });
  return names;
}

function toDataset(layout: string, classNames: string[], train: CifarSplit, test: CifarSplit): ImageDataset {
  const items = (s: CifarSplit): ImageItem[] => {
    const base = path.basename(s.file);
    return Array.from({ length: s.n }, (_, i) => ({
      key: `${base}#${i}`,
      label: s.labels[i]!,
      source: `${s.file}#${i}`,
      load: async () => cifarRecordToImage(s.pixels, i),
    }));
  };
  return { name: 'cifar100', classNames, train: items(train), test: items(test), extra: { layout } };
}

/** Read CIFAR-100 from `root` (either distribution, or a folder containing one). */
export async function readCifar100(root: string): Promise<ImageDataset> {
  for (const dir of [root, path.join(root, 'cifar-100-binary'), path.join(root, 'cifar-100-python')]) {
    const has = (name: string) => isFile(path.join(dir, name));
    if ((await has('train.bin')) || (await has('test.bin')) || (await has('fine_label_names.txt'))) return readBinaryLayout(dir);
    if ((await has('meta')) || ((await has('train')) && (await has('test')))) return readPythonLayout(dir);
  }
  throw new DataError(root, 'no CIFAR-100 found: expected cifar-100-binary/ (train.bin, test.bin, fine_label_names.txt) or cifar-100-python/ (train, test, meta) in or at this folder');
}

async function readBinaryLayout(dir: string): Promise<ImageDataset> {
  const f = (name: string) => path.join(dir, name);
  const names = parseLabelNames((await readBytes(f('fine_label_names.txt'), 'label names file')).toString('utf8'), f('fine_label_names.txt'));
  const train = parseCifarBinary(await readBytes(f('train.bin'), 'CIFAR-100 binary split'), f('train.bin'));
  const test = parseCifarBinary(await readBytes(f('test.bin'), 'CIFAR-100 binary split'), f('test.bin'));
  return toDataset('cifar-100-binary', names, train, test);
}

async function readPythonLayout(dir: string): Promise<ImageDataset> {
  const f = (name: string) => path.join(dir, name);
  const meta = asDict(unpickle(await readBytes(f('meta'), 'CIFAR-100 pickle'), f('meta')), f('meta'));
  const rawNames = asList(field(meta, 'fine_label_names', f('meta')), f('meta'), 'fine_label_names');
  const names = checkNames(rawNames.map((v, i) => (typeof v === 'string' || v instanceof PyBytes ? text(v) : dataFail(f('meta'), `fine_label_names[${i}] is not a string`))), f('meta'));
  const split = async (name: string): Promise<CifarSplit> => {
    const file = f(name);
    const d = asDict(unpickle(await readBytes(file, 'CIFAR-100 pickle'), file), file);
    const data = field(d, 'data', file);
    if (!(data instanceof NdArray) || data.dtype !== 'u1' || data.shape.length !== 2 || data.shape[1] !== PIXELS) {
      throw new DataError(file, `"data" must be a uint8 numpy array of shape [N, ${PIXELS}]`);
    }
    const labels = asList(field(d, 'fine_labels', file), file, 'fine_labels');
    const n = data.shape[0]!;
    if (labels.length !== n) throw new DataError(file, `"fine_labels" has ${labels.length} entries but "data" has ${n} rows`);
    labels.forEach((y, i) => {
      if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y >= NUM_FINE) throw new DataError(file, `fine_labels[${i}] is ${String(y)}, expected 0..${NUM_FINE - 1}`);
    });
    return { file, pixels: data.data, labels: labels as number[], n };
  };
  return toDataset('cifar-100-python', names, await split('train'), await split('test'));
}

// ---------------------------------------------------------------------------------------------
// Minimal unpickler: protocols 2-4, the opcodes of dicts/lists/ints/strings and numpy arrays.

/** Python 2 `str` / Python 3 `bytes`. */
export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
}
/** A numpy ndarray (only C-order, fixed-size dtypes; `data` holds the raw bytes). */
export class NdArray {
  shape: number[] = [];
  dtype = '';
  data: Uint8Array = new Uint8Array(0);
}
class PyDType {
  constructor(readonly str: string) {}
}
class PyGlobal {
  constructor(readonly name: string) {}
}

const ALLOWED_GLOBALS = new Set([
  'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype', '_codecs.encode',
]);

function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof PyBytes) return Buffer.from(v.bytes).toString('utf8');
  throw new TypeError(`expected a string, got ${typeof v}`);
}
function keyOf(v: unknown): string {
  return v instanceof PyBytes ? Buffer.from(v.bytes).toString('latin1') : String(v);
}
function dataFail(file: string, problem: string): never {
  throw new DataError(file, problem);
}
function asDict(v: unknown, file: string): Map<string, unknown> {
  if (!(v instanceof Map)) throw new DataError(file, 'pickle does not hold a dict');
  return v;
}
function asList(v: unknown, file: string, what: string): unknown[] {
  if (!Array.isArray(v)) throw new DataError(file, `"${what}" is not a list`);
  return v;
}
function field(d: Map<string, unknown>, key: string, file: string): unknown {
  if (!d.has(key)) throw new DataError(file, `pickle dict has no "${key}" (keys: ${[...d.keys()].join(', ')})`);
  return d.get(key);
}

/** Apply a whitelisted callable (REDUCE). */
function callGlobal(fn: PyGlobal, args: unknown[], fail: (p: string) => never): unknown {
  if (fn.name.endsWith('._reconstruct')) return new NdArray();
  if (fn.name === 'numpy.dtype') return new PyDType(text(args[0]));
  if (fn.name === '_codecs.encode') return new PyBytes(Uint8Array.from(Buffer.from(text(args[0]), 'latin1')));
  return fail(`cannot call ${fn.name}`);
}

/** BUILD on an ndarray: state (version, shape, dtype, is_fortran, raw bytes). */
function buildArray(a: NdArray, state: unknown, fail: (p: string) => never): void {
  if (!Array.isArray(state) || state.length !== 5) fail('unexpected ndarray state');
  const [, shape, dtype, fortran, raw] = state as unknown[];
  if (!(dtype instanceof PyDType)) return fail('ndarray dtype missing');
  if (fortran === true) fail('Fortran-order arrays are not supported');
  if (!(raw instanceof PyBytes)) return fail('ndarray data is not raw bytes (object arrays are not supported)');
  a.shape = (shape as number[]).slice();
  a.dtype = dtype.str.replace(/^[<|=]/, '');
  a.data = raw.bytes;
  if (a.dtype === 'u1' && a.data.length !== a.shape.reduce((x, y) => x * y, 1)) fail('ndarray byte count does not match its shape');
}

/** Decode a pickle holding only plain data and numpy arrays. Errors name `file`. */
export function unpickle(buf: Uint8Array, file: string): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (problem: string): never => {
    throw new DataError(file, `pickle: ${problem} (at byte ${pos}; only plain data and numpy arrays are supported)`);
  };
  const need = (n: number): number => {
    if (pos + n > buf.length) fail('unexpected end of data (file truncated?)');
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => buf[need(1)]!;
  const u32 = () => view.getUint32(need(4), true);
  const bytes = (n: number) => buf.subarray(need(n), pos);
  const utf8 = (n: number) => Buffer.from(bytes(n)).toString('utf8');
  const pop = () => (stack.length > 0 ? stack.pop() : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const m = marks.pop();
    return m === undefined ? fail('missing MARK') : stack.splice(m);
  };
  const top = () => (stack.length > 0 ? stack[stack.length - 1] : fail('stack underflow'));
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail('SETITEM on a non-dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (d as Map<string, unknown>).set(keyOf(kv[i]), kv[i + 1]);
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: need(8); break; // FRAME (protocol 4): framing only
      case 0x2e: return pop(); // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(view.getUint16(need(2), true)); break; // BININT2
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const b = bytes(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! >= 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(Number(v));
        break;
      }
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT
      case 0x55: case 0x43: stack.push(new PyBytes(bytes(u8()))); break; // SHORT_BINSTRING, SHORT_BINBYTES
      case 0x54: case 0x42: stack.push(new PyBytes(bytes(u32()))); break; // BINSTRING, BINBYTES
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} not found`);
        stack.push(memo.get(k));
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x74: case 0x6c: stack.push(popMark()); break; // TUPLE, LIST
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x61: { const v = pop(); (top() as unknown[]).push(v); break; } // APPEND
      case 0x65: { const vs = popMark(); (top() as unknown[]).push(...vs); break; } // APPENDS
      case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x63: { // GLOBAL "module\nname\n"
        const line = (): string => {
          const end = buf.indexOf(0x0a, pos);
          if (end < 0) fail('bad GLOBAL');
          const s = utf8(end - pos);
          need(1);
          return s;
        };
        const name = `${line()}.${line()}`;
        if (!ALLOWED_GLOBALS.has(name)) fail(`refusing to load global ${name}`);
        stack.push(new PyGlobal(name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = `${text(pop())}`, mod = `${text(pop())}`;
        if (!ALLOWED_GLOBALS.has(`${mod}.${name}`)) fail(`refusing to load global ${mod}.${name}`);
        stack.push(new PyGlobal(`${mod}.${name}`));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!(fn instanceof PyGlobal) || !Array.isArray(args)) return fail('REDUCE without a callable and argument tuple');
        stack.push(callGlobal(fn, args, fail));
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = top();
        if (obj instanceof NdArray) buildArray(obj, state, fail);
        else if (!(obj instanceof PyDType)) fail('BUILD on an unsupported object'); // dtype state (byte order, flags): not needed for u1
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
