/**
 * glibc malloc settings under which freed multi-megabyte buffers are reused instead of unmapped
 * (see launcher.ts for the measurements). Environment variables, so they only act on a process
 * started with them: the launcher and the benchmarks start their children this way.
 */
export const MALLOC_TUNABLES: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 30),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 32 - 1),
};
