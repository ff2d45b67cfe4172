/**
 * A loopback stand-in for a batch engine (`/files`, `/batches`) on 127.0.0.1, port 0, as
 * strict as the real one (shared/reference/batch-api.md): multipart uploads with `purpose`,
 * the key checked, every create body and every answer checked against OpenAI's schemas
 * (test/fixtures/openapi-batch.json), and each input file validated line by line: JSON,
 * `custom_id` unique, `method` POST, `url` equal to the batch's `endpoint`, one model, a valid
 * chat request body without `stream`, and size limits (small ones force sharding).
 *
 * Batches go `validating → in_progress → finalizing → completed` (or `failed` when the file
 * broke a rule), one step per `advance()` or per `stepMs`; `expire()` and cancellation leave
 * partial results. Output lines are shuffled; each request is answered with a deterministic
 * fake completion. Uploads are stored on disk and read back as streams: a 190 MB file costs
 * the server no memory to speak of. No vitest here: the benchmark uses it too.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { readLines } from '../../src/batch-api/lines.js';
import { schemaValidators } from './openapi-schema.js';

const schemas = schemaValidators('openapi-batch.json', [
  'Batch',
  'OpenAIFile',
  'CreateBatchRequest',
  'ListBatchesResponse',
  'CreateFileRequest',
  'ErrorResponse',
] as const);
const chatSchemas = schemaValidators('openapi-chat.json', [
  'CreateChatCompletionRequest',
  'CreateChatCompletionResponse',
] as const);

export type FakeAnswer =
  | { text: string; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { status: number; error: { message: string; type?: string; code?: string; param?: string } };

export interface BatchServerOptions {
  /** Requests must carry this key (`Authorization: Bearer`, or Azure's `api-key`). */
  apiKey?: string;
  /** Azure OpenAI's v1 paths (`/openai/v1/...`), `api-key` header, `endpoint` without `/v1`. */
  azure?: boolean;
  /** Largest input file a batch accepts, in bytes (default 200,000,000). */
  maxFileBytes?: number;
  /** Most requests in one batch (default 50,000). */
  maxRequests?: number;
  /** Advance every unfinished batch one step each `stepMs` (default: only by `advance()`). */
  stepMs?: number;
  /** The answer to one request (default: a fake completion naming its custom_id and image). */
  answer?: (body: any, customId: string) => FakeAnswer;
  /** Where a rejected request's line goes (default: the error file). */
  rejectedTo?: 'output' | 'error';
  /** Requests a cancel lets finish (default: half, rounded down). */
  cancelKeeps?: (total: number) => number;
  /** Shuffle seed for output lines. */
  seed?: number;
}

interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
  /** On disk (uploads), or in memory (outputs, which are small). */
  path?: string;
  content?: string;
}

interface LineError {
  code: string;
  message: string;
  line?: number;
  param?: string;
}

export interface StoredBatch {
  id: string;
  endpoint: string;
  input_file_id: string;
  metadata: Record<string, string> | undefined;
  status: string;
  created_at: number;
  times: Record<string, number>;
  model: string | undefined;
  /** The input's custom_ids and bodies, in order (read once the file is validated). */
  lines: { customId: string; body: any }[];
  errors: LineError[];
  counts: { total: number; completed: number; failed: number };
  /** Tokens of the requests run so far (as OpenAI reports for batches since 2025-09-07). */
  usage?: { input: number; output: number };
  output_file_id?: string;
  error_file_id?: string;
  lastStep: number;
}

