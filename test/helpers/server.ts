/**
 * A real HTTP server on 127.0.0.1, port 0, standing in for an OpenAI-compatible API.
 * Tests give it a handler; it records every request (headers and parsed body).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined. */
  json: any;
}

export type Handler = (
  req: RecordedRequest,
  res: http.ServerResponse,
  raw: http.IncomingMessage,
) => void | Promise<void>;

export interface TestServer {
  /** `http://127.0.0.1:PORT/v1` */
  baseUrl: string;
  origin: string;
  requests: RecordedRequest[];
  /** Replaces the handler. */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export async function startServer(handler: Handler = okHandler()): Promise<TestServer> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const req: RecordedRequest = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        body,
        json,
      };
      requests.push(req);
      Promise.resolve(current(req, res, raw)).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    baseUrl: `${origin}/v1`,
    origin,
    requests,
    handle(next) {
      current = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * For a test file: `serve(handler)` starts a server that is closed after the test that
 * started it.
 */
export function serverPool(): (handler?: Handler) => Promise<TestServer> {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return async (handler) => {
    const server = await startServer(handler);
    servers.push(server);
    return server;
  };
}

export interface Answer {
  text?: string;
  /** A refusal instead of an answer (`message.refusal`, or `delta.refusal` pieces). */
  refusal?: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  finishReason?: string;
  model?: string;
  id?: string;
}

const DEFAULT_USAGE = { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 };

/** The SSE body a server streams for `answer`, split in word-sized deltas. */
export function sseBody(
  answer: Answer = {},
  opts: { done?: boolean; usageChunk?: boolean } = {},
): string {
  const text = answer.text ?? 'A cat on a mat.';
  const id = answer.id ?? 'chatcmpl-test';
  const model = answer.model ?? 'gpt-4o-2024-08-06';
  const chunk = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model, choices, ...extra })}\n\n`;
  let out = chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
  const pieces = (answer.refusal ?? text).match(/\S+\s*|\s+/g) ?? [];
  for (const piece of pieces) {
    const delta = answer.refusal === undefined ? { content: piece } : { refusal: piece };
    out += chunk([{ index: 0, delta, finish_reason: null }]);
  }
  out += chunk([{ index: 0, delta: {}, finish_reason: answer.finishReason ?? 'stop' }]);
  if (opts.usageChunk !== false && answer.usage !== null)
    out += chunk([], { usage: answer.usage ?? DEFAULT_USAGE });
  if (opts.done !== false) out += 'data: [DONE]\n\n';
  return out;
}

/** A non-streamed chat.completion body. */
export function completionBody(answer: Answer = {}): object {
  return {
    id: answer.id ?? 'chatcmpl-test',
    object: 'chat.completion',
    created: 1,
    model: answer.model ?? 'gpt-4o-2024-08-06',
    choices: [
      {
        index: 0,
        message:
          answer.refusal === undefined
            ? { role: 'assistant', content: answer.text ?? 'A cat on a mat.' }
            : { role: 'assistant', content: null, refusal: answer.refusal },
        finish_reason: answer.finishReason ?? 'stop',
      },
    ],
    usage: answer.usage === null ? undefined : (answer.usage ?? DEFAULT_USAGE),
  };
}

/** Answers a request as a real server would: SSE when it asked to stream, JSON otherwise. */
export function answer(
  req: RecordedRequest,
  res: http.ServerResponse,
  a: Answer = {},
  headers: http.OutgoingHttpHeaders = {},
): void {
  if (req.json?.stream) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'x-request-id': 'req_test',
      ...headers,
    });
    res.end(sseBody(a, { usageChunk: Boolean(req.json.stream_options?.include_usage) }));
  } else {
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-request-id': 'req_test',
      ...headers,
    });
    res.end(JSON.stringify(completionBody(a)));
  }
}

export function okHandler(a: Answer = {}): Handler {
  return (req, res) => answer(req, res, a);
}

export function errorHandler(
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
): Handler {
  return (_req, res) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
      ...headers,
    });
    res.end(text);
  };
}

/** sha256 of some bytes, in hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The sha256 of the (single) image a chat request carries, from its base64 data URL. */
export function requestImageHash(req: RecordedRequest): string {
  const messages = req.json?.messages as { role: string; content: unknown }[] | undefined;
  const user = messages?.find((m) => m.role === 'user');
  const parts = (Array.isArray(user?.content) ? user.content : []) as {
    type: string;
    image_url?: { url: string };
  }[];
  const urls = parts.filter((p) => p.type === 'image_url').map((p) => p.image_url?.url ?? '');
  if (urls.length !== 1) throw new Error(`expected one image in the request, got ${urls.length}`);
  const match = /^data:image\/png;base64,(.*)$/s.exec(urls[0]!);
  if (!match) throw new Error(`not a PNG data URL: ${urls[0]!.slice(0, 60)}`);
  return sha256(Buffer.from(match[1]!, 'base64'));
}
