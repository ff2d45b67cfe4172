import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  parseDurationMs,
  retryAfterMs,
  shouldRetryStatus,
} from '../../src/api/retry.js';
import type { HeaderLookup } from '../../src/api/retry.js';

/** A case-insensitive header lookup over a plain object. */
function headers(values: Record<string, string> = {}): HeaderLookup {
  const lower = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => lower.get(name.toLowerCase());
}

const NOW = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

describe('shouldRetryStatus', () => {
  it.each([408, 409, 429, 500, 502, 503, 504])('retries %i', (status) => {
    expect(shouldRetryStatus(status, headers())).toBe(true);
  });

  it.each([400, 401, 403, 404, 413, 422])('does not retry %i', (status) => {
    expect(shouldRetryStatus(status, headers())).toBe(false);
  });

  it('x-should-retry: true forces a retry', () => {
    expect(shouldRetryStatus(400, headers({ 'x-should-retry': 'true' }))).toBe(true);
    expect(shouldRetryStatus(404, headers({ 'X-Should-Retry': 'true' }))).toBe(true);
  });

  it('x-should-retry: false forbids a retry', () => {
    expect(shouldRetryStatus(429, headers({ 'x-should-retry': 'false' }))).toBe(false);
    expect(shouldRetryStatus(503, headers({ 'x-should-retry': 'false' }))).toBe(false);
  });

  it('any other x-should-retry value is ignored', () => {
    expect(shouldRetryStatus(503, headers({ 'x-should-retry': 'maybe' }))).toBe(true);
    expect(shouldRetryStatus(400, headers({ 'x-should-retry': 'maybe' }))).toBe(false);
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

  it('waits of up to 60 s are accepted, longer ones are not', () => {
    expect(retryAfterMs(headers({ 'retry-after': '60' }), NOW)).toBe(60_000);
    expect(retryAfterMs(headers({ 'retry-after': '61' }), NOW)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': '3600' }), NOW)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after-ms': '60001' }), NOW)).toBeUndefined();
    expect(
      retryAfterMs(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:30:00 GMT' }), NOW),
    ).toBeUndefined();
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
