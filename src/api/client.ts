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
// these two modules are all a direct connection uses. They are the same code the index
// re-exports. A proxy loads the index itself (see `proxyAgent()`).
import requestImpl from 'undici/lib/api/api-request.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import {
  APIError,
  ConnectionError,
  DescribeImageError,
  InputError,
  InterruptedError,
  MalformedResponseError,
  TimeoutError,
  oneLine,
  type RequestContext,
} from '../errors.js';
import { completionFromResponse, CompletionAccumulator } from './accumulate.js';
import { apiErrorFromBody } from './errors.js';
import { chatCompletionsUrl, encodeBody, withBody, type ChatRequestPayload } from './request.js';
import {
  attachRetryHeaders,
  classifyFailure,
  RetryBudget,
  stopsEveryRequest,
  tooLongToWait,
  type HeaderLookup,
  type RetryOptions,
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
  /** `--retries` and `--max-wait` (see api/retry.ts). */
  retry: RetryOptions;
  /** Pool size; defaults to 8. */
  connections?: number | undefined;
  /** Proxy settings, as read from the environment by the caller. */
  proxy?: { http?: string; https?: string; noProxy?: string } | undefined;
  /** A batch's shared gate: rate-limit waits pause the whole pool there. */
  gate?: Gate | undefined;
  /** Debug lines (never contain the key). */
  log?: ((line: string) => void) | undefined;
  /** For tests: a custom dispatcher. */
  dispatcher?: Dispatcher | undefined;
}

