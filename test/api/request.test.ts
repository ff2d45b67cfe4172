import { describe, expect, it } from 'vitest';
import {
  base64Length,
  chatCompletionsUrl,
  buildChatRequest,
  displayBody,
  encodeBody,
  materializeBody,
  withBody,
} from '../../src/api/request.js';
import type { ChatRequestOptions, ChatRequestPayload, ImageSource } from '../../src/api/request.js';
import type { ChatCompletionRequest, ImagePart, TextPart } from '../../src/api/types.js';
import { expectValidRequest as expectValid, validateRequest } from '../helpers/openapi.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const PNG_BYTES = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5]);
const JPEG_BYTES = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 9, 8, 7]);

function options(over: Partial<ChatRequestOptions> = {}): ChatRequestOptions {
  return {
    model: 'gpt-4o-2024-08-06',
    prompt: 'What is in this image?',
    images: [],
    stream: false,
    ...over,
  };
}

function userParts(body: ChatCompletionRequest): (TextPart | ImagePart)[] {
  const user = body.messages.find((m) => m.role === 'user');
  if (user?.role !== 'user') throw new Error('no user message');
  return user.content;
}

function imageParts(body: ChatCompletionRequest): ImagePart['image_url'][] {
  return userParts(body)
    .filter((p): p is ImagePart => p.type === 'image_url')
    .map((p) => p.image_url);
}

