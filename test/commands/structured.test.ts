/**
 * Structured answers, in process: reading --schema and --preset, the request body they make
 * (checked against OpenAI's OpenAPI `CreateChatCompletionRequest`), checking an answer, and
 * how it is presented. askModel's retry is exercised against a real loopback server.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { buildChatRequest, materializeBody } from '../../src/api/request.js';
import type { ChatCompletionRequest } from '../../src/api/types.js';
import { askModel, buildPayload, type Job, type RunContext } from '../../src/commands/job.js';
import {
  checkAnswer,
  loadStructuredSpec,
  mismatch,
  presentAnswer,
  responseFormat,
  type StructuredSpec,
} from '../../src/commands/structured.js';
import { ExitCode, InputError, SchemaMismatchError, UsageError } from '../../src/errors.js';
import { PRESET_NAMES } from '../../src/presets.js';
import { PROVIDERS } from '../../src/providers.js';
import { Reporter } from '../../src/ui/reporter.js';
import { PLAIN } from '../../src/ui/colors.js';
import { tempDir } from '../helpers/images.js';
import { answer, serverPool } from '../helpers/server.js';
import { expectValidRequest, validateRequest } from '../helpers/openapi.js';
import { collector } from '../helpers/streams.js';

/** Problems with a schema under OpenAI's strict mode, recursively. */
function strictProblems(schema: unknown, at = '#'): string[] {
  if (typeof schema !== 'object' || schema === null) return [`${at}: not a schema`];
  const s = schema as Record<string, unknown>;
  const out: string[] = [];
  if (s.type === 'object') {
    const props = (s.properties ?? {}) as Record<string, unknown>;
    const required = (s.required ?? []) as string[];
    if (s.additionalProperties !== false) out.push(`${at}: additionalProperties is not false`);
    for (const [key, sub] of Object.entries(props)) {
      if (!required.includes(key)) out.push(`${at}/properties/${key}: not required`);
      out.push(...strictProblems(sub, `${at}/properties/${key}`));
    }
  }
  if (s.type === 'array') out.push(...strictProblems(s.items, `${at}/items`));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

function job(over: Partial<Job> = {}): Job {
  return {
    inputs: ['cat.png'],
    prompt: 'What is in this image?',
    system: undefined,
    model: 'gpt-4o-2024-08-06',
    detail: undefined,
    maxTokens: undefined,
    maxCompletionTokens: undefined,
    temperature: undefined,
    stream: false,
    json: false,
    quiet: true,
    debug: false,
    together: false,
    timeoutMs: 10_000,
    retries: 0,
    maxWaitMs: undefined,
    cache: 'off',
    cacheDir: '/tmp/describe-image-test-cache',
    concurrency: 1,
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
    provider: PROVIDERS.maxtoken,
    api: { baseUrl: 'http://127.0.0.1:9/v1', apiKey: undefined, query: {} },
    ...over,
  };
}

function context(): RunContext & { stderr: ReturnType<typeof collector> } {
  const stdout = collector();
  const stderr = collector();
  const deps = {
    stdout,
    stderr,
    stdin: (async function* () {})(),
    env: {},
    cwd: '/',
    homedir: '/',
    interrupt: new AbortController().signal,
    now: () => Date.now(),
  };
  const reporter = new Reporter(stderr, {
    painter: PLAIN,
    quiet: false,
    debug: false,
  });
  return { deps, reporter, redactor: reporter.redactor, stderr };
}

async function presetSpec(name: string): Promise<StructuredSpec> {
  const spec = await loadStructuredSpec({ preset: name }, '/');
  if (!spec) throw new Error('no spec');
  return spec;
}

const RECEIPT = {
  title: 'Receipt',
  type: 'object',
  properties: {
    total: { type: 'number' },
    currency: { type: 'string', enum: ['EUR', 'USD'] },
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, price: { type: 'number' } },
        required: ['name', 'price'],
        additionalProperties: false,
      },
    },
  },
  required: ['total', 'currency', 'items'],
  additionalProperties: false,
};

let dir: string;
const serve = serverPool();

