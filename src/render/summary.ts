/**
 * Pure: the end-of-batch summary lines for stderr.
 */
import type { Usage } from '../api/types.js';
import { formatUsd, type Cost } from '../pricing.js';
import type { Line } from '../ui/reporter.js';
import { formatCount } from './text.js';

export interface BatchStats {
  /** Images in the run (known once the list has been read to its end). */
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  notAttempted: number;
  /** Never sent because a rate limit stopped the batch. */
  rateLimited: number;
  /** Answered from the cache: no request made. */
  cached: number;
  /** What the cached answers would have cost, asked again (USD). */
  saved: number;
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
  /** The last answer's usage and cost (a batch of one reports them as a single run does). */
  lastAnswer?:
    | {
        usage: Usage | undefined;
        cost: Cost | undefined;
        cached: { cached?: boolean | undefined; askedAt?: number | undefined };
      }
    | undefined;
}

export interface SummaryLine {
  text: Line;
  /**
   * Shown under --quiet too: why the batch stopped and what was left undone. (Each failure was
   * already reported when it happened: --quiet does not repeat them.)
   */
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
    rateLimited: 0,
    cached: 0,
    saved: 0,
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

export function formatSummary(stats: BatchStats): SummaryLine[] {
  const lines: SummaryLine[] = [];
  lines.push({
    text: [
      { text: 'summary: ' },
      { text: `${formatCount(stats.succeeded)} succeeded`, style: 'green' },
      { text: ' · ' },
      stats.failed > 0
        ? { text: `${formatCount(stats.failed)} failed`, style: 'red' }
        : { text: '0 failed' },
      ...(stats.rateLimited > 0
        ? [
            { text: ' · ' },
            { text: `${formatCount(stats.rateLimited)} rate-limited`, style: 'yellow' as const },
          ]
        : []),
      {
        text: ` · ${formatCount(stats.skipped)} skipped · ${formatCount(stats.notAttempted + stats.interrupted)} not attempted (of ${formatCount(stats.total)})`,
      },
    ],
    important: false,
  });
  const tokens = stats.promptTokens + stats.completionTokens;
  let usage = `tokens: ${formatCount(stats.promptTokens)} in · ${formatCount(stats.completionTokens)} out · ${formatCount(tokens)} total`;
  if (stats.cost > 0) usage += ` · cost ${stats.costKnown ? '~' : '≥ '}${formatUsd(stats.cost)}`;
  lines.push({ text: [{ text: usage, style: 'dim' }], important: false });
  if (stats.cached > 0) {
    const saved = stats.saved > 0 ? ` · ~${formatUsd(stats.saved)} saved` : '';
    lines.push({
      text: [
        {
          text: `cache: ${formatCount(stats.cached)} answer${stats.cached === 1 ? '' : 's'} from the cache, no request made${saved}`,
          style: 'dim',
        },
      ],
      important: false,
    });
  }
  const done = stats.succeeded + stats.failed;
  lines.push({
    text: [
      {
        text: `time: ${formatDuration(stats.elapsedMs)} · ${imagesPerSecond(done, stats.elapsedMs)} images/s`,
        style: 'dim',
      },
    ],
    important: false,
  });
  if (stats.stopReason) {
    lines.push({
      text: [{ text: `stopped: ${stats.stopReason}`, style: 'yellow' }],
      important: true,
    });
  }
  if (stats.failures.length > 0) {
    lines.push({
      text: [{ text: `failed (${formatCount(stats.failures.length)}):`, style: 'red' }],
      important: false,
    });
    for (const failure of stats.failures)
      lines.push({ text: `  ${failure.message}`, important: false });
  }
  const left = stats.notAttempted + stats.interrupted;
  if (left > 0) {
    const names = stats.notAttemptedNames;
    const more = stats.notAttempted - names.length;
    let text = `not attempted (${formatCount(left)})`;
    if (names.length > 0)
      text += `: ${names.join(', ')}${more > 0 ? `, and ${formatCount(more)} more` : ''}`;
    if (stats.interrupted > 0)
      text += `${names.length > 0 ? ';' : ':'} ${formatCount(stats.interrupted)} stopped in flight`;
    lines.push({ text, important: true });
  }
  return lines;
}
