import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gemm, gemmSettings } from '../ops/matmul.js';
import { withSettings } from './withSettings.js';

test('withSettings applies the patch inside fn and restores the replaced values after it', () => {
  const s: { path: null | 'onnx' | 'ts'; threshold: number } = { path: null, threshold: 7 };
  // Compared through copies: asserting on s itself would narrow its type for the later calls.
  const seen = withSettings(s, { path: 'ts' }, () => ({ ...s }));
  assert.deepEqual(seen, { path: 'ts', threshold: 7 });
  assert.deepEqual({ ...s }, { path: null, threshold: 7 });
  // Nested calls unwind to each caller's values, not to a default.
  withSettings(s, { path: 'onnx' }, () => {
    withSettings(s, { path: 'ts', threshold: 1 }, () => assert.deepEqual({ ...s }, { path: 'ts', threshold: 1 }));
    assert.deepEqual({ ...s }, { path: 'onnx', threshold: 7 });
  });
  assert.deepEqual({ ...s }, { path: null, threshold: 7 });
});

test('a failing assertion inside withSettings leaves the engine settings as they were', () => {
  const before = { ...gemmSettings };
  assert.throws(
    () => withSettings(gemmSettings, { forcePath: 'ts', smallProductThreshold: 0 }, () => {
      assert.equal(gemmSettings.forcePath, 'ts');
      assert.deepEqual(Array.from(gemm(Float32Array.of(2), Float32Array.of(3), 1, 1, 1, false, false)), [6]);
      assert.fail('deliberate');
    }),
    /deliberate/,
  );
  assert.deepEqual({ ...gemmSettings }, before);
});

test('withSettings refuses an async fn, whose settings would be restored at its first await', () => {
  const s = { path: 'ts' };
  assert.throws(() => withSettings(s, { path: 'onnx' }, async () => 1), /fn returned a promise/);
  assert.deepEqual({ ...s }, { path: 'ts' });
});
