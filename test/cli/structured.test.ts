/**
 * End to end, structured answers (--preset, --schema): the spawned CLI against a loopback
 * server. What is printed (the natural form, or JSON values under --json), the one retry on an
 * answer that breaks the schema, refusals, the request body the server receives, and that
 * model text is never interpreted.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPreset } from '../../src/presets.js';
import { jsonLines, ROOT, runCliWithConfig, type CliOptions } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, completionBody, serverPool, sseBody } from '../helpers/server.js';
import type { Handler, RecordedRequest } from '../helpers/server.js';
import { expectValidRequest } from '../helpers/openapi.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const USAGE_LINE = 'tokens: 1,250 in · 89 out · 1,339 total';

const RECEIPT = {
  title: 'Receipt',
  type: 'object',
  properties: { total: { type: 'number' }, currency: { type: 'string' } },
  required: ['total', 'currency'],
  additionalProperties: false,
};

// Images by URL: passed through as they are, so no image is prepared (these tests are about
// the answers); one test below uses a local file.
const CAT = 'https://example.com/cat.png';
const A = 'https://example.com/a.png';
const B = 'https://example.com/b.png';
const C = 'https://example.com/c.png';

let dir: string;
const serve = serverPool();

/** The CLI in `dir`, never reading or writing a real config file. */
function run(args: string[], opts: CliOptions = {}) {
  return runCliWithConfig(args, dir, path.join(dir, 'no-config.json'), opts);
}

/** Answers each request with the next text (the last one again once they run out). */
function answers(...texts: string[]): Handler {
  let i = 0;
  return (req, res) => {
    const text = texts[Math.min(i++, texts.length - 1)] ?? '';
    answer(req, res, { text });
  };
}

function promptOf(req: RecordedRequest): string {
  const user = (
    req.json.messages as { role: string; content: { type: string; text?: string }[] }[]
  ).find((m) => m.role === 'user');
  return user?.content.find((p) => p.type === 'text')?.text ?? '';
}

/** Answers the tags preset with the image's file name (a.png: ["a", "image"]). */
const tagsByName: Handler = (req, res) => {
  const url = (req.json.messages as { content: { image_url?: { url: string } }[] }[])[0]!.content
    .map((p) => p.image_url?.url ?? '')
    .join('');
  const name = /([a-z]+)\.png$/.exec(url)?.[1] ?? 'unknown';
  answer(req, res, { text: JSON.stringify({ tags: [name, 'image'] }) });
};