export interface CompleteOptions {
  /** Aborts the request in flight (and any wait). */
  signal?: AbortSignal | undefined;
  /**
   * Once aborted, nothing new starts: no first attempt, no retry, no wait at the gate; a
   * request already in flight goes on until `signal`. Defaults to `signal`.
   */
  stop?: AbortSignal | undefined;
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
  /** Set at once for a direct connection; a proxy's agent is made on first use. */
  private dispatcher: Dispatcher | undefined;
  private pendingDispatcher: Promise<Dispatcher> | undefined;
  private readonly ownsDispatcher: boolean;
  /** Cleared when the server rejects `stream_options`; later requests leave it out. */
  private streamOptions = true;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.endpoint = chatCompletionsUrl(opts.baseUrl, opts.query);
    this.ownsDispatcher = !opts.dispatcher;
    const agentOpts = {
      connections: opts.connections ?? 8,
      keepAliveTimeout: 30_000,
      connect: { timeout: Math.min(opts.timeoutMs, 30_000) },
    };
    const proxy = opts.proxy;
    if (opts.dispatcher) this.dispatcher = opts.dispatcher;
    else if (proxy && (proxy.http || proxy.https))
      this.pendingDispatcher = proxyAgent(agentOpts, proxy);
    else this.dispatcher = new Agent(agentOpts);
  }

  /**
   * Sends the request (streamed when `payload.body.stream`), retrying what the retry policy
   * (api/retry.ts) allows: never once answer text has been handed to `onText`.
   */
  async complete(payload: ChatRequestPayload, options: CompleteOptions = {}): Promise<Completion> {
    const { signal } = options;
    const stop = options.stop ?? signal;
    let current = this.streamOptions ? payload : withoutStreamOptions(payload);
    let triedWithoutStreamOptions = current !== payload;
    const budget = new RetryBudget(this.opts.retry);
    let sent = false;
    const stopped = (): InterruptedError =>
      sent
        ? new InterruptedError()
        : new InterruptedError('stopped before the request was sent', { notSent: true });
    for (;;) {
      if (stop?.aborted || signal?.aborted) throw stopped();
      const gate = this.opts.gate;
      let ticket: unknown;
      if (gate) {
        try {
          ticket = await gate.acquire(stop);
        } catch {
          // Stopped, or the gate closed after a failure that no other request can escape.
          throw stopped();
        }
      }
      let outcome: GateOutcome = { ok: false };
      let waitMs = 0;
      try {
        sent = true;
        const result = await this.once(current, options);
        outcome = { ok: true };
        return result;
      } catch (error) {
        if (signal?.aborted) throw new InterruptedError();
        if (!(error instanceof DescribeImageError)) throw error;
        const failure = classifyFailure(error);
        outcome = {
          ok: false,
          rateLimited: failure.kind === 'rate-limit',
          retryAfterMs: failure.serverWaitMs,
          fatal: stopsEveryRequest(failure),
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
        const decision = budget.decide(failure);
        if (!decision.retry) {
          if (decision.why !== 'too-long') throw error;
          // Waiting that long is not a retry: in a batch, every other request stops too.
          outcome.fatal = true;
          throw tooLongToWait(error, decision.waitMs ?? 0, this.opts.retry.maxWaitMs);
        }
        options.onRetry?.({ attempt: decision.attempt, delayMs: decision.waitMs, error });
        this.log(`retry in ${Math.round(decision.waitMs)} ms after: ${error.message}`);
        // With a gate, a rate-limit wait is the gate's pause, shared by every request.
        waitMs = gate && failure.kind === 'rate-limit' ? 0 : decision.waitMs;
      } finally {
        gate?.release(ticket, outcome);
      }
      if (waitMs > 0) {
        try {
          await sleep(waitMs, undefined, { signal: stop });
        } catch {
          throw new InterruptedError();
        }
      }
    }
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
    const ctx = { requestId, url: this.endpoint, imageUrls: sendsImageUrls(payload) };

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
      attachRetryHeaders(error, header, Date.now());
      this.log(`error body: ${text.slice(0, 2000)}`);
      throw error;
    }

    const contentType = header('content-type') ?? '';
    if (payload.body.stream && !/application\/json|text\/html/i.test(contentType)) {
      // The stream reader owns the body from here (it may let it finish after [DONE]).
      return this.readStream(response.body, options, ctx);
    }
    const read = { text: '' };
    try {
      if (/text\/html/i.test(contentType)) {
        const text = await readText(response.body, 200);
        throw new MalformedResponseError(
          `the server answered with a web page, not JSON from an API (${text.trim().slice(0, 60)}…); check --base-url`,
        );
      }
      const completion = parseCompletion(await readText(response.body, Infinity, read), ctx);
      // A server that ignored stream: true still owes the caller the text.
      if (payload.body.stream && options.onText && completion.text) options.onText(completion.text);
      return completion;
    } catch (error) {
      if (error instanceof DescribeImageError) throw error;
      // The whole answer arrived and then the connection broke: it is still the answer.
      const whole = options.signal?.aborted ? undefined : wholeAnswerIn(read.text, ctx);
      if (whole) {
        this.log(`the connection broke after the whole answer arrived: ${String(error)}`);
        return whole;
      }
      throw this.networkError(error, options.signal);
    } finally {
      discard(response.body);
    }
  }

  /**
   * Reads a chat-completion stream. `data: [DONE]` ends the answer: nothing after it (a reset,
   * a stall, trailing bytes) can turn a complete answer into a failure. So does a connection
   * that breaks after `finish_reason` arrived (only the usage that follows may be missing).
   */
  private readStream(
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
    return new Promise<Completion>((resolve, reject) => {
      let settled = false;
      const detach = (): void => {
        settled = true;
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
      };
      const succeed = (): void => {
        detach();
        if (decoder.comments > 0)
          this.log(`${decoder.comments} keep-alive comment line(s) in the stream`);
        resolve(acc.result());
      };
      const fail = (error: unknown): void => {
        detach();
        discard(body);
        let failure =
          error instanceof DescribeImageError
            ? error
            : this.networkError(error, options.signal, { when: 'while streaming' });
        // The stream's error object has no request id of its own: the response's is the one.
        if (failure instanceof APIError) failure = failure.withContext(ctx);
        if (acc.hasText && options.onText) delivered.add(failure);
        reject(failure);
      };
      const onData = (bytes: Uint8Array): void => {
        if (settled) return;
        try {
          feed(decoder.push(bytes));
        } catch (error) {
          fail(error);
          return;
        }
        if (decoder.done) {
          succeed();
          finishQuietly(body);
        }
      };
      const onEnd = (): void => {
        if (settled) return;
        try {
          feed(decoder.end());
        } catch (error) {
          fail(error);
          return;
        }
        if (decoder.done || acc.result().finishReason !== undefined) {
          succeed();
          return;
        }
        fail(
          new MalformedResponseError(
            acc.hasText
              ? 'the stream ended before the answer was complete (no finish_reason, no [DONE])'
              : 'the server closed the stream without an answer',
            { retryable: true },
          ),
        );
      };
      const onError = (error: unknown): void => {
        if (settled) return;
        if (!options.signal?.aborted && acc.result().finishReason !== undefined) {
          // The answer was whole; what broke is what came after it.
          this.log(`the stream broke after the answer was complete: ${String(error)}`);
          detach();
          discard(body);
          resolve(acc.result());
          return;
        }
        fail(error);
      };
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
    });
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
   * followed (up to 5), the size is capped, and the answer must be an image. Every failure is
   * an `InputError` naming the image's URL (exit 3: the image could not be had).
   */
  async download(url: string, opts: DownloadOptions): Promise<Uint8Array> {
    const failed = (why: string): InputError =>
      new InputError(`${url}: could not download the image: ${why}`);
    const netFailure = (error: unknown, host: string): DescribeImageError => {
      const failure = this.networkError(error, opts.signal, { host, download: true });
      return failure instanceof InterruptedError ? failure : failed(failure.message);
    };
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
        throw netFailure(error, current.host);
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
          throw failed('too many or unsafe redirects');
        }
        this.log(`download: ${response.statusCode} → ${next.toString()}`);
        current = next;
        continue;
      }
      if (response.statusCode >= 300) {
        discard(response.body);
        throw failed(`HTTP ${response.statusCode}; check the URL`);
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
        throw netFailure(error, current.host);
      }
      this.log(`download: ${size.toLocaleString('en-US')} bytes from ${current.host}`);
      return Buffer.concat(chunks);
    }
  }

  /**
   * A network failure told in one line. Talking to the API, the hint points at `--base-url`;
   * downloading an image (`download`), at the image's URL.
   */
  private networkError(
    error: unknown,
    signal: AbortSignal | undefined,
    where: { when?: string; host?: string; download?: boolean } = {},
  ): DescribeImageError {
    if (signal?.aborted) return new InterruptedError();
    const host = where.host ?? new URL(this.endpoint).host;
    const code = errorCode(error);
    const suffix = where.when ? ` ${where.when}` : '';
    const seconds = `${this.opts.timeoutMs / 1000} s`;
    const check = where.download
      ? 'check the URL and your network'
      : 'check --base-url and your network';
    const running = where.download ? 'check the URL' : 'is the server running? check --base-url';
    switch (code) {
      case 'UND_ERR_HEADERS_TIMEOUT':
        return new TimeoutError(
          `no answer from ${host} within ${seconds} (raise --timeout if ${where.download ? 'the host' : 'the model'} is slow)`,
          { cause: error },
        );
      case 'UND_ERR_BODY_TIMEOUT':
        return new TimeoutError(
          `${host} stopped sending for ${seconds}${suffix} (raise --timeout if ${where.download ? 'the host' : 'the model'} is slow)`,
          { cause: error },
        );
      case 'UND_ERR_CONNECT_TIMEOUT':
        return new TimeoutError(`could not connect to ${host}: timed out (${check})`, {
          cause: error,
        });
      case 'ECONNREFUSED':
        return new ConnectionError(
          `could not connect to ${host}: connection refused (${running})`,
          {
            cause: error,
          },
        );
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EAI_NONAME':
        return new ConnectionError(
          `could not resolve host ${host.replace(/:\d+$/, '')} (check the address and your network)`,
          { cause: error },
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
          { cause: error },
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
  private async request(
    url: string | URL,
    opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
  ): Promise<Dispatcher.ResponseData> {
    const target = typeof url === 'string' ? new URL(url) : url;
    this.dispatcher ??= await this.pendingDispatcher;
    return requestImpl.call(this.dispatcher as Dispatcher, {
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
    if (!this.ownsDispatcher) return;
    const dispatcher = this.dispatcher ?? (await this.pendingDispatcher?.catch(() => undefined));
    await dispatcher?.close();
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
        throw client.networkError(error, options.signal, {
          when: 'while downloading',
          host: url.host,
        });
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
      throw this.networkError(error, signal, { when: 'while reading the answer', host: url.host });
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
      throw this.networkError(error, signal, { host: url.host });
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
    attachRetryHeaders(error, header, Date.now());
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

/**
 * The agent for a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), from undici's public index:
 * its proxy agent tunnels with `Dispatcher.prototype.connect`, which only the index installs.
 * Loaded when a proxy is set, so a direct connection never pays for the index.
 */
async function proxyAgent(
  agentOpts: { connections: number; keepAliveTimeout: number; connect: { timeout: number } },
  proxy: { http?: string; https?: string; noProxy?: string },
): Promise<Dispatcher> {
  // undici is CommonJS: bundled, its named exports sit on the default export.
  const undici = await import('undici');
  const EnvHttpProxyAgent =
    (undici.EnvHttpProxyAgent as typeof undici.EnvHttpProxyAgent | undefined) ??
    (undici.default as unknown as typeof undici).EnvHttpProxyAgent;
  return new EnvHttpProxyAgent({
    ...agentOpts,
    httpProxy: proxy.http ?? '',
    httpsProxy: proxy.https ?? '',
    noProxy: ['localhost', '127.0.0.1', '::1', proxy.noProxy].filter(Boolean).join(','),
  });
}

/** Whether a request carries an image as an http(s) URL for the server to fetch. */
function sendsImageUrls(payload: ChatRequestPayload): boolean {
  return payload.body.messages.some(
    (m) =>
      Array.isArray(m.content) &&
      m.content.some((p) => p.type === 'image_url' && /^https?:/i.test(p.image_url.url)),
  );
}

/**
 * Lets a response body that is no longer needed finish on its own, so its keep-alive
 * connection can serve the next request; one that stalls is dropped after a second.
 */
function finishQuietly(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  const timer = setTimeout(() => body.destroy(), 1000);
  timer.unref();
  body.once('close', () => clearTimeout(timer));
  body.once('end', () => clearTimeout(timer));
  body.resume();
}

function withoutStreamOptions(payload: ChatRequestPayload): ChatRequestPayload {
  return withBody(payload, (body) => {
    const { stream_options: _dropped, ...rest } = body;
    return rest;
  });
}

function parseCompletion(text: string, ctx: RequestContext): Completion {
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

/** A body's text, up to about `limit` characters; `into.text` holds what arrived if it fails. */
async function readText(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  into: { text: string } = { text: '' },
): Promise<string> {
  const decoder = new TextDecoder();
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    into.text += decoder.decode(chunk, { stream: true });
    if (into.text.length > limit) break;
  }
  into.text += decoder.decode();
  return into.text;
}

/** The completion in `text` if it is whole (parses, and has a finish reason), else undefined. */
function wholeAnswerIn(text: string, ctx: RequestContext): Completion | undefined {
  try {
    const completion = parseCompletion(text, ctx);
    return completion.finishReason === undefined ? undefined : completion;
  } catch {
    return undefined;
  }
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
