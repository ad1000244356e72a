import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataError } from '../../util/errors.js';
import { repoRoot } from '../../util/paths.js';
import { CIFAR100_CLASS_NAMES, parseCifarBinary, readCifar100, unpickle } from './cifar100.js';

/** Pixel value of channel `ch` at pixel `p` of record `i` (known, varied). */
const px = (i: number, ch: number, p: number) => (i * 7 + ch * 85 + p * 3) & 255;
const fineOf = (i: number) => (i * 37) % 100;

/** A CIFAR-100 binary split of `n` records. */
function cifarBinary(n: number): Buffer {
  const out = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    out[i * 3074] = i % 20;
    out[i * 3074 + 1] = fineOf(i);
    for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) out[i * 3074 + 2 + ch * 1024 + p] = px(i, ch, p);
  }
  return out;
}

/**
 * A pickle as Python 2's cPickle (protocol 2) writes the cifar-100-python files: str keys and names
 * as SHORT_BINSTRING, pixels as a numpy array whose data is a BINSTRING, memo puts and a get.
 * (Checked once against Python's `pickle.loads(data, encoding='bytes')`.)
 */
class Py2Pickle {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  private memo = 0;
  op(...bytes: number[]) { this.parts.push(Buffer.from(bytes)); return this; }
  put() { return this.op(0x71, this.memo++); }
  str(s: string | Buffer) {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
    if (b.length < 256) this.op(0x55, b.length);
    else { const len = Buffer.alloc(4); len.writeUInt32LE(b.length); this.parts.push(Buffer.from([0x54]), len); }
    this.parts.push(b);
    return this;
  }
  int(v: number) { return v < 256 ? this.op(0x4b, v) : this.op(0x4d, v & 255, v >> 8); }
  global(mod: string, name: string) { this.parts.push(Buffer.from(`c${mod}\n${name}\n`, 'latin1')); return this; }
  intList(xs: number[]) { this.op(0x5d).put().op(0x28); xs.forEach((x) => this.int(x)); return this.op(0x65); }
  strList(xs: string[]) { this.op(0x5d).put().op(0x28); xs.forEach((x) => this.str(x)); return this.op(0x65); }
  u8Array(rows: number, cols: number, data: Buffer) {
    this.global('numpy.core.multiarray', '_reconstruct').global('numpy', 'ndarray').int(0).op(0x85).str('b').op(0x87, 0x52).put();
    this.op(0x28).int(1).int(rows).int(cols).op(0x86);
    this.global('numpy', 'dtype').str('u1').int(0).int(1).op(0x87, 0x52).put();
    this.op(0x28).int(3).str('|').op(0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff).int(0).op(0x74, 0x62);
    return this.op(0x89).str(data).op(0x74, 0x62);
  }
  done() { return Buffer.concat([...this.parts, Buffer.from([0x2e])]); }
}

function py2Split(n: number): Buffer {
  const data = Buffer.alloc(n * 3072);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) data[i * 3072 + ch * 1024 + p] = px(i, ch, p);
  const w = new Py2Pickle().op(0x7d).put().op(0x28);
  w.str('filenames').strList(Array.from({ length: n }, (_, i) => `img_${i}.png`));
  w.str('batch_label').str('training batch 1 of 1').str('fine_labels').intList(Array.from({ length: n }, (_, i) => fineOf(i)));
  w.str('coarse_labels').intList(Array.from({ length: n }, (_, i) => i % 20)).str('data').u8Array(n, 3072, data);
  return w.op(0x75).done();
}

function py2Meta(names: readonly string[]): Buffer {
  const w = new Py2Pickle().op(0x7d).put().op(0x28);
  w.str('fine_label_names').strList([...names]).str('coarse_label_names').strList(Array.from({ length: 20 }, (_, i) => `c${i}`));
  return w.op(0x75).done();
}

/** The image of record `i` must be HWC: pixel p holds (R, G, B) = channels 0, 1, 2 of CHW. */
function assertRecordPixels(data: ArrayLike<number>, i: number): void {
  for (const p of [0, 1, 31, 32, 500, 1023]) {
    assert.deepEqual([data[p * 3], data[p * 3 + 1], data[p * 3 + 2]], [px(i, 0, p), px(i, 1, p), px(i, 2, p)], `record ${i} pixel ${p}`);
  }
}

