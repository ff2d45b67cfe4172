/**
 * Pure request-body builder. Image bytes are not base64-encoded into the body here: each
 * data URL holds a placeholder, and `encodeBody()` streams the base64 in pieces, so a 20 MB
 * image never becomes a 27 MB string inside a 27 MB JSON string.
 */
import type {
  ChatCompletionRequest,
  ChatMessage,
  ContentPart,
  ImageDetail,
  JsonSchemaFormat,
} from './types.js';

/** An image as it goes into a request: a URL passed through, or bytes to send inline. */
export type ImageSource = { url: string } | { mime: string; data: Uint8Array };

export interface ChatRequestOptions {
  model: string;
  prompt: string;
  images: readonly ImageSource[];
  system?: string | undefined;
  detail?: ImageDetail | undefined;
  maxTokens?: number | undefined;
  maxCompletionTokens?: number | undefined;
  temperature?: number | undefined;
  stream: boolean;
  /** Ask for a usage chunk at the end of a stream (`stream_options.include_usage`). */
  includeUsage?: boolean | undefined;
  responseFormat?: JsonSchemaFormat | undefined;
}

/** A request body whose inline images are kept as bytes until it is encoded. */
export interface ChatRequestPayload {
  body: ChatCompletionRequest;
  /** Bytes for each placeholder, by index. */
  attachments: readonly Uint8Array[];
}

// JSON.stringify escapes a NUL as \u0000. Anchored on the `"url":"` key (which text inside a
// prompt can only produce with escaped quotes), the pattern below matches placeholders alone.
const MARK = '\u0000';
const PLACEHOLDER_JSON = /"url":"data:([^"]*);base64,\\u0000(\d+)\\u0000"/g;

/** Builds the body for `POST /chat/completions`: optional system message, one user message. */
export function buildChatRequest(opts: ChatRequestOptions): ChatRequestPayload {
  const attachments: Uint8Array[] = [];
  const content: ContentPart[] = [{ type: 'text', text: opts.prompt }];
  for (const image of opts.images) {
    let url: string;
    if ('url' in image) {
      url = image.url;
    } else {
      url = `data:${image.mime};base64,${MARK}${attachments.length}${MARK}`;
      attachments.push(image.data);
    }
    content.push({
      type: 'image_url',
      image_url: opts.detail ? { url, detail: opts.detail } : { url },
    });
  }
  const messages: ChatMessage[] = [];
  if (opts.system) messages.push({ role: 'system', content: opts.system });
  messages.push({ role: 'user', content });

  const body: ChatCompletionRequest = { model: opts.model, messages, stream: opts.stream };
  if (opts.maxTokens !== undefined) body.max_tokens = opts.maxTokens;
  if (opts.maxCompletionTokens !== undefined) body.max_completion_tokens = opts.maxCompletionTokens;
  if (opts.temperature !== undefined) body.temperature = opts.temperature;
  if (opts.responseFormat) body.response_format = opts.responseFormat;
  // vLLM rejects stream_options on a non-streaming request.
  if (opts.stream && opts.includeUsage) body.stream_options = { include_usage: true };
  return { body, attachments };
}

/** The same payload with another body (for a retry without `stream_options`, say). */
export function withBody(
  payload: ChatRequestPayload,
  change: (body: ChatCompletionRequest) => ChatCompletionRequest,
): ChatRequestPayload {
  return { body: change(payload.body), attachments: payload.attachments };
}

/** A body ready to send: its exact length, and its bytes as a fresh iterable on every call. */
export interface EncodedBody {
  length: number;
  chunks(): Iterable<Uint8Array>;
}

// Base64 works on 3-byte groups: slices of a multiple of 3 bytes encode independently.
const SLICE = 3 * 64 * 1024;
const QUOTE = Buffer.from('"');

/** Serialises a payload, streaming each attachment as base64 in bounded slices. */
export function encodeBody(payload: ChatRequestPayload): EncodedBody {
  const json = JSON.stringify(payload.body);
  const pieces: (Uint8Array | number)[] = [];
  let last = 0;
  let length = 0;
  for (const match of json.matchAll(PLACEHOLDER_JSON)) {
    const head = `"url":"data:${match[1] ?? ''};base64,`;
    const text = Buffer.from(json.slice(last, match.index) + head, 'utf8');
    const index = Number(match[2]);
    const data = payload.attachments[index];
    if (!data) throw new Error(`attachment ${index} is missing`);
    pieces.push(text, index, QUOTE);
    length += text.length + base64Length(data.length) + QUOTE.length;
    last = match.index + match[0].length;
  }
  const tail = Buffer.from(json.slice(last), 'utf8');
  pieces.push(tail);
  length += tail.length;

  return {
    length,
    *chunks() {
      for (const piece of pieces) {
        if (typeof piece !== 'number') {
          yield piece;
          continue;
        }
        const data = payload.attachments[piece] as Uint8Array;
        for (let at = 0; at < data.length; at += SLICE) {
          const slice = data.subarray(at, at + SLICE);
          yield Buffer.from(
            Buffer.from(slice.buffer, slice.byteOffset, slice.length).toString('base64'),
            'latin1',
          );
        }
      }
    },
  };
}

/** The body with every placeholder filled in: what the server receives, as an object. */
export function materializeBody(payload: ChatRequestPayload): ChatCompletionRequest {
  return mapImageUrls(payload, (mime, data) => `data:${mime};base64,${toBase64(data)}`);
}

/** The body for showing to a person: each inline image shortened to its size. */
export function displayBody(payload: ChatRequestPayload): ChatCompletionRequest {
  return mapImageUrls(
    payload,
    (mime, data) => `data:${mime};base64,…(${data.length.toLocaleString('en-US')} bytes)`,
  );
}

function mapImageUrls(
  payload: ChatRequestPayload,
  fill: (mime: string, data: Uint8Array) => string,
): ChatCompletionRequest {
  const json = JSON.stringify(payload.body).replace(
    PLACEHOLDER_JSON,
    (_all, mime: string, index: string) =>
      `"url":${JSON.stringify(fill(mime, payload.attachments[Number(index)] ?? new Uint8Array()))}`,
  );
  return JSON.parse(json) as ChatCompletionRequest;
}

function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.length).toString('base64');
}

/** `{base}/chat/completions`, with any query parameters (Azure's api-version). */
export function chatCompletionsUrl(baseUrl: string, query: Record<string, string> = {}): string {
  // The path goes on the base URL's path; a query the base URL carries (`?key=…`) is kept.
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.toString();
}

/** The number of bytes an inline image adds to a request once base64-encoded. */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}
