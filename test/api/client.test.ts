/**
 * The real `ApiClient` against a real HTTP server on 127.0.0.1 (no mocks of undici or fetch).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import type { ClientOptions, Gate, GateOutcome, RetryInfo } from '../../src/api/client.js';
import { buildChatRequest } from '../../src/api/request.js';
import type { ChatRequestOptions, ChatRequestPayload } from '../../src/api/request.js';
import {
  APIError,
  ConnectionError,
  InterruptedError,
  MalformedResponseError,
  TimeoutError,
} from '../../src/errors.js';
import { guardStream, Redactor } from '../../src/output/guard.js';
import { PLAIN } from '../../src/ui/colors.js';
import { Reporter } from '../../src/ui/reporter.js';
import { answer, completionBody, errorHandler, sseBody, startServer } from '../helpers/server.js';
import { collector } from '../helpers/streams.js';
import type { Handler, RecordedRequest, TestServer } from '../helpers/server.js';

const KEY = 'sk-test-SECRET-1234567890';
const USER_AGENT = 'describe-image/0.1.0 (node test)';
const USAGE = { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 };
const IMAGE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5]);

let server: TestServer;
let extraServers: TestServer[] = [];
let clients: ApiClient[] = [];
let logs: string[] = [];

beforeEach(async () => {
  server = await startServer();
  extraServers = [];
  clients = [];
  logs = [];
});

afterEach(async () => {
  // Servers first: destroying their sockets ends anything still in flight, so close() returns.
  await server.close();
  for (const extra of extraServers) await extra.close();
  for (const client of clients) await client.close();
});

/** A client for the test server; `retries` and `maxWaitMs` fill its retry policy. */
function makeClient(
  overrides: Partial<ClientOptions> & { retries?: number; maxWaitMs?: number } = {},
): ApiClient {
  const { retries = 2, maxWaitMs = 60_000, ...rest } = overrides;
  const client = new ApiClient({
    baseUrl: server.baseUrl,
    apiKey: KEY,
    userAgent: USER_AGENT,
    timeoutMs: 5_000,
    // random() = 1 gives the smallest jitter.
    retry: { retries, maxWaitMs, random: () => 1 },
    log: (line) => logs.push(line),
    ...rest,
  });
  clients.push(client);
  return client;
}

function makePayload(overrides: Partial<ChatRequestOptions> = {}): ChatRequestPayload {
  return buildChatRequest({
    model: 'gpt-4o',
    prompt: 'What is in this image?',
    images: [{ mime: 'image/png', data: IMAGE }],
    stream: true,
    includeUsage: true,
    ...overrides,
  });
}

