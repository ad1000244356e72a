/** Class-order files: formats, and every malformed input gives an error naming the file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseClassOrder, readClassOrderFile } from './classOrderFile.js';
import { resolveRunConfig } from '../run/config.js';
import { repoRoot } from '../util/paths.js';

test('class orders parse from JSON arrays, {"order"} objects and plain lists with comments', () => {
  assert.deepEqual(parseClassOrder('[2, 0, 1]', 'f'), [2, 0, 1]);
  assert.deepEqual(parseClassOrder('{"order": [1, 0]}', 'f'), [1, 0]);
  assert.deepEqual(parseClassOrder('# my order\n3, 1\n0 2\n', 'f'), [3, 1, 0, 2]);
});

test('the fixed CIFAR-100 order file of Continual-CLIP reads as a config class order', () => {
  const file = join(repoRoot(), 'tests', 'fixtures', 'reference-data', 'cifar100ContinualClipOrder.json');
  const expected = JSON.parse(readFileSync(file, 'utf8')) as number[];
  assert.deepEqual(resolveRunConfig({ classOrder: file }).classOrder, expected);
});

test('malformed class-order files give errors that name the file and the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clap4clip-order-'));
  try {
    const cases: [string, string | Buffer, RegExp][] = [
      ['empty.txt', '', /empty\.txt: class-order file is empty/],
      ['truncated.json', '[1, 2, ', /truncated\.json: class-order file is not valid JSON/],
      ['object.json', '{"labels": [1]}', /object\.json: class-order JSON must be an array/],
      ['float.txt', '1, 2.5, 3', /float\.txt: entry 1 is "2\.5", not a non-negative integer label/],
      ['nan.json', '[0, "NaN"]', /nan\.json: entry 1 is "NaN"/],
      ['negative.txt', '0\n-1', /negative\.txt: entry 1 is -1/],
      ['duplicate.txt', '0 1 1', /duplicate\.txt: label 1 is listed twice \(entry 2\)/],
      ['binary.bin', Buffer.from([0, 1, 2, 0]), /binary\.bin: class-order file is binary/],
      ['huge.txt', '0,'.repeat(3 * 2 ** 20), /huge\.txt: class-order file is \d+ bytes, more than a class order needs/],
    ];
    for (const [name, content, pattern] of cases) {
      const file = join(dir, name);
      writeFileSync(file, content);
      assert.throws(() => readClassOrderFile(file), pattern, name);
    }
    assert.throws(() => readClassOrderFile(join(dir, 'missing.txt')), /missing\.txt: class-order file not found/);
    assert.throws(() => resolveRunConfig({ classOrder: join(dir, 'missing.txt') }), /missing\.txt: class-order file not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
