/**
 * The lifecycle of one `clap4clip run` invocation, apart from its command line: what to run
 * (`request.ts`, `plan.ts`), its directories (`directories.ts`, `record.ts`), the runs
 * (`invoke.ts`, `execute.ts`, `startMethod.ts`) and what they write above the runs
 * (`comparison.ts`, `report.ts`).
 */
export { loadRunData } from './data.js';
export {
  COMPARED_METHODS, COMPARISON_OPTIONS_METHOD, planRuns, resolveInvocationConfig, settingsOf,
  type ComparisonConfig, type Invocation, type InvocationConfig, type InvocationLayout, type MethodConfig, type MethodRuns, type PlannedRun, type RecordedInvocation,
} from './plan.js';
export { newInvocation, QUICK_BENCHMARK, QUICK_BENCHMARK_METHOD_OPTIONS, resumedInvocation, withBenchmarkMethodOptions } from './request.js';
export { INVOCATION_FILE, readInvocation, writeInvocation } from './record.js';
export { checkDirectories, holdsOnlyLeftovers, prepareInvocation, removeStaleRuns } from './directories.js';
export { startMethod, type StartedMethod } from './startMethod.js';
export { executeRun, type ExecuteOptions } from './execute.js';
export { runInvocation, startFirstRuns, type FirstRun, type InvocationHooks, type InvocationOptions, type InvocationOutcome } from './invoke.js';
export { COMPARISON_FILE, writeComparison } from './comparison.js';
export { writeInvocationReport, type ReportOutcome } from './report.js';
