import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RunResults } from '../../run/results.js';
import { recordingIO } from './io.js';
import { runCommand } from './run.js';
import { comparisonTable } from './runPrint.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('the comparison table: raw and calibrated ECE with T side by side, and optional columns left out to fit the width', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clap4clip-table-'));
  dirs.push(dir);
  const args = ['--synthetic-preset', 'tiny', '--increment', '5', '--epochs', '1', '--samples', '2', '--methods', 'zeroshot,clap', '--out', dir, '--progress', 'never'];
  assert.equal(await runCommand(args, recordingIO()), 0);
  const results = await Promise.all(['zeroshot', 'clap'].map(async (m) => JSON.parse(await readFile(join(dir, m, 'results.json'), 'utf8')) as RunResults));

  const wide = comparisonTable(results).split('\n');
  const head = wide[0]!.trim().split(/\s{2,}/);
  assert.deepEqual(head, ['method', 'avg acc', 'last acc', 'BWT', 'forget', 'ECE', 'ECE/batch', 'ECE cal', 'T', 'AUROC', 'memory', 'time']);
  const clapRow = wide[2]!.trim().split(/\s+/);
  const last = results[1]!.calibration.steps.at(-1)!;
  assert.equal(clapRow[head.indexOf('ECE')], results[1]!.ece.dataset.at(-1)!.toFixed(4));
  assert.equal(clapRow[head.indexOf('ECE cal')], last.calibrated.eceDataset.toFixed(4));
  assert.equal(clapRow[head.indexOf('T')], last.temperature.toPrecision(3));

  for (const columns of [100, 80, 72]) {
    const narrow = comparisonTable(results, columns).split('\n');
    for (const l of narrow) assert.ok(l.length <= columns, `${columns} columns: ${l.length} characters: ${l}`);
    assert.match(narrow[0]!, /  ECE  .*ECE cal  /, `${columns} columns: raw and calibrated ECE are both kept`);
  }
  assert.doesNotMatch(comparisonTable(results, 80).split('\n')[0]!, /ECE\/batch/, 'the per-batch ECE goes first');
});
