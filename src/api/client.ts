/**
 * The HTTP client: the only module that imports undici. One keep-alive pool per client,
 * timeouts per request, retries as the official SDK does them, and every failure turned
 * into one of the errors in `../errors.ts`.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
// undici's index loads fetch, WebSocket, mocks, caches and more (~700 KB, ~60 ms at start-up);
// these three modules are all this client uses. They are the same code the index re-exports.
import requestImpl from 'undici/lib/api/api-request.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import {
  APIError,
  ConnectionError,
  DescribeImageError,
  ExitCode,
  InputError,
  InterruptedError,
  MalformedResponseError,
  TimeoutError,
  isRetryable,
  oneLine,
} from '../errors.js';
import { completionFromResponse, CompletionAccumulator } from './accumulate.js';
import { apiErrorFromBody, isQuotaError } from './errors.js';
import { chatCompletionsUrl, encodeBody, withBody, type ChatRequestPayload } from './request.js';
import {
  backoffMs,
  parseDurationMs,
  retryAfterMs,
  shouldRetryStatus,
  type HeaderLookup,
} from './retry.js';
import { createSSEDecoder } from './sse.js';
import type { ChatCompletion, Completion } from './types.js';

/** Shared admission control for a pool of requests (see `util/rate-gate.ts`). */
export interface Gate<Ticket = unknown> {
  acquire(signal?: AbortSignal): Promise<Ticket>;
  release(ticket: Ticket, outcome: GateOutcome): void;
}

export interface GateOutcome {
  ok: boolean;
  rateLimited?: boolean;
  retryAfterMs?: number | undefined;
  /** No other request can succeed either (a rejected key, an exhausted quota). */
  fatal?: boolean;
}

export interface ClientOptions {
  /** e.g. `https://api.maxtoken.io/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  apiKey?: string | undefined;
  /** How the key is sent: `Authorization: Bearer` (default) or Azure's `api-key` header. */
  keyHeader?: 'bearer' | 'api-key';
  /** Query parameters added to every request (Azure's `api-version`). */
  query?: Record<string, string> | undefined;
  /** Extra headers for every request. */
  headers?: Record<string, string> | undefined;
  userAgent: string;
  /** Longest wait for response headers, and longest silence inside a response body. */
  timeoutMs: number;
  maxRetries: number;
  /** Pool size; defaults to 8. */
  connections?: number | undefined;
  /** Proxy settings, as read from the environment by the caller. */
  proxy?: { http?: string; https?: string; noProxy?: string } | undefined;
  gate?: Gate | undefined;
  /**
   * Extra retries for 429s (rate limits, not quota) that do not count against `maxRetries`:
   * in a batch the gate slows the whole pool down, and a rate limit is not the image's fault.
   */
  rateLimitRetries?: number | undefined;
  /** Debug lines (never contain the key). */
  log?: ((line: string) => void) | undefined;
  /** For tests: a custom dispatcher. */
  dispatcher?: Dispatcher | undefined;
  random?: () => number;
}

export interface CompleteOptions {
  signal?: AbortSignal | undefined;
  /** Called with each piece of answer text as it arrives (streaming only). */
  onText?: ((text: string) => void) | undefined;
  /** Called before waiting to retry. */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

export interface DownloadOptions {
  signal?: AbortSignal | undefined;
  maxBytes: number;
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  error: DescribeImageError;
}

/** Set on an error once answer text has been handed to `onText`: it must not be retried. */
const delivered = new WeakSet<object>();

/** Bodies up to this size are sent as one buffer (cheaper than a stream for many small ones). */
const WHOLE_BODY_MAX = 1024 * 1024;

export class ApiClient {
  readonly endpoint: string;
  private readonly opts: ClientOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  /** Cleared when the server rejects `stream_options`; later requests leave it out. */
  private streamOptions = true;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.endpoint = chatCompletionsUrl(opts.baseUrl, opts.query);
    if (opts.dispatcher) {
      this.dispatcher = opts.dispatcher;
      this.ownsDispatcher = false;
    } else {
      const agentOpts = {
        connections: opts.connections ?? 8,
        keepAliveTimeout: 30_000,
        connect: { timeout: Math.min(opts.timeoutMs, 30_000) },
      };
      const proxy = opts.proxy;
      this.dispatcher =
        proxy && (proxy.http || proxy.https)
          ? new EnvHttpProxyAgent({
              ...agentOpts,
              httpProxy: proxy.http ?? '',
              httpsProxy: proxy.https ?? '',
              noProxy: ['localhost', '127.0.0.1', '::1', proxy.noProxy].filter(Boolean).join(','),
            })
          : new Agent(agentOpts);
      this.ownsDispatcher = true;
    }
  }