/** Awaits a promise that must reject, and checks the class of what it rejected with. */
async function rejectionOf<T>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
): Promise<T> {
  const error: unknown = await promise.then(
    () => new Error('expected the promise to reject, but it resolved'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as T;
}

/** A handler that answers the n-th request with the n-th handler (the last one repeats). */
function sequence(...handlers: Handler[]): Handler {
  let n = 0;
  return (req, res, raw) => {
    const handler = handlers[Math.min(n++, handlers.length - 1)];
    if (!handler) throw new Error('no handler');
    return handler(req, res, raw);
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

function chunk(
  content: string | undefined,
  finishReason: string | null = null,
  extra: object = {},
): string {
  const delta = content === undefined ? {} : { content };
  return sse({
    id: 'chatcmpl-x',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
    ...extra,
  });
}

const ROLE_CHUNK = sse({
  id: 'chatcmpl-x',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
});

function startStream(res: http.ServerResponse, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'x-request-id': 'req_stream',
    ...headers,
  });
}

const resetHandler: Handler = (_req, res) => {
  res.socket?.destroy();
};

const silentHandler: Handler = () => {
  // never answers
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectNoKey(text: string): void {
  expect(text).not.toContain(KEY);
  expect(text).not.toContain('SECRET');
}

describe('streaming', () => {
  it('a stream that ends without its last blank line (and no [DONE]) keeps its last event', async () => {
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}`;
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${chunk({ content: 'Hello' }, null)}\n\n${chunk({ content: ' world' }, 'stop')}`);
    });
    const result = await makeClient().complete(makePayload());
    expect(result.text).toBe('Hello world');
    expect(result.finishReason).toBe('stop');
    expect(server.requests).toHaveLength(1);
  });

  it('concatenates onText pieces into the result text and reads usage from the usage-only chunk', async () => {
    const text = 'A tabby cat sleeping on a red mat next to a window.';
    server.handle((req, res) =>
      answer(req, res, { text, id: 'chatcmpl-abc', model: 'gpt-4o-2024-08-06' }),
    );
    const pieces: string[] = [];
    const result = await makeClient().complete(makePayload(), { onText: (t) => pieces.push(t) });

    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(text);
    expect(result.text).toBe(text);
    expect(result.usage).toEqual(USAGE);
    expect(result.finishReason).toBe('stop');
    expect(result.refusal).toBe(false);
    expect(result.id).toBe('chatcmpl-abc');
    expect(result.model).toBe('gpt-4o-2024-08-06');
    expect(server.requests).toHaveLength(1);
  });

  it('sends the expected method, path, headers and body', async () => {
    await makeClient().complete(makePayload());
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^describe-image\//);
    expect(req.headers.accept).toBe('text/event-stream');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['content-length']).toBe(String(Buffer.byteLength(req.body)));
    expect(req.json.stream).toBe(true);
    expect(req.json.stream_options).toEqual({ include_usage: true });
    expect(req.json.model).toBe('gpt-4o');
    const content = req.json.messages[0].content;
    expect(content[0]).toEqual({ type: 'text', text: 'What is in this image?' });
    expect(content[1].image_url.url).toBe(
      `data:image/png;base64,${Buffer.from(IMAGE).toString('base64')}`,
    );
  });

  it('sends no authorization header when there is no key', async () => {
    await makeClient({ apiKey: undefined }).complete(makePayload());
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.headers).not.toHaveProperty('authorization');
    expect(server.requests[0]!.headers).not.toHaveProperty('api-key');
  });

  it('posts to /v1/chat/completions whether or not the base URL ends with a slash', async () => {
    const withSlash = makeClient({ baseUrl: `${server.baseUrl}/` });
    const withoutSlash = makeClient({ baseUrl: server.baseUrl });
    expect(withSlash.endpoint).toBe(`${server.origin}/v1/chat/completions`);
    expect(withoutSlash.endpoint).toBe(`${server.origin}/v1/chat/completions`);
    await withSlash.complete(makePayload());
    await withoutSlash.complete(makePayload());
    expect(server.requests.map((r) => r.url)).toEqual([
      '/v1/chat/completions',
      '/v1/chat/completions',
    ]);
  });

  it("sends the key in Azure's api-key header, with the query parameters and extra headers", async () => {
    const client = makeClient({
      keyHeader: 'api-key',
      query: { 'api-version': '2024-10-21' },
      headers: { 'x-extra': 'yes' },
    });
    await client.complete(makePayload());
    const req = server.requests[0]!;
    expect(req.url).toBe('/v1/chat/completions?api-version=2024-10-21');
    expect(req.headers['api-key']).toBe(KEY);
    expect(req.headers).not.toHaveProperty('authorization');
    expect(req.headers['x-extra']).toBe('yes');
  });

  it('reads usage from the finish chunk when there is no usage chunk', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(
        ROLE_CHUNK +
          chunk('Two dogs.') +
          chunk(undefined, 'stop', { usage: USAGE }) +
          'data: [DONE]\n\n',
      );
    });
    const result = await makeClient().complete(makePayload());
    expect(result.text).toBe('Two dogs.');
    expect(result.usage).toEqual(USAGE);
    expect(result.finishReason).toBe('stop');
  });

  it('accepts a stream that ends without [DONE] after a finish_reason', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(sseBody({ text: 'A bird on a wire.' }, { done: false }));
    });
    const pieces: string[] = [];
    const result = await makeClient().complete(makePayload(), { onText: (t) => pieces.push(t) });
    expect(result.text).toBe('A bird on a wire.');
    expect(pieces.join('')).toBe('A bird on a wire.');
    expect(result.finishReason).toBe('stop');
    expect(result.usage).toEqual(USAGE);
    expect(server.requests).toHaveLength(1);
  });

  it('handles an Azure stream: placeholder first chunk, a chunk without delta after the finish', async () => {
    const base = {
      object: 'chat.completion.chunk',
      created: 1_733_000_000,
      system_fingerprint: 'fp_azure',
    };
    const id = 'chatcmpl-azure-1';
    const model = 'gpt-4o-2024-11-20';
    const filter = {
      hate: { filtered: false, severity: 'safe' },
      violence: { filtered: false, severity: 'safe' },
    };
    server.handle((_req, res) => {
      startStream(res, { 'apim-request-id': 'azure-req-1' });
      res.end(
        sse({
          id: '',
          choices: [],
          created: 0,
          model: '',
          object: '',
          system_fingerprint: null,
          prompt_filter_results: [{ prompt_index: 0, content_filter_results: filter }],
        }) +
          sse({
            ...base,
            id,
            model,
            choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
          }) +
          sse({
            ...base,
            id,
            model,
            choices: [
              {
                index: 0,
                delta: { content: 'Hello' },
                finish_reason: null,
                content_filter_results: filter,
              },
            ],
          }) +
          sse({
            ...base,
            id,
            model,
            choices: [
              {
                index: 0,
                delta: { content: ' world' },
                finish_reason: null,
                content_filter_results: filter,
              },
            ],
          }) +
          sse({ ...base, id, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
          sse({
            ...base,
            id,
            model,
            choices: [
              {
                index: 0,
                finish_reason: null,
                content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 11 },
                content_filter_results: filter,
              },
            ],
          }) +
          sse({ ...base, id, model, choices: [], usage: USAGE }) +
          'data: [DONE]\n\n',
      );
    });
    const pieces: string[] = [];
    const result = await makeClient().complete(makePayload(), { onText: (t) => pieces.push(t) });
    expect(result).toEqual({
      id,
      model,
      text: 'Hello world',
      refusal: false,
      finishReason: 'stop',
      usage: USAGE,
    });
    expect(pieces.join('')).toBe('Hello world');
  });

  it('fails with MalformedResponseError and does not retry when a stream is cut after text reached onText', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(ROLE_CHUNK + chunk('A cat ') + chunk('on a'));
    });
    const pieces: string[] = [];
    const retries: RetryInfo[] = [];
    const error = await rejectionOf(
      makeClient().complete(makePayload(), {
        onText: (t) => pieces.push(t),
        onRetry: (i) => retries.push(i),
      }),
      MalformedResponseError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/before the answer was complete/);
    expect(pieces.join('')).toBe('A cat on a');
    expect(retries).toHaveLength(0);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a stream cut before any finish_reason when no onText was given', async () => {
    server.handle(
      sequence(
        (_req, res) => {
          startStream(res);
          res.end(ROLE_CHUNK + chunk('A cat ') + chunk('on a'));
        },
        (req, res) => answer(req, res, { text: 'A cat on a mat.' }),
      ),
    );
    const retries: RetryInfo[] = [];
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('A cat on a mat.');
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(MalformedResponseError);
    // random() = 1 gives the smallest jitter: 0.5 s · 0.75.
    expect(retries[0]!.delayMs).toBe(375);
  });

  it('fails with MalformedResponseError when a stream closes without any answer', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end();
    });
    const error = await rejectionOf(
      makeClient({ retries: 0 }).complete(makePayload()),
      MalformedResponseError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/without an answer/);
    expect(server.requests).toHaveLength(1);
  });
});

