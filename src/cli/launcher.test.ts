/** The executable re-runs itself with the malloc settings and passes output and exit codes through. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const launcher = fileURLToPath(new URL('./launcher.js', import.meta.url));

test('the launcher passes stdout and the exit code of the command through', () => {
  const env = { ...process.env };
  delete env['CLAP4CLIP_NO_REEXEC'];
  delete env['MALLOC_MMAP_THRESHOLD_'];
  const version = spawnSync(process.execPath, [launcher, '--version'], { encoding: 'utf8', env });
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const unknown = spawnSync(process.execPath, [launcher, 'frobnicate'], { encoding: 'utf8', env });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"; the commands are run, /);
});

test('the built command-line entry is executable (npx clap4clip runs the file itself)', async () => {
  const { statSync } = await import('node:fs');
  assert.ok((statSync(launcher).mode & 0o111) !== 0, `${launcher} is not executable`);
});
