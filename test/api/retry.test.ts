/**
 * The retry policy's one home (src/api/retry.ts): what a failure is, whether and when one
 * request is tried again (--retries bounds every kind; --max-wait bounds what the server may
 * ask for), the pool's pause, and the header parsing behind them.
 */
import { describe, expect, it } from 'vitest';
import { apiErrorFromBody } from '../../src/api/errors.js';
import {
  attachRetryHeaders,
  backoffMs,
  classifyFailure,
  deservesSecondRound,
  formatWait,
  isTooLongToWait,
  parseDurationMs,
  poolPauseMs,
  RetryBudget,
  retryAfterMs,
  stopsEveryRequest,
  tooLongToWait,
} from '../../src/api/retry.js';
import type { HeaderLookup } from '../../src/api/retry.js';
import {
  ConnectionError,
  InputError,
  MalformedResponseError,
  SchemaMismatchError,
  TimeoutError,
} from '../../src/errors.js';

/** A case-insensitive header lookup over a plain object. */
function headers(values: Record<string, string> = {}): HeaderLookup {
  const lower = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => lower.get(name.toLowerCase());
}

const NOW = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

/** The error a response with this status, body and headers becomes, as the client makes it. */
function failed(status: number, body: unknown = {}, values: Record<string, string> = {}) {
  const error = apiErrorFromBody(status, body, {});
  attachRetryHeaders(error, headers(values), NOW);
  return error;
}

const quotaBody = {
  error: {
    message: 'You exceeded your current quota.',
    type: 'insufficient_quota',
    code: 'insufficient_quota',
  },
};

describe('classifyFailure', () => {
  it.each([408, 409, 500, 502, 503, 504])('%i is transient', (status) => {
    expect(classifyFailure(failed(status)).kind).toBe('transient');
  });

  it.each([400, 404, 413, 422])('%i is final', (status) => {
    expect(classifyFailure(failed(status)).kind).toBe('final');
  });

  it('401 and 403 are auth; a 429 quota and a 402 are quota; a plain 429 is a rate limit', () => {
    expect(classifyFailure(failed(401)).kind).toBe('auth');
    expect(classifyFailure(failed(403)).kind).toBe('auth');
    expect(classifyFailure(failed(429, quotaBody)).kind).toBe('quota');
    expect(classifyFailure(failed(402)).kind).toBe('quota');
    expect(classifyFailure(failed(429)).kind).toBe('rate-limit');
  });

  it('an error inside a 200 stream: by its exit code, quota before rate limit', () => {
    const stream = (body: unknown) => apiErrorFromBody(undefined, body, {});
    expect(
      classifyFailure(
        stream({ error: { message: 'Rate limit reached', code: 'rate_limit_exceeded' } }),
      ).kind,
    ).toBe('rate-limit');
    expect(classifyFailure(stream(quotaBody)).kind).toBe('quota');
    expect(classifyFailure(stream({ error: { message: 'internal error' } })).kind).toBe(
      'transient',
    );
    expect(classifyFailure(stream({ error: { message: 'bad', code: 400 } })).kind).toBe('final');
  });

  it('x-should-retry overrides the status', () => {
    expect(classifyFailure(failed(400, {}, { 'x-should-retry': 'true' })).kind).toBe('transient');
    expect(classifyFailure(failed(503, {}, { 'x-should-retry': 'false' })).kind).toBe('final');
    expect(classifyFailure(failed(429, {}, { 'X-Should-Retry': 'false' })).kind).toBe('final');
    expect(classifyFailure(failed(503, {}, { 'x-should-retry': 'maybe' })).kind).toBe('transient');
  });

  it('network failures and a cut stream are transient; other errors final', () => {
    expect(classifyFailure(new ConnectionError('reset')).kind).toBe('transient');
    expect(classifyFailure(new TimeoutError('slow')).kind).toBe('transient');
    expect(classifyFailure(new MalformedResponseError('cut', { retryable: true })).kind).toBe(
      'transient',
    );
    expect(classifyFailure(new MalformedResponseError('html')).kind).toBe('final');
    expect(classifyFailure(new InputError('x.png: no such file')).kind).toBe('final');
    expect(classifyFailure(new SchemaMismatchError('no')).kind).toBe('final');
    expect(classifyFailure(new Error('bug')).kind).toBe('final');
  });

  it('carries the wait the server asked for, however long', () => {
    expect(classifyFailure(failed(429, {}, { 'retry-after': '300' })).serverWaitMs).toBe(300_000);
    expect(classifyFailure(failed(503, {}, { 'retry-after-ms': '250' })).serverWaitMs).toBe(250);
    expect(classifyFailure(failed(503)).serverWaitMs).toBeUndefined();
  });

  it('a 429 without Retry-After waits for the exhausted limit to reset', () => {
    const error = failed(
      429,
      {},
      {
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '6m0s',
        'x-ratelimit-remaining-tokens': '100',
        'x-ratelimit-reset-tokens': '1s',
      },
    );
    expect(classifyFailure(error).serverWaitMs).toBe(360_000);
  });

  it('auth and quota stop every request; the others do not', () => {
    expect(stopsEveryRequest(classifyFailure(failed(401)))).toBe(true);
    expect(stopsEveryRequest(classifyFailure(failed(429, quotaBody)))).toBe(true);
    expect(stopsEveryRequest(classifyFailure(failed(429)))).toBe(false);
    expect(stopsEveryRequest(classifyFailure(failed(500)))).toBe(false);
  });
});

