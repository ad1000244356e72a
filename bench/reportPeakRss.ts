// Preloaded into a benchmark child (`node --import`): prints the process's peak resident memory
// and its CPU seconds (user + system, all threads: on a shared machine the figure that
// time-slicing does not inflate).
import { peakRssMB } from './peakRss.js';

process.on('exit', () => {
  const u = process.resourceUsage();
  process.stderr.write(`peak-rss-mb=${peakRssMB().toFixed(1)} cpu-seconds=${((u.userCPUTime + u.systemCPUTime) / 1e6).toFixed(2)}\n`);
});