describe('non-streaming and JSON answers', () => {
  it('reads a non-streamed JSON answer', async () => {
    server.handle((req, res) =>
      answer(req, res, { text: 'A red bicycle.', id: 'chatcmpl-json', finishReason: 'length' }),
    );
    const pieces: string[] = [];
    const result = await makeClient().complete(makePayload({ stream: false }), {
      onText: (t) => pieces.push(t),
    });
    expect(result).toEqual({
      id: 'chatcmpl-json',
      model: 'gpt-4o-2024-08-06',
      text: 'A red bicycle.',
      refusal: false,
      finishReason: 'length',
      usage: USAGE,
    });
    const req = server.requests[0]!;
    expect(req.json.stream).toBe(false);
    expect(req.json).not.toHaveProperty('stream_options');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['content-length']).toBe(String(Buffer.byteLength(req.body)));
  });

  it('accepts a JSON answer from a server that ignores stream: true', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(completionBody({ text: 'A lighthouse at dusk.' })));
    });
    const result = await makeClient().complete(makePayload({ stream: true }));
    expect(server.requests[0]!.json.stream).toBe(true);
    expect(result.text).toBe('A lighthouse at dusk.');
    expect(result.usage).toEqual(USAGE);
    expect(result.finishReason).toBe('stop');
  });

  it('hands the whole answer to onText when a server ignores stream: true', async () => {
    // A caller that streams prints only what onText gives it (commands/describe.ts does not
    // print completion.text when streaming), so the JSON answer must reach onText too.
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completionBody({ text: 'A lighthouse at dusk.' })));
    });
    const pieces: string[] = [];
    const result = await makeClient().complete(makePayload({ stream: true }), {
      onText: (t) => pieces.push(t),
    });
    expect(result.text).toBe('A lighthouse at dusk.');
    expect(pieces.join('')).toBe(result.text);
  });

  it('rejects a 200 text/html answer to a non-streamed request as not JSON, without retrying', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        '<!doctype html><html><head><title>Welcome to nginx!</title></head><body>hi</body></html>',
      );
    });
    const error = await rejectionOf(
      makeClient().complete(makePayload({ stream: false })),
      MalformedResponseError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/not JSON/);
    expect(server.requests).toHaveLength(1);
  });

  it('rejects a 200 JSON answer without choices', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-empty',
          object: 'chat.completion',
          model: 'm',
          choices: [],
        }),
      );
    });
    const error = await rejectionOf(
      makeClient().complete(makePayload({ stream: false })),
      MalformedResponseError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/choices/);
    expect(server.requests).toHaveLength(1);
  });

  it('turns a 200 JSON error object into an APIError with the server message', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_200err' });
      res.end(
        JSON.stringify({
          error: { message: 'Invalid model name gpt-9', type: 'invalid_request_error', code: 400 },
        }),
      );
    });
    const error = await rejectionOf(
      makeClient().complete(makePayload({ stream: false })),
      APIError,
    );
    expect(error.message).toContain('Invalid model name gpt-9');
    expect(error.message).toContain('req_200err');
    expect(error.exitCode).toBe(6);
    expect(server.requests).toHaveLength(1);
  });
});

