import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CompletionAccumulator } from '../../src/api/accumulate.js';
import { createSSEDecoder } from '../../src/api/sse.js';
import type { ChatCompletionChunk, Completion } from '../../src/api/types.js';
import { APIError, ExitCode, MalformedResponseError } from '../../src/errors.js';

const SSE_DIR = new URL('../fixtures/sse/', import.meta.url);
const encoder = new TextEncoder();

/** The transcript as the bytes a server would send. `.jsonl` lines are wrapped as SSE events. */
function transcriptBytes(name: string): Uint8Array {
  const text = readFileSync(new URL(name, SSE_DIR), 'utf8');
  if (!name.endsWith('.jsonl')) return encoder.encode(text);
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  return encoder.encode(lines.map((line) => `data: ${line}\n\n`).join('') + 'data: [DONE]\n\n');
}

/** The JSON payloads of a transcript, read without the decoder (the oracle for the chunk list). */
function naiveChunks(name: string): unknown[] {
  const text = readFileSync(new URL(name, SSE_DIR), 'utf8');
  const datas = name.endsWith('.jsonl')
    ? text.split('\n').filter((line) => line.trim() !== '')
    : text
        .split('\n\n')
        .filter((block) => block.trim() !== '')
        .map((block) => {
          expect(block.startsWith('data: ')).toBe(true);
          return block.slice('data: '.length);
        });
  return datas.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as unknown);
}

interface Decoded {
  chunks: ChatCompletionChunk[];
  completion: Completion;
  done: boolean;
  comments: number;
}

/** Feeds the pieces to a fresh decoder, folds the chunks, and ends the stream. */
function decode(pieces: Iterable<Uint8Array>): Decoded {
  const decoder = createSSEDecoder();
  const acc = new CompletionAccumulator();
  const chunks: ChatCompletionChunk[] = [];
  const take = (got: ChatCompletionChunk[]): void => {
    for (const chunk of got) {
      chunks.push(chunk);
      acc.add(chunk);
    }
  };
  for (const piece of pieces) take(decoder.push(piece));
  take(decoder.end());
  return { chunks, completion: acc.result(), done: decoder.done, comments: decoder.comments };
}

