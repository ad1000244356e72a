/**
 * report.html of an invocation: in its directory, over its runs. A failure is returned, never
 * thrown: the results are complete and `clap4clip report` can write the report later.
 */
import type { Invocation, MethodRuns } from './plan.js';

export type ReportOutcome = { file: string } | { error: Error };

export async function writeInvocationReport(inv: Invocation, plan: readonly MethodRuns[]): Promise<ReportOutcome> {
  try {
    // Lazy: the report pulls in vega, which only this step needs.
    const { writeReport } = await import('../../report/writeReport.js');
    const { file } = inv.layout === 'comparison' ? await writeReport(plan.map((m) => m.dir), inv.root) : await writeReport([inv.root]);
    return { file };
  } catch (err) {
    return { error: err instanceof Error ? err : new Error(String(err)) };
  }
}