beforeAll(async () => {
  dir = await tempDir('describe-image-structured-');
  await writeFile(path.join(dir, 'receipt.schema.json'), JSON.stringify(RECEIPT));
  await writeFile(
    path.join(dir, 'untitled.json'),
    JSON.stringify({ ...RECEIPT, title: undefined }),
  );
  await writeFile(path.join(dir, 'broken.json'), '{"type": "object",');
  await writeFile(path.join(dir, 'array.json'), '[{"type": "object"}]');
  await mkdir(path.join(dir, 'a-directory.json'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('request bodies against the OpenAPI CreateChatCompletionRequest schema', () => {
  it('the validator rejects a response_format of an unknown type', () => {
    const body = buildChatRequest({
      model: 'm',
      prompt: 'p',
      images: [],
      stream: false,
    }).body;
    expect(validateRequest({ ...body, response_format: { type: 'yaml_schema' } })).toBe(false);
    expect(
      validateRequest({ ...body, response_format: { type: 'json_schema', json_schema: {} } }),
    ).toBe(false);
  });

  it.each(PRESET_NAMES)(
    '--preset %s: a valid body with a strict json_schema response format',
    async (name) => {
      const spec = await presetSpec(name);
      for (const stream of [false, true]) {
        const body = materializeBody(
          buildPayload(
            job({ structured: spec, stream, detail: 'high', prompt: spec.preset!.prompt }),
            [{ mime: 'image/png', data: PNG }, { url: 'https://example.com/cat.jpg' }],
          ),
        );
        expectValidRequest(body);
        expect(body.response_format).toEqual({
          type: 'json_schema',
          json_schema: { name, schema: spec.schema, strict: true },
        });
        expect(body.response_format?.json_schema.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
        const schema = body.response_format!.json_schema.schema;
        expect(schema.type).toBe('object');
        expect(strictProblems(schema)).toEqual([]);
        expect(body.stream).toBe(stream);
      }
    },
  );

  it('--schema FILE: the schema as given, named after its title', async () => {
    const spec = (await loadStructuredSpec({ schema: 'receipt.schema.json' }, dir))!;
    const body = materializeBody(
      buildPayload(job({ structured: spec, system: 'Be exact.', maxTokens: 300 }), [
        { mime: 'image/png', data: PNG },
      ]),
    );
    expectValidRequest(body);
    expect(body.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'Receipt', schema: RECEIPT, strict: true },
    });
    expect(strictProblems(body.response_format!.json_schema.schema)).toEqual([]);
  });

  it('inline --schema: valid too, named "answer"', async () => {
    const spec = (await loadStructuredSpec(
      { schema: JSON.stringify({ ...RECEIPT, title: undefined }) },
      dir,
    ))!;
    const body = materializeBody(buildPayload(job({ structured: spec, stream: true }), []));
    expectValidRequest(body);
    expect(body.response_format?.json_schema.name).toBe('answer');
  });

  it('with a Gemini job: still valid, no stream_options and no detail', async () => {
    const spec = await presetSpec('tags');
    const body: ChatCompletionRequest = materializeBody(
      buildPayload(
        job({ structured: spec, stream: true, detail: 'high', provider: PROVIDERS.gemini }),
        [{ mime: 'image/png', data: PNG }],
      ),
    );
    expectValidRequest(body);
    expect('stream_options' in body).toBe(false);
    expect(JSON.stringify(body)).not.toContain('"detail"');
  });

  it('responseFormat: strict json_schema with the spec name and wire schema', async () => {
    const spec = await presetSpec('objects');
    expect(responseFormat(spec)).toEqual({
      type: 'json_schema',
      json_schema: { name: 'objects', schema: spec.schema, strict: true },
    });
    // The wire schema, not the stricter local one.
    expect(JSON.stringify(responseFormat(spec))).not.toContain('minimum');
  });

  it('without --schema or --preset there is no response_format', () => {
    const body = buildPayload(job(), []).body;
    expect('response_format' in body).toBe(false);
  });
});

describe('loadStructuredSpec', () => {
  it('nothing asked: undefined', async () => {
    expect(await loadStructuredSpec({}, dir)).toBeUndefined();
  });

  it('a preset: its schema on the wire, its stricter schema locally', async () => {
    const spec = await presetSpec('alt-text');
    expect(spec.name).toBe('alt-text');
    expect(spec.source).toBe('--preset alt-text');
    expect(spec.preset?.name).toBe('alt-text');
    expect(spec.localSchema).not.toBe(spec.schema);
    const caption = await presetSpec('caption');
    expect(caption.localSchema).toBe(caption.schema);
  });

  it('an unknown preset is a usage error listing the presets', async () => {
    const error = await loadStructuredSpec({ preset: 'haiku' }, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('alt-text, caption, tags, ocr, objects');
  });

  it('a file, relative to the working directory; no title: named after the file', async () => {
    const spec = (await loadStructuredSpec({ schema: 'untitled.json' }, dir))!;
    expect(spec.name).toBe('untitled');
    expect(spec.source).toBe('--schema untitled.json');
    expect(spec.preset).toBeUndefined();
    const absolute = (await loadStructuredSpec({ schema: path.join(dir, 'untitled.json') }, '/'))!;
    expect(absolute.name).toBe('untitled');
  });

  it('inline JSON (leading spaces allowed)', async () => {
    const spec = (await loadStructuredSpec(
      {
        schema:
          '  {"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}',
      },
      dir,
    ))!;
    expect(spec.schema.properties).toEqual({ n: { type: 'integer' } });
    expect(spec.source).toBe('--schema');
  });

  it('a missing file is an input error (exit 3)', async () => {
    const error = await loadStructuredSpec({ schema: 'nope.json' }, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(ExitCode.INPUT);
    expect((error as Error).message).toContain('nope.json');
  });

  it('a directory is an input error too', async () => {
    await expect(loadStructuredSpec({ schema: 'a-directory.json' }, dir)).rejects.toBeInstanceOf(
      InputError,
    );
  });

  it('invalid JSON is a usage error (exit 2), inline or in a file', async () => {
    for (const schema of ['{"type": ', 'broken.json']) {
      const error = await loadStructuredSpec({ schema }, dir).catch((e: unknown) => e);
      expect(error, schema).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/not valid JSON/);
    }
    const fromFile = await loadStructuredSpec({ schema: 'broken.json' }, dir).catch(
      (e: unknown) => e as Error,
    );
    expect((fromFile as Error).message).toContain('broken.json');
  });

  it('JSON that is not an object is a usage error', async () => {
    await expect(loadStructuredSpec({ schema: 'array.json' }, dir)).rejects.toThrow(
      /must be a JSON object/,
    );
  });

  it('an invalid JSON Schema is a usage error', async () => {
    const error = await loadStructuredSpec({ schema: '{"type": 12}' }, dir).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/not a valid JSON Schema/);
  });

  it('a 2020-12 schema is compiled as 2020-12 (prefixItems works)', async () => {
    const spec = (await loadStructuredSpec(
      {
        schema: JSON.stringify({
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          properties: {
            pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }] },
          },
          required: ['pair'],
          additionalProperties: false,
        }),
      },
      dir,
    ))!;
    expect((await checkAnswer(spec, '{"pair": ["a", 1]}')).ok).toBe(true);
    expect((await checkAnswer(spec, '{"pair": [1, "a"]}')).ok).toBe(false);
  });
});

