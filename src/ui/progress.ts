/**
 * The batch progress line on stderr (only on a terminal): done/total, failed, tokens, rate
 * and ETA, and how long the pool still waits when a rate limit paused it; redrawn at most ten
 * times a second (once a second during a pause). Other stderr lines clear it first and redraw
 * it after, through the reporter's hooks.
 */
import type { BatchStats } from '../render/summary.js';
import { formatDuration, imagesPerSecond } from '../render/summary.js';
import { formatCount } from '../render/text.js';
import type { Reporter } from './reporter.js';

const REDRAW_MS = 100;
const PAUSE_TICK_MS = 1000;

export class Progress {
  private last = 0;
  private seen = 0;
  private shown = false;
  private stats: BatchStats | undefined;
  private readonly started: number;
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly reporter: Reporter,
    private readonly opts: {
      enabled: boolean;
      now: () => number;
      total?: number | undefined;
      /** When the pool's rate-limit pause ends (the clock's ms), or 0 when not paused. */
      pauseEndsAt?: (() => number) | undefined;
    },
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

  /** A pause began: redraw once a second while it lasts, so its countdown moves. */
  tick(): void {
    if (!this.opts.enabled || this.ticker) return;
    this.draw();
    this.ticker = setInterval(() => {
      this.draw();
      if (!this.pausedFor()) this.stopTicker();
    }, PAUSE_TICK_MS);
    this.ticker.unref();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private pausedFor(): number {
    const ends = this.opts.pauseEndsAt?.() ?? 0;
    return Math.max(0, ends - this.opts.now());
  }

  private draw(): void {
    if (!this.opts.enabled || !this.stats) return;
    this.reporter.status(this.line(this.stats));
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
    const paused = this.pausedFor();
    if (paused > 0) {
      parts.push(`rate limited: waiting ${formatDuration(paused)}`);
    } else if (this.opts.total !== undefined && finished > 0 && done < total) {
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
    this.reporter.clearStatus();
    this.shown = false;
  }

  /** Detaches from the reporter. */
  stop(): void {
    this.stopTicker();
    this.clear();
    this.opts.enabled = false;
    this.reporter.beforeWrite = undefined;
    this.reporter.afterWrite = undefined;
  }
}