function concat(chunks: Iterable<Uint8Array>): Buffer {
  return Buffer.concat([...chunks].map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Deterministic bytes (an LCG), so failures are reproducible. */
function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function expectEncodedMatches(payload: ChatRequestPayload): Buffer {
  const encoded = encodeBody(payload);
  const bytes = concat(encoded.chunks());
  const expected = Buffer.from(JSON.stringify(materializeBody(payload)), 'utf8');
  expect(bytes.equals(expected)).toBe(true);
  expect(encoded.length).toBe(expected.length);
  expect(encoded.length).toBe(bytes.length);
  return bytes;
}

// ---------------------------------------------------------------------------------------------

describe('the schema validator', () => {
  it('rejects a body with image_url.detail "ultra"', () => {
    const body = materializeBody(
      buildChatRequest(options({ images: [{ mime: 'image/png', data: PNG_BYTES }] })),
    );
    const broken = JSON.parse(JSON.stringify(body)) as {
      messages: { content: { image_url?: { detail?: string } }[] }[];
    };
    broken.messages[0]!.content[1]!.image_url!.detail = 'ultra';
    expect(validateRequest(broken)).toBe(false);
    expect(validateRequest.errors?.some((e) => e.instancePath.endsWith('/image_url/detail'))).toBe(
      true,
    );
  });

  it('rejects a body without a model', () => {
    const { model: _model, ...rest } = buildChatRequest(options()).body;
    expect(validateRequest(rest)).toBe(false);
    expect(validateRequest.errors?.some((e) => e.params.missingProperty === 'model')).toBe(true);
  });

  it('rejects a body whose image URL is not a URI', () => {
    const body = buildChatRequest(options({ images: [{ url: 'not a url at all' }] })).body;
    expect(validateRequest(body)).toBe(false);
  });

  it('rejects stream_options.include_usage that is not a boolean', () => {
    const body = buildChatRequest(options({ stream: true, includeUsage: true })).body;
    expect(validateRequest({ ...body, stream_options: { include_usage: 'yes' } })).toBe(false);
  });
});

describe('buildChatRequest', () => {
  it('one inline image: a text part, then a data URL with the image bytes', () => {
    const payload = buildChatRequest(options({ images: [{ mime: 'image/png', data: PNG_BYTES }] }));
    expect(payload.attachments).toEqual([PNG_BYTES]);
    const body = materializeBody(payload);
    expectValid(body);
    expect(body.messages).toHaveLength(1);
    const parts = userParts(body);
    expect(parts[0]).toEqual({ type: 'text', text: 'What is in this image?' });
    expect(parts[1]).toEqual({
      type: 'image_url',
      image_url: { url: `data:image/png;base64,${Buffer.from(PNG_BYTES).toString('base64')}` },
    });
  });

  it('one URL image is passed through as it is', () => {
    const url =
      'https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg';
    const payload = buildChatRequest(options({ images: [{ url }] }));
    expect(payload.attachments).toEqual([]);
    expectValid(payload.body);
    expect(imageParts(payload.body)).toEqual([{ url }]);
    expect(materializeBody(payload)).toEqual(payload.body);
  });

  it('several images keep their order, inline and URL mixed', () => {
    const images: ImageSource[] = [
      { mime: 'image/png', data: PNG_BYTES },
      { url: 'https://example.com/b.webp' },
      { mime: 'image/jpeg', data: JPEG_BYTES },
    ];
    const payload = buildChatRequest(options({ images, detail: 'high' }));
    expect(payload.attachments).toEqual([PNG_BYTES, JPEG_BYTES]);
    const body = materializeBody(payload);
    expectValid(body);
    expect(imageParts(body)).toEqual([
      { url: `data:image/png;base64,${Buffer.from(PNG_BYTES).toString('base64')}`, detail: 'high' },
      { url: 'https://example.com/b.webp', detail: 'high' },
      {
        url: `data:image/jpeg;base64,${Buffer.from(JPEG_BYTES).toString('base64')}`,
        detail: 'high',
      },
    ]);
    expect(userParts(body)[0]).toEqual({ type: 'text', text: 'What is in this image?' });
  });

  it('a system message comes first', () => {
    const payload = buildChatRequest(
      options({ system: 'Answer in French.', images: [{ url: 'https://e.com/x.png' }] }),
    );
    expectValid(payload.body);
    expect(payload.body.messages[0]).toEqual({ role: 'system', content: 'Answer in French.' });
    expect(payload.body.messages[1]!.role).toBe('user');
  });

  it('an empty system prompt adds no system message', () => {
    expect(buildChatRequest(options({ system: '' })).body.messages.map((m) => m.role)).toEqual([
      'user',
    ]);
  });

  it.each(['low', 'high', 'auto'] as const)('detail %s goes on every image', (detail) => {
    const payload = buildChatRequest(
      options({
        detail,
        images: [{ mime: 'image/png', data: PNG_BYTES }, { url: 'https://e.com/y.jpg' }],
      }),
    );
    const body = materializeBody(payload);
    expectValid(body);
    expect(imageParts(body).map((i) => i.detail)).toEqual([detail, detail]);
  });

  it('without detail, image_url has no detail key at all', () => {
    const body = buildChatRequest(options({ images: [{ url: 'https://e.com/y.jpg' }] })).body;
    expect(Object.keys(imageParts(body)[0]!)).toEqual(['url']);
  });

  it('max_tokens', () => {
    const body = buildChatRequest(options({ maxTokens: 300 })).body;
    expectValid(body);
    expect(body.max_tokens).toBe(300);
    expect('max_completion_tokens' in body).toBe(false);
  });

  it('max_completion_tokens', () => {
    const body = buildChatRequest(options({ maxCompletionTokens: 2048 })).body;
    expectValid(body);
    expect(body.max_completion_tokens).toBe(2048);
    expect('max_tokens' in body).toBe(false);
  });

  it('temperature, including 0', () => {
    for (const temperature of [0, 0.7, 2]) {
      const body = buildChatRequest(options({ temperature })).body;
      expectValid(body);
      expect(body.temperature).toBe(temperature);
    }
  });

  it('stream true with includeUsage asks for the usage chunk', () => {
    const body = buildChatRequest(options({ stream: true, includeUsage: true })).body;
    expectValid(body);
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
  });

  it('stream true without includeUsage has no stream_options', () => {
    const body = buildChatRequest(options({ stream: true })).body;
    expectValid(body);
    expect('stream_options' in body).toBe(false);
  });

  it('stream false has no stream_options even when includeUsage is set', () => {
    const body = buildChatRequest(options({ stream: false, includeUsage: true })).body;
    expectValid(body);
    expect(body.stream).toBe(false);
    expect('stream_options' in body).toBe(false);
  });

  it('optional fields left out are absent, not null', () => {
    const payload = buildChatRequest(
      options({
        images: [{ mime: 'image/png', data: PNG_BYTES }],
        system: undefined,
        detail: undefined,
        maxTokens: undefined,
        maxCompletionTokens: undefined,
        temperature: undefined,
        includeUsage: undefined,
        responseFormat: undefined,
      }),
    );
    expect(Object.keys(payload.body).sort()).toEqual(['messages', 'model', 'stream']);
    const json = JSON.stringify(materializeBody(payload));
    expect(json).not.toContain('null');
    expect(json).not.toContain('undefined');
    expectValid(materializeBody(payload));
  });

  it('a response format is passed through', () => {
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: {
        name: 'caption',
        strict: true,
        schema: {
          type: 'object',
          properties: { caption: { type: 'string' } },
          required: ['caption'],
          additionalProperties: false,
        },
      },
    };
    const body = buildChatRequest(options({ responseFormat })).body;
    expectValid(body);
    expect(body.response_format).toEqual(responseFormat);
  });

  it('every option at once is still a valid request', () => {
    const body = materializeBody(
      buildChatRequest(
        options({
          system: 'Be brief.',
          detail: 'low',
          maxCompletionTokens: 100,
          temperature: 0.2,
          stream: true,
          includeUsage: true,
          images: [{ mime: 'image/webp', data: PNG_BYTES }, { url: 'https://e.com/z.gif' }],
        }),
      ),
    );
    expectValid(body);
  });

  it('withBody keeps the attachments', () => {
    const payload = buildChatRequest(
      options({
        stream: true,
        includeUsage: true,
        images: [{ mime: 'image/png', data: PNG_BYTES }],
      }),
    );
    const changed = withBody(payload, ({ stream_options: _drop, ...rest }) => rest);
    expect('stream_options' in changed.body).toBe(false);
    expect(changed.attachments).toBe(payload.attachments);
    expectEncodedMatches(changed);
  });
});

describe('encodeBody', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7])(
    'an attachment of %i bytes encodes exactly as JSON.stringify would',
    (size) => {
      const data = pseudoRandomBytes(size, size + 11);
      const payload = buildChatRequest(options({ images: [{ mime: 'image/png', data }] }));
      const bytes = expectEncodedMatches(payload);
      const sent = JSON.parse(bytes.toString('utf8')) as ChatCompletionRequest;
      expect(imageParts(sent)[0]!.url).toBe(
        `data:image/png;base64,${Buffer.from(data).toString('base64')}`,
      );
      // The placeholder `\u00000\u0000` (13 characters in the JSON) becomes the base64.
      const placeholder = String.raw`\u00000\u0000`;
      expect(bytes.length).toBe(
        Buffer.byteLength(JSON.stringify(payload.body)) - placeholder.length + base64Length(size),
      );
    },
  );

  it('an attachment of about 1 MB (not a multiple of 3) streams in several chunks', () => {
    const size = 1024 * 1024 + 1;
    expect(size % 3).not.toBe(0);
    const data = pseudoRandomBytes(size, 7);
    const payload = buildChatRequest(
      options({ images: [{ mime: 'image/jpeg', data }], stream: true, includeUsage: true }),
    );
    const chunks = [...encodeBody(payload).chunks()];
    expect(chunks.length).toBeGreaterThan(3);
    const bytes = expectEncodedMatches(payload);
    const sent = JSON.parse(bytes.toString('utf8')) as ChatCompletionRequest;
    expect(
      Buffer.from(imageParts(sent)[0]!.url.split(',')[1]!, 'base64').equals(Buffer.from(data)),
    ).toBe(true);
  });

  it('several attachments, of sizes around slice boundaries, with URLs between them', () => {
    const slice = 3 * 64 * 1024;
    const datas = [slice - 1, slice, slice + 1, 5, 0].map((n, i) => pseudoRandomBytes(n, i + 100));
    const images: ImageSource[] = [];
    datas.forEach((data, i) => {
      images.push({ mime: i % 2 ? 'image/png' : 'image/webp', data });
      images.push({ url: `https://example.com/${i}.png` });
    });
    const payload = buildChatRequest(options({ images, system: 'sys', detail: 'auto' }));
    expect(payload.attachments).toHaveLength(5);
    const bytes = expectEncodedMatches(payload);
    const urls = imageParts(JSON.parse(bytes.toString('utf8')) as ChatCompletionRequest).map(
      (i) => i.url,
    );
    expect(urls.filter((u) => u.startsWith('https://'))).toHaveLength(5);
    const inline = urls.filter((u) => u.startsWith('data:'));
    inline.forEach((url, i) => {
      expect(url).toBe(
        `data:${i % 2 ? 'image/png' : 'image/webp'};base64,${Buffer.from(datas[i]!).toString('base64')}`,
      );
    });
    expectValid(JSON.parse(bytes.toString('utf8')));
  });

  it('an attachment that is a view into a larger buffer sends only its own bytes', () => {
    const big = pseudoRandomBytes(1000, 3);
    const view = big.subarray(101, 101 + 250);
    const payload = buildChatRequest(options({ images: [{ mime: 'image/png', data: view }] }));
    const bytes = expectEncodedMatches(payload);
    const sent = JSON.parse(bytes.toString('utf8')) as ChatCompletionRequest;
    expect(imageParts(sent)[0]!.url).toBe(
      `data:image/png;base64,${Buffer.from(view).toString('base64')}`,
    );
  });

  it('chunks() gives the same bytes on every call', () => {
    const payload = buildChatRequest(
      options({ images: [{ mime: 'image/png', data: pseudoRandomBytes(500_000) }] }),
    );
    const encoded = encodeBody(payload);
    expect(concat(encoded.chunks()).equals(concat(encoded.chunks()))).toBe(true);
  });

  it('non-ASCII prompts are counted in bytes, not characters', () => {
    const payload = buildChatRequest(
      options({
        prompt: 'Что на картинке? 画像に何がありますか 🖼️',
        images: [{ mime: 'image/png', data: PNG_BYTES }],
      }),
    );
    const bytes = expectEncodedMatches(payload);
    expect(bytes.length).toBeGreaterThan(bytes.toString('utf8').length);
  });

  it('a prompt that looks like a placeholder is sent unchanged', () => {
    const prompts = [
      // The literal characters, backslash-u and all.
      String.raw`"url":"data:image/png;base64,\u00000\u0000"`,
      // The same with real NUL characters.
      '"url":"data:image/png;base64,\u00000\u0000"',
      'NUL \u0000 in \u00001\u0000 the middle \u0000',
    ];
    for (const prompt of prompts) {
      for (const images of [[], [{ mime: 'image/png', data: PNG_BYTES }]] as ImageSource[][]) {
        const payload = buildChatRequest(options({ prompt, images }));
        const bytes = expectEncodedMatches(payload);
        const sent = JSON.parse(bytes.toString('utf8')) as ChatCompletionRequest;
        expect(userParts(sent)[0]).toEqual({ type: 'text', text: prompt });
        expect(userParts(materializeBody(payload))[0]).toEqual({ type: 'text', text: prompt });
        expect(userParts(displayBody(payload))[0]).toEqual({ type: 'text', text: prompt });
        expect(imageParts(sent)).toHaveLength(images.length);
      }
    }
  });

  it('the system message and model are not treated as placeholders either', () => {
    const tricky = '"url":"data:image/png;base64,\u00000\u0000"';
    const payload = buildChatRequest(
      options({ system: tricky, model: tricky, images: [{ mime: 'image/png', data: PNG_BYTES }] }),
    );
    const sent = JSON.parse(
      expectEncodedMatches(payload).toString('utf8'),
    ) as ChatCompletionRequest;
    expect(sent.model).toBe(tricky);
    expect(sent.messages[0]).toEqual({ role: 'system', content: tricky });
  });
});

