import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { poolPauseMs } from '../../src/api/retry.js';
import { GateClosedError, RateGate } from '../../src/util/rate-gate.js';
import type { GateOptions, GateTicket } from '../../src/util/rate-gate.js';

/** A gate with the retry policy's pool pause, jitter-free unless a test gives its own. */
function makeGate(opts: Omit<GateOptions, 'pauseMs'> & { random?: () => number }): RateGate {
  const random = opts.random ?? (() => 0);
  return new RateGate({ ...opts, pauseMs: (n) => poolPauseMs(n, random) });
}

/** Tracks whether a promise has settled, without awaiting it. */
function track<T>(promise: Promise<T>): {
  readonly settled: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
} {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** Lets pending promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  vi.useRealTimers();
});

const clock = (): number => Date.now();

describe('RateGate: concurrency', () => {
  it('never admits more than `limit` at once', async () => {
    const gate = makeGate({ max: 3, now: clock });
    const tickets = Array.from({ length: 10 }, () => track(gate.acquire()));
    await flush();
    expect(tickets.filter((t) => t.settled)).toHaveLength(3);
    expect(tickets.slice(0, 3).every((t) => t.settled)).toBe(true);

    gate.release(tickets[0]!.value!, { ok: true });
    await flush();
    expect(tickets.filter((t) => t.settled)).toHaveLength(4);
    expect(tickets[3]!.settled).toBe(true);
  });

  it('with real work of varying length, in flight never exceeds the limit and all finish', async () => {
    vi.useRealTimers();
    const gate = makeGate({ max: 4 });
    let inFlight = 0;
    let peak = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const ticket = await gate.acquire();
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
        inFlight--;
        done++;
        gate.release(ticket, { ok: true });
      }),
    );
    expect(done).toBe(24);
    expect(peak).toBe(4);
  });

  it('admits waiters in the order they asked', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const first = await gate.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => gate.acquire().then((t) => (order.push(n), t)));
    gate.release(first, { ok: true });
    gate.release(await waiters[0]!, { ok: true });
    gate.release(await waiters[1]!, { ok: true });
    await waiters[2];
    expect(order).toEqual([1, 2, 3]);
  });

  it('a failed release (neither ok nor rate limited) frees the slot without growing the limit', async () => {
    const gate = makeGate({ max: 2, now: clock });
    const a = await gate.acquire();
    gate.release(a, { ok: false });
    expect(gate.limit).toBe(2);
    const b = track(gate.acquire());
    const c = track(gate.acquire());
    await flush();
    expect(b.settled && c.settled).toBe(true);
  });

  it('max below 1 is treated as 1', async () => {
    const gate = makeGate({ max: 0, now: clock });
    expect(gate.limit).toBe(1);
    const a = track(gate.acquire());
    const b = track(gate.acquire());
    await flush();
    expect([a.settled, b.settled]).toEqual([true, false]);
  });
});

