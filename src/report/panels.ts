/**
 * The report's tables beyond the summary: the configuration and provenance of each method's runs
 * (what was run, by which version of the code, when) and the post-hoc calibration per step
 * (temperature, ECE, NLL and Brier score before and after). Values from files are escaped.
 */
import type { ReportResults } from './loadResults.js';

export interface PanelRun {
  dir: string;
  results: ReportResults;
}

export interface PanelGroup {
  method: string;
  data: string;
  runs: PanelRun[];
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const show = (v: unknown): string => (v === undefined ? '—' : v === null ? 'default' : typeof v === 'string' ? v : JSON.stringify(v));
const distinct = (xs: readonly string[]): string => [...new Set(xs)].join(', ');

/** One row of the configuration panel: a label and how to read it from one run. */
interface ConfigRow {
  label: string;
  get(r: ReportResults): string;
}

const cfg = (key: string) => (r: ReportResults): string => show(r.config[key]);
const schedule = (phase: 'train' | 'finetune', what: 'epochs' | 'lr') => (r: ReportResults): string => {
  if (r.schedules === null) return show(r.config[phase === 'train' ? what : `finetune${what === 'lr' ? 'Lr' : 'Epochs'}`]);
  const s = r.schedules[phase];
  return s === null ? 'none' : what === 'epochs' ? String(s.epochs) : String(s.lr);
};

const CONFIG_ROWS: ConfigRow[] = [
  { label: 'Seeds', get: (r) => (r.seed === null ? '?' : String(r.seed)) },
  { label: 'Tasks', get: (r) => `${r.tasks.length} (${r.tasks[0] ? r.tasks[0].classEnd - r.tasks[0].classStart : 0} classes first)` },
  { label: 'Epochs (task / finetuning)', get: (r) => `${schedule('train', 'epochs')(r)} / ${schedule('finetune', 'epochs')(r)}` },
  { label: 'Learning rate (task / finetuning)', get: (r) => `${schedule('train', 'lr')(r)} / ${schedule('finetune', 'lr')(r)}` },
  { label: 'Batch size', get: cfg('batchSize') },
  { label: 'Memory', get: (r) => (r.config['memorySize'] === undefined ? '—' : `${show(r.config['memorySize'])} (${show(r.config['memoryKind'])})`) },
  { label: 'Exemplar selector', get: cfg('selector') },
  { label: 'Monte-Carlo samples T', get: cfg('samples') },
  { label: 'Eval batching', get: (r) => r.evalBatching ?? '—' },
  {
    label: 'Calibration',
    get: (r) => (r.calibration === null ? 'not recorded' : r.calibration.source === 'holdout' ? `held-out, ${r.calibration.perClass} per class (${r.calibration.heldOut.reduce((a, b) => a + b, 0)} samples)` : r.calibration.source),
  },
  { label: 'Method options', get: (r) => (r.config['methodOptions'] === undefined ? '—' : JSON.stringify(r.config['methodOptions'])) },
  { label: 'clap4clip version', get: (r) => r.provenance?.version ?? 'not recorded' },
  { label: 'Commit', get: (r) => (r.provenance ? (r.provenance.commit?.slice(0, 12) ?? 'not a git checkout') : 'not recorded') },
  { label: 'Node.js', get: (r) => r.provenance?.node ?? '—' },
  { label: 'onnxruntime threads', get: (r) => (r.provenance?.onnxruntimeThreads === null || r.provenance?.onnxruntimeThreads === undefined ? 'not recorded' : String(r.provenance.onnxruntimeThreads)) },
  { label: 'Date', get: (r) => (r.createdAt === null ? 'not recorded' : r.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')) },
];

/** Settings as rows, one column per method group (values that differ between a group's runs are listed together). */
export function configPanel(groups: readonly PanelGroup[]): string {
  const head = ['Setting', ...groups.map((g) => g.method)].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = CONFIG_ROWS.map((row) => `<tr><th scope="row">${escapeHtml(row.label)}</th>${groups.map((g) => `<td>${escapeHtml(distinct(g.runs.map((r) => row.get(r.results))))}</td>`).join('')}</tr>`);
  return `<div class="scroll"><table class="config"><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

const f3 = (x: number): string => x.toFixed(3);
const f4 = (x: number): string => x.toFixed(4);

/** Per run: a table of every calibrated step (T, what it was fitted on, ECE both ways, NLL, Brier, raw → calibrated). */
export function calibrationSection(runs: readonly PanelRun[], labels: readonly string[]): string {
  const parts = runs.flatMap((run, i) => {
    const cal = run.results.calibration;
    if (cal === null || cal.steps.length === 0) return [];
    const head = ['After task', 'T', 'Fitted on', 'ECE raw', 'ECE calibrated', 'ECE batch mean raw', 'calibrated', 'NLL raw', 'calibrated', 'Brier raw', 'calibrated']
      .map((h) => `<th>${escapeHtml(h)}</th>`).join('');
    const rows = cal.steps.map((s) => {
      const cells = [String(s.step + 1), s.temperature.toPrecision(3), String(s.samples), f4(s.raw.eceDataset), f4(s.calibrated.eceDataset), f4(s.raw.ecePerBatchMean), f4(s.calibrated.ecePerBatchMean), f3(s.raw.nll), f3(s.calibrated.nll), f3(s.raw.brier), f3(s.calibrated.brier)];
      return `<tr>${cells.map((c) => `<td class="num">${c}</td>`).join('')}</tr>`;
    });
    const source = cal.source === 'holdout' ? `${cal.perClass} held-out training samples per class of every seen task` : `the ${cal.source}`;
    return [`<details open><summary>${escapeHtml(labels[i]!)}: T fitted on ${escapeHtml(source)}</summary><div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div></details>`];
  });
  if (parts.length === 0) return '';
  return `<section id="calibration"><h2>Calibration</h2><p class="note">Temperature scaling (Guo et al. 2017): one T &gt; 0 per step divides the logits, fitted by minimum negative log-likelihood on samples the model was not trained on; accuracy is unchanged. ECE over the whole test set and as the mean over test batches, NLL (nats) and Brier score of the test predictions, before (raw) and after (calibrated).</p>${parts.join('\n')}</section>`;
}