describe('checkAnswer', () => {
  it('valid JSON that matches: the parsed value', async () => {
    const spec = await presetSpec('tags');
    expect(await checkAnswer(spec, '{"tags": ["cat", "sofa"]}')).toEqual({
      ok: true,
      value: { tags: ['cat', 'sofa'] },
    });
  });

  it('a Markdown code fence around the JSON is forgiven, with or without "json"', async () => {
    const spec = await presetSpec('caption');
    for (const text of [
      '```json\n{"caption": "A cat."}\n```',
      '```\n{"caption": "A cat."}\n```\n',
      '  ```JSON\n{"caption": "A cat."}\n  ```  ',
    ]) {
      expect(await checkAnswer(spec, text), text).toEqual({
        ok: true,
        value: { caption: 'A cat.' },
      });
    }
  });

  it('text that is not JSON: a problem quoting it', async () => {
    const spec = await presetSpec('caption');
    const checked = await checkAnswer(spec, 'Sure! Here is a caption: a cat.');
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.problem).toMatch(/^the answer is not JSON: Sure! Here is a caption/);
    }
    const empty = await checkAnswer(spec, '');
    expect(empty.ok ? '' : empty.problem).toBe('the answer is not JSON: (empty)');
  });

  it('JSON that does not match: a problem naming where', async () => {
    const alt = await presetSpec('alt-text');
    const long = await checkAnswer(alt, JSON.stringify({ alt_text: 'a'.repeat(126) }));
    expect(long.ok).toBe(false);
    if (!long.ok) {
      expect(long.problem).toMatch(/^the answer does not match the schema: /);
      expect(long.problem).toContain('/alt_text');
      expect(long.problem).toMatch(/125/);
    }
    const tags = await checkAnswer(await presetSpec('tags'), '{"tags": ["cat", "Sofa"]}');
    expect(tags.ok ? '' : tags.problem).toContain('/tags/1');
    const missing = await checkAnswer(await presetSpec('caption'), '{}');
    expect(missing.ok ? '' : missing.problem).toContain('(root)');
  });

  it('the alt text limit is 125 characters exactly', async () => {
    const alt = await presetSpec('alt-text');
    expect((await checkAnswer(alt, JSON.stringify({ alt_text: 'a'.repeat(125) }))).ok).toBe(true);
    expect((await checkAnswer(alt, JSON.stringify({ alt_text: '' }))).ok).toBe(true);
  });

  it('a JSON string that holds JSON is not the object', async () => {
    const spec = await presetSpec('caption');
    expect((await checkAnswer(spec, JSON.stringify('{"caption": "x"}'))).ok).toBe(false);
  });
});

