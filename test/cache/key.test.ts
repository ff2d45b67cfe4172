/**
 * The answer cache's key (src/cache/key.ts): every part that decides an answer changes it,
 * and nothing else does (file names, output options, the order options were given in).
 */
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/commands/job.js';
import { PROVIDERS } from '../../src/providers.js';
import {
  answerKey,
  createKeyer,
  endpointOf,
  hashBytes,
  preparationOf,
  PREPARATION_VERSION,
  requestIdentityOf,
  type ImageIdentity,
  type KeySettings,
  type RequestIdentity,
} from '../../src/cache/key.js';

const PHOTO = Buffer.from('the bytes of a photo');
const OTHER = Buffer.from('the bytes of another photo');

const schema = {
  type: 'object',
  properties: { alt_text: { type: 'string' } },
  required: ['alt_text'],
  additionalProperties: false,
};

/** A run's settings as `Job` holds them, output options and all: a `Job` is `KeySettings`. */
function job(): Job {
  return {
    inputs: ['photos/cat.png'],
    prompt: 'What is in this image?',
    system: 'Answer in French.',
    model: 'gpt-4o-2024-08-06',
    detail: 'high',
    maxTokens: 300,
    maxCompletionTokens: undefined,
    temperature: 0.2,
    stream: true,
    json: false,
    quiet: false,
    debug: false,
    together: false,
    timeoutMs: 120_000,
    retries: 2,
    maxWaitMs: undefined,
    cache: 'use',
    cacheDir: '/tmp/describe-image-test-cache',
    concurrency: 4,
    rpm: undefined,
    filesFrom: undefined,
    output: undefined,
    resume: false,
    sidecar: false,
    skipExisting: false,
    maxSize: undefined,
    keepMetadata: false,
    original: false,
    download: false,
    dryRun: false,
    writeBack: undefined,
    structured: undefined,
    prices: {},
    provider: PROVIDERS.openai,
    api: { baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-test-1234', query: {} },
  };
}

const MODEL = 'gpt-4o-2024-08-06';

function keyOf(
  settings: KeySettings,
  images?: ImageIdentity[],
  change: (r: RequestIdentity) => RequestIdentity = (r) => r,
): string {
  const request = change(requestIdentityOf(settings, MODEL));
  const key = answerKey(
    request,
    images ?? [{ sha256: hashBytes(PHOTO), preparation: preparationOf(settings) }],
  );
  if (key === undefined) throw new Error('no key');
  return key;
}

const base = keyOf(job());
const with_ = (patch: Record<string, unknown>): KeySettings => ({ ...job(), ...patch });
const formats = (sendable: string[]): KeySettings =>
  with_({ provider: { ...PROVIDERS.openai, sendable } });
const photo = (settings: KeySettings = job()): ImageIdentity => ({
  sha256: hashBytes(PHOTO),
  preparation: preparationOf(settings),
});

describe('answerKey', () => {
  it('is a SHA-256 in hex, the same every time', () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(keyOf(job())).toBe(base);
  });

  it('keeps the keys of answers already stored: a golden key (bump KEY_FORMAT to change it)', () => {
    // Files and a URL in one request, the preparation settings shared by two images and not.
    const shared = preparationOf(job());
    const key = keyOf(job(), [
      { sha256: hashBytes(PHOTO), preparation: shared },
      { url: 'https://example.com/cat.png?size=2' },
      { sha256: hashBytes(OTHER), preparation: preparationOf(job()) },
    ]);
    expect(key).toBe('7e9a46cd013b8cd256ea61b9eef88014b47d0ef399597993f0590f268109db9c');
    expect(
      keyOf(job(), [
        { sha256: hashBytes(PHOTO), preparation: shared },
        { url: 'https://example.com/cat.png?size=2' },
        { sha256: hashBytes(OTHER), preparation: shared },
      ]),
    ).toBe(key);
  });

  const changes: [string, () => string][] = [
    ['the image bytes', () => keyOf(job(), [{ ...photo(), sha256: hashBytes(OTHER) }])],
    ['detail', () => keyOf(with_({ detail: 'low' }))],
    ['detail unset', () => keyOf(with_({ detail: undefined }))],
    ['--max-size', () => keyOf(with_({ maxSize: 1024 }))],
    ['--keep-metadata', () => keyOf(with_({ keepMetadata: true }))],
    ['--original', () => keyOf(with_({ original: true }))],
    ["the provider's formats", () => keyOf(formats(['jpeg', 'png', 'webp']))],
    [
      "the model's scaling rule",
      () => keyOf(job(), [{ ...photo(), preparation: { ...preparationOf(job()), scaling: 'x' } }]),
    ],
    [
      'the preparation version',
      () =>
        keyOf(job(), [
          {
            ...photo(),
            preparation: { ...preparationOf(job()), version: PREPARATION_VERSION + 1 },
          },
        ]),
    ],
    ['an image URL instead of bytes', () => keyOf(job(), [{ url: 'https://example.com/cat.png' }])],
    ['a second image', () => keyOf(job(), [photo(), photo()])],
    [
      'the order of images in one request',
      () => keyOf(job(), [photo(), { url: 'https://example.com/a.png' }]),
    ],
    ['the prompt', () => keyOf(with_({ prompt: 'What breed is this?' }))],
    ['the system message', () => keyOf(with_({ system: 'Answer in German.' }))],
    ['no system message', () => keyOf(with_({ system: undefined }))],
    [
      'a schema',
      () =>
        keyOf(
          with_({
            structured: { name: 'answer', schema, localSchema: schema, preset: undefined },
          }),
        ),
    ],
    ['the model', () => keyOf(job(), undefined, (r) => ({ ...r, model: 'gpt-4o-mini' }))],
    [
      'the base URL host',
      () => keyOf(with_({ api: { baseUrl: 'https://api.maxtoken.io/v1', apiKey: 'sk' } })),
    ],
    [
      'the base URL port',
      () => keyOf(with_({ api: { baseUrl: 'https://api.openai.com:8443/v1', apiKey: 'sk' } })),
    ],
    [
      'the base URL path',
      () => keyOf(with_({ api: { baseUrl: 'https://api.openai.com/v2', apiKey: 'sk' } })),
    ],
    ['--max-tokens', () => keyOf(with_({ maxTokens: 301 }))],
    [
      '--max-completion-tokens instead of --max-tokens',
      () => keyOf(with_({ maxTokens: undefined, maxCompletionTokens: 300 })),
    ],
    ['--temperature', () => keyOf(with_({ temperature: 0.3 }))],
    ['no temperature', () => keyOf(with_({ temperature: undefined }))],
    [
      'another sampling option',
      () => keyOf(job(), undefined, (r) => ({ ...r, sampling: { top_p: 0.9 } })),
    ],
  ];

  it.each(changes)('changes with %s', (_what, make) => {
    const key = make();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).not.toBe(base);
  });

  it('tells every changed part apart from every other', () => {
    const keys = changes.map(([, make]) => make());
    expect(new Set(keys).size).toBe(keys.length);
  });

  const structured = (patch: Record<string, unknown>): KeySettings =>
    with_({
      structured: { name: 'answer', schema, localSchema: schema, preset: undefined, ...patch },
    });
  it.each([
    ['schema', { schema: { ...schema, required: [] } }],
    ['local schema', { localSchema: { ...schema, properties: { alt_text: { maxLength: 125 } } } }],
    ['schema name', { name: 'other' }],
    ['preset', { preset: { name: 'alt-text' } }],
  ])('changes with the structured spec: %s', (_what, patch) => {
    expect(keyOf(structured(patch))).not.toBe(keyOf(structured({})));
  });

  it.each([
    ['the file name and the other inputs', { inputs: ['copy/of/the/same.png', 'more.png'] }],
    ['--json', { json: true, stream: false }],
    ['--no-stream', { stream: false }],
    ['-o and --resume', { output: 'answers.jsonl', resume: true }],
    ['--sidecar and --skip-existing', { sidecar: true, skipExisting: true }],
    ['-q and --debug', { quiet: true, debug: true }],
    ['-c and --rpm', { concurrency: 64, rpm: 100 }],
    ['--timeout and --retries', { timeoutMs: 5_000, retries: 0 }],
    ['--files-from', { filesFrom: 'list.txt' }],
    ['prices', { prices: { [MODEL]: { input: 1, output: 2 } } }],
    ['--dry-run', { dryRun: true }],
    [
      'the API key and query',
      { api: { baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-other', query: { v: '1' } } },
    ],
    ['the scheme', { api: { baseUrl: 'http://api.openai.com/v1' } }],
    ['a trailing slash and case', { api: { baseUrl: 'https://API.openai.com/v1/' } }],
    ['an empty system message for none', { system: undefined }],
  ])('does not change with %s', (_what, patch) => {
    const settings = with_(patch);
    const expected =
      'system' in patch ? keyOf(with_({ system: '' })) : keyOf(job(), [photo(settings)]);
    expect(keyOf(settings, [photo(settings)])).toBe(expected);
    if (!('system' in patch)) expect(expected).toBe(base);
  });

  it('does not change with the same bytes under another name', () => {
    const copy = Buffer.from(PHOTO);
    expect(keyOf(job(), [{ ...photo(), sha256: hashBytes(copy) }])).toBe(base);
  });

  it('does not change with the order options were given in', () => {
    const reversed = Object.fromEntries(Object.entries(job()).reverse()) as unknown as KeySettings;
    expect(keyOf(reversed)).toBe(base);
    const shuffled = {
      additionalProperties: false,
      required: ['alt_text'],
      properties: { alt_text: { type: 'string' } },
      type: 'object',
    };
    const a = structured({});
    const b = with_({
      structured: { preset: undefined, localSchema: shuffled, schema: shuffled, name: 'answer' },
    });
    expect(keyOf(b)).toBe(keyOf(a));
    expect(keyOf(formats(['png', 'jpeg', 'gif', 'webp']))).toBe(
      keyOf(formats(['gif', 'webp', 'jpeg', 'png'])),
    );
  });

  it('uses the same key for the default formats and the same formats given', () => {
    expect(keyOf(formats(['jpeg', 'png', 'gif', 'webp']))).toBe(base);
  });

  it('has no key for a request that cannot be written as JSON text', () => {
    const lone = { ...requestIdentityOf(job(), MODEL), prompt: 'broken \ud800 half' };
    expect(createKeyer(lone)).toBeUndefined();
    expect(answerKey(lone, [photo()])).toBeUndefined();
  });
});

describe('endpointOf', () => {
  it.each([
    ['https://api.openai.com/v1', 'api.openai.com/v1'],
    ['http://API.OpenAI.com/v1/', 'api.openai.com/v1'],
    ['https://api.openai.com:443/v1', 'api.openai.com/v1'],
    ['http://localhost:11434/v1', 'localhost:11434/v1'],
    [
      'https://x.openai.azure.com/openai/deployments/gpt-4o',
      'x.openai.azure.com/openai/deployments/gpt-4o',
    ],
    ['https://gw.example.com/openai/v1?key=1#x', 'gw.example.com/openai/v1'],
    ['not a url/', 'not a url'],
  ])('%s is %s', (url, expected) => {
    expect(endpointOf(url)).toBe(expected);
  });
});

describe('hashBytes', () => {
  it('is the SHA-256 of the bytes', () => {
    expect(hashBytes(new Uint8Array())).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
