/**
 * The batch progress line on stderr (only on a terminal): done/total, failed, tokens, rate
 * and ETA, redrawn at most ten times a second. Other stderr lines clear it first and redraw it
 * after, through the reporter's hooks.
 */
import type { BatchStats } from '../render/summary.js';
import { formatDuration, imagesPerSecond } from '../render/summary.js';
import { formatCount } from '../render/text.js';
import type { Reporter } from './reporter.js';

const REDRAW_MS = 100;

export class Progress {
  private last = 0;
  private seen = 0;
  private shown = false;
  private stats: BatchStats | undefined;
  private readonly started: number;

  constructor(
    private readonly reporter: Reporter,
    private readonly opts: { enabled: boolean; now: () => number; total?: number | undefined },
  ) {
    this.started = opts.now();
    if (opts.enabled) {
      reporter.beforeWrite = () => this.clear();
      reporter.afterWrite = () => this.draw();
    }
  }

  get enabled(): boolean {
    return this.opts.enabled;
  }

  /** Images found so far (the total, once the list is read to its end). */
  setSeen(seen: number): void {
    this.seen = seen;
  }

  /** How many images the run has in all, once counted (the count runs beside the batch). */
  setTotal(total: number | undefined): void {
    this.opts.total = total;
  }

  update(stats: BatchStats): void {
    this.stats = stats;
    if (!this.opts.enabled) return;
    const now = this.opts.now();
    if (now - this.last < REDRAW_MS) return;
    this.last = now;
    this.draw();
  }

  private draw(): void {
    if (!this.opts.enabled || !this.stats) return;
    this.reporter.raw(`\r${this.line(this.stats)}\x1b[K`);
    this.shown = true;
  }

  line(stats: BatchStats): string {
    const done = stats.succeeded + stats.failed + stats.skipped;
    const total = this.opts.total ?? Math.max(this.seen, stats.total);
    const elapsed = this.opts.now() - this.started;
    const finished = stats.succeeded + stats.failed;
    const parts = [
      `${formatCount(done)}/${formatCount(total)}${this.opts.total === undefined ? '+' : ''}`,
    ];
    if (stats.failed > 0) parts.push(`${formatCount(stats.failed)} failed`);
    parts.push(`${formatCount(stats.promptTokens + stats.completionTokens)} tokens`);
    parts.push(`${imagesPerSecond(finished, elapsed)} img/s`);
    if (this.opts.total !== undefined && finished > 0 && done < total) {
      const eta = ((total - done) * elapsed) / finished;
      parts.push(`ETA ${formatDuration(eta)}`);
    }
    const text = parts.join(' · ');
    const width = this.reporter.stream.columns ?? 80;
    return text.length >= width ? text.slice(0, width - 1) : text;
  }

  /** Runs `write` (output to stdout, which may be the same terminal) with the line out of the way. */
  above(write: () => void): void {
    const shown = this.shown;
    this.clear();
    write();
    if (shown) this.draw();
  }

  /** Removes the line (before other output, and at the end). */
  clear(): void {
    if (!this.shown) return;
    this.reporter.raw('\r\x1b[K');
    this.shown = false;
  }

  /** Detaches from the reporter. */
  stop(): void {
    this.clear();
    this.opts.enabled = false;
    this.reporter.beforeWrite = undefined;
    this.reporter.afterWrite = undefined;
  }
}
