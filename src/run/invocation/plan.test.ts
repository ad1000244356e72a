import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMPARED_METHODS, planRuns, resolveInvocationConfig, settingsOf } from './plan.js';
import { newInvocation, withBenchmarkMethodOptions } from './request.js';

test('a comparison resolves one config per compared method; method options go to clap alone', () => {
  const config = resolveInvocationConfig(COMPARED_METHODS, { syntheticPreset: 'tiny', epochs: 2, methodOptions: { beta: 15 } });
  assert.equal(config.kind, 'comparison');
  if (config.kind !== 'comparison') return;
  assert.deepEqual(config.configs.map((c) => c.method), ['zeroshot', 'simplecil', 'ranpac', 'rapf', 'clap']);
  assert.deepEqual(config.configs.map((c) => c.methodOptions), [{}, {}, {}, {}, { beta: 15 }]);
  assert.ok(config.configs.every((c) => c.epochs === 2 && c.syntheticPreset === 'tiny'));
  assert.equal(settingsOf(config).method, 'clap', 'two comparisons compare by the config holding every given key');
  // A bad key is reported as for one run (from the options method's config, resolved first).
  assert.throws(() => resolveInvocationConfig(COMPARED_METHODS, { epoch: 2 }), /config: unknown key "epoch" \(did you mean "epochs"\?\)/);
});

test('planRuns: one run in the directory itself, repeated runs per seed, a comparison per method and seed', () => {
  const one = newInvocation({ syntheticPreset: 'tiny', method: 'zeroshot', out: 'o' }, false, false);
  assert.equal(one.layout, 'one run');
  assert.deepEqual(planRuns(one).map((m) => [m.method, m.dir, m.repeated, m.runs.map((r) => [r.dir, r.config.out, r.config.seed])]), [['zeroshot', 'o', false, [['o', 'o', 0]]]]);

  const repeated = newInvocation({ method: 'clap', runs: 2, seed: 3, out: 'r' }, false, false);
  assert.equal(repeated.layout, 'repeated runs');
  assert.deepEqual(planRuns(repeated)[0]!.runs.map((r) => [r.dir, r.config.out, r.config.seed]), [[join('r', 'run-3'), join('r', 'run-3'), 3], [join('r', 'run-4'), join('r', 'run-4'), 4]]);

  const compare = newInvocation({ runs: 2, out: 'c' }, false, false);
  assert.equal(compare.layout, 'comparison');
  assert.deepEqual(compare.partial, { syntheticPreset: 'benchmark', memorySize: 1000, runs: 2, out: 'c', methodOptions: { ranpac: { M: 2048 } } }, 'the record holds the keys given over the benchmark defaults');
  const plan = planRuns(compare);
  assert.deepEqual(plan.map((m) => [m.method, m.dir, m.repeated]), COMPARED_METHODS.map((m) => [m, join('c', m), true]));
  assert.deepEqual(plan[4]!.runs.map((r) => r.dir), [join('c', 'clap', 'run-0'), join('c', 'clap', 'run-1')]);
  assert.ok(plan.every((m) => m.runs.every((r) => r.config.memorySize === 1000 && r.config.method === m.method)));
});

test('a new invocation without --out gets a directory named after its method or the comparison', () => {
  assert.match(newInvocation({ method: 'clip-adapter' }, false, false).root, /^runs[/\\]clip-adapter-\d{8}-\d{6}$/);
  const compare = newInvocation({}, false, false);
  assert.match(compare.root, /^runs[/\\]compare-\d{8}-\d{6}$/);
  assert.equal(compare.partial['out'], compare.root);
  assert.throws(() => newInvocation({ data: '/some/features' }, true, false), /--full selects the full synthetic protocol/);
});

test("the no-argument benchmark's own method options: added for a method given none, never over the user's", () => {
  const M = { M: 2048 };
  assert.deepEqual(withBenchmarkMethodOptions(['ranpac'], false, undefined), { methodOptions: M, added: { ranpac: M } }, 'one run, no options');
  assert.deepEqual(withBenchmarkMethodOptions(['ranpac'], false, { M: 64 }), { methodOptions: { M: 64 }, added: {} }, "one run, the user's options");
  assert.deepEqual(withBenchmarkMethodOptions(['clap'], false, undefined), { methodOptions: undefined, added: {} }, 'a method without benchmark options');
  const list = ['zeroshot', 'ranpac', 'clap'];
  assert.deepEqual(withBenchmarkMethodOptions(list, true, undefined), { methodOptions: { ranpac: M }, added: { ranpac: M } }, 'comparison, no options');
  assert.deepEqual(withBenchmarkMethodOptions(list, true, { clap: { beta: 15 } }), { methodOptions: { clap: { beta: 15 }, ranpac: M }, added: { ranpac: M } }, 'keyed, ranpac absent');
  assert.deepEqual(withBenchmarkMethodOptions(list, true, { ranpac: { M: 64 } }), { methodOptions: { ranpac: { M: 64 } }, added: {} }, 'keyed, ranpac given');
  assert.deepEqual(withBenchmarkMethodOptions(list, true, { beta: 15 }), { methodOptions: { clap: { beta: 15 }, ranpac: M }, added: { ranpac: M } }, "flat options are clap's");
  assert.deepEqual(withBenchmarkMethodOptions(['ranpac'], true, { beta: 15 }), { methodOptions: { beta: 15 }, added: {} }, 'flat without clap: left for comparisonOptions to refuse');
  // Only the quick benchmark: neither --full nor a data directory gets them.
  assert.deepEqual(newInvocation({ method: 'ranpac' }, false, false).benchmarkOptions, { ranpac: M });
  assert.equal(newInvocation({ method: 'ranpac' }, true, false).benchmarkOptions, undefined);
  assert.equal(newInvocation({ method: 'ranpac', data: '/some/features' }, false, false).benchmarkOptions, undefined);
  assert.deepEqual(settingsOf(newInvocation({ method: 'ranpac', data: '/some/features' }, false, false).config).methodOptions, {});
});