export interface BatchServer {
  /** `http://127.0.0.1:PORT/v1` (Azure: `…/openai/v1`). */
  baseUrl: string;
  origin: string;
  files: Map<string, StoredFile>;
  batches: Map<string, StoredBatch>;
  /** Every request: method and path. */
  log: { method: string; path: string }[];
  /** Rules the client broke or answers that failed their schema; a test expects none. */
  violations: string[];
  /** Injected faults, consumed one per request of that kind. */
  faults: {
    /** Creates that register the batch and then never answer. */
    hangCreates: number;
    /** Uploads that store the file and then reset the connection. */
    resetUploads: number;
  };
  /** One step for one batch, or for every unfinished one. */
  advance(id?: string): void;
  /** Steps until finished. */
  finish(id?: string): void;
  /** Ends a running batch as `expired`: the first `done` requests answered, the rest `batch_expired`. */
  expire(id: string, done: number): void;
  close(): Promise<void>;
}

export async function startBatchServer(opts: BatchServerOptions = {}): Promise<BatchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'batch-server-'));
  const prefix = opts.azure ? '/openai/v1' : '/v1';
  const maxFileBytes = opts.maxFileBytes ?? 200_000_000;
  const maxRequests = opts.maxRequests ?? 50_000;
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, StoredBatch>();
  const log: { method: string; path: string }[] = [];
  const violations: string[] = [];
  const faults = { hangCreates: 0, resetUploads: 0 };
  const hanging = new Set<http.ServerResponse>();
  let counter = 0;
  let seed = opts.seed ?? 42;
  const random = (): number => {
    // mulberry32: a small seeded generator, so shuffles repeat.
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const now = (): number => Math.floor(Date.now() / 1000);
  const nextId = (kind: string): string => `${kind}_${String(++counter).padStart(6, '0')}`;

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    check?: keyof typeof schemas,
  ): void => {
    if (check && status < 300 && !schemas[check](body)) {
      violations.push(`answer is not a valid ${check}: ${JSON.stringify(schemas[check].errors)}`);
    }
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': nextId('req') });
    res.end(JSON.stringify(body));
  };
  const fail = (
    res: http.ServerResponse,
    status: number,
    message: string,
    code?: string,
    param?: string,
  ): void => {
    send(res, status, {
      error: { message, type: 'invalid_request_error', param: param ?? null, code: code ?? null },
    });
  };

  const fileObject = (file: StoredFile): object => ({
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.created_at,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
  });

  const batchObject = (batch: StoredBatch): object => {
    const out: Record<string, unknown> = {
      id: batch.id,
      object: 'batch',
      endpoint: batch.endpoint,
      input_file_id: batch.input_file_id,
      completion_window: '24h',
      status: batch.status,
      created_at: batch.created_at,
      expires_at: batch.created_at + 86_400,
      request_counts: batch.counts,
    };
    if (batch.model) out.model = batch.model;
    for (const [key, at] of Object.entries(batch.times)) out[`${key}_at`] = at;
    if (batch.output_file_id) out.output_file_id = batch.output_file_id;
    if (batch.error_file_id) out.error_file_id = batch.error_file_id;
    if (batch.status === 'failed') {
      out.errors = {
        object: 'list',
        data: batch.errors.map((e) => ({
          code: e.code,
          message: e.message,
          param: e.param ?? null,
          line: e.line ?? null,
        })),
      };
    }
    if (batch.metadata) out.metadata = batch.metadata;
    if (batch.usage) {
      out.usage = {
        input_tokens: batch.usage.input,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: batch.usage.output,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: batch.usage.input + batch.usage.output,
      };
    }
    return out;
  };

  /** Reads and checks an input file as the real validation step does. */
  const validate = async (batch: StoredBatch, file: StoredFile): Promise<void> => {
    const errors: LineError[] = [];
    const seen = new Set<string>();
    let lineNo = 0;
    if (file.bytes > maxFileBytes) {
      errors.push({
        code: 'file_too_large',
        message: `The input file is ${file.bytes} bytes; the limit is ${maxFileBytes}.`,
      });
    }
    if (!file.path) throw new Error('an input file is on disk');
    for await (const text of readLines(createReadStream(file.path))) {
      lineNo++;
      if (errors.length > 20) break;
      let line: any;
      try {
        line = JSON.parse(text);
      } catch {
        errors.push({
          code: 'invalid_json_line',
          message: 'This line is not parseable as valid JSON.',
          line: lineNo,
        });
        continue;
      }
      const bad = (code: string, message: string, param?: string): void => {
        errors.push({ code, message, line: lineNo, ...(param ? { param } : {}) });
      };
      const keys = Object.keys(line ?? {})
        .sort()
        .join(',');
      if (keys !== 'body,custom_id,method,url') bad('invalid_request', `unexpected keys: ${keys}`);
      if (typeof line?.custom_id !== 'string' || line.custom_id === '') {
        bad('missing_required_parameter', 'custom_id is required', 'custom_id');
        continue;
      }
      if (seen.has(line.custom_id))
        bad('duplicate_custom_id', `custom_id ${line.custom_id} is not unique`, 'custom_id');
      seen.add(line.custom_id);
      if (line.method !== 'POST') bad('invalid_method', 'Only POST is supported', 'method');
      const sameUrl = opts.azure
        ? line.url === batch.endpoint || line.url === `/v1${batch.endpoint}`
        : line.url === batch.endpoint;
      if (!sameUrl)
        bad(
          'url_mismatch',
          `url ${line.url} does not match the batch endpoint ${batch.endpoint}`,
          'url',
        );
      const body = line.body;
      if (typeof body !== 'object' || body === null) {
        bad('invalid_request', 'body must be an object', 'body');
        continue;
      }
      if ('stream' in body || 'stream_options' in body)
        bad('invalid_request', 'stream is not supported in a batch', 'body.stream');
      if (!chatSchemas.CreateChatCompletionRequest(body))
        bad(
          'invalid_request',
          `body: ${JSON.stringify(chatSchemas.CreateChatCompletionRequest.errors).slice(0, 300)}`,
          'body',
        );
      batch.model ??= body.model;
      if (body.model !== batch.model)
        bad('model_mismatch', `all requests must use model ${batch.model}`, 'body.model');
      batch.lines.push({ customId: line.custom_id, body });
    }
    if (lineNo === 0) errors.push({ code: 'empty_file', message: 'The input file is empty.' });
    if (lineNo > maxRequests)
      errors.push({
        code: 'too_many_tasks',
        message: `The batch has ${lineNo} requests; the limit is ${maxRequests}.`,
      });
    batch.errors = errors;
    batch.counts = { total: errors.length > 0 ? 0 : lineNo, completed: 0, failed: 0 };
  };

  const defaultAnswer = (body: any, customId: string): FakeAnswer => {
    const parts = body?.messages?.find((m: any) => m.role === 'user')?.content ?? [];
    const image =
      (Array.isArray(parts) ? parts : []).find((p: any) => p.type === 'image_url')?.image_url
        ?.url ?? '';
    const hash = createHash('sha256').update(String(image)).digest('hex').slice(0, 12);
    return { text: `answer to ${customId} (image ${hash})` };
  };

  const outputLine = (
    batch: StoredBatch,
    customId: string,
    body: any,
  ): { line: object; ok: boolean } => {
    const answer = (opts.answer ?? defaultAnswer)(body, customId);
    const requestId = nextId('req');
    if ('error' in answer) {
      return {
        ok: false,
        line: {
          id: nextId('batch_req'),
          custom_id: customId,
          response: {
            status_code: answer.status,
            request_id: requestId,
            body: {
              error: { type: 'invalid_request_error', param: null, code: null, ...answer.error },
            },
          },
          error: null,
        },
      };
    }
    const usage = answer.usage ?? { prompt_tokens: 100, completion_tokens: 10 };
    batch.usage ??= { input: 0, output: 0 };
    batch.usage.input += usage.prompt_tokens;
    batch.usage.output += usage.completion_tokens;
    const completion = {
      id: `chatcmpl-${requestId}`,
      object: 'chat.completion',
      created: now(),
      model: batch.model ?? body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: answer.text, refusal: null },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    };
    if (!chatSchemas.CreateChatCompletionResponse(completion))
      violations.push(
        `fake completion is invalid: ${JSON.stringify(chatSchemas.CreateChatCompletionResponse.errors)}`,
      );
    return {
      ok: true,
      line: {
        id: nextId('batch_req'),
        custom_id: customId,
        response: { status_code: 200, request_id: requestId, body: completion },
        error: null,
      },
    };
  };

  const shuffle = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  };

  const storeOutput = (batch: StoredBatch, kind: 'output' | 'error', lines: object[]): void => {
    if (lines.length === 0) return;
    const id = nextId('file');
    const content = shuffle(lines)
      .map((l) => `${JSON.stringify(l)}\n`)
      .join('');
    files.set(id, {
      id,
      filename: `${batch.id}_${kind}.jsonl`,
      purpose: 'batch_output',
      bytes: Buffer.byteLength(content),
      created_at: now(),
      content,
    });
    if (kind === 'output') batch.output_file_id = id;
    else batch.error_file_id = id;
  };

  /** Runs the first `done` requests; the rest get `notRun` (an expiry line) or nothing. */
  const produce = (batch: StoredBatch, done: number, notRun: 'expired' | 'nothing'): void => {
    const output: object[] = [];
    const errors: object[] = [];
    batch.lines.forEach(({ customId, body }, i) => {
      if (i < done) {
        const { line, ok } = outputLine(batch, customId, body);
        if (ok) batch.counts.completed++;
        else batch.counts.failed++;
        (ok || opts.rejectedTo === 'output' ? output : errors).push(line);
      } else if (notRun === 'expired') {
        batch.counts.failed++;
        errors.push({
          id: nextId('batch_req'),
          custom_id: customId,
          response: null,
          error: {
            code: 'batch_expired',
            message: 'This request could not be executed before the completion window expired.',
          },
        });
      }
    });
    storeOutput(batch, 'output', output);
    storeOutput(batch, 'error', errors);
  };

  const step = (batch: StoredBatch): void => {
    batch.lastStep = Date.now();
    const to = (status: string): void => {
      batch.status = status;
      batch.times[status] = now();
    };
    switch (batch.status) {
      case 'validating':
        to(batch.errors.length > 0 ? 'failed' : 'in_progress');
        return;
      case 'in_progress':
        to('finalizing');
        return;
      case 'finalizing':
        produce(batch, batch.lines.length, 'nothing');
        to('completed');
        return;
      case 'cancelling':
        produce(
          batch,
          (opts.cancelKeeps ?? ((n) => Math.floor(n / 2)))(batch.lines.length),
          'nothing',
        );
        to('cancelled');
        return;
      default:
        return;
    }
  };

  const terminal = (status: string): boolean =>
    ['completed', 'failed', 'expired', 'cancelled'].includes(status);

  const tick = (): void => {
    if (!opts.stepMs) return;
    for (const batch of batches.values()) {
      while (!terminal(batch.status) && Date.now() - batch.lastStep >= opts.stepMs) step(batch);
    }
  };

  const authorized = (req: http.IncomingMessage): boolean => {
    if (!opts.apiKey) return true;
    return opts.azure
      ? req.headers['api-key'] === opts.apiKey
      : req.headers.authorization === `Bearer ${opts.apiKey}`;
  };

  const readJson = async (req: http.IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  };

  const upload = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('multipart/form-data')) {
      violations.push(`upload with content-type ${type}`);
      return fail(res, 400, 'Expected multipart/form-data');
    }
    const id = nextId('file');
    const target = path.join(dir, id);
    const fields: Record<string, string> = {};
    // Set from the parser's callbacks.
    const got: { filename?: string | undefined; fileSeen: boolean; fieldAfterFile: boolean } = {
      fileSeen: false,
      fieldAfterFile: false,
    };
    await new Promise<void>((resolve, reject) => {
      const parser = busboy({ headers: req.headers, limits: { files: 2, fields: 10 } });
      const writes: Promise<void>[] = [];
      parser.on('field', (name, value) => {
        if (got.fileSeen) got.fieldAfterFile = true;
        fields[name] = value;
      });
      parser.on('file', (name, stream, info) => {
        if (name !== 'file' || got.fileSeen) {
          violations.push(`unexpected file part ${name}`);
          stream.resume();
          return;
        }
        got.fileSeen = true;
        got.filename = info.filename;
        writes.push(pipeline(stream, createWriteStream(target)));
      });
      parser.on('error', reject);
      parser.on('close', () => {
        Promise.all(writes).then(() => resolve(), reject);
      });
      req.pipe(parser);
    });
    const filename = got.filename;
    if (!got.fileSeen || !filename)
      return fail(res, 400, "'file' is a required property", undefined, 'file');
    const request = { ...fields, file: '<binary>' };
    if (!schemas.CreateFileRequest(request)) {
      violations.push(`upload fields: ${JSON.stringify(schemas.CreateFileRequest.errors)}`);
      return fail(res, 400, `Invalid upload: ${JSON.stringify(fields)}`);
    }
    if (fields.purpose !== 'batch')
      return fail(res, 400, `purpose must be batch for a batch input`, undefined, 'purpose');
    if (got.fieldAfterFile) violations.push('purpose came after the file part');
    const file: StoredFile = {
      id,
      filename,
      purpose: 'batch',
      bytes: statSync(target).size,
      created_at: now(),
      path: target,
    };
    files.set(id, file);
    if (faults.resetUploads > 0) {
      faults.resetUploads--;
      req.socket.destroy();
      return;
    }
    send(res, 200, fileObject(file), 'OpenAIFile');
  };

  const create = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let body: any;
    try {
      body = await readJson(req);
    } catch {
      violations.push('create body is not JSON');
      return fail(res, 400, 'We could not parse the JSON body of your request.');
    }
    const checked =
      opts.azure && typeof body?.endpoint === 'string' && !body.endpoint.startsWith('/v1')
        ? { ...body, endpoint: `/v1${body.endpoint}` }
        : body;
    if (!schemas.CreateBatchRequest(checked)) {
      violations.push(`create body: ${JSON.stringify(schemas.CreateBatchRequest.errors)}`);
      return fail(
        res,
        400,
        `Invalid request: ${JSON.stringify(schemas.CreateBatchRequest.errors)}`,
      );
    }
    const meta = (body.metadata ?? {}) as Record<string, string>;
    if (
      Object.keys(meta).length > 16 ||
      Object.entries(meta).some(([k, v]) => k.length > 64 || v.length > 512)
    ) {
      violations.push('metadata over its limits');
      return fail(res, 400, 'Invalid metadata', undefined, 'metadata');
    }
    const file = files.get(body.input_file_id);
    if (!file)
      return fail(
        res,
        404,
        `No such File object: ${body.input_file_id}`,
        undefined,
        'input_file_id',
      );
    if (file.purpose !== 'batch') return fail(res, 400, 'The input file must have purpose batch');
    const batch: StoredBatch = {
      id: nextId('batch'),
      endpoint: body.endpoint,
      input_file_id: file.id,
      metadata: body.metadata ?? undefined,
      status: 'validating',
      created_at: now(),
      times: {},
      model: undefined,
      lines: [],
      errors: [],
      counts: { total: 0, completed: 0, failed: 0 },
      lastStep: Date.now(),
    };
    await validate(batch, file);
    batches.set(batch.id, batch);
    if (faults.hangCreates > 0) {
      faults.hangCreates--;
      hanging.add(res);
      return;
    }
    send(res, 200, batchObject(batch), 'Batch');
  };

  const list = (url: URL, res: http.ServerResponse): void => {
    const limit = Number(url.searchParams.get('limit') ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      return fail(res, 400, 'limit must be 1 to 100', undefined, 'limit');
    const all = [...batches.values()].reverse();
    const after = url.searchParams.get('after');
    const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const page = all.slice(start, start + limit);
    const body: Record<string, unknown> = {
      object: 'list',
      data: page.map(batchObject),
      has_more: start + limit < all.length,
    };
    if (page.length > 0) {
      body.first_id = page[0]!.id;
      body.last_id = page.at(-1)!.id;
    }
    send(res, 200, body, 'ListBatchesResponse');
  };

  const cancel = (batch: StoredBatch, res: http.ServerResponse): void => {
    if (!['validating', 'in_progress', 'finalizing'].includes(batch.status)) {
      return fail(res, 409, `Cannot cancel a batch with status '${batch.status}'.`);
    }
    batch.status = 'cancelling';
    batch.times.cancelling = now();
    batch.lastStep = Date.now();
    send(res, 200, batchObject(batch), 'Batch');
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? '';
    log.push({ method, path: url.pathname });
    if (!authorized(req)) {
      req.resume();
      return send(res, 401, {
        error: {
          message: 'Incorrect API key provided.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
    }
    if (opts.azure && url.searchParams.has('api-version'))
      violations.push('api-version sent to a v1 path');
    tick();
    const rest = url.pathname.startsWith(`${prefix}/`)
      ? url.pathname.slice(prefix.length)
      : undefined;
    const parts = rest?.split('/').filter(Boolean) ?? [];
    if (method === 'POST' && rest === '/files') return upload(req, res);
    if (method === 'POST' && rest === '/batches') return create(req, res);
    req.resume();
    if (method === 'GET' && rest === '/batches') return list(url, res);
    if (parts[0] === 'files' && parts[1]) {
      const file = files.get(parts[1]);
      if (!file) return fail(res, 404, `No such File object: ${parts[1]}`);
      if (method === 'GET' && parts.length === 2)
        return send(res, 200, fileObject(file), 'OpenAIFile');
      if (method === 'GET' && parts[2] === 'content' && parts.length === 3) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        if (file.content !== undefined) {
          res.end(file.content);
          return;
        }
        await pipeline(createReadStream(file.path!), res);
        return;
      }
    }
    if (parts[0] === 'batches' && parts[1]) {
      const batch = batches.get(parts[1]);
      if (!batch) return fail(res, 404, `No batch found with id '${parts[1]}'.`);
      if (method === 'GET' && parts.length === 2)
        return send(res, 200, batchObject(batch), 'Batch');
      if (method === 'POST' && parts[2] === 'cancel' && parts.length === 3)
        return cancel(batch, res);
    }
    fail(res, 404, `Invalid URL (${method} ${url.pathname})`);
  };

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      violations.push(`server error: ${String(error)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error) } }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  const pick = (id?: string): StoredBatch[] => {
    if (id === undefined) return [...batches.values()].filter((b) => !terminal(b.status));
    const batch = batches.get(id);
    if (!batch) throw new Error(`no batch ${id}`);
    return [batch];
  };

  return {
    baseUrl: `${origin}${prefix}`,
    origin,
    files,
    batches,
    log,
    violations,
    faults,
    advance(id) {
      for (const batch of pick(id)) step(batch);
    },
    finish(id) {
      for (const batch of pick(id)) while (!terminal(batch.status)) step(batch);
    },
    expire(id, done) {
      const batch = batches.get(id);
      if (!batch || !['validating', 'in_progress', 'finalizing'].includes(batch.status))
        throw new Error(`batch ${id} is not running`);
      if (batch.status === 'validating') step(batch);
      produce(batch, done, 'expired');
      batch.status = 'expired';
      batch.times.expired = now();
    },
    async close() {
      for (const res of hanging) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
