// Marks the command-line entry executable after a build: tsc writes files without the exec bit,
// and `npx clap4clip` in a fresh clone runs the file itself.
import { chmodSync } from 'node:fs';

chmodSync(new URL('../dist/src/cli/launcher.js', import.meta.url), 0o755);
