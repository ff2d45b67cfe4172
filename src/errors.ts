/**
 * Every failure a user can cause is one of these classes, and `exitCodeFor()` is the single
 * place that maps them to the exit-code table in the README.
 */

export const ExitCode = {
  OK: 0,
  /** `--alt-check` found images without alt text (linters exit 1 on findings). */
  FINDINGS: 1,
  USAGE: 2,
  INPUT: 3,
  AUTH: 4,
  RATE_LIMIT: 5,
  REJECTED: 6,
  SERVER: 7,
  /** `--cache-only` and an image with no stored answer. */
  CACHE_MISS: 8,
  /** An unexpected internal error (a bug): sysexits.h's EX_SOFTWARE. */
  INTERNAL: 70,
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: an error whose message is meant for the user, one line, no stack. */
export class DescribeImageError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad command line: unknown option, bad value, no image. */
export class UsageError extends DescribeImageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.USAGE, options);
  }
}

/** A local input (file, stdin, data URL) is missing, unreadable, empty or not an image. */
export class InputError extends DescribeImageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.INPUT, options);
  }
}

/** No API key where one is needed. */
export class MissingKeyError extends DescribeImageError {
  constructor(message: string) {
    super(message, ExitCode.AUTH);
  }
}

/** The user pressed Ctrl-C (or the run was otherwise aborted on purpose). */
export class InterruptedError extends DescribeImageError {
  /** True when the request was never sent (stopped while waiting for its turn). */
  readonly notSent: boolean;
  constructor(message = 'interrupted', options: { notSent?: boolean } = {}) {
    super(message, ExitCode.INTERRUPTED);
    this.notSent = options.notSent ?? false;
  }
}

/** What the server said about a failed request, parsed from whatever body it sent. */
export interface ServerErrorInfo {
  message?: string | undefined;
  type?: string | undefined;
  code?: string | undefined;
  param?: string | undefined;
}

/** Fields common to every failure of a request to the API. */
export interface RequestContext {
  /** `x-request-id` (or a provider's equivalent) of the failed response. */
  requestId?: string | undefined;
  /** The URL that was requested (never contains the key). */
  url?: string | undefined;
  /** The request sent an image as an http(s) URL for the server to fetch. */
  imageUrls?: boolean | undefined;
}

/**
 * The server answered with an error status, or sent an error object inside a stream.
 * `status` is undefined for an error that arrived inside a 200 stream.
 */
export class APIError extends DescribeImageError {
  readonly status: number | undefined;
  readonly info: ServerErrorInfo;
  readonly requestId: string | undefined;
  readonly url: string | undefined;
  /** A hint on what to do, already in the message; kept for JSON output. */
  readonly hint: string | undefined;
  readonly headline: string;

  constructor(
    status: number | undefined,
    info: ServerErrorInfo,
    ctx: RequestContext,
    exitCode: ExitCode,
    headline: string,
    hint?: string,
  ) {
    super(composeMessage(headline, info.message, hint, ctx.requestId), exitCode);
    this.status = status;
    this.info = info;
    this.requestId = ctx.requestId;
    this.url = ctx.url;
    this.hint = hint;
    this.headline = headline;
  }

  /** The same error, told with the request it belongs to (for errors found inside a stream). */
  withContext(ctx: RequestContext): APIError {
    return new APIError(
      this.status,
      this.info,
      { requestId: this.requestId ?? ctx.requestId, url: this.url ?? ctx.url },
      this.exitCode,
      this.headline,
      this.hint,
    );
  }
}

/** No answer at all: refused, reset, DNS failure, TLS failure. */
export class ConnectionError extends DescribeImageError {
  readonly retryable = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.SERVER, options);
  }
}

/** The server did not answer, or stopped sending, within `--timeout`. */
export class TimeoutError extends DescribeImageError {
  readonly retryable = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.SERVER, options);
  }
}

/** The server answered 2xx with something that is not a chat completion. */
export class MalformedResponseError extends DescribeImageError {
  readonly retryable: boolean;
  constructor(message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, ExitCode.SERVER, options);
    this.retryable = options?.retryable ?? false;
  }
}

/** The answer did not match the requested JSON schema. */
export class SchemaMismatchError extends DescribeImageError {
  constructor(message: string) {
    super(message, ExitCode.REJECTED);
  }
}

function composeMessage(
  headline: string,
  serverMessage: string | undefined,
  hint: string | undefined,
  requestId: string | undefined,
): string {
  let out = headline;
  if (serverMessage) out += `: ${oneLine(serverMessage)}`;
  if (hint) out += ` (${hint})`;
  if (requestId) out += ` [request id ${requestId}]`;
  return out;
}

/**
 * Collapses whitespace runs (newlines included) so a message stays on one line, and turns
 * control characters into spaces: a message may quote a server or a model, and an escape
 * sequence in it must not reach the terminal.
 */
export function oneLine(text: string, max = 600): string {
  const flat = text
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The documented exit code for any thrown value. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof DescribeImageError) return error.exitCode;
  return ExitCode.INTERNAL;
}
