/**
 * The retry policy, in one place for single runs and batches alike. It follows the official
 * SDK (openai-node `src/client.ts`, `shouldRetry` and `retryRequest`): 408, 409, 429 and >= 500
 * are retried, `x-should-retry` overrides, `retry-after-ms` then `retry-after` (seconds or an
 * HTTP date) are honoured, otherwise min(0.5 s · 2ⁿ, 8 s) with up to 25 % jitter.
 *
 * - `classifyFailure()` says what a failure is: a rate limit, an exhausted quota, a rejected key,
 *   a transient failure, or final. Nothing else in the tool asks whether an error is a quota
 *   error or may be retried.
 * - `RetryBudget` decides, for one request, whether to try again and after how long: `--retries`
 *   bounds every kind, rate limits included; a wait the server asks for that is longer than
 *   `--max-wait` is not waited for.
 * - A batch shares rate-limit waits across the pool (`util/rate-gate.ts`, with `poolPauseMs()`).
 */
import {
  APIError,
  ConnectionError,
  DescribeImageError,
  ExitCode,
  MalformedResponseError,
  TimeoutError,
} from '../errors.js';
import { isQuotaError } from './errors.js';

export type HeaderLookup = (name: string) => string | undefined;

/**
 * - `rate-limit`: slow down and try again (429 that is not a quota);
 * - `quota`: out of quota or credits: no request can succeed (never retried);
 * - `auth`: the key was rejected: no request can succeed (never retried);
 * - `transient`: a timeout, a reset, a 5xx: the same request may succeed;
 * - `final`: the request itself is wrong (400, 404…): never retried.
 */
export type FailureKind = 'rate-limit' | 'quota' | 'auth' | 'transient' | 'final';

export interface Failure {
  kind: FailureKind;
  /** The wait the server asked for, in ms (uncapped), if it asked. */
  serverWaitMs: number | undefined;
}

/** What the response's headers say about retrying, kept on an `APIError` by the client. */
export interface RetryHeaders {
  /** `retry-after-ms`, `retry-after`, or (for a rate limit) when the exhausted limit resets. */
  serverWaitMs: number | undefined;
  /** `x-should-retry: true|false`. */
  shouldRetry: boolean | undefined;
}

const retryHeaders = new WeakMap<APIError, RetryHeaders>();

/** Reads the retry headers of a failed response and keeps them with its error. */
export function attachRetryHeaders(error: APIError, header: HeaderLookup, now: number): void {
  const explicit = header('x-should-retry');
  let serverWaitMs = retryAfterMs(header, now);
  if (serverWaitMs === undefined && error.status === 429) serverWaitMs = rateLimitResetMs(header);
  retryHeaders.set(error, {
    serverWaitMs,
    shouldRetry: explicit === 'true' ? true : explicit === 'false' ? false : undefined,
  });
}

/** What kind of failure `error` is, and the wait the server asked for. */
export function classifyFailure(error: unknown): Failure {
  if (error instanceof APIError) {
    const hints = retryHeaders.get(error);
    const serverWaitMs = hints?.serverWaitMs;
    // An error inside a 200 stream has no status: its exit code says it was a rate limit.
    const rateLimited =
      error.status === 429 ||
      (error.status === undefined && error.exitCode === ExitCode.RATE_LIMIT);
    if (isQuotaError(rateLimited ? 429 : error.status, error.info)) {
      return { kind: 'quota', serverWaitMs };
    }
    if (error.exitCode === ExitCode.AUTH) return { kind: 'auth', serverWaitMs };
    if (hints?.shouldRetry === false) return { kind: 'final', serverWaitMs };
    if (rateLimited) return { kind: 'rate-limit', serverWaitMs };
    if (hints?.shouldRetry === true) return { kind: 'transient', serverWaitMs };
    const status = error.status;
    const transient =
      status === undefined
        ? error.exitCode === ExitCode.SERVER
        : status === 408 || status === 409 || status >= 500;
    return { kind: transient ? 'transient' : 'final', serverWaitMs };
  }
  if (
    error instanceof ConnectionError ||
    error instanceof TimeoutError ||
    (error instanceof MalformedResponseError && error.retryable)
  ) {
    return { kind: 'transient', serverWaitMs: undefined };
  }
  return { kind: 'final', serverWaitMs: undefined };
}

/** Whether no other request can succeed after this failure either: the batch stops. */
export function stopsEveryRequest(failure: Failure): boolean {
  return failure.kind === 'auth' || failure.kind === 'quota';
}