describe('RetryBudget', () => {
  const opts = { retries: 2, maxWaitMs: 60_000, random: () => 0 };

  it('retries rate limits and transient failures --retries times, then stops', () => {
    for (const error of [failed(429), failed(500), new ConnectionError('reset')]) {
      const budget = new RetryBudget(opts);
      const failure = classifyFailure(error);
      expect(budget.decide(failure)).toEqual({ retry: true, waitMs: 500, attempt: 1 });
      expect(budget.decide(failure)).toEqual({ retry: true, waitMs: 1000, attempt: 2 });
      expect(budget.decide(failure)).toEqual({ retry: false, why: 'exhausted' });
    }
  });

  it('--retries 0 means no retry at all, rate limits included', () => {
    const budget = new RetryBudget({ ...opts, retries: 0 });
    expect(budget.decide(classifyFailure(failed(429)))).toEqual({ retry: false, why: 'exhausted' });
  });

  it('never retries final, auth or quota failures', () => {
    for (const error of [failed(400), failed(401), failed(429, quotaBody)]) {
      expect(new RetryBudget(opts).decide(classifyFailure(error))).toEqual({
        retry: false,
        why: 'final',
      });
    }
  });

  it('waits what the server asks for, up to --max-wait; longer is refused at once', () => {
    const budget = new RetryBudget(opts);
    expect(budget.decide(classifyFailure(failed(429, {}, { 'retry-after': '60' })))).toEqual({
      retry: true,
      waitMs: 60_000,
      attempt: 1,
    });
    expect(budget.decide(classifyFailure(failed(429, {}, { 'retry-after': '300' })))).toEqual({
      retry: false,
      why: 'too-long',
      waitMs: 300_000,
    });
    const batch = new RetryBudget({ ...opts, maxWaitMs: 600_000 });
    expect(batch.decide(classifyFailure(failed(429, {}, { 'retry-after': '300' })))).toMatchObject({
      retry: true,
      waitMs: 300_000,
    });
  });

  it('a second round is for transient failures and rate limits, and only with retries', () => {
    expect(deservesSecondRound(classifyFailure(failed(503)), 2)).toBe(true);
    expect(deservesSecondRound(classifyFailure(failed(503)), 0)).toBe(false);
    expect(deservesSecondRound(classifyFailure(failed(429)), 2)).toBe(true);
    expect(deservesSecondRound(classifyFailure(failed(429)), 0)).toBe(false);
    expect(deservesSecondRound(classifyFailure(failed(429, quotaBody)), 2)).toBe(false);
    expect(deservesSecondRound(classifyFailure(failed(400)), 2)).toBe(false);
  });

  it('the pool pauses with the same backoff, counted over rate limits in a row', () => {
    expect([1, 2, 3, 5, 9].map((n) => poolPauseMs(n, () => 0))).toEqual([
      500, 1000, 2000, 8000, 8000,
    ]);
  });
});

describe('tooLongToWait', () => {
  it('names the wait asked for and --max-wait, and is recognisable', () => {
    const error = tooLongToWait(failed(429), 300_000, 60_000);
    expect(error.message).toContain(
      'the server asks to retry in 5 min, longer than --max-wait (60 s)',
    );
    expect(error.exitCode).toBe(5);
    expect(isTooLongToWait(error)).toBe(true);
    expect(isTooLongToWait(failed(429))).toBe(false);
  });

  it('formats waits as a person reads them', () => {
    expect([500, 45_000, 89_000, 300_000, 5_400_000, 86_400_000].map(formatWait)).toEqual([
      '1 s',
      '45 s',
      '89 s',
      '5 min',
      '1.5 h',
      '24 h',
    ]);
  });
});

