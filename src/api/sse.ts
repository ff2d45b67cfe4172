/**
 * Pure SSE decoder for chat-completion streams: bytes in (split anywhere, even inside a UTF-8
 * character or a CRLF), chunks out. Framing is eventsource-parser's job (comments, CRLF,
 * multi-line data, a last event without its blank line); this module knows what the data
 * means: `[DONE]`, JSON chunks, and error objects sent in the middle of a stream.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { MalformedResponseError } from '../errors.js';
import { apiErrorFromBody } from './errors.js';
import type { ChatCompletionChunk } from './types.js';

export interface SSEDecoder {
  /** Feeds bytes; returns the chunks completed by them. Throws on an error event. */
  push(bytes: Uint8Array): ChatCompletionChunk[];
  /** Ends the input; returns any chunk left unterminated by a stream that stopped early. */
  end(): ChatCompletionChunk[];
  /** Whether `data: [DONE]` arrived. */
  readonly done: boolean;
  /** How many comment lines (`: keep-alive`) arrived. */
  readonly comments: number;
}

export function createSSEDecoder(): SSEDecoder {
  const text = new TextDecoder('utf-8');
  let out: ChatCompletionChunk[] = [];
  let done = false;
  let comments = 0;
  let failure: Error | undefined;
  let flushing = false;

  const parser: EventSourceParser = createParser({
    onEvent(event) {
      if (done || failure) return;
      const data = event.data.trim();
      if (data === '') return;
      if (data === '[DONE]') {
        done = true;
        return;
      }
      let value: unknown;
      try {
        value = JSON.parse(data);
      } catch {
        // A stream cut in the middle of its last line: that event never fully arrived.
        if (flushing) return;
        failure = new MalformedResponseError(
          `the server sent a stream event that is not JSON: ${data.slice(0, 120)}`,
        );
        return;
      }
      const error = errorIn(value, event.event);
      if (error !== undefined) {
        failure = apiErrorFromBody(undefined, error, {});
        return;
      }
      out.push(value as ChatCompletionChunk);
    },
    onComment() {
      comments++;
    },
  });

  function take(): ChatCompletionChunk[] {
    if (failure) throw failure;
    const chunks = out;
    out = [];
    return chunks;
  }

  return {
    push(bytes) {
      parser.feed(text.decode(bytes, { stream: true }));
      return take();
    },
    end() {
      const rest = text.decode();
      if (rest) parser.feed(rest);
      // A stream that ends without its final blank line may still hold one complete `data:`
      // line: end the event as the blank line would have.
      flushing = true;
      parser.feed('\n\n');
      parser.reset();
      return take();
    },
    get done() {
      return done;
    },
    get comments() {
      return comments;
    },
  };
}

/** The error payload of a stream event, if it is one (OpenAI, vLLM and OpenRouter shapes). */
function errorIn(value: unknown, eventName: string | undefined): unknown {
  if (typeof value !== 'object' || value === null) {
    return eventName === 'error' ? value : undefined;
  }
  if ('error' in value && value.error) return value;
  if ((value as { object?: unknown }).object === 'error') return value;
  if (eventName === 'error') return value;
  return undefined;
}
