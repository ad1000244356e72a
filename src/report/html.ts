/**
 * The self-contained report page: inline CSS and pre-rendered inline SVG charts, no scripts
 * and no external URLs (a Content-Security-Policy forbids both, so a crafted results.json
 * cannot make the page run code or phone home). Every text taken from a file is escaped.
 */
import { Clap4ClipError } from '../util/errors.js';
import { runLabels, type RenderedChart } from './charts.js';
import { renderCharts } from './chartList.js';
import { meanStd, type ReportResults } from './loadResults.js';
import { calibrationSection, configPanel, escapeHtml } from './panels.js';

export { escapeHtml } from './panels.js';

export interface ReportRun {
  dir: string;
  results: ReportResults;
}

/** Runs of the same method on the same data: the unit of the mean ± std table. */
export interface RunGroup {
  method: string;
  data: string;
  runs: ReportRun[];
}

export function groupRuns(runs: readonly ReportRun[]): RunGroup[] {
  const groups = new Map<string, RunGroup>();
  for (const run of runs) {
    const key = JSON.stringify([run.results.method, run.results.data]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { method: run.results.method, data: run.results.data, runs: [] }));
    g.runs.push(run);
  }
  return [...groups.values()];
}

/** A summary metric: how to read it from one run and how to print it. */
interface Metric {
  label: string;
  get(r: ReportResults): number | null;
  format(x: number): string;
}

const pct = (x: number): string => (100 * x).toFixed(2);
/** The calibration of the final step, when it was recorded. */
const finalCalibration = (r: ReportResults) => r.calibration?.steps.find((c) => c.step === r.ece.dataset.length - 1) ?? null;
const METRICS: Metric[] = [
  { label: 'Avg. acc. (%)', get: (r) => r.averageAccuracy, format: pct },
  { label: 'Last acc. (%)', get: (r) => r.lastAccuracy, format: pct },
  { label: 'BWT (pts)', get: (r) => r.backwardTransfer, format: pct },
  { label: 'Forgetting (pts)', get: (r) => r.forgetting, format: pct },
  { label: 'ECE raw', get: (r) => r.ece.dataset.at(-1)!, format: (x) => x.toFixed(4) },
  { label: 'ECE calibrated', get: (r) => finalCalibration(r)?.calibrated.eceDataset ?? null, format: (x) => x.toFixed(4) },
  { label: 'T', get: (r) => finalCalibration(r)?.temperature ?? null, format: (x) => x.toPrecision(3) },
  { label: 'ECE batch mean raw', get: (r) => r.ece.perBatchMean.at(-1)!, format: (x) => x.toFixed(4) },
  { label: 'ECE batch mean calibrated', get: (r) => finalCalibration(r)?.calibrated.ecePerBatchMean ?? null, format: (x) => x.toFixed(4) },
  // Exemplars after the last task; 0 for an exemplar-free method (SimpleCIL, RanPAC, zero-shot).
  { label: 'Memory (exemplars)', get: (r) => r.memorySizes.at(-1) ?? null, format: (x) => x.toFixed(0) },
  { label: 'Time (s)', get: (r) => r.timing.reduce((a, b) => a + b, 0), format: (x) => x.toFixed(1) },
];

/**
 * "mean ± std" over the values that exist (null metrics, e.g. BWT of a one-task run, are left
 * out); the std is the sample std (n - 1) and "—" for a single value.
 */
export function formatMeanStd(values: readonly (number | null)[], format: (x: number) => string): string {
  const xs = values.filter((v): v is number => v !== null);
  if (xs.length === 0) return '—';
  const { mean, std } = meanStd(xs);
  return std === null ? format(mean) : `${format(mean)} ± ${format(std)}`;
}

/** Config keys (other than seed and output directory) whose values differ within a group. */
function differingConfigKeys(group: RunGroup): string[] {
  const ignore = new Set(['seed', 'out']);
  const keys = new Set(group.runs.flatMap((r) => Object.keys(r.results.config)));
  const first = group.runs[0]!.results.config;
  return [...keys].filter((k) => !ignore.has(k) && group.runs.some((r) => JSON.stringify(r.results.config[k]) !== JSON.stringify(first[k]))).sort();
}

function td(text: string, cls?: string): string {
  return cls ? `<td class="${cls}">${escapeHtml(text)}</td>` : `<td>${escapeHtml(text)}</td>`;
}

