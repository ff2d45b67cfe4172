/**
 * Shared admission control for a pool of requests to one server:
 * - at most `limit` requests in flight; `limit` halves on a 429 and grows back by one after
 *   `limit` successes in a row (additive increase, multiplicative decrease, as TCP does);
 * - a 429 pauses every request until its Retry-After has passed (or a backoff, when the server
 *   named no wait: `pauseMs`, the retry policy's backoff), not just the one that got it;
 *   `onPause` is told of each pause;
 * - with `rpm`, request starts are spaced at least 60 000 / rpm ms apart;
 * - `close()` refuses every waiting and later request and clears its timer, so nothing keeps
 *   the process alive.
 */
export interface GateTicket {
  readonly admittedAt: number;
}

export interface GateOptions {
  /** The most requests in flight (the pool size). */
  max: number;
  /** Requests per minute, if capped. */
  rpm?: number | undefined;
  /** The pause after the `n`th rate limit in a row that named no wait (api/retry.ts). */
  pauseMs: (consecutive: number) => number;
  /** Told when the pool starts (or extends) a pause for a rate limit. */
  onPause?: ((ms: number) => void) | undefined;
  now?: () => number;
}

export interface GateRelease {
  ok: boolean;
  rateLimited?: boolean;
  /** The wait the server asked for, in ms. */
  retryAfterMs?: number | undefined;
  /** Closes the gate: every waiting and later request is refused. */
  fatal?: boolean | undefined;
}

/** Why `acquire()` was refused after the gate closed. */
export class GateClosedError extends Error {
  constructor() {
    super('stopped: an earlier request failed in a way every request would');
  }
}

interface Waiter {
  resolve(ticket: GateTicket): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class RateGate {
  private current: number;
  private inFlight = 0;
  private closed = false;
  private pausedUntil = 0;
  private nextStartAt = 0;
  private successes = 0;
  private consecutiveLimits = 0;
  private lastDecreaseAt = -Infinity;
  private readonly waiters: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly now: () => number;
  private readonly interval: number;
  /** Total 429s seen, for the summary. */
  rateLimitedCount = 0;

  constructor(private readonly opts: GateOptions) {
    this.current = Math.max(1, opts.max);
    this.now = opts.now ?? Date.now;
    this.interval = opts.rpm ? 60_000 / opts.rpm : 0;
  }

  /** Requests allowed in flight right now. */
  get limit(): number {
    return this.current;
  }

  /** Requests admitted and not yet released. */
  get active(): number {
    return this.inFlight;
  }

  /** When the pool's current rate-limit pause ends (ms, the clock's time), or 0. */
  get pauseEndsAt(): number {
    return this.pausedUntil > this.now() ? this.pausedUntil : 0;
  }

  /** Waits for a slot. Rejects with the signal's reason when aborted. */
  acquire(signal?: AbortSignal): Promise<GateTicket> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.closed) return Promise.reject(new GateClosedError());
    return new Promise<GateTicket>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at !== -1) this.waiters.splice(at, 1);
          reject(abortReason(signal));
          if (this.waiters.length === 0) this.clearTimer();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  release(ticket: GateTicket, outcome: GateRelease): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (outcome.fatal) {
      this.close();
      return;
    }
    const now = this.now();
    if (outcome.rateLimited) {
      this.rateLimitedCount++;
      this.successes = 0;
      this.consecutiveLimits++;
      // Many requests in flight get the same 429: halve once per round of them.
      if (ticket.admittedAt >= this.lastDecreaseAt) {
        this.current = Math.max(1, Math.floor(this.current / 2));
        this.lastDecreaseAt = now;
      }
      const wait = outcome.retryAfterMs ?? this.opts.pauseMs(this.consecutiveLimits);
      if (now + wait > this.pausedUntil) {
        // A pause that starts now, or one that grows by more than a second, is worth a line.
        if (now + wait - Math.max(now, this.pausedUntil) > 1000 || this.pausedUntil <= now) {
          this.opts.onPause?.(wait);
        }
        this.pausedUntil = now + wait;
      }
    } else if (outcome.ok) {
      this.consecutiveLimits = 0;
      this.successes++;
      if (this.successes >= this.current && this.current < this.opts.max) {
        this.current++;
        this.successes = 0;
      }
    }
    this.pump();
  }

  /** Refuses every waiting and later request, and stops the gate's timer. */
  close(): void {
    this.closed = true;
    this.clearTimer();
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new GateClosedError());
    }
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private pump(): void {
    this.clearTimer();
    while (this.waiters.length > 0 && this.inFlight < this.current) {
      const now = this.now();
      const readyAt = Math.max(this.pausedUntil, this.nextStartAt);
      if (now < readyAt) {
        this.timer = setTimeout(() => this.pump(), readyAt - now);
        return;
      }
      const waiter = this.waiters.shift() as Waiter;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.inFlight++;
      this.nextStartAt = now + this.interval;
      waiter.resolve({ admittedAt: now });
    }
  }
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}
