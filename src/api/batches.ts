/**
 * `/batches`: create, retrieve, list and cancel a batch on a provider's batch engine, as
 * openai-node's `resources/batches.ts` does, through the one `ApiClient`. Answers are read
 * leniently into one `Batch` shape: Azure's older API versions send ISO dates and capitalised
 * statuses, and every provider sends `null` for fields not set yet.
 */
import { APIError, ExitCode, MalformedResponseError } from '../errors.js';
import type { ApiClient } from './client.js';

export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

const STATUSES: readonly string[] = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
];

/** Statuses a batch never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set([
  'failed',
  'completed',
  'expired',
  'cancelled',
]);

/** One entry of `errors.data`: why validation failed, with the input line when known. */
export interface BatchError {
  code: string | undefined;
  message: string | undefined;
  param: string | undefined;
  /** The input file's line (1-based, as the service reports it). */
  line: number | undefined;
}

export interface BatchRequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** A batch as this tool reads it (the fields of OpenAI's `Batch` that it uses). */
export interface Batch {
  id: string;
  /** A known status, or whatever a server sent that this tool does not know (not terminal). */
  status: BatchStatus | (string & {});
  endpoint: string | undefined;
  model: string | undefined;
  input_file_id: string | undefined;
  output_file_id: string | undefined;
  error_file_id: string | undefined;
  /** Unix seconds. */
  created_at: number | undefined;
  expires_at: number | undefined;
  completed_at: number | undefined;
  request_counts: BatchRequestCounts;
  errors: BatchError[];
  metadata: Record<string, string>;
  usage: { input_tokens: number; output_tokens: number; total_tokens: number } | undefined;
}

export interface CreateBatchRequest {
  input_file_id: string;
  endpoint: string;
  completion_window: '24h';
  metadata?: Record<string, string>;
}

export interface BatchPage {
  data: Batch[];
  hasMore: boolean;
  lastId: string | undefined;
}

export class Batches {
  constructor(private readonly client: ApiClient) {}

  /** `POST /batches`. A 404 means the server has no batch engine. */
  async create(body: CreateBatchRequest, signal?: AbortSignal): Promise<Batch> {
    try {
      return parseBatch(await this.client.postJson('/batches', body, { signal }));
    } catch (error) {
      throw noBatchEngine(error, this.client, 'POST /batches');
    }
  }

  /** `GET /batches/{id}`. */
  async retrieve(id: string, signal?: AbortSignal): Promise<Batch> {
    try {
      return parseBatch(
        await this.client.getJson(`/batches/${encodeURIComponent(id)}`, { signal }),
      );
    } catch (error) {
      throw notFound(error, `batch ${id}`);
    }
  }

  /** `GET /batches?limit=&after=`: one page, newest first. */
  async list(
    options: { after?: string | undefined; limit?: number },
    signal?: AbortSignal,
  ): Promise<BatchPage> {
    let raw: unknown;
    try {
      raw = await this.client.getJson('/batches', {
        signal,
        query: { limit: options.limit ?? 100, after: options.after },
      });
    } catch (error) {
      throw noBatchEngine(error, this.client, 'GET /batches');
    }
    return parsePage(raw);
  }

  /** Every batch, page after page, newest first; stops after `maxPages`. */
  async *listAll(options: { maxPages?: number } = {}, signal?: AbortSignal): AsyncGenerator<Batch> {
    let after: string | undefined;
    for (let page = 0; page < (options.maxPages ?? Infinity); page++) {
      const { data, hasMore, lastId } = await this.list({ after, limit: 100 }, signal);
      yield* data;
      if (!hasMore || data.length === 0) return;
      after = lastId ?? data.at(-1)?.id;
    }
  }

  /** `POST /batches/{id}/cancel`: the batch, now `cancelling` (or already terminal). */
  async cancel(id: string, signal?: AbortSignal): Promise<Batch> {
    try {
      return parseBatch(
        await this.client.postJson(`/batches/${encodeURIComponent(id)}/cancel`, {}, { signal }),
      );
    } catch (error) {
      throw notFound(error, `batch ${id}`);
    }
  }
}

/**
 * A 404 on a collection (`/files`, `/batches`) means the server has no batch engine at all:
 * one clear error instead of "not found".
 */
export function noBatchEngine(error: unknown, client: ApiClient, call: string): unknown {
  if (!(error instanceof APIError) || error.status !== 404) return error;
  const url = client.resourceUrl('');
  return new APIError(
    404,
    error.info,
    { requestId: error.requestId, url: error.url },
    ExitCode.REJECTED,
    `${url.host} has no batch engine (HTTP 404 on ${call})`,
    'write the requests with --batch-file (for vllm run-batch or an upload by hand), or run without --batch-api',
  );
}

/** A 404 on one object: it does not exist for this key (another project, or deleted). */
export function notFound(error: unknown, what: string): unknown {
  if (!(error instanceof APIError) || error.status !== 404) return error;
  return new APIError(
    404,
    error.info,
    { requestId: error.requestId, url: error.url },
    ExitCode.REJECTED,
    `${what} was not found on the server (HTTP 404)`,
    'check that the same provider, base URL and key are in use as when it was submitted',
  );
}

/** Reads a `Batch` answer; throws when it is not one. */
export function parseBatch(raw: unknown): Batch {
  const record = asRecord(raw);
  const id = record?.id;
  const status = record?.status;
  if (!record || typeof id !== 'string' || typeof status !== 'string') {
    throw new MalformedResponseError('the server answered without a batch (no id or status)');
  }
  const lower = status.toLowerCase();
  const counts = asRecord(record.request_counts);
  const usage = asRecord(record.usage);
  return {
    id,
    status: STATUSES.includes(lower) ? lower : status,
    endpoint: text(record.endpoint),
    model: text(record.model),
    input_file_id: text(record.input_file_id),
    output_file_id: text(record.output_file_id),
    error_file_id: text(record.error_file_id),
    created_at: seconds(record.created_at),
    expires_at: seconds(record.expires_at),
    completed_at: seconds(record.completed_at),
    request_counts: {
      total: count(counts?.total),
      completed: count(counts?.completed),
      failed: count(counts?.failed),
    },
    errors: parseErrors(record.errors),
    metadata: stringMap(record.metadata),
    usage: usage
      ? {
          input_tokens: count(usage.input_tokens),
          output_tokens: count(usage.output_tokens),
          total_tokens: count(usage.total_tokens),
        }
      : undefined,
  };
}

/** A list answer: OpenAI's `{object: "list", data, has_more, last_id}`, or a bare array. */
export function parsePage(raw: unknown): BatchPage {
  if (Array.isArray(raw)) return { data: raw.map(parseBatch), hasMore: false, lastId: undefined };
  const record = asRecord(raw);
  if (!record || !Array.isArray(record.data)) {
    throw new MalformedResponseError('the server answered GET /batches without a list');
  }
  return {
    data: (record.data as unknown[]).map(parseBatch),
    hasMore: record.has_more === true,
    lastId: text(record.last_id),
  };
}

function parseErrors(raw: unknown): BatchError[] {
  const data = asRecord(raw)?.data ?? raw;
  if (!Array.isArray(data)) return [];
  return (data as unknown[]).map((item) => {
    const e = asRecord(item) ?? {};
    const line = typeof e.line === 'number' && Number.isInteger(e.line) ? e.line : undefined;
    return {
      code: text(e.code),
      message: text(e.message),
      param: text(e.param),
      line,
    };
  });
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Unix seconds from a number, or from an ISO date (Azure's older API versions). */
function seconds(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  return undefined;
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(asRecord(value) ?? {})) {
    if (typeof item === 'string') out[key] = item;
  }
  return out;
}
