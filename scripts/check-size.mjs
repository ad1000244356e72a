// Fails when a source file grows past the line budget without saying why (tinygrad's sz.py idea).
// A file may exceed it when one of its first 10 lines holds "size-budget:" followed by a reason.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const LIMIT = 420; // "about 400"
const roots = ['src', 'bench', 'examples'];
const offenders = [];
let engineLines = 0;

function walk(dir) {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) {
      const lines = readFileSync(path, 'utf8').split('\n');
      if (path.startsWith(join('src', 'engine'))) engineLines += lines.length;
      if (lines.length > LIMIT && !lines.slice(0, 10).some((l) => l.includes('size-budget:'))) offenders.push(`${path}: ${lines.length} lines`);
    }
  }
}
roots.forEach(walk);
if (offenders.length) {
  console.error(`Files over ${LIMIT} lines without a "size-budget:" reason:\n  ${offenders.join('\n  ')}`);
  process.exit(1);
}
console.log(`size check: ok (engine ${engineLines} lines)`);