export interface RetryOptions {
  /** `--retries`: how many times one request may be sent again, whatever the failure. */
  retries: number;
  /** `--max-wait`: the longest wait the server may ask for that is waited out. */
  maxWaitMs: number;
  random?: (() => number) | undefined;
}

export type RetryDecision =
  | { retry: true; waitMs: number; attempt: number }
  | {
      retry: false;
      /** `exhausted`: --retries used up; `final`: never retried; `too-long`: asked to wait over --max-wait. */
      why: 'exhausted' | 'final' | 'too-long';
      /** The wait the server asked for, when `why` is `too-long`. */
      waitMs?: number;
    };

/** One request's retries. */
export class RetryBudget {
  private used = 0;

  constructor(private readonly opts: RetryOptions) {}

  /** Retries used so far. */
  get attempts(): number {
    return this.used;
  }

  decide(failure: Failure): RetryDecision {
    if (failure.kind === 'final' || failure.kind === 'quota' || failure.kind === 'auth') {
      return { retry: false, why: 'final' };
    }
    const asked = failure.serverWaitMs;
    if (asked !== undefined && asked > this.opts.maxWaitMs) {
      return { retry: false, why: 'too-long', waitMs: asked };
    }
    if (this.used >= this.opts.retries) return { retry: false, why: 'exhausted' };
    const waitMs = asked ?? backoffMs(this.used, this.opts.random);
    this.used++;
    return { retry: true, waitMs, attempt: this.used };
  }
}

/**
 * A batch's second round: an image that still failed after its retries, for a reason that may
 * pass (a reset, a 5xx, a rate limit), while other images succeed, is tried once more a little
 * later. Never with `--retries 0`.
 */
export function deservesSecondRound(failure: Failure, retries: number): boolean {
  return retries > 0 && (failure.kind === 'transient' || failure.kind === 'rate-limit');
}

/**
 * How long a pool pauses after a 429 that named no wait: the same backoff, counted over the
 * rate limits the pool met in a row.
 */
export function poolPauseMs(consecutive: number, random?: () => number): number {
  return backoffMs(Math.max(0, consecutive - 1), random);
}

/** The wait the server asked for, in ms (any length), or undefined when it asked for none. */
export function retryAfterMs(header: HeaderLookup, now: number): number | undefined {
  const ms = header('retry-after-ms');
  if (ms !== undefined) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = header('retry-after');
  if (after === undefined) return undefined;
  const seconds = Number.parseFloat(after);
  if (/^\s*\d+(\.\d+)?\s*$/.test(after) && Number.isFinite(seconds)) return seconds * 1000;
  // An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`); Date.parse alone reads "-1" as a year.
  if (!/[a-z]{3}/i.test(after) || !/\d{1,2}:\d{2}:\d{2}/.test(after)) return undefined;
  const date = Date.parse(after);
  if (Number.isFinite(date)) return Math.max(0, date - now);
  return undefined;
}

/** Exponential backoff for retry number `retry` (0 for the first), jitter from `random()`. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const seconds = Math.min(0.5 * 2 ** retry, 8);
  const jitter = 1 - random() * 0.25;
  return seconds * jitter * 1000;
}

/** On a 429 without Retry-After: when the exhausted limit resets, if the server says. */
function rateLimitResetMs(header: HeaderLookup): number | undefined {
  let wait: number | undefined;
  for (const kind of ['requests', 'tokens']) {
    if (header(`x-ratelimit-remaining-${kind}`) !== '0') continue;
    const reset = header(`x-ratelimit-reset-${kind}`);
    const ms = reset === undefined ? undefined : parseDurationMs(reset);
    if (ms !== undefined) wait = Math.max(wait ?? 0, ms);
  }
  return wait;
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

/** "5 min", "45 s", "2 h": a wait as a person reads it. */
export function formatWait(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${Math.max(1, s)} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round((m / 60) * 10) / 10;
  return `${h} h`;
}

const tooLong = new WeakSet<object>();

/** The error, told with the wait the server asked for (which is longer than `--max-wait`). */
export function tooLongToWait(
  error: DescribeImageError,
  waitMs: number,
  maxWaitMs: number,
): DescribeImageError {
  error.message += `; the server asks to retry in ${formatWait(waitMs)}, longer than --max-wait (${formatWait(maxWaitMs)}): try again later`;
  tooLong.add(error);
  return error;
}

/** Whether the server asked for a wait longer than `--max-wait` (a batch stops on it). */
export function isTooLongToWait(error: unknown): boolean {
  return typeof error === 'object' && error !== null && tooLong.has(error);
}