function preset(name: string) {
  const p = findPreset(name);
  if (!p) throw new Error(name);
  return p;
}

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-structured-');
  await writeFile(path.join(dir, 'cat.png'), await makeImage('png'));
  await writeFile(path.join(dir, 'receipt.json'), JSON.stringify(RECEIPT));
  await writeFile(path.join(dir, 'broken.json'), '{"type": "object", "properties": ');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('the natural form on stdout', () => {
  const cases: { name: string; args: string[]; answer: unknown; stdout: string }[] = [
    {
      name: 'alt-text: the sentence',
      args: ['--preset', 'alt-text'],
      answer: { alt_text: 'A grey cat asleep on a blue sofa.' },
      stdout: 'A grey cat asleep on a blue sofa.\n',
    },
    {
      name: 'caption: the caption',
      args: ['--preset', 'caption'],
      answer: { caption: 'Two cats share a sunny windowsill.' },
      stdout: 'Two cats share a sunny windowsill.\n',
    },
    {
      name: 'tags: one per line',
      args: ['--preset', 'tags'],
      answer: { tags: ['cat', 'blue sofa', 'living room'] },
      stdout: 'cat\nblue sofa\nliving room\n',
    },
    {
      name: 'ocr: the text as it is',
      args: ['--preset', 'ocr'],
      answer: { text: 'EXIT\n  Sortie\tNotausgang\n\nÜBER 18' },
      stdout: 'EXIT\n  Sortie\tNotausgang\n\nÜBER 18\n',
    },
    {
      name: 'objects: "name: count" lines',
      args: ['--preset', 'objects'],
      answer: {
        objects: [
          { name: 'cat', count: 2 },
          { name: 'coffee mug', count: 1 },
        ],
      },
      stdout: 'cat: 2\ncoffee mug: 1\n',
    },
    {
      name: '--schema FILE: the JSON',
      args: ['--schema', 'receipt.json'],
      answer: { total: 12.5, currency: 'EUR' },
      stdout: '{"total":12.5,"currency":"EUR"}\n',
    },
  ];

  // The alt-text case sends a local image (a data URL), the others an image URL.
  it.each(cases)('$name; the body sent is a valid CreateChatCompletionRequest', async (c) => {
    const server = await serve(answers(JSON.stringify(c.answer)));
    const image = c.args[1] === 'alt-text' ? 'cat.png' : CAT;
    const r = await run(['--base-url', server.baseUrl, '--detail', 'low', ...c.args, image]);
    expect(r.stderr).toBe(`${USAGE_LINE}\ncost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)\n`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(c.stdout);
    expect(server.requests).toHaveLength(1);

    const body = server.requests[0]!.json;
    expectValidRequest(body);
    if (image === 'cat.png')
      expect(JSON.stringify(body)).toContain('"url":"data:image/png;base64,');
    const [name, schema] =
      c.args[0] === '--preset' ? [c.args[1]!, preset(c.args[1]!).schema] : ['Receipt', RECEIPT];
    expect(body.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name, schema, strict: true },
    });
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
  });

  it('a code-fenced ```json answer is accepted', async () => {
    const server = await serve(answers('```json\n{"tags": ["cat", "sofa"]}\n```'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('cat\nsofa\n');
    expect(server.requests).toHaveLength(1);
  });

  it('--no-stream works the same', async () => {
    const server = await serve(answers('{"caption": "A cat."}'));
    const r = await run(['--base-url', server.baseUrl, '--no-stream', '--preset', 'caption', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat.\n');
    expect(server.requests[0]!.json.stream).toBe(false);
  });

  it('a batch prints each natural form under its header', async () => {
    const server = await serve(tagsByName);
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', A, B]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`==> ${A} <==\na\nimage\n\n==> ${B} <==\nb\nimage\n`);
    expect(server.requests).toHaveLength(2);
  });
});

describe('--json: text is the parsed JSON value', () => {
  const cases: { preset: string; answer: unknown; text: unknown }[] = [
    { preset: 'alt-text', answer: { alt_text: 'A cat.' }, text: 'A cat.' },
    { preset: 'tags', answer: { tags: ['cat', 'sofa'] }, text: ['cat', 'sofa'] },
    { preset: 'ocr', answer: { text: 'line 1\nline 2' }, text: 'line 1\nline 2' },
    {
      preset: 'objects',
      answer: { objects: [{ name: 'cat', count: 3 }] },
      text: [{ name: 'cat', count: 3 }],
    },
  ];

  it.each(cases)('--preset $preset', async ({ preset: name, answer: value, text }) => {
    const server = await serve(answers(JSON.stringify(value)));
    const r = await run(['--base-url', server.baseUrl, '--json', '--preset', name, CAT]);
    expect(r.code).toBe(0);
    const records = jsonLines<any>(r.stdout);
    expect(records).toHaveLength(1);
    expect(records[0].text).toEqual(text);
    expect(records[0].image).toBe(CAT);
    expect(records[0].finish_reason).toBe('stop');
  });

  it('--schema: the object itself, not a string holding JSON', async () => {
    const server = await serve(answers('{"total": 12.5, "currency": "EUR"}'));
    const r = await run(['--base-url', server.baseUrl, '--json', '--schema', 'receipt.json', CAT]);
    expect(r.code).toBe(0);
    const [record] = jsonLines<any>(r.stdout);
    expect(record.text).toEqual({ total: 12.5, currency: 'EUR' });
    expect(typeof record.text).toBe('object');
  });

  it('a batch of several images: every record holds a JSON value', async () => {
    const server = await serve(tagsByName);
    const r = await run(['--base-url', server.baseUrl, '--json', '--preset', 'tags', A, B, C]);
    expect(r.code).toBe(0);
    const records = jsonLines<any>(r.stdout).sort((x, y) => x.index - y.index);
    expect(records.map((x) => x.image as string)).toEqual([A, B, C]);
    expect(records.map((x) => x.text as unknown)).toEqual([
      ['a', 'image'],
      ['b', 'image'],
      ['c', 'image'],
    ]);
    expect(server.requests).toHaveLength(3);
  });

  it('a batch with --schema and --output writes JSON values to the file', async () => {
    const server = await serve(answers('{"total": 1, "currency": "USD"}'));
    const out = path.join(dir, 'receipts.jsonl');
    const r = await run([
      '--base-url',
      server.baseUrl,
      '--json',
      '--schema',
      'receipt.json',
      '-o',
      out,
      A,
      B,
    ]);
    expect(r.code).toBe(0);
    const records = jsonLines<any>(readFileSync(out, 'utf8'));
    expect(records).toHaveLength(2);
    for (const record of records) expect(record.text).toEqual({ total: 1, currency: 'USD' });
  });
});

describe('an answer that breaks the schema', () => {
  it('is asked for once more; a valid second answer succeeds (2 requests)', async () => {
    const server = await serve(answers('{"tags": ["Cat"]}', '{"tags": ["cat"]}'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('cat\n');
    expect(server.requests).toHaveLength(2);
    expect(r.stderr).toContain('asking once more');
    // The usage line counts both requests.
    expect(r.stderr).toContain('tokens: 2,500 in · 178 out · 2,678 total');
    // Both requests are the same request.
    expect(server.requests[1]!.body).toBe(server.requests[0]!.body);
  });

  it('twice: exit 6 with the validation error on stderr, nothing on stdout', async () => {
    const server = await serve(answers('{"tags": ["cat", "Sofa"]}'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', CAT]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(2);
    const error = r.stderr.split('\n').find((l) => l.startsWith('describe-image: error: '));
    expect(error).toContain(CAT);
    expect(error).toContain('does not match the schema');
    expect(error).toContain('/tags/1');
  });

  it('alt text over 125 characters breaks it', async () => {
    const long = JSON.stringify({ alt_text: `A ${'very '.repeat(25)}long description.` });
    expect(JSON.parse(long).alt_text.length).toBeGreaterThan(125);
    const server = await serve(answers(long));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'alt-text', CAT]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(2);
    expect(r.stderr).toContain('/alt_text');
    expect(r.stderr).toContain('125');
  });

  it('alt text of exactly 125 characters is fine', async () => {
    const text = 'a'.repeat(125);
    const server = await serve(answers(JSON.stringify({ alt_text: text })));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'alt-text', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${text}\n`);
  });

  it('a non-JSON answer twice: exit 6, saying it is not JSON', async () => {
    const server = await serve(answers('Sure! The tags are: cat, sofa.'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', CAT]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(2);
    expect(r.stderr).toMatch(/error: .*the answer is not JSON: Sure! The tags are/);
  });

  it('a non-JSON answer, then a valid one: success', async () => {
    const server = await serve(answers('I think: cat', '{"caption": "A cat."}'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'caption', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat.\n');
    expect(server.requests).toHaveLength(2);
  });

  it('--schema: an answer of the wrong type twice is exit 6', async () => {
    const server = await serve(answers('{"total": "12.50", "currency": "EUR"}'));
    const r = await run(['--base-url', server.baseUrl, '--schema', 'receipt.json', CAT]);
    expect(r.code).toBe(6);
    expect(server.requests).toHaveLength(2);
    expect(r.stderr).toContain('/total');
  });

  it('in a batch, only the broken image fails; the others are printed', async () => {
    const server = await serve((req, res) => {
      // b.png always gets an answer with an uppercase tag.
      const bad = JSON.stringify(req.json).includes(B);
      answer(req, res, { text: JSON.stringify({ tags: [bad ? 'Green' : 'red'] }) });
    });
    const r = await run(['--base-url', server.baseUrl, '--json', '--preset', 'tags', A, B]);
    expect(r.code).toBe(6);
    const records = jsonLines<any>(r.stdout).sort((x, y) => x.index - y.index);
    expect(records[0].text).toEqual(['red']);
    expect(records[1].text).toBeNull();
    expect(records[1].error.code).toBe(6);
    expect(server.requests).toHaveLength(3);
  });
});

describe('refusals', () => {
  it('a streamed refusal (recorded from OpenAI) exits 6 without asking again', async () => {
    const sse = readFileSync(
      path.join(ROOT, 'test/fixtures/sse/openai-python_test_parse_pydantic_model_refusal.sse'),
      'utf8',
    );
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse);
    });
    const r = await run(['--base-url', server.baseUrl, '--preset', 'caption', CAT]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(1);
    expect(r.stderr).toContain("refused to answer: I'm sorry, I can't assist with that request.");
  });

  it('a refusal in a whole (non-streamed) answer exits 6 too', async () => {
    const server = await serve((_req, res) => {
      const body = completionBody() as { choices: { message: Record<string, unknown> }[] };
      body.choices[0]!.message = { role: 'assistant', content: null, refusal: 'I cannot help.' };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    const r = await run(['--base-url', server.baseUrl, '--json', '--preset', 'tags', CAT]);
    expect(r.code).toBe(6);
    // One image under --json is a batch of one: its failure is a record, as in any batch.
    const [record] = jsonLines(r.stdout);
    expect(record).toMatchObject({ image: CAT, text: null, error: { code: 6 } });
    expect(record!.error!.message).toContain('refused to answer: I cannot help.');
    expect(server.requests).toHaveLength(1);
    expect(r.stderr).toContain('refused to answer: I cannot help.');
  });
});

describe('--schema', () => {
  it('inline JSON', async () => {
    const server = await serve(answers('{"n": 3}'));
    const schema =
      '{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}';
    const r = await run(['--base-url', server.baseUrl, '--schema', schema, CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"n":3}\n');
    expect(server.requests[0]!.json.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'answer', schema: JSON.parse(schema), strict: true },
    });
  });

  it('a file: sent as it is, named after its title', async () => {
    const server = await serve(answers('{"total": 3, "currency": "EUR"}'));
    const r = await run(['--base-url', server.baseUrl, '--schema', 'receipt.json', CAT]);
    expect(r.code).toBe(0);
    expect(server.requests[0]!.json.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'Receipt', schema: RECEIPT, strict: true },
    });
    // The default prompt: --schema brings no prompt of its own.
    expect(promptOf(server.requests[0]!)).toBe('What is in this image?');
  });

  const usage: { name: string; args: string[]; code: number; says: RegExp }[] = [
    {
      name: 'invalid inline JSON: exit 2',
      args: ['--schema', '{"type": "object",', CAT],
      code: 2,
      says: /--schema: not valid JSON/,
    },
    {
      name: 'a file holding invalid JSON: exit 2 naming it',
      args: ['--schema', 'broken.json', CAT],
      code: 2,
      says: /--schema broken\.json: not valid JSON/,
    },
    {
      name: 'a missing file: exit 3',
      args: ['--schema', 'missing.json', CAT],
      code: 3,
      says: /--schema missing\.json: no such file/,
    },
    {
      name: '--schema with --preset: exit 2',
      args: ['--schema', 'receipt.json', '--preset', 'tags', CAT],
      code: 2,
      says: /--schema or --preset, not both/,
    },
    {
      name: 'an unknown preset: exit 2',
      args: ['--preset', 'haiku', CAT],
      code: 2,
      says: /haiku/,
    },
  ];

  it.each(usage)('$name', async ({ args, code, says }) => {
    const server = await serve();
    const r = await run(['--base-url', server.baseUrl, ...args]);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(says);
    expect(server.requests).toHaveLength(0);
  });
});

describe('the request', () => {
  it('a preset sends its prompt; with a user prompt, both texts', async () => {
    const server = await serve(answers('{"text": "Ausgang"}'));
    const r = await run([
      '--base-url',
      server.baseUrl,
      '--preset',
      'ocr',
      CAT,
      'The text is in German',
    ]);
    expect(r.code).toBe(0);
    expect(promptOf(server.requests[0]!)).toBe(`${preset('ocr').prompt}\n\nThe text is in German`);

    const alone = await serve(answers('{"text": "Ausgang"}'));
    await run(['--base-url', alone.baseUrl, '--preset', 'ocr', CAT]);
    expect(promptOf(alone.requests[0]!)).toBe(preset('ocr').prompt);
  });

  it('-p with a preset is added the same way', async () => {
    const server = await serve(answers('{"caption": "x"}'));
    await run(['--base-url', server.baseUrl, '--preset', 'caption', '-p', 'In French.', CAT]);
    expect(promptOf(server.requests[0]!)).toBe(`${preset('caption').prompt}\n\nIn French.`);
  });

  it('the body sent for --schema under --json is valid too (not streamed)', async () => {
    const server = await serve(answers('{"total": 1, "currency": "EUR"}'));
    await run(['--base-url', server.baseUrl, '--json', '--schema', 'receipt.json', CAT]);
    const body = server.requests[0]!.json;
    expectValidRequest(body);
    expect(body.stream).toBe(false);
    expect('stream_options' in body).toBe(false);
  });
});

describe('nothing is printed before it is validated', () => {
  it('with streaming on, stdout stays empty while the answer streams, and holds only the final output', async () => {
    let stdoutMidStream: string | undefined;
    let stdout = '';
    let calls = 0;
    const server = await serve(async (req, res) => {
      calls++;
      // First answer: valid JSON that breaks the schema, streamed slowly.
      const text = calls === 1 ? '{"tags": ["Not", "Valid"]}' : '{"tags": ["cat"]}';
      const body = sseBody({ text }, { usageChunk: Boolean(req.json.stream_options) });
      const events = body.split('\n\n').filter(Boolean);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const [i, event] of events.entries()) {
        res.write(`${event}\n\n`);
        if (calls === 1 && i === 3) {
          await sleep(400);
          stdoutMidStream = stdout;
        }
      }
      res.end();
    });
    const r = await run(['--base-url', server.baseUrl, '--preset', 'tags', CAT], {
      onStdout: (text) => (stdout += text),
    });
    expect(r.code).toBe(0);
    expect(stdoutMidStream).toBe('');
    expect(r.stdout).toBe('cat\n');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.json.stream).toBe(true);
  });
});

describe('model text is never interpreted', () => {
  const NASTY =
    'Red \u001b[31mALERT\u001b[0m bell\u0007 title\u001b]0;pwned\u0007 back\b\rover \u001b[2J end';

  it('a plain answer under --json keeps control sequences byte for byte', async () => {
    const server = await serve(answers(NASTY));
    const r = await run(['--base-url', server.baseUrl, '--json', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).not.toContain('\u0007');
    const [record] = jsonLines<any>(r.stdout);
    expect(record.text).toBe(NASTY);
  });

  it('a structured answer under --json keeps them too', async () => {
    const server = await serve(answers(JSON.stringify({ caption: NASTY })));
    const r = await run(['--base-url', server.baseUrl, '--json', '--preset', 'caption', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    const [record] = jsonLines<any>(r.stdout);
    expect(record.text).toBe(NASTY);
  });

  it('--schema answers keep them inside their strings, in a batch as well', async () => {
    const schema = JSON.stringify({
      type: 'object',
      properties: { s: { type: 'string' } },
      required: ['s'],
      additionalProperties: false,
    });
    const server = await serve(answers(JSON.stringify({ s: NASTY })));
    const r = await run(['--base-url', server.baseUrl, '--json', '--schema', schema, A, B]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    for (const record of jsonLines<any>(r.stdout)) expect(record.text).toEqual({ s: NASTY });
  });

  it('piped (not a terminal), plain text is passed through untouched', async () => {
    const server = await serve(answers(NASTY));
    const r = await run(['--base-url', server.baseUrl, CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${NASTY}\n`);
  });

  it('an error message quoting a non-JSON answer does not carry its escape codes raw', async () => {
    const server = await serve(answers('\u001b[2J\u001b[31mnot json'));
    const r = await run(['--base-url', server.baseUrl, '--preset', 'caption', CAT]);
    expect(r.code).toBe(6);
    expect(r.stderr).not.toContain('\u001b');
  });
});
