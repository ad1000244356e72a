import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

// The compiled example: dist/tests/example.test.js -> dist/examples/incremental.js.
const example = fileURLToPath(new URL('../examples/incremental.js', import.meta.url));

test('examples/incremental.ts runs and prints predictions with their uncertainty', async () => {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [example], { timeout: 240_000 });
  assert.equal(stderr, '');
  const lines = stdout.split('\n');
  assert.match(stdout, /^task 1: learned class_000 \.\. class_009 from 600 images: 95 iterations, loss \d+\.\d\d/m);
  assert.match(stdout, /^task 2: learned class_010 \.\. class_019 from 600 images: 190 iterations, loss \d+\.\d\d, finetuning 76 iterations/m);
  assert.match(stdout, /^novelty threshold -?\d+\.\d: 95\.0 % of 300 held-out images of learned classes lie below it$/m);
  // calibrate(): one temperature fitted on the 300 held-out images, lowering their NLL.
  const fit = /^temperature T = (\d+\.\d\d) fitted on 300 held-out images \(NLL (\d+\.\d+) -> (\d+\.\d+)\)$/m.exec(stdout);
  assert.ok(fit !== null, 'temperature line');
  assert.ok(Number(fit[1]) > 0 && Number(fit[3]) <= Number(fit[2]), fit[0]);

  // The table: a header with the uncertainty columns, then one row per input.
  const header = lines.findIndex((l) => l.startsWith('input'));
  assert.ok(header > 0, 'table header');
  assert.deepEqual(lines[header]!.split(/\s+/), ['input', 'truth', 'prediction', 'p(raw)', 'p(cal)', 'runner-up', 'p(cal)', 'entropy', 'MC-var', 'novelty', 'novel?']);
  const rows = lines.slice(header + 1).filter((l) => /^(learned|unseen) #\d+ /.test(l));
  assert.equal(rows.length, 10);
  for (const row of rows) {
    const cells = row.split(/\s+/);
    assert.equal(cells.length, 12, row);
    const [, , truth, predicted, pRaw, p1, second, p2, entropy, mcVar, novelty, novel] = cells;
    assert.ok(Number(pRaw) > 0 && Number(pRaw) <= 1, row);
    assert.match(truth!, /^class_0\d\d$/);
    assert.match(predicted!, /^class_0[01]\d$/, 'predictions are learned classes');
    assert.match(second!, /^class_0[01]\d$/);
    assert.ok(Number(p1) >= Number(p2) && Number(p1) <= 1, row);
    assert.ok(Number(entropy) >= 0 && Number(mcVar) >= 0 && Number.isFinite(Number(novelty)), row);
    assert.match(novel!, /^(yes|no)$/);
  }
  // Calibration lowers the confidence of the predictions of unseen classes (raw: nearly all p = 1).
  const conf = /^unseen classes: +raw mean p (\d\.\d+), .*; calibrated mean p (\d\.\d+),/m.exec(stdout);
  assert.ok(conf !== null && Number(conf[2]) < Number(conf[1]), 'calibrated confidence on unseen classes');
  const accuracy = Number(/accuracy on 300 held-out images of the 20 learned classes: (\d\.\d+)/.exec(stdout)?.[1]);
  assert.ok(accuracy > 0.7, `accuracy ${accuracy}`);
  const flagged = /flagged novel: (\d+\.\d) % of held-out learned-class images, (\d+\.\d) % of 300 images of 10 unseen classes/.exec(stdout);
  assert.ok(flagged !== null, 'novelty summary');
  assert.ok(Number(flagged[2]) > Number(flagged[1]), 'unseen classes are flagged more often than learned ones');
});
