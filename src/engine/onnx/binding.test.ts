/** The load-time check of onnxruntime-node's private binding, on the real binding and on fakes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../util/paths.js';
import { checkBinding, loadBinding, PINNED_ONNXRUNTIME_NODE } from './binding.js';

/** A binding with every member the engine uses; `drop` removes members by dotted path. */
function fakeBinding(...drop: string[]): unknown {
  class InferenceSession {
    loadModel(): void {}
    run(): Record<string, never> { return {}; }
    dispose(): void {}
    get inputMetadata(): { name: string }[] { throw new Error('getter called on the prototype'); }
    get outputMetadata(): { name: string }[] { return []; }
  }
  const mod: Record<string, unknown> = { binding: { InferenceSession }, initOrt: () => {} };
  for (const path of drop) {
    const keys = path.split('.');
    const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, mod);
    delete parent[keys[keys.length - 1]!];
  }
  return mod;
}

test('the installed binding has every member the engine uses', () => {
  const mod = loadBinding();
  assert.equal(typeof mod.binding.InferenceSession, 'function');
  assert.equal(typeof mod.initOrt, 'function');
});

test('a complete binding passes, getters untouched', () => {
  const mod = fakeBinding();
  assert.equal(checkBinding(mod, '1.30.0'), mod);
});

test('a missing member is named, with the package, its version and the pinned install', () => {
  const mod = fakeBinding('binding.InferenceSession.prototype.run', 'initOrt');
  assert.throws(() => checkBinding(mod, '1.99.0'), (e: Error) => {
    assert.match(e.message, /^onnxruntime-node\/dist\/binding\.js: onnxruntime-node 1\.99\.0 lacks /);
    assert.match(e.message, /initOrt\(\), binding\.InferenceSession\.prototype\.run\(\) in its native binding/);
    assert.ok(!e.message.includes('loadModel'), 'only the missing members are listed');
    assert.match(e.message, /npm install onnxruntime-node@1\.30\.0/);
    return true;
  });
});

test('a missing getter, a missing class and a non-object module are reported, not crashed on', () => {
  assert.throws(() => checkBinding(fakeBinding('binding.InferenceSession.prototype.outputMetadata'), '1.30.0'),
    /lacks binding\.InferenceSession\.prototype\.outputMetadata in/);
  assert.throws(() => checkBinding(fakeBinding('binding.InferenceSession'), '1.30.0'),
    /lacks binding\.InferenceSession\(\), binding\.InferenceSession\.prototype\.loadModel\(\),/);
  assert.throws(() => checkBinding(undefined, '2.0.0'), /onnxruntime-node 2\.0\.0 lacks initOrt\(\), binding\.InferenceSession\(\)/);
});

test('the pinned version is the one package.json declares', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.equal(pkg.dependencies['onnxruntime-node'], PINNED_ONNXRUNTIME_NODE);
});