describe('RateGate: 429s', () => {
  it('halves the limit once for a round of simultaneous 429s', async () => {
    const gate = makeGate({ max: 8, now: clock });
    const round: GateTicket[] = [];
    for (let i = 0; i < 8; i++) round.push(await gate.acquire());
    vi.setSystemTime(Date.now() + 10);

    gate.release(round[0]!, { ok: false, rateLimited: true, retryAfterMs: 0 });
    expect(gate.limit).toBe(4);
    // Tickets admitted before that decrease do not halve it again.
    for (let i = 1; i < 8; i++)
      gate.release(round[i]!, { ok: false, rateLimited: true, retryAfterMs: 0 });
    expect(gate.limit).toBe(4);
    expect(gate.rateLimitedCount).toBe(8);

    // A ticket admitted after the decrease that gets a 429 halves it again.
    vi.setSystemTime(Date.now() + 10);
    const later = await gate.acquire();
    vi.setSystemTime(Date.now() + 10);
    gate.release(later, { ok: false, rateLimited: true, retryAfterMs: 0 });
    expect(gate.limit).toBe(2);
  });

  it('never goes below 1', async () => {
    const gate = makeGate({ max: 2, now: clock });
    for (let i = 0; i < 4; i++) {
      const t = await gate.acquire();
      vi.setSystemTime(Date.now() + 1);
      gate.release(t, { ok: false, rateLimited: true, retryAfterMs: 0 });
    }
    expect(gate.limit).toBe(1);
  });

  it('pauses every waiter until retryAfterMs has passed', async () => {
    const gate = makeGate({ max: 4, now: clock });
    const a = await gate.acquire();
    gate.release(a, { ok: false, rateLimited: true, retryAfterMs: 1000 });
    expect(gate.limit).toBe(2);

    // Slots are free, but the gate is paused.
    const b = track(gate.acquire());
    const c = track(gate.acquire());
    const d = track(gate.acquire());
    await flush();
    expect([b.settled, c.settled, d.settled]).toEqual([false, false, false]);

    await vi.advanceTimersByTimeAsync(999);
    expect([b.settled, c.settled, d.settled]).toEqual([false, false, false]);

    await vi.advanceTimersByTimeAsync(1);
    // Both slots of the halved limit open together; the third waits for a release.
    expect([b.settled, c.settled, d.settled]).toEqual([true, true, false]);
    expect(b.value!.admittedAt).toBe(c.value!.admittedAt);
  });

  it('a waiter already queued when the 429 arrives waits too', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const a = await gate.acquire();
    const b = track(gate.acquire());
    const t0 = Date.now();
    gate.release(a, { ok: false, rateLimited: true, retryAfterMs: 500 });
    await flush();
    expect(b.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(b.settled).toBe(true);
    expect(b.value!.admittedAt - t0).toBe(500);
  });

  it('a later, longer Retry-After extends the pause; a shorter one does not shorten it', async () => {
    const gate = makeGate({ max: 4, now: clock });
    const a = await gate.acquire();
    const b = await gate.acquire();
    const t0 = Date.now();
    gate.release(a, { ok: false, rateLimited: true, retryAfterMs: 300 });
    gate.release(b, { ok: false, rateLimited: true, retryAfterMs: 100 });
    const c = track(gate.acquire());
    await vi.advanceTimersByTimeAsync(299);
    expect(c.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.settled).toBe(true);
    expect(c.value!.admittedAt - t0).toBe(300);
  });

  it('without Retry-After, waits the exponential backoff (random injected)', async () => {
    const gate = makeGate({ max: 4, now: clock, random: () => 0 });
    const t0 = Date.now();
    const a = await gate.acquire();
    gate.release(a, { ok: false, rateLimited: true });
    const b = track(gate.acquire());
    await vi.advanceTimersByTimeAsync(499);
    expect(b.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(b.value!.admittedAt - t0).toBe(500);

    // A second 429 in a row doubles the wait.
    gate.release(b.value!, { ok: false, rateLimited: true });
    const t1 = Date.now();
    const c = track(gate.acquire());
    await vi.advanceTimersByTimeAsync(999);
    expect(c.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.value!.admittedAt - t1).toBe(1000);
  });
});

describe('RateGate: recovery', () => {
  it('grows the limit by one after `limit` successes, up to max', async () => {
    const gate = makeGate({ max: 4, now: clock });
    const first = await gate.acquire();
    gate.release(first, { ok: false, rateLimited: true, retryAfterMs: 0 });
    expect(gate.limit).toBe(2);

    const succeed = async (): Promise<void> => {
      gate.release(await gate.acquire(), { ok: true });
    };
    await succeed();
    expect(gate.limit).toBe(2);
    await succeed();
    expect(gate.limit).toBe(3);
    await succeed();
    await succeed();
    expect(gate.limit).toBe(3);
    await succeed();
    expect(gate.limit).toBe(4);
    for (let i = 0; i < 20; i++) await succeed();
    expect(gate.limit).toBe(4);
  });

  it('a 429 resets the count of successes', async () => {
    const gate = makeGate({ max: 8, now: clock });
    const t = await gate.acquire();
    gate.release(t, { ok: false, rateLimited: true, retryAfterMs: 0 }); // 8 → 4
    for (let i = 0; i < 3; i++) gate.release(await gate.acquire(), { ok: true });
    vi.setSystemTime(Date.now() + 1);
    gate.release(await gate.acquire(), { ok: false, rateLimited: true, retryAfterMs: 0 }); // 4 → 2
    expect(gate.limit).toBe(2);
    gate.release(await gate.acquire(), { ok: true });
    expect(gate.limit).toBe(2);
    gate.release(await gate.acquire(), { ok: true });
    expect(gate.limit).toBe(3);
  });
});

describe('RateGate: rpm', () => {
  it('spaces request starts 60 000 / rpm ms apart', async () => {
    const gate = makeGate({ max: 5, rpm: 600, now: clock });
    const t0 = Date.now();
    const tickets = Array.from({ length: 4 }, () => track(gate.acquire()));
    await flush();
    expect(tickets.map((t) => t.settled)).toEqual([true, false, false, false]);
    await vi.advanceTimersByTimeAsync(99);
    expect(tickets.map((t) => t.settled)).toEqual([true, false, false, false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(tickets.map((t) => t.settled)).toEqual([true, true, false, false]);
    await vi.advanceTimersByTimeAsync(200);
    expect(tickets.map((t) => t.value!.admittedAt - t0)).toEqual([0, 100, 200, 300]);
  });

  it('a start long after the last one is not delayed', async () => {
    const gate = makeGate({ max: 5, rpm: 60, now: clock });
    gate.release(await gate.acquire(), { ok: true });
    vi.setSystemTime(Date.now() + 5000);
    const t = track(gate.acquire());
    await flush();
    expect(t.settled).toBe(true);
  });
});

describe('RateGate: abort', () => {
  it('aborting a waiter rejects it with the reason and takes it out of the queue', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const a = await gate.acquire();
    const controller = new AbortController();
    const b = gate.acquire(controller.signal);
    const c = track(gate.acquire());
    const reason = new Error('stopped by the user');
    controller.abort(reason);
    await expect(b).rejects.toBe(reason);

    gate.release(a, { ok: true });
    await flush();
    expect(c.settled).toBe(true);
    expect(c.error).toBeUndefined();
  });

  it('aborting while paused rejects', async () => {
    const gate = makeGate({ max: 2, now: clock });
    gate.release(await gate.acquire(), { ok: false, rateLimited: true, retryAfterMs: 10_000 });
    const controller = new AbortController();
    const waiting = gate.acquire(controller.signal);
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('an already aborted signal rejects at once', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const reason = new Error('too late');
    await expect(gate.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
    // And it took no slot.
    const t = track(gate.acquire());
    await flush();
    expect(t.settled).toBe(true);
  });

  it('a non-Error reason becomes an Error', async () => {
    const gate = makeGate({ max: 1, now: clock });
    await expect(gate.acquire(AbortSignal.abort('just a string'))).rejects.toThrow('aborted');
  });

  it('an admitted ticket is not affected by a later abort', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const controller = new AbortController();
    const t = await gate.acquire(controller.signal);
    controller.abort();
    const next = track(gate.acquire());
    gate.release(t, { ok: true });
    await flush();
    expect(next.settled).toBe(true);
  });
});

describe('RateGate: a fatal outcome', () => {
  it('refuses every waiting and every later request', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const first = await gate.acquire();
    const waiting = gate.acquire();
    gate.release(first, { ok: false, fatal: true });
    await expect(waiting).rejects.toBeInstanceOf(GateClosedError);
    await expect(gate.acquire()).rejects.toBeInstanceOf(GateClosedError);
  });

  it('leaves the gate open after an ordinary failure', async () => {
    const gate = makeGate({ max: 1, now: clock });
    const first = await gate.acquire();
    const waiting = track(gate.acquire());
    gate.release(first, { ok: false });
    await flush();
    expect(waiting.settled).toBe(true);
  });
});
