import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  int64ToNumbers,
  readSafetensors,
  writeSafetensors,
  type SafeTensor,
} from './safetensors.js';

const F = 'f.st';

/** Build a file from a header (string used verbatim, objects JSON-encoded) and a data buffer. */
function build(header: string | object, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.split(/\s+/).filter(Boolean).map((b) => parseInt(b, 16)));
}

function throwsData(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    assert.equal(err.message, message);
    return true;
  });
}

/** Raw 16-bit words stored for a single F16/BF16 tensor named "h". */
function halfBits(dtype: 'F16' | 'BF16', values: number[]): number[] {
  const bytes = encodeSafetensors({ h: { dtype, shape: [values.length], data: Float32Array.from(values) } });
  const view = new DataView(bytes.buffer);
  const start = 8 + Number(view.getBigUint64(0, true));
  return values.map((_, i) => view.getUint16(start + 2 * i, true));
}

describe('safetensors encode/decode', () => {
  it('round-trips every dtype, scalars, empty tensors and metadata', () => {
    const tensors: Record<string, SafeTensor> = {
      f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([0, -0, 1.5, -3.25, 1e-30, 3.4e38]) },
      f64: { dtype: 'F64', shape: [3], data: Float64Array.from([Math.PI, -1e300, Number.MIN_VALUE]) },
      i32: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([0, -1, 2147483647, -2147483648]) },
      i64: { dtype: 'I64', shape: [3], data: BigInt64Array.from([0n, -(2n ** 63n), 2n ** 63n - 1n]) },
      u8: { dtype: 'U8', shape: [4], data: Uint8Array.from([0, 1, 128, 255]) },
      f16: { dtype: 'F16', shape: [11], data: Float32Array.from([0, -0, 1, -2.5, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, NaN, 1365 / 4096]) },
      bf16: { dtype: 'BF16', shape: [6], data: Float32Array.from([0, 1, -2, 3.3895313892515355e38, 2 ** -133, NaN]) },
      scalar: { dtype: 'F32', shape: [], data: Float32Array.from([7]) },
      empty: { dtype: 'I32', shape: [0, 5], data: new Int32Array(0) },
      '0': { dtype: 'U8', shape: [1], data: Uint8Array.from([9]) },
      'ünïcode name': { dtype: 'U8', shape: [1], data: Uint8Array.from([42]) },
    };
    const metadata = { format: 'pt', note: 'ünïcode ✓', empty: '' };
    const back = decodeSafetensors(encodeSafetensors(tensors, metadata), F);
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) assert.deepEqual(back.tensors[name], t, name);
  });

  it('decodes to an empty metadata object when there is none', () => {
    const back = decodeSafetensors(encodeSafetensors({ x: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } }), F);
    assert.deepEqual(back.metadata, {});
  });

  it('matches a hand-built file byte for byte (header order, padding, little-endian data)', () => {
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
      '"h":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},' +
      '"b":{"dtype":"U8","shape":[3],"data_offsets":[18,21]}}';
    assert.equal(header.length, 247); // padded with one space to 248, a multiple of 8
    const expected = new Uint8Array([
      ...hex('f8 00 00 00 00 00 00 00'),
      ...new TextEncoder().encode(header + ' '),
      ...hex('fe ff ff ff ff ff ff ff'), // I64 -2
      ...hex('00 00 80 3f  00 00 00 c0'), // F32 1, -2
      ...hex('00 3c'), // F16 1
      ...hex('01 02 03'), // U8
    ]);
    // Given in a different order: the encoder sorts by item size, then name.
    const actual = encodeSafetensors(
      {
        b: { dtype: 'U8', shape: [3], data: Uint8Array.from([1, 2, 3]) },
        h: { dtype: 'F16', shape: [1], data: Float32Array.from([1]) },
        a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2]) },
        c: { dtype: 'I64', shape: [], data: BigInt64Array.from([-2n]) },
      },
      { format: 'pt' },
    );
    assert.deepEqual(actual, expected);
    const back = decodeSafetensors(expected, F);
    assert.deepEqual(back.tensors['c'], { dtype: 'I64', shape: [], data: BigInt64Array.from([-2n]) });
    assert.deepEqual(back.tensors['a'], { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2]) });
  });

  it('decodes hand-written F16 and BF16 bytes to float32', () => {
    const file = build(
      { h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } },
      hex('55 35  01 00  00 fc  ff 7b    80 3f  49 c0'),
    );
    const { tensors } = decodeSafetensors(file, F);
    assert.deepEqual(tensors['h']!.data, Float32Array.from([1365 / 4096, 2 ** -24, -Infinity, 65504]));
    assert.deepEqual(tensors['b']!.data, Float32Array.from([1, -3.140625]));
  });

  it('narrows F16 and BF16 with round-to-nearest-even', () => {
    assert.deepEqual(
      halfBits('F16', [1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 2 ** -25, 3 * 2 ** -26, 1e-10, -0, NaN, -1e6]),
      [0x3c00, 0x3c00, 0x3c02, 0x7c00, 0x0000, 0x0001, 0x0000, 0x8000, 0x7e00, 0xfc00],
    );
    assert.deepEqual(halfBits('BF16', [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN, -2]), [0x3f80, 0x3f80, 0x3f82, 0x7fc0, 0xc000]);
  });

  it('copies data out of an unaligned buffer', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'F64', shape: [2], data: Float64Array.from([1.25, -8]) } });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const { tensors } = decodeSafetensors(big.subarray(3), F);
    assert.deepEqual(tensors['x']!.data, Float64Array.from([1.25, -8]));
    big.fill(0); // the result must not alias the input
    assert.deepEqual(tensors['x']!.data, Float64Array.from([1.25, -8]));
    // Node Buffers: slice() of a Buffer is a view, and small Buffers share one pooled ArrayBuffer.
    const buf = Buffer.concat([Buffer.alloc(5, 7), bytes]).subarray(5);
    const fromBuf = decodeSafetensors(buf, F).tensors['x']!.data;
    assert.deepEqual(fromBuf, Float64Array.from([1.25, -8]));
    assert.equal(fromBuf.byteOffset, 0);
    assert.equal(fromBuf.buffer.byteLength, 16);
  });

  it('accepts a header padded with trailing spaces', () => {
    const file = build('{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}      ', Uint8Array.from([5, 6]));
    assert.deepEqual(decodeSafetensors(file, F).tensors['x']!.data, Uint8Array.from([5, 6]));
  });
});

