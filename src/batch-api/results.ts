/**
 * Pure: what a batch did for each request. Output lines (OpenAI's output and error files,
 * vLLM's single file) become outcomes joined on `custom_id`, lines arriving in any order; a
 * request with no line gets its outcome from its batch (failed validation, expired, cancelled).
 *
 * Line format (reference §5, §8): `{"id", "custom_id", "response": {"status_code",
 * "request_id", "body"} | null, "error": {"code", "message"} | "text" | null}`.
 */
import { completionFromResponse } from '../api/accumulate.js';
import { apiErrorFromBody } from '../api/errors.js';
import type { ChatCompletion, Completion } from '../api/types.js';
import {
  APIError,
  ExitCode,
  MalformedResponseError,
  type DescribeImageError,
  type ServerErrorInfo,
} from '../errors.js';
import type { BatchError } from '../api/batches.js';

/** One line of an output or error file, read. */
export interface OutputLine {
  customId: string;
  /** `response.status_code`, when there was an HTTP response. */
  statusCode: number | undefined;
  requestId: string | undefined;
  body: unknown;
  /** The top-level `error` (non-HTTP failures; vLLM puts its failures here too). */
  error: unknown;
}

export type Outcome =
  | { kind: 'answered'; completion: Completion; requestId: string | undefined }
  | { kind: 'failed'; error: DescribeImageError; expired: boolean }
  /** Never run: its batch was cancelled first. */
  | { kind: 'cancelled' };

/** Reads one line; undefined when it is not JSON or has no `custom_id`. */
export function parseOutputLine(text: string): OutputLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const record = asRecord(value);
  const customId = record?.custom_id;
  if (!record || typeof customId !== 'string') return undefined;
  const response = asRecord(record.response);
  const status = response?.status_code;
  return {
    customId,
    statusCode: typeof status === 'number' ? status : undefined,
    requestId: typeof response?.request_id === 'string' ? response.request_id : undefined,
    body: response?.body,
    error: record.error ?? undefined,
  };
}

/** What one output line says happened. `url` names the request in errors. */
export function outcomeOfLine(line: OutputLine, url: string): Outcome {
  const ctx = { requestId: line.requestId, url };
  if (line.statusCode !== undefined) {
    if (line.statusCode >= 400) {
      // OpenAI puts the API's error in the body; vLLM leaves the body empty and sets `error`.
      const source = hasContent(line.body) ? line.body : line.error;
      return {
        kind: 'failed',
        error: apiErrorFromBody(line.statusCode, source, ctx),
        expired: false,
      };
    }
    const completion = asRecord(line.body)
      ? completionFromResponse(line.body as ChatCompletion)
      : undefined;
    if (completion && line.error === undefined)
      return { kind: 'answered', completion, requestId: line.requestId };
    if (line.error !== undefined) return lineError(line.error, ctx);
    return {
      kind: 'failed',
      error: new MalformedResponseError(
        `the batch's result for this request holds no answer (HTTP ${line.statusCode}, no choices[0].message)`,
      ),
      expired: false,
    };
  }
  if (line.error !== undefined) return lineError(line.error, ctx);
  return {
    kind: 'failed',
    error: new MalformedResponseError(
      "the batch's result for this request has neither a response nor an error",
    ),
    expired: false,
  };
}

/** A top-level `error` without an HTTP status: expiry, cancellation, or the engine's own. */
function lineError(raw: unknown, ctx: { requestId: string | undefined; url: string }): Outcome {
  const info = errorInfo(raw);
  if (info.code === 'batch_expired') {
    return { kind: 'failed', error: expiredError(info, ctx), expired: true };
  }
  if (info.code === 'batch_cancelled') return { kind: 'cancelled' };
  return {
    kind: 'failed',
    error: new APIError(
      undefined,
      info,
      ctx,
      ExitCode.SERVER,
      'the batch engine could not run this request',
    ),
    expired: false,
  };
}

/** The error for a request the batch's 24 hours ran out on (exit 7, as a server failure). */
export function expiredError(
  info: ServerErrorInfo = {},
  ctx: { requestId?: string | undefined; url?: string | undefined } = {},
): APIError {
  return new APIError(
    undefined,
    { ...info, code: info.code ?? 'batch_expired' },
    ctx,
    ExitCode.SERVER,
    'the batch expired before this request ran',
    '--retry-failed submits it again',
  );
}

/** A batch whose state a request without an output line takes its outcome from. */
export interface BatchState {
  status: string | undefined;
  errors: readonly BatchError[];
}

/**
 * The outcome of a request that has no output line, from its batch: `line` is its line in the
 * batch's input file (1-based). Undefined while the batch has not finished.
 */
export function outcomeWithoutLine(
  batch: BatchState,
  line: number | undefined,
  url: string,
): Outcome | undefined {
  switch (batch.status) {
    case 'failed': {
      const own = line === undefined ? undefined : batch.errors.find((e) => e.line === line);
      if (own) {
        return {
          kind: 'failed',
          error: new APIError(
            undefined,
            { message: own.message, code: own.code, param: own.param },
            { url },
            ExitCode.REJECTED,
            `the batch engine rejected this request (line ${line})`,
          ),
          expired: false,
        };
      }
      const first = batch.errors[0];
      const where = first?.line === undefined ? '' : ` at line ${first.line}`;
      return {
        kind: 'failed',
        error: new APIError(
          undefined,
          { message: first?.message ?? 'no reason given', code: first?.code },
          { url },
          ExitCode.REJECTED,
          `its batch failed validation${where}`,
        ),
        expired: false,
      };
    }
    case 'expired':
      return { kind: 'failed', error: expiredError({}, { url }), expired: true };
    case 'cancelled':
      return { kind: 'cancelled' };
    case 'completed':
      return {
        kind: 'failed',
        error: new MalformedResponseError('the batch finished without a result for this request'),
        expired: false,
      };
    default:
      return undefined;
  }
}

/**
 * Which of two outcomes for one request to keep: an answer over anything else, otherwise the
 * later one (a retry round's result replaces the earlier failure).
 */
export function preferOutcome(earlier: Outcome | undefined, later: Outcome): Outcome {
  if (earlier?.kind === 'answered' && later.kind !== 'answered') return earlier;
  return later;
}

function errorInfo(raw: unknown): ServerErrorInfo {
  if (typeof raw === 'string') return { message: raw };
  const record = asRecord(raw);
  if (!record) return {};
  const inner = asRecord(record.error);
  const source = inner ?? record;
  const scalar = (v: unknown): string | undefined =>
    typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
  return {
    message: scalar(source.message),
    code: scalar(source.code),
    type: scalar(source.type),
    param: scalar(source.param),
  };
}

function hasContent(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return false;
  const record = asRecord(value);
  return !record || Object.keys(record).length > 0;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
