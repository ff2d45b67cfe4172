/**
 * Pure retry policy, as the official SDK has it (openai-node `src/client.ts`, `shouldRetry`
 * and `retryRequest`): 408, 409, 429 and >= 500 are retried, `x-should-retry` overrides,
 * `retry-after-ms` then `retry-after` (seconds or an HTTP date) are honoured up to 60 s,
 * otherwise min(0.5 s · 2ⁿ, 8 s) with up to 25 % jitter.
 */

export type HeaderLookup = (name: string) => string | undefined;

/** Whether a response with this status (and headers) should be tried again. */
export function shouldRetryStatus(status: number, header: HeaderLookup): boolean {
  const explicit = header('x-should-retry');
  if (explicit === 'true') return true;
  if (explicit === 'false') return false;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The wait the server asked for, in ms, or undefined when it asked for none we accept. */
export function retryAfterMs(header: HeaderLookup, now: number): number | undefined {
  const ms = header('retry-after-ms');
  if (ms !== undefined) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return accept(value);
  }
  const after = header('retry-after');
  if (after === undefined) return undefined;
  const seconds = Number.parseFloat(after);
  if (/^\s*\d+(\.\d+)?\s*$/.test(after) && Number.isFinite(seconds)) return accept(seconds * 1000);
  // An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`); Date.parse alone reads "-1" as a year.
  if (!/[a-z]{3}/i.test(after) || !/\d{1,2}:\d{2}:\d{2}/.test(after)) return undefined;
  const date = Date.parse(after);
  if (Number.isFinite(date)) return accept(Math.max(0, date - now));
  return undefined;
}

const MAX_SERVER_WAIT_MS = 60_000;

function accept(ms: number): number | undefined {
  return ms >= 0 && ms <= MAX_SERVER_WAIT_MS ? ms : undefined;
}

/** Exponential backoff for retry number `retry` (0 for the first), jitter from `random()`. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const seconds = Math.min(0.5 * 2 ** retry, 8);
  const jitter = 1 - random() * 0.25;
  return seconds * jitter * 1000;
}

/** Parses Go-style durations in rate-limit headers (`1s`, `6m0s`, `12ms`) to ms. */
export function parseDurationMs(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (const match of text.matchAll(re)) {
    const value = Number(match[1]);
    const unit = match[2];
    total +=
      unit === 'h'
        ? value * 3_600_000
        : unit === 'm'
          ? value * 60_000
          : unit === 's'
            ? value * 1000
            : value;
    matched += match[0];
  }
  return matched !== '' && matched === text.trim() ? total : undefined;
}