describe('CIFAR-100', () => {
  let dir: string;
  const names = Array.from({ length: 100 }, (_, i) => `name_${String(99 - i).padStart(2, '0')}`);
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'clap4clip-cifar-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('CIFAR100_CLASS_NAMES equals the fine label names of the reference (which has "_" already turned into spaces)', async () => {
    const ref = JSON.parse(await readFile(path.join(repoRoot(), 'tests', 'fixtures', 'reference-data', 'classNames.json'), 'utf8')) as Record<string, string[]>;
    assert.deepEqual(CIFAR100_CLASS_NAMES.map((n) => n.replaceAll('_', ' ')), ref['cifar100']);
  });

  it('reads the binary distribution: labels, names in file order, CHW → HWC pixels', async () => {
    const bin = path.join(dir, 'ok', 'cifar-100-binary');
    await mkdir(bin, { recursive: true });
    await writeFile(path.join(bin, 'train.bin'), cifarBinary(300));
    await writeFile(path.join(bin, 'test.bin'), cifarBinary(40));
    await writeFile(path.join(bin, 'fine_label_names.txt'), names.join('\n') + '\n\n');
    for (const root of [path.join(dir, 'ok'), bin]) {
      const ds = await readCifar100(root);
      assert.deepEqual(ds.classNames, names);
      assert.equal(ds.train.length, 300);
      assert.equal(ds.test.length, 40);
      assert.deepEqual(ds.train.map((it) => it.label), Array.from({ length: 300 }, (_, i) => fineOf(i)));
      assert.equal(ds.train[17]!.key, 'train.bin#17');
      const img = await ds.train[17]!.load();
      assert.equal(img.width, 32);
      assert.equal(img.height, 32);
      assertRecordPixels(img.data, 17);
      assertRecordPixels((await ds.test[39]!.load()).data, 39);
    }
  });

  it('rejects truncated files, out-of-range labels and missing files, naming the file', async () => {
    const trunc = cifarBinary(3).subarray(0, 3 * 3074 - 5);
    assert.throws(() => parseCifarBinary(trunc, 'x/train.bin'), (e: unknown) => e instanceof DataError && e.file === 'x/train.bin' && /not a multiple of the 3074-byte record/.test(e.message));
    const badFine = cifarBinary(3);
    badFine[2 * 3074 + 1] = 100;
    assert.throws(() => parseCifarBinary(badFine, 'f'), /record 2 .* fine label 100, expected 0\.\.99/);
    const badCoarse = cifarBinary(3);
    badCoarse[3074] = 20;
    assert.throws(() => parseCifarBinary(badCoarse, 'f'), /record 1 .* coarse label 20/);
    assert.throws(() => parseCifarBinary(new Uint8Array(0), 'f'), /empty/);

    const bin = path.join(dir, 'broken');
    await mkdir(bin, { recursive: true });
    await writeFile(path.join(bin, 'train.bin'), cifarBinary(2));
    await writeFile(path.join(bin, 'fine_label_names.txt'), names.join('\n'));
    await assert.rejects(readCifar100(bin), (e: unknown) => e instanceof DataError && e.file === path.join(bin, 'test.bin') && /not found/.test(e.message));
    await writeFile(path.join(bin, 'test.bin'), trunc);
    await assert.rejects(readCifar100(bin), (e: unknown) => e instanceof DataError && e.file === path.join(bin, 'test.bin'));
    await writeFile(path.join(bin, 'test.bin'), cifarBinary(2));
    await writeFile(path.join(bin, 'fine_label_names.txt'), names.slice(0, 99).join('\n'));
    await assert.rejects(readCifar100(bin), /fine_label_names\.txt: has 99 class names, expected 100/);
    await assert.rejects(readCifar100(path.join(dir, 'nothing-here')), /no CIFAR-100 found/);
  });

  it('reads the python-pickle distribution (Python 2 protocol-2 pickles with numpy arrays)', async () => {
    const py = path.join(dir, 'py', 'cifar-100-python');
    await mkdir(py, { recursive: true });
    await writeFile(path.join(py, 'train'), py2Split(30));
    await writeFile(path.join(py, 'test'), py2Split(10));
    await writeFile(path.join(py, 'meta'), py2Meta(names));
    const ds = await readCifar100(path.join(dir, 'py'));
    assert.deepEqual(ds.classNames, names);
    assert.deepEqual(ds.train.map((it) => it.label), Array.from({ length: 30 }, (_, i) => fineOf(i)));
    assert.equal(ds.test.length, 10);
    assertRecordPixels((await ds.train[29]!.load()).data, 29);
  });

  it('the unpickler refuses arbitrary globals and truncated data', () => {
    const evil = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cos\nsystem\n', 'latin1'), Buffer.from([0x55, 2, 0x6c, 0x73, 0x85, 0x52, 0x2e])]);
    assert.throws(() => unpickle(evil, 'evil'), (e: unknown) => e instanceof DataError && /refusing to load global os\.system/.test(e.message));
    const ok = py2Meta(names);
    assert.throws(() => unpickle(ok.subarray(0, ok.length - 40), 'meta'), /unexpected end of data|stack underflow/);
    assert.throws(() => unpickle(Buffer.from([0x80, 2, 0x7d, 0xff]), 'x'), /unsupported opcode 0xff/);
  });
});