describe('presentAnswer', () => {
  it('a preset: the natural value for --json, the natural text for stdout', async () => {
    const tags = await presetSpec('tags');
    expect(presentAnswer(tags, { tags: ['a', 'b'] }, false)).toEqual({
      json: ['a', 'b'],
      text: 'a\nb',
    });
    const objects = await presetSpec('objects');
    expect(presentAnswer(objects, { objects: [{ name: 'cat', count: 2 }] }, true)).toEqual({
      json: [{ name: 'cat', count: 2 }],
      text: 'cat: 2',
    });
  });

  it('--schema: the object; compact JSON in a pipe, indented on a terminal', async () => {
    const spec = (await loadStructuredSpec({ schema: 'receipt.schema.json' }, dir))!;
    const value = { total: 1.5, currency: 'EUR', items: [] };
    expect(presentAnswer(spec, value, false)).toEqual({
      json: value,
      text: '{"total":1.5,"currency":"EUR","items":[]}',
    });
    expect(presentAnswer(spec, value, true).text).toBe(JSON.stringify(value, null, 2));
  });
});

describe('mismatch', () => {
  it('is exit 6 and says it asked twice', () => {
    const error = mismatch('cat.png', 'the answer is not JSON: nope');
    expect(error).toBeInstanceOf(SchemaMismatchError);
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toMatch(/^cat\.png: the answer is not JSON: nope \(asked twice/);
  });
});

describe('askModel against a loopback server', () => {
  async function ask(
    answers: string[],
    spec: StructuredSpec,
    stream = false,
  ): Promise<{ result: unknown; requests: number; stderr: string }> {
    let i = 0;
    const server = await serve((req, res) => {
      answer(req, res, { text: answers[Math.min(i++, answers.length - 1)] ?? '' });
    });
    const j = job({
      structured: spec,
      stream,
      api: { baseUrl: server.baseUrl, apiKey: undefined, query: {} },
    });
    const ctx = context();
    const client = new ApiClient({
      baseUrl: server.baseUrl,
      userAgent: 'test',
      timeoutMs: 5000,
      retry: { retries: 0, maxWaitMs: 60_000 },
    });
    const seen: string[] = [];
    try {
      const result = await askModel(j, ctx, client, buildPayload(j, []), 'cat.png', {
        onText: (t) => seen.push(t),
      }).catch((e: unknown) => e);
      // A structured answer is never handed out piece by piece.
      expect(seen).toEqual([]);
      return { result, requests: server.requests.length, stderr: ctx.stderr.text };
    } finally {
      await client.close();
    }
  }

  it('a valid first answer: one request, the natural value', async () => {
    const r = await ask(['{"tags": ["cat"]}'], await presetSpec('tags'), true);
    expect(r.requests).toBe(1);
    expect(r.result).toMatchObject({ json: ['cat'], text: 'cat' });
  });

  it('an answer that breaks the schema is asked for once more; the usage of both is added', async () => {
    const r = await ask(['{"tags": ["Cat"]}', '{"tags": ["cat"]}'], await presetSpec('tags'));
    expect(r.requests).toBe(2);
    expect(r.result).toMatchObject({
      json: ['cat'],
      usage: { prompt_tokens: 2500, completion_tokens: 178, total_tokens: 2678 },
    });
    expect(r.stderr).toContain('cat.png: the answer does not match the schema');
    expect(r.stderr).toContain('asking once more');
  });

  it('two bad answers: SchemaMismatchError with the second problem, no third request', async () => {
    const r = await ask(['not json', 'still not json'], await presetSpec('caption'));
    expect(r.requests).toBe(2);
    expect(r.result).toBeInstanceOf(SchemaMismatchError);
    expect((r.result as Error).message).toContain('the answer is not JSON: still not json');
  });
});
