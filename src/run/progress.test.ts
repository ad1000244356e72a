import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitLine, formatSeconds, liveLine, parsePhaseLabel, ProgressBoard, progressStyle, taskLine, type LiveState } from './progress.js';

const state: LiveState = { method: 'clip-adapter', task: 3, tasks: 10, phase: 'finetune', done: 45, total: 120, info: 'loss 1.2345', runSeconds: 65, runEtaSeconds: 130 };

test('the live line fits the terminal: at most columns - 1 characters, the bar shrinking first', () => {
  for (const columns of [30, 40, 60, 80, 120, 200]) {
    const line = liveLine(state, columns);
    assert.ok(line.length <= columns - 1, `${columns}: ${line.length} ${line}`);
  }
  // 80 columns: the loss gives way to a bar; 120: both, with a bar of at most 20.
  assert.equal(liveLine(state, 80), 'clip-adapter task 3/10 finetune [######.........] 45/120 · run 1m05s, eta 2m10s');
  assert.equal(liveLine(state, 120), 'clip-adapter task 3/10 finetune [########............] 45/120 · run 1m05s, eta 2m10s · loss 1.2345');
  assert.equal(liveLine(state, 60), 'clip-adapter task 3/10 finetune 45/120 · eta 2m10s');
  assert.match(liveLine({ ...state, runEtaSeconds: null }, 100), /eta \?/);
});

test('finished tasks are one line each, phases folded in, cut on a terminal only', () => {
  const s = { task: 2, accuracies: [0.9, 0.8412, 0.8], eceDataset: 0.03123, seconds: { train: 8.14, memory: 0.01, finetune: 2, eval: 1.2, novelty: 0, total: 11.4 } };
  const full = taskLine('clap', s, 10);
  assert.equal(full, 'clap task 3/10: acc 84.71% (90.00 84.12 80.00), ECE 0.0312, 11.4s (train 8.1s, finetune 2.0s, eval 1.2s)');
  assert.equal(taskLine('clap', s, 10, 40), fitLine(full, 39));
  assert.equal(taskLine('clap', s, 10, 40).length, 39);
  assert.ok(taskLine('clap', s, 10, 40).endsWith('…'));
});

test('helpers: seconds, labels, styles', () => {
  assert.deepEqual([formatSeconds(3.21), formatSeconds(125), formatSeconds(7260), formatSeconds(null), formatSeconds(NaN)], ['3.2s', '2m05s', '2h01m', '?', '?']);
  assert.deepEqual(parsePhaseLabel('clap task 3/10 novelty'), { task: 3, tasks: 10, phase: 'novelty' });
  assert.deepEqual(parsePhaseLabel('clap task 1/2'), { task: 1, tasks: 2, phase: 'train' });
  assert.deepEqual([progressStyle('auto', { isTTY: true }), progressStyle('auto', {}), progressStyle('always', {}), progressStyle('never', { isTTY: true })], ['live', 'plain', 'live', 'off']);
});

function recorder(columns?: number) {
  const writes: string[] = [];
  return { writes, stream: { write: (s: string) => writes.push(s), isTTY: true, columns } };
}

test('on a terminal: one live line redrawn in place, replaced by the task line, with a run-level ETA', () => {
  let now = 0;
  const { writes, stream } = recorder(50);
  const board = new ProgressBoard(stream, 'live', () => now);
  const run = board.run('clap', 4);
  const bar = run.phases('clap task 1/4 train', 10);
  now = 1000;
  bar.tick(5, 'loss 2.0');
  bar.done();
  now = 10_000;
  run.taskDone({ task: 0, accuracies: [0.5], eceDataset: 0.1, seconds: { train: 10, total: 10 } });
  assert.ok(writes.every((w) => w.split('\n').every((l) => l.replace(/\r|\x1b\[K/g, '').length < 50)), 'every line fits in 50 columns');
  assert.ok(writes.slice(0, 3).every((w) => w.startsWith('\r')), 'live lines are redrawn in place');
  assert.match(writes.at(-2)!, /^\r\x1b\[K$/, 'the live line is erased before the task line');
  assert.equal(writes.at(-1), 'clap task 1/4: acc 50.00%, ECE 0.1000, 10.0s (tr…\n');
  now = 12_000;
  run.phases('clap task 2/4 train', 10);
  // One task took 10 s; 3 are left, 2 s of the next one are done: 28 s.
  assert.match(writes.at(-1)!, /run 12\.0s, eta 28\.0s/);
});

test('not a terminal: plain task lines only, never cut; off: nothing', () => {
  const { writes, stream } = recorder(20);
  const run = new ProgressBoard({ ...stream, isTTY: false }, 'plain').run('zeroshot', 2);
  run.phases('zeroshot task 1/2 eval', 3).tick(3);
  run.taskDone({ task: 0, accuracies: [0.25], eceDataset: 0.2, seconds: { eval: 0.5, total: 0.5 } });
  assert.deepEqual(writes, ['zeroshot task 1/2: acc 25.00%, ECE 0.2000, 0.5s (eval 0.5s)\n']);
  const off = recorder();
  const silent = new ProgressBoard(off.stream, 'off').run('clap', 2);
  silent.phases('clap task 1/2 train', 3).tick();
  silent.taskDone({ task: 0, accuracies: [1], eceDataset: 0, seconds: { total: 1 } });
  assert.deepEqual(off.writes, []);
});