describe('error events inside a stream', () => {
  const overloaded = {
    error: {
      message: 'The model is overloaded, try again later',
      type: 'server_error',
      code: null,
    },
  };

  it('throws an APIError with the server message and the response request id', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(ROLE_CHUNK + sse(overloaded));
    });
    const error = await rejectionOf(makeClient({ retries: 0 }).complete(makePayload()), APIError);
    expect(error.status).toBeUndefined();
    expect(error.exitCode).toBe(7);
    expect(error.message).toContain('The model is overloaded, try again later');
    expect(error.requestId).toBe('req_stream');
    expect(server.requests).toHaveLength(1);
  });

  it("puts the response's x-request-id in the message of an error event", async () => {
    // APIError shows its request id only through its message (nothing else prints requestId).
    server.handle((_req, res) => {
      startStream(res);
      res.end(ROLE_CHUNK + sse(overloaded));
    });
    const error = await rejectionOf(makeClient({ retries: 0 }).complete(makePayload()), APIError);
    expect(error.requestId).toBe('req_stream');
    expect(error.message).toContain('req_stream');
  });

  it('retries a transient error event when no text was delivered', async () => {
    server.handle(
      sequence(
        (_req, res) => {
          startStream(res);
          res.end(ROLE_CHUNK + sse(overloaded));
        },
        (req, res) => answer(req, res, { text: 'Fine now.' }),
      ),
    );
    const retries: RetryInfo[] = [];
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('Fine now.');
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(APIError);
  });

  it('does not retry an error event that follows text delivered to onText', async () => {
    const gotText = deferred();
    server.handle(async (_req, res) => {
      startStream(res);
      res.write(ROLE_CHUNK + chunk('A partial '));
      await gotText.promise;
      res.end(sse(overloaded));
    });
    const pieces: string[] = [];
    const error = await rejectionOf(
      makeClient().complete(makePayload(), {
        onText: (t) => {
          pieces.push(t);
          gotText.resolve();
        },
      }),
      APIError,
    );
    expect(pieces).toEqual(['A partial ']);
    expect(error.message).toContain('The model is overloaded');
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry an out-of-quota error event (exit code 5)', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(
        ROLE_CHUNK +
          sse({
            error: {
              message:
                'You exceeded your current quota, please check your plan and billing details.',
              type: 'insufficient_quota',
              code: 'insufficient_quota',
            },
          }),
      );
    });
    const retries: RetryInfo[] = [];
    const error = await rejectionOf(
      makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) }),
      APIError,
    );
    expect(error.exitCode).toBe(5);
    expect(error.message).toContain('exceeded your current quota');
    expect(retries).toHaveLength(0);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a rate-limit error event', async () => {
    server.handle(
      sequence(
        (_req, res) => {
          startStream(res);
          res.end(
            ROLE_CHUNK +
              sse({ error: { message: 'Rate limit exceeded: free-models-per-min', code: 429 } }),
          );
        },
        (req, res) => answer(req, res),
      ),
    );
    const retries: RetryInfo[] = [];
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('A cat on a mat.');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error.exitCode).toBe(5);
    expect(server.requests).toHaveLength(2);
  });

  it('does not retry a content-filter error event', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.end(
        ROLE_CHUNK +
          sse({
            error: {
              message: 'The response was filtered due to the content management policy.',
              code: 'content_filter',
            },
          }),
      );
    });
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain('content management policy');
    expect(server.requests).toHaveLength(1);
  });
});