describe('retryAfterMs', () => {
  it('is undefined without either header', () => {
    expect(retryAfterMs(headers(), NOW)).toBeUndefined();
  });

  it('retry-after-ms wins over retry-after', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '1500', 'retry-after': '30' }), NOW)).toBe(
      1500,
    );
    expect(retryAfterMs(headers({ 'retry-after-ms': '0' }), NOW)).toBe(0);
    expect(retryAfterMs(headers({ 'retry-after-ms': '12.5' }), NOW)).toBe(12.5);
  });

  it('an unusable retry-after-ms falls back to retry-after', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': 'soon', 'retry-after': '3' }), NOW)).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after-ms': '-5', 'retry-after': '3' }), NOW)).toBe(3000);
  });

  it('retry-after in seconds', () => {
    expect(retryAfterMs(headers({ 'retry-after': '0' }), NOW)).toBe(0);
    expect(retryAfterMs(headers({ 'retry-after': '2' }), NOW)).toBe(2000);
    expect(retryAfterMs(headers({ 'retry-after': ' 20 ' }), NOW)).toBe(20_000);
  });

  it('retry-after in fractional seconds', () => {
    expect(retryAfterMs(headers({ 'retry-after': '1.5' }), NOW)).toBe(1500);
    expect(retryAfterMs(headers({ 'retry-after': '0.25' }), NOW)).toBe(250);
  });

  it('retry-after as an HTTP date, relative to now', () => {
    expect(retryAfterMs(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:30 GMT' }), NOW)).toBe(
      30_000,
    );
    expect(retryAfterMs(headers({ 'retry-after': new Date(NOW + 5000).toUTCString() }), NOW)).toBe(
      5000,
    );
  });

  it('an HTTP date in the past means no wait', () => {
    expect(retryAfterMs(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:27:00 GMT' }), NOW)).toBe(0);
  });

  it('long waits are read as they are (the policy decides what is too long)', () => {
    expect(retryAfterMs(headers({ 'retry-after': '61' }), NOW)).toBe(61_000);
    expect(retryAfterMs(headers({ 'retry-after': '86400' }), NOW)).toBe(86_400_000);
    expect(retryAfterMs(headers({ 'retry-after-ms': '60001' }), NOW)).toBe(60_001);
    expect(retryAfterMs(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:30:00 GMT' }), NOW)).toBe(
      120_000,
    );
  });

  it('garbage is undefined', () => {
    for (const value of ['soon', '', 'abc', 'Tue', '2 seconds', '1e3']) {
      expect(
        retryAfterMs(headers({ 'retry-after': value }), NOW),
        JSON.stringify(value),
      ).toBeUndefined();
    }
  });

  it('a negative or malformed number is not read as a date', () => {
    // V8's Date.parse reads "-1" and "1,5" as dates in 2001; neither is an HTTP date.
    for (const value of ['-1', '1,5']) {
      expect(
        retryAfterMs(headers({ 'retry-after': value }), NOW),
        JSON.stringify(value),
      ).toBeUndefined();
    }
  });
});

describe('backoffMs', () => {
  const noJitter = (): number => 0;
  const fullJitter = (): number => 1;

  it('is 0.5 s · 2ⁿ, capped at 8 s, without jitter', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10, 30].map((n) => backoffMs(n, noJitter))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000,
    ]);
  });

  it('full jitter takes off 25 %', () => {
    expect([0, 1, 2, 3, 4, 9].map((n) => backoffMs(n, fullJitter))).toEqual([
      375, 750, 1500, 3000, 6000, 6000,
    ]);
  });

  it('jitter scales linearly with the random value', () => {
    expect(backoffMs(0, () => 0.5)).toBe(437.5);
    expect(backoffMs(2, () => 0.2)).toBeCloseTo(1900, 9);
  });

  it('with the default random, stays within [75 %, 100 %] of the base', () => {
    for (let n = 0; n < 8; n++) {
      const base = Math.min(500 * 2 ** n, 8000);
      for (let i = 0; i < 50; i++) {
        const ms = backoffMs(n);
        expect(ms).toBeGreaterThanOrEqual(base * 0.75);
        expect(ms).toBeLessThanOrEqual(base);
      }
    }
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['12ms', 12],
    ['1h2m3s', 3_723_000],
    ['1.5s', 1500],
    ['0s', 0],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['7.66s', 7660],
    [' 1s ', 1000],
  ])('%j → %i ms', (text, ms) => {
    expect(parseDurationMs(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', 'abc', '5', '5x', '1s garbage', 's', '1 s', '-1s'])('%j → undefined', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
