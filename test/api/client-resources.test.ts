/**
 * The client's calls for the batch engines' resources against a real loopback server: JSON
 * in and out with the key and the error mapping of the chat path, a multipart upload with an
 * exact Content-Length, and a download handed over as it arrives.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import {
  APIError,
  ConnectionError,
  ExitCode,
  MalformedResponseError,
  TimeoutError,
} from '../../src/errors.js';
import { errorHandler, serverPool } from '../helpers/server.js';

const serve = serverPool();
const KEY = 'sk-resources-0123456789';

function client(
  baseUrl: string,
  extra: { timeoutMs?: number; query?: Record<string, string> } = {},
): ApiClient {
  return new ApiClient({
    baseUrl,
    apiKey: KEY,
    userAgent: 'describe-image/test',
    timeoutMs: extra.timeoutMs ?? 5000,
    retry: { retries: 2, maxWaitMs: 60_000 },
    query: extra.query,
  });
}

describe('getJson and postJson', () => {
  it('send the key and the query, and return the parsed answer', async () => {
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url, body: req.json }));
    });
    const api = client(server.baseUrl, { query: { 'api-version': '2024-10-21' } });
    expect(await api.getJson('/batches', { query: { limit: 100, after: undefined } })).toEqual({
      ok: true,
      method: 'GET',
      url: '/v1/batches?api-version=2024-10-21&limit=100',
      body: undefined,
    });
    expect(await api.postJson('/batches', { a: 1 })).toMatchObject({
      method: 'POST',
      body: { a: 1 },
    });
    expect(server.requests[1]!.headers).toMatchObject({
      authorization: `Bearer ${KEY}`,
      'content-type': 'application/json',
      'user-agent': 'describe-image/test',
    });
  });

  it('map a failure as the chat path does, and do not retry it', async () => {
    const server = await serve(
      errorHandler(
        500,
        { error: { message: 'boom', type: 'server_error' } },
        { 'x-request-id': 'req_9' },
      ),
    );
    const error = await client(server.baseUrl)
      .postJson('/batches', {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).exitCode).toBe(ExitCode.SERVER);
    expect((error as APIError).message).toBe(
      'the server failed (HTTP 500): boom (try again later) [request id req_9]',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('refuse a web page and a body that is not JSON', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><title>Login</title></html>');
    });
    await expect(client(server.baseUrl).getJson('/files/x')).rejects.toThrow(
      new MalformedResponseError(
        'GET /v1/files/x: the server answered with a web page, not JSON from an API (<html><title>Login</title></html>…); check --base-url',
      ),
    );
    server.handle((_req, res) => {
      res.end('nope');
    });
    await expect(client(server.baseUrl).getJson('/files/x')).rejects.toThrow(
      "GET /v1/files/x: the server's answer is not JSON (nope)",
    );
  });

  it('time out on a server that never answers', async () => {
    const server = await serve(() => undefined);
    await expect(client(server.baseUrl, { timeoutMs: 300 }).getJson('/batches')).rejects.toThrow(
      TimeoutError,
    );
  });
});

describe('uploadFile', () => {
  it('streams multipart/form-data: purpose first, then the file, with an exact Content-Length', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"file-1"}');
    });
    const content = Buffer.from('{"custom_id":"a"}\n{"custom_id":"b"}\n');
    const stream = Readable.from([content.subarray(0, 5), content.subarray(5)]);
    expect(
      await client(server.baseUrl).uploadFile('/files', 'my "shard".jsonl', stream, content.length),
    ).toEqual({ id: 'file-1' });
    const req = server.requests[0]!;
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(
      String(req.headers['content-type']),
    )![1]!;
    expect(Number(req.headers['content-length'])).toBe(Buffer.byteLength(req.body));
    expect(req.body).toBe(
      `--${boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
        `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="my %22shard%22.jsonl"\r\ncontent-type: application/octet-stream\r\n\r\n` +
        `${content.toString()}\r\n--${boundary}--\r\n`,
    );
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
  });
});

describe('downloadStream', () => {
  it('hands the body over in pieces', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('line 1\n');
      setTimeout(() => res.end('line 2\n'), 20);
    });
    const chunks: string[] = [];
    for await (const chunk of await client(server.baseUrl).downloadStream('/files/f/content'))
      chunks.push(Buffer.from(chunk).toString());
    expect(chunks.join('')).toBe('line 1\nline 2\n');
  });

  it('maps a 404 before the body, and a cut connection while reading', async () => {
    const server = await serve(errorHandler(404, { error: { message: 'No such File object: f' } }));
    await expect(client(server.baseUrl).downloadStream('/files/f/content')).rejects.toThrow(
      /^not found \(HTTP 404\) at http:\/\/127\.0\.0\.1:\d+\/v1\/files\/f\/content: No such File object: f/,
    );
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const body = await client(server.baseUrl).downloadStream('/files/f/content');
    const read = async (): Promise<void> => {
      for await (const _chunk of body) {
        // drain
      }
    };
    await expect(read()).rejects.toThrow(ConnectionError);
  });
});