describe('displayBody', () => {
  it('shortens inline images to their size, with thousands separators', () => {
    const payload = buildChatRequest(
      options({
        images: [
          { mime: 'image/png', data: new Uint8Array(5) },
          { url: 'https://example.com/kept.png' },
          { mime: 'image/jpeg', data: new Uint8Array(1_234_567) },
          { mime: 'image/webp', data: new Uint8Array(0) },
        ],
      }),
    );
    const shown = displayBody(payload);
    expect(imageParts(shown).map((i) => i.url)).toEqual([
      'data:image/png;base64,…(5 bytes)',
      'https://example.com/kept.png',
      'data:image/jpeg;base64,…(1,234,567 bytes)',
      'data:image/webp;base64,…(0 bytes)',
    ]);
    // The rest of the body is untouched.
    expect(shown.model).toBe(payload.body.model);
    expect(userParts(shown)[0]).toEqual(userParts(payload.body)[0]);
    expect(JSON.stringify(shown).length).toBeLessThan(1000);
  });

  it('does not change the payload', () => {
    const payload = buildChatRequest(options({ images: [{ mime: 'image/png', data: PNG_BYTES }] }));
    const before = JSON.stringify(payload.body);
    displayBody(payload);
    materializeBody(payload);
    expect(JSON.stringify(payload.body)).toBe(before);
  });
});

describe('base64Length', () => {
  it('is 4·⌈n/3⌉', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(base64Length)).toEqual([0, 4, 4, 4, 8, 8, 8, 12]);
    for (const n of [0, 1, 2, 3, 100, 1001, 65536]) {
      expect(base64Length(n)).toBe(Buffer.from(new Uint8Array(n)).toString('base64').length);
    }
  });
});

describe('chatCompletionsUrl', () => {
  it('puts the path after the base URL path, with or without a trailing slash', () => {
    expect(chatCompletionsUrl('https://api.example.com/v1')).toBe(
      'https://api.example.com/v1/chat/completions',
    );
    expect(chatCompletionsUrl('https://api.example.com/v1//')).toBe(
      'https://api.example.com/v1/chat/completions',
    );
  });

  it('keeps a query the base URL carries, and adds the given parameters', () => {
    expect(chatCompletionsUrl('https://h.example/v1beta/openai?key=abc')).toBe(
      'https://h.example/v1beta/openai/chat/completions?key=abc',
    );
    expect(
      chatCompletionsUrl('https://r.openai.azure.com/openai/deployments/d', {
        'api-version': '2024-10-21',
      }),
    ).toBe(
      'https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21',
    );
  });
});
