/**
 * One run directory, one writer: two real `clap4clip run` processes on one --out (exactly one
 * proceeds, the other is refused at once naming the folder and the holder's pid; the directory
 * verifies and resumes afterwards), a stale lock taken over, a live one refused for a new run, a
 * --resume and a run inside a locked comparison; and a library save() into a busy folder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { createClassifier } from '../api/classifier.js';
import { recordingIO } from '../cli/commands/io.js';
import { runCommand } from '../cli/commands/run.js';
import { LOCK_FILE } from '../util/dirLock.js';
import { FolderBusyError } from '../util/errors.js';
import { readLatestCheckpoint } from './checkpoint.js';
import { CHECKPOINT_DIR } from './runDirectory.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-runlock-'));
  dirs.push(d);
  return d;
}

interface Child {
  pid: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Child> {
  const child = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ pid: child.pid!, code, stdout, stderr })));
}

/** A few seconds of training (5 tasks), so two started together overlap. */
const RUN = ['--synthetic-preset', 'tiny', '--increment', '2', '--method', 'clap', '--epochs', '40', '--finetune-epochs', '2', '--samples', '3'];
const ZEROSHOT = ['--synthetic-preset', 'tiny', '--increment', '2', '--method', 'zeroshot'];

const lockRecord = (pid: number) => JSON.stringify({ pid, hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'clap4clip run', token: 'feedfacefeedface' }) + '\n';
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('two `run` processes on one --out: exactly one proceeds, the other is refused naming the folder and its pid; the directory verifies and resumes', async () => {
  const dir = join(await tempDir(), 'run');
  const [a, b] = await Promise.all([cli([...RUN, '--out', dir]), cli([...RUN, '--out', dir])]);
  const winners = [a, b].filter((c) => c.code === 0);
  assert.equal(winners.length, 1, `exit codes ${a.code}, ${b.code}\n${a.stderr}\n${b.stderr}`);
  const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
  assert.notEqual(loser.code, 0);
  assert.match(loser.stderr, new RegExp(`^clap4clip: ${escape(dir)}: is in use by another clap4clip process \\(pid ${winner.pid} on this host, since .*run.*\\); wait for it to finish`, 'm'));
  assert.doesNotMatch(loser.stderr, /ENOENT|atomic write failed|\n\s+at /);
  assert.match(winner.stdout, /clap: average/);

  // The winner's directory is whole: one checkpoint (the last task's), readable; no lock, no leftovers.
  const checkpoint = await readLatestCheckpoint(dir);
  assert.equal(checkpoint!.state.completedTask, 4);
  assert.deepEqual((await readdir(join(dir, CHECKPOINT_DIR))).filter((n) => n !== 'latest').length, 1);
  assert.ok(!(await readdir(dir)).includes(LOCK_FILE));
  const resumed = await cli(['--resume', dir]);
  assert.equal(resumed.code, 0, resumed.stderr);
});

test('a stale lock (its process died) is taken over by the next run, and released at the end', async () => {
  const dir = join(await tempDir(), 'run');
  await mkdir(dir);
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('close', r));
  await writeFile(join(dir, LOCK_FILE), lockRecord(dead.pid!));
  assert.equal(await runCommand([...ZEROSHOT, '--out', dir], recordingIO()), 0);
  assert.ok(!(await readdir(dir)).includes(LOCK_FILE));
  assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, 4);
});

test('a live lock refuses a new run, a --resume, and a run inside a locked comparison, before anything is written', async () => {
  const root = await tempDir();
  const done = join(root, 'done');
  assert.equal(await runCommand([...ZEROSHOT, '--out', done], recordingIO()), 0);
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    const busy = async (args: string[], folder: string): Promise<void> => {
      await assert.rejects(runCommand(args, recordingIO()), (e: unknown) => {
        assert.ok(e instanceof FolderBusyError, String(e));
        assert.equal(e.file, folder);
        assert.equal(e.holder?.pid, sleeper.pid);
        return true;
      });
    };
    const before = (await readFile(join(done, 'results.json'), 'utf8'));
    await writeFile(join(done, LOCK_FILE), lockRecord(sleeper.pid!));
    await busy(['--resume', done], done);
    await busy([...ZEROSHOT, '--out', done], done);
    assert.equal(await readFile(join(done, 'results.json'), 'utf8'), before, 'nothing was touched');

    const compare = join(root, 'compare');
    await mkdir(compare);
    await writeFile(join(compare, LOCK_FILE), lockRecord(sleeper.pid!));
    await busy([...ZEROSHOT, '--out', join(compare, 'zeroshot')], compare);
    assert.deepEqual(await readdir(compare), [LOCK_FILE], 'the refused run left nothing behind');
    // The other way round: a run directory in use refuses a comparison (or --runs N) above it.
    await rm(join(compare, LOCK_FILE));
    await mkdir(join(compare, 'clap'));
    await writeFile(join(compare, 'clap', LOCK_FILE), lockRecord(sleeper.pid!));
    await busy(['--synthetic-preset', 'tiny', '--increment', '2', '--out', compare], join(compare, 'clap'));
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('library save() into a folder another writer holds is refused; into a file, named', async () => {
  const clf = await createClassifier({ dim: 8, seed: 0 });
  const root = await tempDir();
  const folder = join(root, 'saved');
  // One classifier's calls run one after the other; two classifiers saving into one folder at once do not.
  const other = await createClassifier({ dim: 8, seed: 1 });
  const outcomes = await Promise.allSettled([clf.save(folder), other.save(folder)]);
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  const refused = outcomes.find((o) => o.status === 'rejected')!.reason as unknown;
  assert.ok(refused instanceof FolderBusyError && refused.message.startsWith(`${folder}: is already in use by this process`), String(refused));
  await clf.save(folder); // and once the first is done, the folder is free again
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    await writeFile(join(folder, LOCK_FILE), lockRecord(sleeper.pid!));
    await assert.rejects(clf.save(folder), (e: unknown) => e instanceof FolderBusyError && e.message.startsWith(`${folder}: is in use by another clap4clip process (pid ${sleeper.pid} on this host`));
  } finally {
    sleeper.kill('SIGKILL');
  }
  await writeFile(join(root, 'plain.txt'), 'x');
  await assert.rejects(clf.save(join(root, 'plain.txt')), /plain\.txt: is a file, not a folder/);
});