function summaryTable(groups: readonly RunGroup[]): string {
  const head = ['Method', 'Data', 'Runs', 'Seeds', ...METRICS.map((m) => m.label)].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = groups.map((g) => {
    const seeds = g.runs.map((r) => (r.results.seed === null ? '?' : String(r.results.seed))).join(', ');
    const differ = differingConfigKeys(g);
    const notes = [...new Set(g.runs.flatMap((r) => r.results.notes))].map((n) => `<div class="note">${escapeHtml(n)}</div>`).join('');
    const note = (differ.length > 0 ? `<div class="warn">configs differ in: ${escapeHtml(differ.join(', '))}</div>` : '') + notes;
    const cells = METRICS.map((m) => td(formatMeanStd(g.runs.map((r) => m.get(r.results)), m.format), 'num'));
    return `<tr><td><strong>${escapeHtml(g.method)}</strong>${note}</td>${td(g.data)}${td(String(g.runs.length), 'num')}${td(seeds)}${cells.join('')}</tr>`;
  });
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

/** Per group and score: the mean over steps of each run, then mean ± std over runs. */
function noveltyTable(groups: readonly RunGroup[]): string | null {
  const rows: string[] = [];
  for (const g of groups) {
    const scores = [...new Set(g.runs.flatMap((r) => r.results.novelty.map((n) => n.score)))];
    for (const score of scores) {
      const perRun = (key: 'auroc' | 'aupr' | 'fpr95'): (number | null)[] =>
        g.runs.map((r) => {
          const xs = r.results.novelty.filter((n) => n.score === score).map((n) => n[key]);
          return xs.length === 0 ? null : meanStd(xs).mean;
        });
      const n = perRun('auroc').filter((x) => x !== null).length;
      const cells = (['auroc', 'aupr', 'fpr95'] as const).map((k) => td(formatMeanStd(perRun(k), pct), 'num'));
      rows.push(`<tr>${td(g.method)}${td(g.data)}${td(score)}${td(String(n), 'num')}${cells.join('')}</tr>`);
    }
  }
  if (rows.length === 0) return null;
  const head = ['Method', 'Data', 'Score', 'Runs', 'AUROC (%)', 'AUPR (%)', 'FPR at 95% TPR (%)'].map((h) => `<th>${h}</th>`).join('');
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

function runsTable(runs: readonly ReportRun[], labels: readonly string[]): string {
  const head = ['Run', 'Directory', 'Method', 'Data', 'Seed', 'Tasks', 'Eval batching', 'Synthetic'].map((h) => `<th>${h}</th>`).join('');
  const rows = runs.map((run, i) => {
    const r = run.results;
    const tasks = `${r.accuracyMatrix.length} of ${r.tasks.length}`;
    const cells = [labels[i]!, run.dir, r.method, r.data, r.seed === null ? '?' : String(r.seed), tasks, r.evalBatching ?? '?', r.synthetic ? 'yes' : 'no'];
    return `<tr>${cells.map((c) => td(c)).join('')}</tr>`;
  });
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

/** Tables of the repeated-runs summaries some results.json files carry (`runs` key). */
function repeatedRunsSection(runs: readonly ReportRun[], labels: readonly string[]): string {
  const parts = runs.flatMap((run, i) => {
    if (run.results.repeatedRuns.length === 0) return [];
    const rows = run.results.repeatedRuns.map((e) => `<tr>${td(e.metric)}${td(String(e.mean), 'num')}${td(e.std === null ? '—' : String(e.std), 'num')}</tr>`);
    return [`<h3>${escapeHtml(labels[i]!)}</h3><div class="scroll"><table><thead><tr><th>Metric</th><th>Mean</th><th>Std</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`];
  });
  if (parts.length === 0) return '';
  return `<section><h2>Repeated-runs summaries recorded by the runs</h2><p class="note">As written in results.json by <code>--runs N</code>, unchanged.</p>${parts.join('\n')}</section>`;
}

function syntheticBanner(runs: readonly ReportRun[], labels: readonly string[]): string {
  const synthetic = runs.map((r, i) => (r.results.synthetic ? labels[i]! : null)).filter((l): l is string => l !== null);
  if (synthetic.length === 0) return '';
  const which = synthetic.length === runs.length ? 'All runs in this report use' : `${synthetic.length} of ${runs.length} runs (${synthetic.map(escapeHtml).join('; ')}) use`;
  return `<div class="banner" role="alert"><strong>Synthetic data.</strong> ${which} the built-in synthetic “CLIP-like” features, not features of real images from CLIP. The numbers show how the methods behave on that generated world; they are not CLIP benchmark results.</div>`;
}

/** A chart with one drawing per layout; the CSS shows the one for the screen's width. */
function figure(chart: RenderedChart): string {
  const svgs = chart.svgs.map((s) => `<div class="svg layout-${s.layout.name}" data-width="${s.layout.width}">${s.svg}</div>`).join('');
  return `<figure class="chart" id="chart-${chart.kind}" data-chart="${chart.kind}"><h3>${escapeHtml(chart.title)}</h3>${svgs}<figcaption>${escapeHtml(chart.caption)}</figcaption></figure>`;
}

const CSS = `
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d232b; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 10px; border-bottom: 1px solid #d8dde3; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 8px; }
.meta, .note { color: #566070; font-size: 13px; }
.banner { margin: 16px 0; padding: 12px 16px; background: #fff4ce; border: 1px solid #e0b100; border-left: 6px solid #e0b100; border-radius: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; font-size: 13px; margin: 6px 0; }
th, td { padding: 6px 9px; border-bottom: 1px solid #e3e7ec; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { color: #a15c00; font-size: 12px; }
figure.chart { background: #fff; margin: 18px 0; padding: 16px; border: 1px solid #e3e7ec; border-radius: 6px; }
figure.chart .svg { overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
.layout-narrow { display: none; }
@media (max-width: 1000px) { .layout-wide { display: none; } .layout-narrow { display: block; } main { padding: 16px 12px 40px; } figure.chart { padding: 10px; } th, td { padding: 5px 6px; } table { font-size: 12px; } }
table.config th[scope="row"] { background: #f7f8fa; font-weight: 500; white-space: nowrap; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; font-size: 14px; }
figcaption { color: #3c4654; font-size: 13px; margin-top: 8px; max-width: 90ch; }
code { font-size: 12px; }
`;

/** Renders the whole report page for the given runs (at least one). */
export async function renderReport(runs: readonly ReportRun[]): Promise<string> {
  if (runs.length === 0) throw new Clap4ClipError('report: no runs to report on');
  const labels = runLabels(runs);
  const groups = groupRuns(runs);
  const charts = await renderCharts(runs.map((r, i) => ({ label: labels[i]!, results: r.results })));
  const novelty = noveltyTable(groups);
  const methods = [...new Set(runs.map((r) => r.results.method))];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>clap4clip report: ${escapeHtml(methods.join(', '))}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>CLAP4CLIP continual-learning report</h1>
<p class="meta">${runs.length} run${runs.length === 1 ? '' : 's'} of ${methods.map(escapeHtml).join(', ')} · class-incremental, accuracies on all classes seen so far</p>
${syntheticBanner(runs, labels)}
<section>
<h2>Summary</h2>
<p class="note">Mean ± standard deviation (sample, n − 1) over the runs of each method on each dataset (the mean alone for a single run). Average accuracy is the mean of acc_t over steps, last accuracy acc_t after the final task; backward transfer and forgetting are in percentage points (forgetting: mean drop from the best earlier accuracy on each old task). ECE (15 bins) is that of the final step over the whole test set and as the mean over test batches, raw and after temperature scaling with the fitted T (“—”: not recorded).</p>
${summaryTable(groups)}
${novelty === null ? '' : `<h3>Novel-data detection</h3><p class="note">Mean over steps per run, then mean ± std over runs; known classes are the positives.</p>${novelty}`}
</section>
<section id="configuration">
<h2>Configuration and provenance</h2>
<p class="note">What each method ran with (the SGD schedule as run: the config's overrides over the method's own), and which version of clap4clip produced the results, when.</p>
${configPanel(groups)}
</section>
<section>
<h2>Charts</h2>
${charts.map(figure).join('\n')}
</section>
${calibrationSection(runs, labels)}
${repeatedRunsSection(runs, labels)}
<section>
<h2>Runs</h2>
${runsTable(runs, labels)}
</section>
</main>
</body>
</html>
`;
}