describe('retries', () => {
  const rateLimit = {
    error: {
      message: 'Rate limit reached for gpt-4o on requests per min (RPM)',
      type: 'requests',
      code: 'rate_limit_exceeded',
    },
  };

  it('retries a 429 with retry-after: 0 and succeeds', async () => {
    server.handle(
      sequence(errorHandler(429, rateLimit, { 'retry-after': '0' }), (req, res) =>
        answer(req, res),
      ),
    );
    const retries: RetryInfo[] = [];
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('A cat on a mat.');
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.attempt).toBe(1);
    expect(retries[0]!.delayMs).toBe(0);
    const retryError = retries[0]!.error;
    expect(retryError).toBeInstanceOf(APIError);
    expect(retryError instanceof APIError ? retryError.status : undefined).toBe(429);
    expect(retryError.exitCode).toBe(5);
  });

  it('waits for retry-after-ms on a 429', async () => {
    server.handle(
      sequence(errorHandler(429, rateLimit, { 'retry-after-ms': '60' }), (req, res) =>
        answer(req, res),
      ),
    );
    const retries: RetryInfo[] = [];
    const started = Date.now();
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('A cat on a mat.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(retries.map((r) => r.delayMs)).toEqual([60]);
    expect(server.requests).toHaveLength(2);
  });

  it('waits until the exhausted rate limit resets when a 429 has no retry-after', async () => {
    server.handle(
      sequence(
        errorHandler(429, rateLimit, {
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '20ms',
        }),
        (req, res) => answer(req, res),
      ),
    );
    const retries: RetryInfo[] = [];
    await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(retries.map((r) => r.delayMs)).toEqual([20]);
    expect(server.requests).toHaveLength(2);
  });

  it('retries a 500 twice and succeeds on the third request with --retries 2', async () => {
    const fail = errorHandler(
      500,
      { error: { message: 'Internal error', type: 'server_error' } },
      { 'retry-after-ms': '10' },
    );
    server.handle(
      sequence(fail, fail, (req, res) => answer(req, res, { text: 'Third time lucky.' })),
    );
    const retries: RetryInfo[] = [];
    const result = await makeClient({ retries: 2 }).complete(makePayload(), {
      onRetry: (i) => retries.push(i),
    });
    expect(result.text).toBe('Third time lucky.');
    expect(server.requests).toHaveLength(3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('gives up after --retries + 1 requests on a persistent 500', async () => {
    server.handle(
      errorHandler(
        500,
        { error: { message: 'Internal error', type: 'server_error' } },
        { 'retry-after-ms': '10' },
      ),
    );
    const error = await rejectionOf(makeClient({ retries: 2 }).complete(makePayload()), APIError);
    expect(error.status).toBe(500);
    expect(error.exitCode).toBe(7);
    expect(error.message).toContain('Internal error');
    expect(server.requests).toHaveLength(3);
  });

  it('uses exponential backoff with the injected jitter when the server gives no wait', async () => {
    const fail = errorHandler(503, 'Service Unavailable');
    server.handle(sequence(fail, fail, (req, res) => answer(req, res)));
    const retries: RetryInfo[] = [];
    await makeClient({ retries: 2 }).complete(makePayload(), {
      onRetry: (i) => retries.push(i),
    });
    expect(retries.map((r) => r.delayMs)).toEqual([375, 750]);
    expect(server.requests).toHaveLength(3);
  });

  it('does not retry a 500 with x-should-retry: false', async () => {
    server.handle(
      errorHandler(
        500,
        { error: { message: 'Boom' } },
        { 'x-should-retry': 'false', 'retry-after-ms': '10' },
      ),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(500);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 400 with x-should-retry: true', async () => {
    server.handle(
      sequence(
        errorHandler(
          400,
          { error: { message: 'Try again' } },
          { 'x-should-retry': 'true', 'retry-after-ms': '10' },
        ),
        (req, res) => answer(req, res),
      ),
    );
    const result = await makeClient().complete(makePayload());
    expect(result.text).toBe('A cat on a mat.');
    expect(server.requests).toHaveLength(2);
  });

  it('does not retry a 429 insufficient_quota (exit code 5)', async () => {
    server.handle(
      errorHandler(
        429,
        {
          error: {
            message: 'You exceeded your current quota, please check your plan and billing details.',
            type: 'insufficient_quota',
            param: null,
            code: 'insufficient_quota',
          },
        },
        { 'retry-after-ms': '10' },
      ),
    );
    const retries: RetryInfo[] = [];
    const error = await rejectionOf(
      makeClient({ retries: 3 }).complete(makePayload(), {
        onRetry: (i) => retries.push(i),
      }),
      APIError,
    );
    expect(error.exitCode).toBe(5);
    expect(error.message).toContain('exceeded your current quota');
    expect(retries).toHaveLength(0);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 401 (exit code 4)', async () => {
    server.handle(
      errorHandler(401, {
        error: {
          message: 'Incorrect API key provided: sk-test-***7890.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      }),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(401);
    expect(error.exitCode).toBe(4);
    expect(error.message).toContain('Incorrect API key provided');
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 400 (exit code 6)', async () => {
    server.handle(
      errorHandler(400, {
        error: {
          message: 'Invalid image.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_image',
        },
      }),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(400);
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain('Invalid image.');
    expect(server.requests).toHaveLength(1);
  });

  it('--retries bounds rate-limit retries too: 0 means one request', async () => {
    server.handle(errorHandler(429, rateLimit, { 'retry-after-ms': '5' }));
    const error = await rejectionOf(makeClient({ retries: 0 }).complete(makePayload()), APIError);
    expect(error.exitCode).toBe(5);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 429 within --retries and succeeds', async () => {
    const limited = errorHandler(429, rateLimit, { 'retry-after-ms': '5' });
    server.handle(sequence(limited, limited, (req, res) => answer(req, res)));
    const result = await makeClient({ retries: 2 }).complete(makePayload());
    expect(result.text).toBe('A cat on a mat.');
    expect(server.requests).toHaveLength(3);
  });

  it('a Retry-After longer than --max-wait is not waited out: exit 5 at once, naming the wait', async () => {
    server.handle(errorHandler(429, rateLimit, { 'retry-after': '300' }));
    const started = Date.now();
    const error = await rejectionOf(
      makeClient({ retries: 2, maxWaitMs: 60_000 }).complete(makePayload()),
      APIError,
    );
    expect(error.exitCode).toBe(5);
    expect(error.message).toContain('the server asks to retry in 5 min');
    expect(error.message).toContain('--max-wait');
    expect(server.requests).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('stream_options rejection', () => {
  it('sends again without stream_options, and leaves it out of later requests', async () => {
    const reject = errorHandler(400, {
      error: {
        message: 'Unrecognized request argument supplied: stream_options',
        type: 'invalid_request_error',
        param: 'stream_options',
        code: null,
      },
    });
    server.handle((req, res, raw) => {
      if (req.json?.stream_options !== undefined) return reject(req, res, raw);
      answer(req, res, { text: 'No usage here.' });
    });
    const client = makeClient({ retries: 0 });
    const first = await client.complete(makePayload());
    expect(first.text).toBe('No usage here.');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.json.stream_options).toEqual({ include_usage: true });
    expect(server.requests[1]!.json).not.toHaveProperty('stream_options');
    expect(server.requests[1]!.json.stream).toBe(true);
    expect(server.requests[1]!.headers['content-length']).toBe(
      String(Buffer.byteLength(server.requests[1]!.body)),
    );

    const second = await client.complete(makePayload());
    expect(second.text).toBe('No usage here.');
    expect(server.requests).toHaveLength(3);
    expect(server.requests[2]!.json).not.toHaveProperty('stream_options');
  });
});

describe('connection failures', () => {
  it('retries a connection reset before the answer', async () => {
    server.handle(sequence(resetHandler, (req, res) => answer(req, res, { text: 'Back again.' })));
    const retries: RetryInfo[] = [];
    const result = await makeClient().complete(makePayload(), { onRetry: (i) => retries.push(i) });
    expect(result.text).toBe('Back again.');
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(ConnectionError);
  });

  it('fails with ConnectionError (exit 7) when every attempt is reset', async () => {
    server.handle(resetHandler);
    const error = await rejectionOf(
      makeClient({ retries: 1 }).complete(makePayload()),
      ConnectionError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/closed unexpectedly/);
    expect(error.message).toContain(new URL(server.origin).host);
    expectNoKey(error.message);
    expect(server.requests).toHaveLength(2);
  });

  it('does not retry a reset in the middle of a stream after text reached onText', async () => {
    const gotText = deferred();
    server.handle(async (_req, res) => {
      startStream(res);
      res.write(ROLE_CHUNK + chunk('Half an ') + chunk('answer'));
      await gotText.promise;
      await sleep(20);
      res.destroy();
    });
    const pieces: string[] = [];
    const error = await rejectionOf(
      makeClient().complete(makePayload(), {
        onText: (t) => {
          pieces.push(t);
          gotText.resolve();
        },
      }),
      ConnectionError,
    );
    expect(error.exitCode).toBe(7);
    expect(pieces.join('')).toBe('Half an answer');
    expectNoKey(error.message);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a refused connection as ConnectionError (exit 7)', async () => {
    const dead = await startServer();
    const baseUrl = dead.baseUrl;
    await dead.close();
    const retries: RetryInfo[] = [];
    const error = await rejectionOf(
      makeClient({ baseUrl, retries: 1 }).complete(makePayload(), {
        onRetry: (i) => retries.push(i),
      }),
      ConnectionError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/connection refused/);
    expect(error.message).toContain(new URL(baseUrl).host);
    expectNoKey(error.message);
    expect(retries).toHaveLength(1);
  });
});

describe('timeouts', () => {
  it('fails with TimeoutError after about timeoutMs when the server never answers', async () => {
    server.handle(silentHandler);
    const started = Date.now();
    const error = await rejectionOf(
      makeClient({ timeoutMs: 300, retries: 0 }).complete(makePayload()),
      TimeoutError,
    );
    const elapsed = Date.now() - started;
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/no answer/);
    expect(error.message).toContain('0.3 s');
    expectNoKey(error.message);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
    expect(server.requests).toHaveLength(1);
  });

  it('fails with TimeoutError when the server stalls after headers and one chunk', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.write(ROLE_CHUNK);
    });
    const started = Date.now();
    const error = await rejectionOf(
      makeClient({ timeoutMs: 300, retries: 0 }).complete(makePayload()),
      TimeoutError,
    );
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(/stopped sending/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a stall after text reached onText', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.write(ROLE_CHUNK + chunk('Started '));
    });
    const pieces: string[] = [];
    const error = await rejectionOf(
      makeClient({ timeoutMs: 300, retries: 2 }).complete(makePayload(), {
        onText: (t) => pieces.push(t),
      }),
      TimeoutError,
    );
    expect(error.exitCode).toBe(7);
    expect(pieces).toEqual(['Started ']);
    expect(server.requests).toHaveLength(1);
  });
});

describe('error bodies', () => {
  it('reads the title of an HTML 502 page from a proxy', async () => {
    server.handle(
      errorHandler(
        502,
        '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n',
        { 'content-type': 'text/html' },
      ),
    );
    const error = await rejectionOf(makeClient({ retries: 0 }).complete(makePayload()), APIError);
    expect(error.status).toBe(502);
    expect(error.exitCode).toBe(7);
    expect(error.message).toContain('502 Bad Gateway');
    expect(error.message).not.toContain('<');
  });

  it("reads vLLM's unwrapped error object", async () => {
    const message =
      "This model's maximum context length is 32768 tokens. However, you requested 39197 tokens in the messages, Please reduce the length of the messages. None";
    server.handle(
      errorHandler(400, {
        object: 'error',
        message,
        type: 'BadRequestError',
        param: null,
        code: 400,
      }),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(400);
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain(message);
    expect(server.requests).toHaveLength(1);
  });

  it("reads Gemini's error array", async () => {
    const message = 'Image input modality is not enabled for models/gemma-3-1b-it';
    server.handle(
      errorHandler(400, [{ error: { code: 400, message, status: 'INVALID_ARGUMENT' } }]),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(400);
    expect(error.info.message).toBe(message);
    expect(error.message).toContain(message);
  });

  it('puts the x-request-id of the failed response in the error message', async () => {
    server.handle(
      errorHandler(
        404,
        { error: { message: 'The model `gpt-9` does not exist', code: 'model_not_found' } },
        { 'x-request-id': 'req_7f3a9c' },
      ),
    );
    const error = await rejectionOf(makeClient().complete(makePayload()), APIError);
    expect(error.status).toBe(404);
    expect(error.requestId).toBe('req_7f3a9c');
    expect(error.message).toContain('req_7f3a9c');
    expect(error.message).toContain('does not exist');
    expect(error.url).toBe(`${server.origin}/v1/chat/completions`);
  });
});

describe('redirects', () => {
  it('does not follow a 307 and says so', async () => {
    const target = await startServer();
    extraServers.push(target);
    server.handle((_req, res) => {
      res.writeHead(307, { location: `${target.origin}/v1/chat/completions` });
      res.end();
    });
    const error = await rejectionOf(makeClient().complete(makePayload()), MalformedResponseError);
    expect(error.message).toMatch(/redirect/);
    expect(error.message).toContain('307');
    expect(error.message).toContain(`${target.origin}/v1/chat/completions`);
    expectNoKey(error.message);
    expect(server.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });
});

describe('the API key', () => {
  it('appears in no message or debug line the client composes', async () => {
    const messages: string[] = [];
    // A server that echoes the Authorization header in its error message.
    server.handle((req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: `Invalid header: ${String(req.headers.authorization)}`,
            code: 'invalid_api_key',
          },
        }),
      );
    });
    const echoed = await rejectionOf(makeClient().complete(makePayload()), APIError);
    // The server's own words carry the key: the client keeps them as they are, and the output
    // layer redacts them (checked below, on everything the client produced, echo included).
    expect(echoed.info.message).toContain(KEY);
    expectNoKey(echoed.hint ?? '');
    expectNoKey(echoed.url ?? '');
    messages.push(echoed.message);

    server.handle(resetHandler);
    messages.push(
      (await rejectionOf(makeClient({ retries: 0 }).complete(makePayload()), ConnectionError))
        .message,
    );

    server.handle(silentHandler);
    messages.push(
      (
        await rejectionOf(
          makeClient({ retries: 0, timeoutMs: 200 }).complete(makePayload()),
          TimeoutError,
        )
      ).message,
    );

    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('not json');
    });
    messages.push(
      (
        await rejectionOf(
          makeClient({ retries: 0 }).complete(makePayload({ stream: false })),
          MalformedResponseError,
        )
      ).message,
    );

    expect(messages).toHaveLength(4);
    for (const message of messages.slice(1)) expectNoKey(message);
    // Everything, the echoed message and the `error body:` debug line included, as the tool
    // writes it: through the reporter onto a guarded stderr.
    const stderr = collector();
    const redactor = new Redactor();
    redactor.add(KEY);
    const reporter = new Reporter(guardStream(stderr, redactor), {
      painter: PLAIN,
      quiet: false,
      debug: true,
      redactor,
    });
    for (const message of messages) reporter.error(message);
    for (const line of logs) reporter.debug(line);
    expect(logs.some((line) => line.includes(KEY))).toBe(true);
    expect(stderr.text).toContain('Invalid header: Bearer ***');
    expectNoKey(stderr.text);
  });
});

describe('aborting', () => {
  it('throws InterruptedError quickly when aborted while waiting for the answer', async () => {
    server.handle(silentHandler);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await rejectionOf(
      makeClient({ timeoutMs: 10_000 }).complete(makePayload(), { signal: controller.signal }),
      InterruptedError,
    );
    expect(error.exitCode).toBe(130);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it('throws InterruptedError when aborted during a retry wait', async () => {
    server.handle(
      errorHandler(500, { error: { message: 'Internal error' } }, { 'retry-after': '5' }),
    );
    const controller = new AbortController();
    const retries: RetryInfo[] = [];
    const started = Date.now();
    const error = await rejectionOf(
      makeClient().complete(makePayload(), {
        signal: controller.signal,
        onRetry: (info) => {
          retries.push(info);
          setTimeout(() => controller.abort(), 50);
        },
      }),
      InterruptedError,
    );
    expect(error.exitCode).toBe(130);
    expect(retries.map((r) => r.delayMs)).toEqual([5_000]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.requests).toHaveLength(1);
  });

  it('throws InterruptedError when aborted in the middle of a stream', async () => {
    server.handle((_req, res) => {
      startStream(res);
      res.write(ROLE_CHUNK + chunk('Once upon '));
    });
    const controller = new AbortController();
    const pieces: string[] = [];
    const started = Date.now();
    const error = await rejectionOf(
      makeClient({ timeoutMs: 10_000 }).complete(makePayload(), {
        signal: controller.signal,
        onText: (t) => {
          pieces.push(t);
          setTimeout(() => controller.abort(), 20);
        },
      }),
      InterruptedError,
    );
    expect(error.exitCode).toBe(130);
    expect(pieces).toEqual(['Once upon ']);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it('throws InterruptedError without sending when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejectionOf(
      makeClient().complete(makePayload(), { signal: controller.signal }),
      InterruptedError,
    );
    expect(error.exitCode).toBe(130);
    expect(server.requests).toHaveLength(0);
  });
});

describe('gate', () => {
  function recordingGate(): { gate: Gate<number>; calls: string[]; outcomes: GateOutcome[] } {
    const calls: string[] = [];
    const outcomes: GateOutcome[] = [];
    let next = 0;
    const gate: Gate<number> = {
      acquire: () => {
        const ticket = ++next;
        calls.push(`acquire ${ticket}`);
        return Promise.resolve(ticket);
      },
      release: (ticket, outcome) => {
        calls.push(`release ${ticket}`);
        outcomes.push(outcome);
      },
    };
    return { gate, calls, outcomes };
  }

  it('pairs acquire and release per attempt and reports a 429 as rate limited with its wait', async () => {
    const { gate, calls, outcomes } = recordingGate();
    server.handle(
      sequence(
        errorHandler(
          429,
          { error: { message: 'Rate limit reached', code: 'rate_limit_exceeded' } },
          { 'retry-after': '1' },
        ),
        (req, res) => answer(req, res),
      ),
    );
    const result = await makeClient({ gate }).complete(makePayload());
    expect(result.text).toBe('A cat on a mat.');
    expect(calls).toEqual(['acquire 1', 'release 1', 'acquire 2', 'release 2']);
    expect(outcomes[0]).toMatchObject({ ok: false, rateLimited: true, retryAfterMs: 1_000 });
    expect(outcomes[1]).toMatchObject({ ok: true });
    expect(server.requests).toHaveLength(2);
  });

  it('releases a failed non-rate-limited attempt as not rate limited', async () => {
    const { gate, calls, outcomes } = recordingGate();
    server.handle(
      sequence(errorHandler(500, 'oops', { 'retry-after-ms': '10' }), (req, res) =>
        answer(req, res),
      ),
    );
    await makeClient({ gate }).complete(makePayload());
    expect(calls).toEqual(['acquire 1', 'release 1', 'acquire 2', 'release 2']);
    expect(outcomes[0]).toMatchObject({ ok: false, rateLimited: false });
    expect(outcomes[1]).toMatchObject({ ok: true });
  });

  it('releases the ticket when the request fails for good', async () => {
    const { gate, calls, outcomes } = recordingGate();
    server.handle(errorHandler(401, { error: { message: 'bad key' } }));
    await rejectionOf(makeClient({ gate }).complete(makePayload()), APIError);
    expect(calls).toEqual(['acquire 1', 'release 1']);
    expect(outcomes[0]).toMatchObject({ ok: false, rateLimited: false });
  });

  it('throws InterruptedError and sends nothing when acquire rejects', async () => {
    const gate: Gate = {
      acquire: () => Promise.reject(new Error('aborted')),
      release: () => {
        throw new Error('release without a ticket');
      },
    };
    await rejectionOf(makeClient({ gate }).complete(makePayload()), InterruptedError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('large bodies', () => {
  it('delivers a 5 MB attachment intact with a matching content-length', async () => {
    const bytes = new Uint8Array(randomBytes(5 * 1024 * 1024 + 1));
    const result = await makeClient().complete(
      makePayload({ images: [{ mime: 'image/jpeg', data: bytes }], stream: false }),
    );
    expect(result.text).toBe('A cat on a mat.');
    expect(server.requests).toHaveLength(1);
    const req: RecordedRequest = server.requests[0]!;
    expect(req.headers['content-length']).toBe(String(Buffer.byteLength(req.body)));
    const url: string = req.json.messages[0].content[1].image_url.url;
    const prefix = 'data:image/jpeg;base64,';
    expect(url.startsWith(prefix)).toBe(true);
    const decoded = Buffer.from(url.slice(prefix.length), 'base64');
    expect(decoded.length).toBe(bytes.length);
    expect(decoded.equals(Buffer.from(bytes))).toBe(true);
  });
});