function* bytewise(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

function splitAt(bytes: Uint8Array, at: number): Uint8Array[] {
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

function toCRLF(bytes: Uint8Array): Uint8Array {
  return encoder.encode(new TextDecoder().decode(bytes).replace(/\n/g, '\r\n'));
}

/** A compact, comparable summary of a decode. */
function signature(d: Decoded): string {
  return JSON.stringify({ completion: d.completion, count: d.chunks.length, done: d.done });
}

const SMALL = 16 * 1024;
const EDGE = 2 * 1024;

/**
 * Every split point for transcripts under 16 KB. Larger ones (the vercel-ai openai-text
 * transcript and the response-format one) would take too long that way, so they get every
 * boundary within the first and last 2 KB plus every 101st boundary in between.
 */
function splitPoints(length: number): number[] {
  const points: number[] = [];
  for (let at = 0; at <= length; at++) {
    if (length < SMALL || at <= EDGE || at >= length - EDGE || at % 101 === 0) points.push(at);
  }
  return points;
}

interface Expectation {
  id: string;
  model: string;
  finishReason: string;
  usage: [prompt: number, completion: number, total: number];
  /** The answer text; `startsWith` when only the beginning is given. */
  text?: string;
  startsWith?: string;
  textLength?: number;
  refusal?: boolean;
}

const GPT4O = 'gpt-4o-2024-08-06';

// Read from the transcripts themselves: the usage chunk, the finish chunk and the deltas.
const EXPECTED: Record<string, Expectation> = {
  'openai-python_test_allows_non_strict_tools_but_no_parsing.sse': {
    id: 'chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62',
    model: GPT4O,
    finishReason: 'tool_calls',
    usage: [44, 16, 60],
    text: '',
    refusal: false,
  },
  'openai-python_test_content_logprobs_events.sse': {
    id: 'chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c',
    model: GPT4O,
    finishReason: 'stop',
    usage: [9, 2, 11],
    text: 'Foo!',
    refusal: false,
  },
  'openai-python_test_non_pydantic_response_format.sse': {
    id: 'chatcmpl-ABfwCjPMi0ubw56UyMIIeNfJzyogq',
    model: GPT4O,
    finishReason: 'stop',
    usage: [19, 177, 196],
    startsWith:
      '\n  {\n    "location": "San Francisco, CA",\n    "weather": {\n      "temperature": "18°C",',
    textLength: 608,
    refusal: false,
  },
  'openai-python_test_parse_max_tokens_reached.sse': {
    id: 'chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh',
    model: GPT4O,
    finishReason: 'length',
    usage: [79, 1, 80],
    text: '{"',
    refusal: false,
  },
  'openai-python_test_parse_multiple_pydantic_tools.sse': {
    id: 'chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63',
    model: GPT4O,
    finishReason: 'tool_calls',
    usage: [149, 60, 209],
    text: '',
    refusal: false,
  },
  'openai-python_test_parse_nothing.sse': {
    id: 'chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL',
    model: GPT4O,
    finishReason: 'stop',
    usage: [14, 30, 44],
    text: "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app.",
    refusal: false,
  },
  'openai-python_test_parse_pydantic_model.sse': {
    id: 'chatcmpl-ABfw1e5abtU8OwGr15vOreYVb2MiF',
    model: GPT4O,
    finishReason: 'stop',
    usage: [79, 14, 93],
    text: '{"city":"San Francisco","temperature":61,"units":"f"}',
    refusal: false,
  },
  'openai-python_test_parse_pydantic_model_multiple_choices.sse': {
    id: 'chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq',
    model: GPT4O,
    finishReason: 'stop',
    usage: [79, 42, 121],
    // Choice 0 only; choices 1 and 2 say 61 and 59.
    text: '{"city":"San Francisco","temperature":65,"units":"f"}',
    refusal: false,
  },
  'openai-python_test_parse_pydantic_model_refusal.sse': {
    id: 'chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7',
    model: GPT4O,
    finishReason: 'stop',
    usage: [79, 11, 90],
    text: "I'm sorry, I can't assist with that request.",
    refusal: true,
  },
  'openai-python_test_parse_pydantic_tool.sse': {
    id: 'chatcmpl-ABfw8AOXnoa2kzy11vVTSjuQhHCQr',
    model: GPT4O,
    finishReason: 'tool_calls',
    usage: [76, 24, 100],
    text: '',
    refusal: false,
  },
  'openai-python_test_parse_strict_tools.sse': {
    id: 'chatcmpl-ABfwCgi41eStOcARjZq97ohCEGBPO',
    model: GPT4O,
    finishReason: 'tool_calls',
    usage: [48, 19, 67],
    text: '',
    refusal: false,
  },
  'openai-python_test_refusal_logprobs_events.sse': {
    id: 'chatcmpl-ABfw5GEVqPbLY576l46FZDQoNJ2KC',
    model: GPT4O,
    finishReason: 'stop',
    usage: [79, 12, 91],
    text: "I'm very sorry, but I can't assist with that.",
    refusal: true,
  },
  'vercel-ai_azure-text.chunks.jsonl': {
    // The first chunk has an empty id and model: the first real ones are kept.
    id: 'chatcmpl-test',
    model: 'gpt-4',
    finishReason: 'stop',
    usage: [15, 5, 20],
    startsWith: 'Hello',
    text: 'Hello World',
    refusal: false,
  },
  'vercel-ai_openai-text.chunks.jsonl': {
    id: 'chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0',
    model: 'gpt-4.1-nano-2025-04-14',
    finishReason: 'stop',
    usage: [16, 300, 316],
    startsWith:
      '**Holiday Name:** Harmony Day\n\n**Date:** Celebrated annually on the first Saturday of May\n\n',
    textLength: 1724,
    refusal: false,
  },
};

const TRANSCRIPTS = readdirSync(SSE_DIR)
  .filter((name) => name.endsWith('.sse') || name.endsWith('.jsonl'))
  .sort();

describe('SSE transcripts in test/fixtures/sse', () => {
  it('every transcript has an expectation, and every expectation a transcript', () => {
    expect(TRANSCRIPTS.length).toBe(14);
    expect(Object.keys(EXPECTED).sort()).toEqual(TRANSCRIPTS);
  });

  describe.each(TRANSCRIPTS)('%s', (name) => {
    const bytes = transcriptBytes(name);
    const expected = EXPECTED[name]!;
    const whole = decode([bytes]);
    const reference = signature(whole);

    it('decodes, fed whole, into the chunks the transcript holds', () => {
      expect(whole.done).toBe(true);
      expect(whole.comments).toBe(0);
      expect(whole.chunks).toEqual(naiveChunks(name));
    });

    it('accumulates the expected id, model, text, finish reason and usage', () => {
      const c = whole.completion;
      expect(c.id).toBe(expected.id);
      expect(c.model).toBe(expected.model);
      expect(c.finishReason).toBe(expected.finishReason);
      expect(c.refusal).toBe(expected.refusal ?? false);
      const [prompt, completion, total] = expected.usage;
      expect(c.usage).toBeDefined();
      expect(c.usage!.prompt_tokens).toBe(prompt);
      expect(c.usage!.completion_tokens).toBe(completion);
      expect(c.usage!.total_tokens).toBe(total);
      if (expected.text !== undefined) expect(c.text).toBe(expected.text);
      if (expected.startsWith !== undefined)
        expect(c.text.startsWith(expected.startsWith)).toBe(true);
      if (expected.textLength !== undefined) expect(c.text).toHaveLength(expected.textLength);
    });

    it('gives the same result fed one byte at a time', () => {
      expect(signature(decode(bytewise(bytes)))).toBe(reference);
    });

    // Thousands of whole decodes of the largest transcripts: seconds on an idle machine, but
    // far more on a loaded one, so this test gets a longer limit than the suite's 30 s.
    it(
      'gives the same result split into two chunks at every boundary',
      { timeout: 180_000 },
      () => {
        const points = splitPoints(bytes.length);
        if (bytes.length < SMALL) expect(points).toHaveLength(bytes.length + 1);
        const wrong: number[] = [];
        for (const at of points) {
          if (signature(decode(splitAt(bytes, at))) !== reference) wrong.push(at);
        }
        expect(wrong).toEqual([]);
      },
    );

    it('gives the same result with CRLF line endings, fed one byte at a time', () => {
      const crlf = toCRLF(bytes);
      expect(crlf.length).toBeGreaterThan(bytes.length);
      expect(signature(decode(bytewise(crlf)))).toBe(reference);
      expect(signature(decode([crlf]))).toBe(reference);
    });
  });

  it('the multi-choice transcript really has other choices, which are ignored', () => {
    const name = 'openai-python_test_parse_pydantic_model_multiple_choices.sse';
    const chunks = naiveChunks(name) as ChatCompletionChunk[];
    const indexes = new Set(chunks.flatMap((c) => (c.choices ?? []).map((choice) => choice.index)));
    expect([...indexes].sort()).toEqual([0, 1, 2]);
    expect(decode([transcriptBytes(name)]).completion.text).not.toContain('"temperature":61');
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-made streams

function chunkJson(fields: {
  content?: string;
  refusal?: string;
  finish?: string | null;
  index?: number;
  usage?: unknown;
  noUsageKey?: boolean;
}): string {
  const delta: Record<string, unknown> = {};
  if (fields.content !== undefined) delta.content = fields.content;
  if (fields.refusal !== undefined) delta.refusal = fields.refusal;
  const body: Record<string, unknown> = {
    id: 'chatcmpl-hand',
    object: 'chat.completion.chunk',
    model: 'hand-model',
    choices: [{ index: fields.index ?? 0, delta, finish_reason: fields.finish ?? null }],
  };
  if (!fields.noUsageKey) body.usage = fields.usage ?? null;
  return JSON.stringify(body);
}

const event = (json: string): string => `data: ${json}\n\n`;
const usageChunk = (p: number, c: number, t: number): string =>
  JSON.stringify({
    id: 'chatcmpl-hand',
    model: 'hand-model',
    choices: [],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: t },
  });

/** Decodes a stream fed whole, byte at a time and split at every point; all must agree. */
function decodeEveryWay(text: string): Decoded {
  const bytes = encoder.encode(text);
  const whole = decode([bytes]);
  const reference = signature(whole);
  expect(signature(decode(bytewise(bytes)))).toBe(reference);
  for (let at = 0; at <= bytes.length; at++) {
    expect(signature(decode(splitAt(bytes, at))), `split at ${at}`).toBe(reference);
  }
  return whole;
}

describe('hand-made streams', () => {
  it('ignores comment lines and counts them', () => {
    const text =
      ': OPENROUTER PROCESSING\n\n' +
      event(chunkJson({ content: 'Hel' })) +
      ': OPENROUTER PROCESSING\n\n' +
      event(chunkJson({ content: 'lo' })) +
      ':keep-alive\n\n' +
      event(chunkJson({ finish: 'stop' })) +
      'data: [DONE]\n\n';
    const d = decodeEveryWay(text);
    expect(d.comments).toBe(3);
    expect(d.chunks).toHaveLength(3);
    expect(d.completion.text).toBe('Hello');
    expect(d.completion.finishReason).toBe('stop');
    expect(d.done).toBe(true);
    // Counted the same however the bytes arrive.
    expect(decode(bytewise(encoder.encode(text))).comments).toBe(3);
  });

  it('reports done only once [DONE] arrives', () => {
    const decoder = createSSEDecoder();
    expect(decoder.done).toBe(false);
    decoder.push(encoder.encode(event(chunkJson({ content: 'x' }))));
    expect(decoder.done).toBe(false);
    decoder.push(encoder.encode('data: [DONE]\n\n'));
    expect(decoder.done).toBe(true);
  });

  it('ignores events after [DONE]', () => {
    const d = decode([
      encoder.encode(
        event(chunkJson({ content: 'a' })) +
          'data: [DONE]\n\n' +
          event(chunkJson({ content: 'b' })),
      ),
    ]);
    expect(d.completion.text).toBe('a');
    expect(d.chunks).toHaveLength(1);
  });

  it('parses a stream with no [DONE] that ends with a blank line', () => {
    const d = decodeEveryWay(
      event(chunkJson({ content: 'Hi' })) + event(chunkJson({ content: '!', finish: 'stop' })),
    );
    expect(d.done).toBe(false);
    expect(d.completion.text).toBe('Hi!');
    expect(d.completion.finishReason).toBe('stop');
  });

  it('parses the last event of a stream cut without its blank line, after end()', () => {
    const text =
      event(chunkJson({ content: 'Hi' })) +
      `data: ${chunkJson({ content: ' there', finish: 'stop' })}`;
    const decoder = createSSEDecoder();
    const first = decoder.push(encoder.encode(text));
    expect(first).toHaveLength(1);
    const rest = decoder.end();
    expect(rest).toHaveLength(1);
    expect(rest[0]!.choices?.[0]?.delta?.content).toBe(' there');

    const d = decodeEveryWay(text);
    expect(d.done).toBe(false);
    expect(d.completion.text).toBe('Hi there');
    expect(d.completion.finishReason).toBe('stop');
  });

  it('parses the last event of a stream cut after a single newline, after end()', () => {
    const text =
      event(chunkJson({ content: 'Hi' })) +
      `data: ${chunkJson({ content: ' there', finish: 'stop' })}\n`;
    const d = decodeEveryWay(text);
    expect(d.completion.text).toBe('Hi there');
    expect(d.completion.finishReason).toBe('stop');
  });

  it('takes usage from the finish chunk when there is no separate usage chunk', () => {
    const usage = { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339, cost: 0.0021 };
    const d = decodeEveryWay(
      event(chunkJson({ content: 'A cat.' })) +
        event(chunkJson({ finish: 'stop', usage })) +
        'data: [DONE]\n\n',
    );
    expect(d.completion.text).toBe('A cat.');
    expect(d.completion.finishReason).toBe('stop');
    expect(d.completion.usage).toEqual(usage);
  });

  it('treats usage: null on every chunk as no usage', () => {
    const d = decodeEveryWay(
      event(chunkJson({ content: 'A ', usage: null })) +
        event(chunkJson({ content: 'dog.', usage: null })) +
        event(chunkJson({ finish: 'stop', usage: null })) +
        'data: [DONE]\n\n',
    );
    expect(d.completion.text).toBe('A dog.');
    expect(d.completion.usage).toBeUndefined();
    expect(d.completion.finishReason).toBe('stop');
  });

  it('keeps an earlier usage when later chunks say usage: null', () => {
    const d = decode([
      encoder.encode(
        event(usageChunk(3, 4, 7)) +
          event(chunkJson({ content: 'late', usage: null })) +
          'data: [DONE]\n\n',
      ),
    ]);
    expect(d.completion.usage).toMatchObject({
      prompt_tokens: 3,
      completion_tokens: 4,
      total_tokens: 7,
    });
  });

  it('accepts data: without a space after the colon', () => {
    const d = decode([
      encoder.encode(`data:${chunkJson({ content: 'tight' })}\n\ndata:[DONE]\n\n`),
    ]);
    expect(d.completion.text).toBe('tight');
    expect(d.done).toBe(true);
  });

  it('throws an APIError carrying the server message for an error event mid-stream', () => {
    const decoder = createSSEDecoder();
    const before = decoder.push(encoder.encode(event(chunkJson({ content: 'Partial' }))));
    expect(before).toHaveLength(1);
    const errorEvent = event(
      JSON.stringify({ error: { message: 'Upstream provider   returned\nan error', code: 502 } }),
    );
    let caught: unknown;
    try {
      decoder.push(encoder.encode(errorEvent));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(APIError);
    const apiError = caught as APIError;
    expect(apiError.message).toContain('Upstream provider returned an error');
    expect(apiError.message).not.toContain('\n');
    expect(apiError.status).toBeUndefined();
    expect(apiError.exitCode).toBe(ExitCode.SERVER);
  });

  it('throws the APIError however the error event is split', () => {
    const text =
      event(chunkJson({ content: 'Partial' })) +
      event(
        JSON.stringify({
          error: { message: 'Rate limit exceeded: free-models-per-min', code: 429 },
        }),
      );
    const bytes = encoder.encode(text);
    for (const pieces of [
      [bytes],
      [...bytewise(bytes)],
      splitAt(bytes, Math.floor(bytes.length / 2)),
    ]) {
      expect(() => decode(pieces)).toThrow(APIError);
      try {
        decode(pieces);
      } catch (error) {
        expect((error as APIError).message).toContain('Rate limit exceeded: free-models-per-min');
        expect((error as APIError).exitCode).toBe(ExitCode.RATE_LIMIT);
      }
    }
  });

  it('throws an APIError for a vLLM-style {"object":"error"} event', () => {
    const text =
      event(chunkJson({ content: 'x' })) +
      event(
        JSON.stringify({
          object: 'error',
          message: "This model's maximum context length is 32768 tokens.",
          type: 'BadRequestError',
          param: null,
          code: 400,
        }),
      );
    let caught: unknown;
    try {
      decode([encoder.encode(text)]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).message).toContain(
      "This model's maximum context length is 32768 tokens.",
    );
    expect((caught as APIError).exitCode).toBe(ExitCode.REJECTED);
  });

  it('throws an APIError for an `event: error` event', () => {
    const text = `event: error\ndata: ${JSON.stringify({ message: 'overloaded right now' })}\n\n`;
    expect(() => decode([encoder.encode(text)])).toThrow(/overloaded right now/);
    expect(() => decode([encoder.encode(text)])).toThrow(APIError);
  });

  it('throws MalformedResponseError for data that is not JSON', () => {
    const text = event(chunkJson({ content: 'ok' })) + 'data: <html>oops</html>\n\n';
    expect(() => decode([encoder.encode(text)])).toThrow(MalformedResponseError);
    expect(() => decode(bytewise(encoder.encode(text)))).toThrow(/not JSON: <html>oops<\/html>/);
  });

  it('decodes UTF-8 characters split across chunks', () => {
    const answer = 'Ein Café in Zürich — 東京の夜景 🐈‍⬛🎉, naïve façade';
    const text =
      event(chunkJson({ content: answer.slice(0, 12) })) +
      event(chunkJson({ content: answer.slice(12) })) +
      'data: [DONE]\n\n';
    const bytes = encoder.encode(text);
    // Some split points really do fall inside a multi-byte character.
    expect(bytes.length).toBeGreaterThan(text.length);
    const d = decodeEveryWay(text);
    expect(d.completion.text).toBe(answer);
    expect(decode(bytewise(toCRLF(bytes))).completion.text).toBe(answer);
  });

  it('reads the first choice only', () => {
    const d = decodeEveryWay(
      event(chunkJson({ content: 'one', index: 1 })) +
        event(chunkJson({ content: 'zero', index: 0 })) +
        event(chunkJson({ content: ' two', index: 2, finish: 'length' })) +
        event(chunkJson({ index: 0, finish: 'stop' })) +
        'data: [DONE]\n\n',
    );
    expect(d.completion.text).toBe('zero');
    expect(d.completion.finishReason).toBe('stop');
  });

  it('joins multi-line data fields with a newline before parsing', () => {
    const d = decode([
      encoder.encode(
        'data: {"choices":[{"index":0,\ndata: "delta":{"content":"ml"}}]}\n\ndata: [DONE]\n\n',
      ),
    ]);
    expect(d.completion.text).toBe('ml');
  });
});