describe('safetensors decode errors', () => {
  const f32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('file shorter than 8 bytes', () => {
    throwsData(() => decodeSafetensors(new Uint8Array(5), F), 'f.st: file is 5 bytes, too short for a safetensors header (needs at least 8)');
  });
  it('absurd header length', () => {
    throwsData(
      () => decodeSafetensors(build('{}', 0, 2n ** 40n), F),
      'f.st: header length 1099511627776 is absurd (limit 104857600 bytes); not a safetensors file or corrupt',
    );
  });
  it('header length larger than the file', () => {
    throwsData(() => decodeSafetensors(build('{}', 8, 100n), F), 'f.st: header length 100 exceeds the file size (18 bytes); file truncated?');
  });
  it('header not UTF-8, not JSON, not an object', () => {
    const bad = build('{}');
    bad[9] = 0xff;
    throwsData(() => decodeSafetensors(bad, F), 'f.st: header is not valid UTF-8');
    assert.throws(() => decodeSafetensors(build('{"x":'), F), { name: 'DataError', message: /^f\.st: header is not valid JSON \(.+\)$/ });
    throwsData(() => decodeSafetensors(build('[1,2]'), F), 'f.st: header must be a JSON object');
    throwsData(() => decodeSafetensors(build('null'), F), 'f.st: header must be a JSON object');
    throwsData(() => decodeSafetensors(build({ x: 3 }), F), 'f.st: tensor "x": header entry must be an object');
  });
  it('bad metadata', () => {
    throwsData(() => decodeSafetensors(build({ __metadata__: [] }), F), 'f.st: "__metadata__" must be an object of strings');
    throwsData(
      () => decodeSafetensors(build({ __metadata__: { a: 1 } }), F),
      'f.st: "__metadata__" value for key "a" must be a string, got 1',
    );
  });
  it('unknown dtype', () => {
    throwsData(
      () => decodeSafetensors(build({ x: { ...f32x2, dtype: 'Q8' } }, 8), F),
      'f.st: tensor "x" has unknown dtype "Q8" (supported: F64, I64, F32, I32, F16, BF16, U8)',
    );
  });
  it('shape not an array of non-negative integers', () => {
    for (const shape of [[2, -1], [1.5], '3', [null]]) {
      throwsData(
        () => decodeSafetensors(build({ x: { ...f32x2, shape } }, 8), F),
        `f.st: tensor "x" shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
  });
  it('data_offsets malformed, out of bounds, or not matching shape', () => {
    throwsData(
      () => decodeSafetensors(build({ x: { ...f32x2, data_offsets: [0] } }, 8), F),
      'f.st: tensor "x" data_offsets must be [begin, end] non-negative integers, got [0]',
    );
    throwsData(
      () => decodeSafetensors(build({ x: { ...f32x2, data_offsets: [8, 0] } }, 8), F),
      'f.st: tensor "x" data_offsets [8, 0] out of bounds (data buffer is 8 bytes; file truncated?)',
    );
    throwsData(
      () => decodeSafetensors(build({ x: { ...f32x2, data_offsets: [0, 16] } }, 8), F),
      'f.st: tensor "x" data_offsets [0, 16] out of bounds (data buffer is 8 bytes; file truncated?)',
    );
    throwsData(
      () => decodeSafetensors(build({ x: { ...f32x2, shape: [3] } }, 8), F),
      'f.st: tensor "x" data_offsets [0, 8] span 8 bytes, but F32 shape [3] needs 12',
    );
  });
  it('truncated file', () => {
    const good = encodeSafetensors({ w: { dtype: 'F32', shape: [6], data: new Float32Array(6) } });
    throwsData(
      () => decodeSafetensors(good.subarray(0, good.length - 1), F),
      'f.st: tensor "w" data_offsets [0, 24] out of bounds (data buffer is 23 bytes; file truncated?)',
    );
  });
  it('overlapping tensors, gaps and trailing garbage', () => {
    throwsData(
      () => decodeSafetensors(build({ a: f32x2, b: { ...f32x2, data_offsets: [4, 12] } }, 12), F),
      'f.st: tensor "b" overlaps tensor "a" in the data buffer',
    );
    throwsData(
      () => decodeSafetensors(build({ a: f32x2, b: { ...f32x2, data_offsets: [12, 20] } }, 20), F),
      'f.st: gap of 4 unused bytes before tensor "b" in the data buffer',
    );
    throwsData(() => decodeSafetensors(build({ a: f32x2 }, 11), F), 'f.st: trailing garbage: 3 bytes after the last tensor');
  });
});

describe('safetensors encode errors', () => {
  it('rejects data that does not match dtype or shape, reserved names and non-string metadata', () => {
    throwsData(
      () => encodeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
      'safetensors: tensor "x" data has 3 elements, but shape [2,2] needs 4',
    );
    throwsData(
      () => encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }, undefined, 'out.st'),
      'out.st: tensor "x" has dtype F32, so data must be a Float32Array, got Float64Array',
    );
    throwsData(
      () => encodeSafetensors({ x: { dtype: 'F16' as 'F32', shape: [2], data: new Int32Array(2) } }),
      'safetensors: tensor "x" has dtype F16, so data must be a Float32Array, got Int32Array',
    );
    throwsData(
      () => encodeSafetensors({ x: { dtype: 'X' as 'F32', shape: [1], data: new Float32Array(1) } }),
      'safetensors: tensor "x" has unknown dtype "X" (supported: F64, I64, F32, I32, F16, BF16, U8)',
    );
    throwsData(
      () => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }),
      'safetensors: tensor name "__metadata__" is reserved for metadata',
    );
    throwsData(
      () => encodeSafetensors({}, { a: 5 as unknown as string }),
      'safetensors: metadata value for key "a" must be a string, got number',
    );
  });

  it('int64ToNumbers converts safe values and refuses unsafe ones', () => {
    assert.deepEqual(int64ToNumbers(BigInt64Array.from([3n, -(2n ** 53n) + 1n]), F), [3, -(2 ** 53) + 1]);
    throwsData(() => int64ToNumbers(BigInt64Array.from([0n, 2n ** 53n]), F, 'labels'), 'f.st: labels element 1 = 9007199254740992 is outside the safe integer range');
  });
});

describe('safetensors files and atomic writes', () => {
  let root = '';
  let dir = '';
  let counter = 0;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'clap4clip-st-'));
  });
  // A fresh folder per test, so one failure cannot leave files that break the next test.
  beforeEach(async () => {
    dir = path.join(root, `t${counter++}`);
    await mkdir(dir);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const tensors = { w: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } } satisfies Record<string, SafeTensor>;

  it('writes and reads a file, leaving no temp files', async () => {
    const file = path.join(dir, 'rt.safetensors');
    await writeSafetensors(file, tensors, { k: 'v' });
    assert.deepEqual(await readSafetensors(file), { tensors, metadata: { k: 'v' } });
    assert.deepEqual(await readdir(dir), ['rt.safetensors']);
    await rm(file);
  });

  it('names the file when reading fails', async () => {
    const missing = path.join(dir, 'nope.safetensors');
    await assert.rejects(readSafetensors(missing), { name: 'DataError', message: `${missing}: safetensors file not found` });
    const short = path.join(dir, 'short.safetensors');
    await writeFile(short, new Uint8Array(3));
    await assert.rejects(readSafetensors(short), {
      message: `${short}: file is 3 bytes, too short for a safetensors header (needs at least 8)`,
    });
    await rm(short);
  });

  it('keeps the existing file when encoding fails', async () => {
    const file = path.join(dir, 'keep.safetensors');
    await writeSafetensors(file, tensors);
    const before = await readFile(file);
    await assert.rejects(writeSafetensors(file, { w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), {
      name: 'DataError',
      message: `${file}: tensor "w" data has 2 elements, but shape [3] needs 3`,
    });
    assert.deepEqual(await readFile(file), before);
    await rm(file);
  });

  it('a failed rename (target is a directory) keeps the target and removes the temp file', async () => {
    const sub = path.join(dir, 'iam-a-dir');
    await mkdir(sub);
    await writeFile(path.join(sub, 'inside.txt'), 'precious');
    await assert.rejects(writeFileAtomic(sub, 'new data'), (err: unknown) => {
      assert.ok(err instanceof Clap4ClipError);
      assert.equal(err.file, sub);
      assert.match(err.message, new RegExp(`^${sub.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: atomic write failed: E`));
      return true;
    });
    assert.equal(await readFile(path.join(sub, 'inside.txt'), 'utf8'), 'precious');
    assert.deepEqual(await readdir(dir), ['iam-a-dir']);
    await rm(sub, { recursive: true });
  });

  it('a write into a read-only directory fails and keeps the existing file', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root ignores directory permissions');
      return;
    }
    const ro = path.join(dir, 'ro');
    await mkdir(ro);
    const file = path.join(ro, 'x.safetensors');
    await writeSafetensors(file, tensors);
    await chmod(ro, 0o555);
    try {
      await assert.rejects(writeSafetensors(file, { w: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }), {
        message: new RegExp(`: atomic write failed: EACCES`),
      });
      assert.deepEqual((await readSafetensors(file)).tensors, tensors);
      assert.deepEqual(await readdir(ro), ['x.safetensors']);
    } finally {
      await chmod(ro, 0o755);
      await rm(ro, { recursive: true });
    }
  });

  it('concurrent writes to one path all succeed with unique temp names', async () => {
    const file = path.join(dir, 'race.txt');
    const contents = Array.from({ length: 20 }, (_, i) => `content ${i}\n`);
    await Promise.all(contents.map((c) => writeFileAtomic(file, c)));
    assert.ok(contents.includes(await readFile(file, 'utf8')));
    assert.deepEqual(await readdir(dir), ['race.txt']);
    await rm(file);
  });

  it('writeJsonAtomic writes pretty JSON with a newline and refuses non-finite numbers', async () => {
    const file = path.join(dir, 'v.json');
    await writeJsonAtomic(file, { a: [1, 2], b: 'x' });
    assert.equal(await readFile(file, 'utf8'), '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n');
    await assert.rejects(writeJsonAtomic(file, { a: { nested: NaN } }), {
      name: 'Clap4ClipError',
      message: `${file}: cannot serialise JSON: value NaN at key "nested" cannot be stored in JSON`,
    });
    await assert.rejects(writeJsonAtomic(file, undefined), { message: `${file}: cannot serialise JSON: value is undefined` });
    assert.equal(await readFile(file, 'utf8'), '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n');
    assert.deepEqual(await readdir(dir), ['v.json']);
    await rm(file);
  });
});