  /** Sends the request (streamed when `payload.body.stream`), retrying what may be retried. */
  async complete(payload: ChatRequestPayload, options: CompleteOptions = {}): Promise<Completion> {
    const { signal } = options;
    let current = this.streamOptions ? payload : withoutStreamOptions(payload);
    let triedWithoutStreamOptions = current !== payload;
    const maxRetries = this.opts.maxRetries;
    let rateLimitRetries = 0;
    for (let retry = 0; ;) {
      if (signal?.aborted) throw new InterruptedError();
      const gate = this.opts.gate;
      let ticket: unknown;
      if (gate) {
        try {
          ticket = await gate.acquire(signal);
        } catch {
          // Aborted, or the gate closed after an error that no other request can escape.
          throw new InterruptedError('stopped before the request was sent', { notSent: true });
        }
      }
      let outcome: GateOutcome = { ok: false };
      let waitMs = 0;
      try {
        const result = await this.once(current, options);
        outcome = { ok: true };
        return result;
      } catch (error) {
        if (signal?.aborted) throw new InterruptedError();
        if (!(error instanceof DescribeImageError)) throw error;
        const decision = this.decide(error);
        outcome = {
          ok: false,
          rateLimited: decision.rateLimited,
          retryAfterMs: decision.serverWaitMs,
          fatal: isFatal(error),
        };
        if (delivered.has(error)) throw error;
        if (
          !triedWithoutStreamOptions &&
          current.body.stream_options &&
          error instanceof APIError &&
          error.status === 400 &&
          /stream_options/i.test(`${error.info.message ?? ''} ${error.info.param ?? ''}`)
        ) {
          this.log('the server rejected stream_options: sending again without it');
          this.streamOptions = false;
          triedWithoutStreamOptions = true;
          current = withoutStreamOptions(current);
          continue;
        }
        if (!decision.retry) throw error;
        const freeRetry =
          decision.rateLimited && rateLimitRetries < (this.opts.rateLimitRetries ?? 0);
        if (!freeRetry && retry >= maxRetries) throw error;
        const delayMs = decision.serverWaitMs ?? backoffMs(retry, this.opts.random);
        if (freeRetry) rateLimitRetries++;
        else retry++;
        options.onRetry?.({ attempt: retry + rateLimitRetries, delayMs, error });
        this.log(`retry in ${Math.round(delayMs)} ms after: ${error.message}`);
        // With a gate, a rate-limit wait is the gate's pause, shared by every request.
        waitMs = gate && decision.rateLimited ? 0 : delayMs;
      } finally {
        gate?.release(ticket, outcome);
      }
      if (waitMs > 0) {
        try {
          await sleep(waitMs, undefined, { signal });
        } catch {
          throw new InterruptedError();
        }
      }
    }
  }

  private decide(error: DescribeImageError): {
    retry: boolean;
    rateLimited: boolean;
    serverWaitMs: number | undefined;
  } {
    if (error instanceof APIError && error.status !== undefined) {
      const meta = responseMeta.get(error);
      const header: HeaderLookup = meta?.header ?? (() => undefined);
      const quota = isQuotaError(error.status, error.info);
      const rateLimited = error.status === 429 && !quota;
      let serverWaitMs = retryAfterMs(header, Date.now());
      if (serverWaitMs === undefined && rateLimited) serverWaitMs = rateLimitResetMs(header);
      const retry = !quota && shouldRetryStatus(error.status, header);
      return { retry, rateLimited, serverWaitMs };
    }
    if (error instanceof APIError) {
      // An error inside a 200 stream: retry what looks transient (not an exhausted quota).
      const retry =
        error.exitCode === ExitCode.SERVER ||
        (error.exitCode === ExitCode.RATE_LIMIT && !isQuotaError(undefined, error.info));
      return { retry, rateLimited: false, serverWaitMs: undefined };
    }
    return { retry: isRetryable(error), rateLimited: false, serverWaitMs: undefined };
  }

