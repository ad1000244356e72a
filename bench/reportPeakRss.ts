// Preloaded into a benchmark child (`node --import`): prints the process's peak resident memory.
process.on('exit', () => {
  process.stderr.write(`peak-rss-mb=${(process.resourceUsage().maxRSS / 1024).toFixed(1)}\n`);
});
