/**
 * Pure: the end-of-batch summary lines for stderr. File names and error messages in them go
 * through `neutralize()`: they did not come from the model.
 */
import type { ChalkInstance } from 'chalk';
import { neutralize } from '../output/guard.js';
import { formatUsd } from '../pricing.js';
import { formatCount } from './text.js';

export interface BatchStats {
  /** Images in the run (known once the list has been read to its end). */
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  notAttempted: number;
  /** In flight when Ctrl-C's grace period ended. */
  interrupted: number;
  promptTokens: number;
  completionTokens: number;
  /** Estimated price in USD of what succeeded. */
  cost: number;
  /** False once an answer came from a model whose price is unknown. */
  costKnown: boolean;
  elapsedMs: number;
  failures: { name: string; message: string }[];
  /** The first few images not attempted, for the summary. */
  notAttemptedNames: string[];
  stopReason: string | undefined;
}

export interface SummaryLine {
  text: string;
  /** Shown under --quiet too (failures and why the batch stopped). */
  important: boolean;
}

/** A batch's counters before its first image. */
export function emptyStats(): BatchStats {
  return {
    total: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    notAttempted: 0,
    interrupted: 0,
    promptTokens: 0,
    completionTokens: 0,
    cost: 0,
    costKnown: true,
    elapsedMs: 0,
    failures: [],
    notAttemptedNames: [],
    stopReason: undefined,
  };
}

export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m${String(sec).padStart(2, '0')}s`
    : `${m}m${String(sec).padStart(2, '0')}s`;
}

export function imagesPerSecond(done: number, ms: number): string {
  if (ms <= 0 || done === 0) return '0';
  const rate = (done * 1000) / ms;
  return rate >= 10 ? rate.toFixed(0) : rate.toFixed(1);
}

export function formatSummary(stats: BatchStats, chalk: ChalkInstance): SummaryLine[] {
  const lines: SummaryLine[] = [];
  const parts = [
    chalk.green(`${formatCount(stats.succeeded)} succeeded`),
    stats.failed > 0 ? chalk.red(`${formatCount(stats.failed)} failed`) : '0 failed',
    `${formatCount(stats.skipped)} skipped`,
    `${formatCount(stats.notAttempted + stats.interrupted)} not attempted`,
  ];
  const bad = stats.failed > 0 || stats.notAttempted + stats.interrupted > 0;
  lines.push({
    text: `summary: ${parts.join(' · ')} (of ${formatCount(stats.total)})`,
    important: bad,
  });
  const tokens = stats.promptTokens + stats.completionTokens;
  let usage = `tokens: ${formatCount(stats.promptTokens)} in · ${formatCount(stats.completionTokens)} out · ${formatCount(tokens)} total`;
  if (stats.cost > 0) usage += ` · cost ${stats.costKnown ? '~' : '≥ '}${formatUsd(stats.cost)}`;
  lines.push({ text: chalk.dim(usage), important: false });
  const done = stats.succeeded + stats.failed;
  lines.push({
    text: chalk.dim(
      `time: ${formatDuration(stats.elapsedMs)} · ${imagesPerSecond(done, stats.elapsedMs)} images/s`,
    ),
    important: false,
  });
  if (stats.stopReason) {
    lines.push({ text: chalk.yellow(`stopped: ${stats.stopReason}`), important: true });
  }
  if (stats.failures.length > 0) {
    lines.push({
      text: chalk.red(`failed (${formatCount(stats.failures.length)}):`),
      important: true,
    });
    for (const failure of stats.failures)
      lines.push({ text: `  ${neutralize(failure.message)}`, important: true });
  }
  const left = stats.notAttempted + stats.interrupted;
  if (left > 0) {
    const names = stats.notAttemptedNames;
    const more = stats.notAttempted - names.length;
    let text = `not attempted (${formatCount(left)})`;
    if (names.length > 0)
      text += `: ${names.map(neutralize).join(', ')}${more > 0 ? `, and ${formatCount(more)} more` : ''}`;
    if (stats.interrupted > 0)
      text += `${names.length > 0 ? ';' : ':'} ${formatCount(stats.interrupted)} stopped in flight`;
    lines.push({ text, important: true });
  }
  return lines;
}