  private async once(payload: ChatRequestPayload, options: CompleteOptions): Promise<Completion> {
    const body = encodeBody(payload);
    const headers = this.apiHeaders({
      'content-type': 'application/json',
      accept: payload.body.stream ? 'text/event-stream' : 'application/json',
      'content-length': String(body.length),
    });
    const started = Date.now();
    this.log(
      () =>
        `POST ${this.endpoint} (${body.length.toLocaleString('en-US')} bytes, stream: ${payload.body.stream})`,
    );

    let response: Dispatcher.ResponseData;
    try {
      response = await this.request(this.endpoint, {
        method: 'POST',
        headers,
        // A small body goes as one buffer; a large one is streamed, never whole in memory.
        body:
          body.length <= WHOLE_BODY_MAX
            ? Buffer.concat([...body.chunks()], body.length)
            : Readable.from(body.chunks(), { objectMode: false }),
        signal: options.signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (error) {
      throw this.networkError(error, options.signal);
    }

    const header: HeaderLookup = (name) => {
      const value = response.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const requestId = header('x-request-id') ?? header('apim-request-id') ?? header('request-id');
    this.log(
      () =>
        `${response.statusCode} after ${Date.now() - started} ms` +
        (requestId ? `, x-request-id ${requestId}` : '') +
        ` (${header('content-type') ?? 'no content-type'})`,
    );
    const ctx = { requestId, url: this.endpoint };

    if (response.statusCode >= 300) {
      const text = await readText(response.body, 64 * 1024).catch(() => '');
      if (response.statusCode < 400) {
        const location = header('location');
        throw new MalformedResponseError(
          `the server redirected (HTTP ${response.statusCode})${location ? ` to ${location}` : ''}; ` +
            'set --base-url to the final address (redirects are not followed, so the key stays with one host)',
        );
      }
      const error = apiErrorFromBody(response.statusCode, text, ctx);
      responseMeta.set(error, { header });
      this.log(`error body: ${text.slice(0, 2000)}`);
      throw error;
    }

    const contentType = header('content-type') ?? '';
    try {
      if (/text\/html/i.test(contentType)) {
        const text = await readText(response.body, 200);
        throw new MalformedResponseError(
          `the server answered with a web page, not JSON from an API (${text.trim().slice(0, 60)}…); check --base-url`,
        );
      }
      if (payload.body.stream && !/application\/json/i.test(contentType)) {
        return await this.readStream(response.body, options, ctx);
      }
      const text = await readText(response.body, Infinity);
      const completion = parseCompletion(text, ctx);
      // A server that ignored stream: true still owes the caller the text.
      if (payload.body.stream && options.onText && completion.text) options.onText(completion.text);
      return completion;
    } catch (error) {
      if (error instanceof DescribeImageError) throw error;
      throw this.networkError(error, options.signal);
    } finally {
      discard(response.body);
    }
  }

  private async readStream(
    body: Dispatcher.ResponseData['body'],
    options: CompleteOptions,
    ctx: { requestId: string | undefined; url: string },
  ): Promise<Completion> {
    const decoder = createSSEDecoder();
    const acc = new CompletionAccumulator();
    const feed = (chunks: ReturnType<typeof decoder.push>): void => {
      for (const chunk of chunks) {
        const text = acc.add(chunk);
        if (text && options.onText) options.onText(text);
      }
    };
    try {
      // Read to the end even after [DONE]: leaving the loop early destroys the body, and a
      // destroyed body takes its keep-alive connection with it.
      for await (const bytes of body as AsyncIterable<Uint8Array>) {
        if (!decoder.done) feed(decoder.push(bytes));
      }
      feed(decoder.end());
    } catch (error) {
      let failure =
        error instanceof DescribeImageError
          ? error
          : this.networkError(error, options.signal, 'while streaming');
      // The stream's error object has no request id of its own: the response's is the one.
      if (failure instanceof APIError) failure = failure.withContext(ctx);
      if (acc.hasText && options.onText) delivered.add(failure);
      throw failure;
    }
    const result = acc.result();
    if (!decoder.done && result.finishReason === undefined) {
      const failure = new MalformedResponseError(
        acc.hasText
          ? 'the stream ended before the answer was complete (no finish_reason, no [DONE])'
          : 'the server closed the stream without an answer',
        { retryable: true },
      );
      if (acc.hasText && options.onText) delivered.add(failure);
      throw failure;
    }
    if (decoder.comments > 0)
      this.log(`${decoder.comments} keep-alive comment line(s) in the stream`);
    return result;
  }

  /** The model ids the server lists (`GET {base}/models`), for servers that serve one model. */
  async listModels(signal?: AbortSignal): Promise<string[]> {
    const url = new URL(this.endpoint.replace(/\/chat\/completions(?=\?|$)/, '/models'));
    const headers = this.apiHeaders({ accept: 'application/json' });
    let response: Dispatcher.ResponseData;
    try {
      response = await this.request(url, {
        method: 'GET',
        headers,
        signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (error) {
      throw this.networkError(error, signal);
    }
    const text = await readText(response.body, 1024 * 1024).catch(() => '');
    if (response.statusCode >= 300) {
      const error = apiErrorFromBody(response.statusCode, text, { url: url.toString() });
      throw new APIError(
        error.status,
        error.info,
        { url: url.toString() },
        error.exitCode,
        `cannot list the server's models (give --model): ${error.headline}`,
        error.hint,
      );
    }
    try {
      const body = JSON.parse(text) as { data?: { id?: unknown }[]; models?: { name?: unknown }[] };
      const ids = (body.data ?? [])
        .map((m) => m.id)
        .filter((id): id is string => typeof id === 'string');
      return ids;
    } catch {
      throw new MalformedResponseError(
        `GET ${url.pathname} did not answer with JSON; give the model with --model`,
      );
    }
  }

  /**
   * Fetches an image for `--download`: no API key or other credential is sent, redirects are
   * followed (up to 5), the size is capped, and the answer must be an image.
   */
  async download(url: string, opts: DownloadOptions): Promise<Uint8Array> {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      let response: Dispatcher.ResponseData;
      try {
        response = await this.request(current, {
          method: 'GET',
          headers: { 'user-agent': this.opts.userAgent, accept: 'image/*' },
          signal: opts.signal,
          headersTimeout: this.opts.timeoutMs,
          bodyTimeout: this.opts.timeoutMs,
        });
      } catch (error) {
        throw this.networkError(error, opts.signal, 'while downloading', current.host);
      }
      const header = (name: string): string | undefined => {
        const value = response.headers[name];
        return Array.isArray(value) ? value[0] : value;
      };
      const location = header('location');
      if (response.statusCode >= 300 && response.statusCode < 400 && location) {
        discard(response.body);
        const next = new URL(location, current);
        if (hop >= 5 || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
          throw new InputError(`${url}: download failed: too many or unsafe redirects`);
        }
        this.log(`download: ${response.statusCode} → ${next.toString()}`);
        current = next;
        continue;
      }
      if (response.statusCode >= 300) {
        discard(response.body);
        throw new InputError(
          `${url}: download failed (HTTP ${response.statusCode}); check the URL`,
        );
      }
      const type = (header('content-type') ?? '').toLowerCase();
      if (
        type &&
        !type.startsWith('image/') &&
        !type.startsWith('application/octet-stream') &&
        !type.startsWith('binary/')
      ) {
        discard(response.body);
        throw new InputError(
          `${url}: not an image (the server sent ${type.split(';')[0] ?? type})`,
        );
      }
      const declared = Number(header('content-length'));
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        discard(response.body);
        throw new InputError(
          `${url}: the image is ${(declared / 1048576).toFixed(0)} MB; the download limit is ${opts.maxBytes / 1048576} MB`,
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > opts.maxBytes) {
            discard(response.body);
            throw new InputError(
              `${url}: the image is over the download limit of ${opts.maxBytes / 1048576} MB`,
            );
          }
          chunks.push(chunk);
        }
      } catch (error) {
        if (error instanceof DescribeImageError) throw error;
        throw this.networkError(error, opts.signal, 'while downloading', current.host);
      }
      this.log(`download: ${size.toLocaleString('en-US')} bytes from ${current.host}`);
      return Buffer.concat(chunks);
    }
  }

  private networkError(
    error: unknown,
    signal: AbortSignal | undefined,
    when = '',
    host = new URL(this.endpoint).host,
  ): DescribeImageError {
    if (signal?.aborted) return new InterruptedError();
    const code = errorCode(error);
    const suffix = when ? ` ${when}` : '';
    const seconds = `${this.opts.timeoutMs / 1000} s`;
    switch (code) {
      case 'UND_ERR_HEADERS_TIMEOUT':
        return new TimeoutError(
          `no answer from ${host} within ${seconds} (raise --timeout if the model is slow)`,
          { cause: error },
        );
      case 'UND_ERR_BODY_TIMEOUT':
        return new TimeoutError(
          `${host} stopped sending for ${seconds}${suffix} (raise --timeout if the model is slow)`,
          {
            cause: error,
          },
        );
      case 'UND_ERR_CONNECT_TIMEOUT':
        return new TimeoutError(
          `could not connect to ${host}: timed out (check --base-url and your network)`,
          { cause: error },
        );
      case 'ECONNREFUSED':
        return new ConnectionError(
          `could not connect to ${host}: connection refused (is the server running? check --base-url)`,
          {
            cause: error,
          },
        );
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EAI_NONAME':
        return new ConnectionError(
          `could not resolve host ${host.replace(/:\d+$/, '')} (check the address and your network)`,
          {
            cause: error,
          },
        );
      case 'ECONNRESET':
      case 'EPIPE':
      case 'UND_ERR_SOCKET':
      case 'UND_ERR_CLOSED':
        return new ConnectionError(`the connection to ${host} was closed unexpectedly${suffix}`, {
          cause: error,
        });
      case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
        return new ConnectionError(`the response from ${host} was cut short${suffix}`, {
          cause: error,
        });
      default: {
        const message = error instanceof Error ? error.message : String(error);
        if (/certificate|SSL|TLS/i.test(`${code ?? ''} ${message}`)) {
          return new ConnectionError(`TLS failure talking to ${host}: ${message}`, {
            cause: error,
          });
        }
        return new ConnectionError(
          `request to ${host} failed${suffix}: ${message}${code ? ` (${code})` : ''}`,
          {
            cause: error,
          },
        );
      }
    }
  }

  /** Headers for a request to the API: these, the user agent, extra headers, and the key. */
  private apiHeaders(own: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = {
      ...own,
      'user-agent': this.opts.userAgent,
      ...this.opts.headers,
    };
    if (this.opts.apiKey) {
      if (this.opts.keyHeader === 'api-key') headers['api-key'] = this.opts.apiKey;
      else headers.authorization = `Bearer ${this.opts.apiKey}`;
    }
    return headers;
  }

  /** undici's `request()` on this client's pool. */
  private request(
    url: string | URL,
    opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
  ): Promise<Dispatcher.ResponseData> {
    const target = typeof url === 'string' ? new URL(url) : url;
    return requestImpl.call(this.dispatcher, {
      ...opts,
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
    });
  }

  /** A `--debug` line; a function when it costs something to build. */
  private log(line: string | (() => string)): void {
    if (this.opts.log) this.opts.log(typeof line === 'string' ? line : line());
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  // ---- Resources beside chat completions (batch engines: /files, /batches) ----------------
  // Generic JSON, upload and download calls for `api/files.ts` and `api/batches.ts`, with the
  // same headers, key, timeouts and error mapping as the chat path. They do not retry: the
  // callers decide what may be repeated (an upload or a create is not idempotent).

  /** `{baseUrl}{path}`, with the client's query parameters and `query`'s defined values. */
  resourceUrl(path: string, query: Record<string, string | number | undefined> = {}): URL {
    const url = new URL(this.opts.baseUrl.replace(/\/+$/, '') + path);
    for (const [key, value] of Object.entries({ ...this.opts.query, ...query })) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** `GET {base}{path}`: the parsed JSON body, or the error the status maps to. */
  async getJson(path: string, options: ResourceOptions = {}): Promise<unknown> {
    const url = this.resourceUrl(path, options.query);
    return this.jsonCall('GET', url, undefined, {}, options.signal);
  }

  /** `POST {base}{path}` with a JSON body: the parsed JSON answer. */
  async postJson(path: string, body: unknown, options: ResourceOptions = {}): Promise<unknown> {
    const url = this.resourceUrl(path, options.query);
    const bytes = Buffer.from(JSON.stringify(body ?? {}), 'utf8');
    return this.jsonCall(
      'POST',
      url,
      bytes,
      { 'content-type': 'application/json', 'content-length': String(bytes.length) },
      options.signal,
    );
  }

  /**
   * `POST {base}{path}` as multipart/form-data: the `fields` (default `purpose=batch`), then
   * the file part named `name`, whose `length` bytes come from `stream`. The body is streamed
   * with an exact Content-Length, never held in memory. A stream can be read once: the caller
   * opens the file again to try again.
   */
  async uploadFile(
    path: string,
    name: string,
    stream: AsyncIterable<Uint8Array>,
    length: number,
    options: UploadOptions = {},
  ): Promise<unknown> {
    const url = this.resourceUrl(path, options.query);
    const form = multipartFrame(name, options.fields ?? { purpose: 'batch' });
    const total = form.head.length + length + form.tail.length;
    this.log(() => `upload ${name} (${length.toLocaleString('en-US')} bytes) to ${url.pathname}`);
    async function* body(): AsyncGenerator<Uint8Array> {
      yield form.head;
      yield* stream;
      yield form.tail;
    }
    return this.jsonCall(
      'POST',
      url,
      Readable.from(body(), { objectMode: false }),
      {
        'content-type': `multipart/form-data; boundary=${form.boundary}`,
        'content-length': String(total),
      },
      options.signal,
    );
  }

  /**
   * `GET {base}{path}` whose body is handed over as it arrives (a batch's output file, which
   * may be hundreds of megabytes). Errors while reading are mapped like any other; leaving
   * the loop early releases the connection.
   */
  async downloadStream(
    path: string,
    options: ResourceOptions = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    const url = this.resourceUrl(path, options.query);
    const response = await this.send('GET', url, undefined, { accept: '*/*' }, options.signal);
    const body = response.body;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the generator below needs the client
    const client = this;
    return (async function* () {
      let finished = false;
      try {
        for await (const chunk of body as AsyncIterable<Uint8Array>) yield chunk;
        finished = true;
      } catch (error) {
        if (error instanceof DescribeImageError) throw error;
        throw client.networkError(error, options.signal, 'while downloading', url.host);
      } finally {
        if (!finished) discard(body);
      }
    })();
  }

  /** Sends one request and reads a JSON answer. */
  private async jsonCall(
    method: 'GET' | 'POST',
    url: URL,
    body: Buffer | Readable | undefined,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const response = await this.send(
      method,
      url,
      body,
      { ...headers, accept: 'application/json' },
      signal,
    );
    let text: string;
    try {
      text = await readText(response.body, Infinity);
    } catch (error) {
      throw this.networkError(error, signal, 'while reading the answer', url.host);
    }
    if (/^\s*</.test(text)) {
      throw new MalformedResponseError(
        `${method} ${url.pathname}: the server answered with a web page, not JSON from an API (${oneLine(text, 60)}…); check --base-url`,
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new MalformedResponseError(
        `${method} ${url.pathname}: the server's answer is not JSON (${oneLine(text, 80) || 'empty body'})`,
      );
    }
  }

  /** Sends one request; a status of 300 or more becomes the error it maps to. */
  private async send(
    method: 'GET' | 'POST',
    url: URL,
    body: Buffer | Readable | undefined,
    own: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const started = Date.now();
    this.log(() => `${method} ${url.toString()}`);
    let response: Dispatcher.ResponseData;
    try {
      response = await this.request(url, {
        method,
        headers: this.apiHeaders(own),
        body: body ?? null,
        signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (error) {
      throw this.networkError(error, signal, '', url.host);
    }
    const header: HeaderLookup = (name) => {
      const value = response.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const requestId = header('x-request-id') ?? header('apim-request-id') ?? header('request-id');
    this.log(
      () =>
        `${response.statusCode} after ${Date.now() - started} ms` +
        (requestId ? `, x-request-id ${requestId}` : ''),
    );
    if (response.statusCode < 300) return response;
    const text = await readText(response.body, 64 * 1024).catch(() => '');
    if (response.statusCode < 400) {
      throw new MalformedResponseError(
        `the server redirected (HTTP ${response.statusCode}); set --base-url to the final address`,
      );
    }
    const error = apiErrorFromBody(response.statusCode, text, { requestId, url: url.toString() });
    responseMeta.set(error, { header });
    this.log(`error body: ${text.slice(0, 2000)}`);
    throw error;
  }
}

export interface ResourceOptions {
  signal?: AbortSignal | undefined;
  /** Query parameters for this call (`limit`, `after`); undefined values are left out. */
  query?: Record<string, string | number | undefined> | undefined;
}

export interface UploadOptions extends ResourceOptions {
  /** Form fields sent before the file (default `{purpose: "batch"}`). */
  fields?: Record<string, string> | undefined;
}

/**
 * The bytes around a multipart/form-data file part (RFC 7578): the fields, then the file's
 * part header; and the closing boundary. Quotes and line breaks in names are percent-encoded,
 * as browsers do.
 */
function multipartFrame(
  filename: string,
  fields: Record<string, string>,
): { boundary: string; head: Buffer; tail: Buffer } {
  const boundary = `----describe-image-${randomUUID()}`;
  const escape = (text: string): string =>
    text.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\ncontent-disposition: form-data; name="${escape(name)}"\r\n\r\n${value}\r\n`;
  }
  head +=
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${escape(filename)}"\r\n` +
    'content-type: application/octet-stream\r\n\r\n';
  return {
    boundary,
    head: Buffer.from(head, 'utf8'),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8'),
  };
}

/** A failure every other request would meet too: a rejected key or an exhausted quota. */
function isFatal(error: DescribeImageError): boolean {
  if (!(error instanceof APIError)) return false;
  return error.exitCode === ExitCode.AUTH || isQuotaError(error.status, error.info);
}

/** Response headers kept for a failed response, for its retry decision. */
const responseMeta = new WeakMap<APIError, { header: HeaderLookup }>();

function withoutStreamOptions(payload: ChatRequestPayload): ChatRequestPayload {
  return withBody(payload, (body) => {
    const { stream_options: _dropped, ...rest } = body;
    return rest;
  });
}

/** On a 429 without Retry-After: when the exhausted limit resets, if the server says. */
function rateLimitResetMs(header: HeaderLookup): number | undefined {
  let wait: number | undefined;
  for (const kind of ['requests', 'tokens']) {
    if (header(`x-ratelimit-remaining-${kind}`) !== '0') continue;
    const reset = header(`x-ratelimit-reset-${kind}`);
    const ms = reset === undefined ? undefined : parseDurationMs(reset);
    if (ms !== undefined && ms <= 60_000) wait = Math.max(wait ?? 0, ms);
  }
  return wait;
}

function parseCompletion(
  text: string,
  ctx: { requestId: string | undefined; url: string },
): Completion {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedResponseError(
      `the server's answer is not JSON (${text.trim().slice(0, 80) || 'empty body'}); check --base-url`,
    );
  }
  const record = value as { error?: unknown; object?: unknown } | null;
  if (
    typeof record === 'object' &&
    record !== null &&
    (record.error || record.object === 'error')
  ) {
    throw apiErrorFromBody(undefined, value, ctx);
  }
  const completion = completionFromResponse(value as ChatCompletion);
  if (!completion) {
    throw new MalformedResponseError(
      'the server answered without a message (no choices[0].message)',
    );
  }
  return completion;
}

async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (text.length > limit) break;
  }
  return text + decoder.decode();
}

/**
 * Drops a response body that will not be read. Destroying it makes undici emit an abort error
 * on it, which would crash the process with nobody listening.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      // undici wraps socket errors: prefer the system error underneath when there is one.
      const cause = (current as { cause?: { code?: unknown } }).cause;
      if (code.startsWith('UND_ERR_SOCKET') && typeof cause?.code === 'string') return cause.code;
      return code;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
