/**
 * End to end, successful runs: the built CLI (bin/describe-image.js → dist/) spawned as a user
 * would, against the real loopback server of test/helpers/server.ts. What the server received
 * (body, headers) and what the user saw (stdout, stderr, exit code) are both checked.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, okHandler, serverPool } from '../helpers/server.js';
import type { Handler, RecordedRequest } from '../helpers/server.js';

const VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const USAGE_LINE = 'tokens: 1,250 in · 89 out · 1,339 total';
// gpt-4o-2024-08-06 at $2.50 in and $10 out per million tokens: 1,250 × 2.5 + 89 × 10 = $0.004015.
const COST_LINE = 'cost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)';
/** What stderr holds after a successful single answer. */
const USAGE_LINES = `${USAGE_LINE}\n${COST_LINE}\n`;
const DEFAULT_PROMPT = 'What is in this image?';
const KEY = 'sk-test-0123456789abcdefSECRET';

interface ContentPart {
  type: string;
  text?: string;
  image_url?: { url: string; detail?: string };
}
interface Message {
  role: string;
  content: string | ContentPart[];
}

function messages(req: RecordedRequest): Message[] {
  return req.json.messages as Message[];
}

function userParts(req: RecordedRequest): ContentPart[] {
  const user = messages(req).find((m) => m.role === 'user');
  if (!user || typeof user.content === 'string')
    throw new Error(`no user message with parts in ${req.body.slice(0, 200)}`);
  return user.content;
}

function imageUrls(req: RecordedRequest): string[] {
  return userParts(req)
    .filter((p) => p.type === 'image_url')
    .map((p) => p.image_url?.url ?? '');
}

function promptOf(req: RecordedRequest): string | undefined {
  return userParts(req).find((p) => p.type === 'text')?.text;
}

function dataUrl(mime: string, bytes: Buffer): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

/** stderr is never coloured or animated when it is not a terminal. */
function expectPlainStderr(stderr: string): void {
  expect(stderr).not.toContain('\u001b');
  expect(stderr).not.toMatch(/^\s{4}at /m);
}

let dir: string;
let catPng: Buffer;
let redPng: Buffer;
let greenPng: Buffer;
let bluePng: Buffer;
let jpeg: Buffer;
const serve = serverPool();

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-');
  catPng = await makeImage('png', { color: '#808080' });
  redPng = await makeImage('png', { color: '#ff0000' });
  greenPng = await makeImage('png', { color: '#00ff00' });
  bluePng = await makeImage('png', { color: '#0000ff' });
  jpeg = await makeImage('jpeg', { color: '#abcdef' });
  await writeFile(path.join(dir, 'cat.png'), catPng);
  await writeFile(path.join(dir, 'a.png'), redPng);
  await writeFile(path.join(dir, 'b.png'), greenPng);
  await writeFile(path.join(dir, 'c.png'), bluePng);
  await writeFile(path.join(dir, 'liar.png'), jpeg);
  await mkdir(path.join(dir, 'sub'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('one image', () => {
  it('streams the answer to stdout, the usage to stderr, and sends the documented request', async () => {
    const text = 'A grey square, perfectly uniform.';
    const server = await serve(okHandler({ text }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], { cwd: dir });

    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${text}\n`);
    expect(r.stderr).toBe(USAGE_LINES);

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers['user-agent']).toBe(`describe-image/${VERSION}`);
    expect(req.headers['content-type']).toMatch(/^application\/json/);
    expect(req.headers.authorization).toBeUndefined();
    expect(req.json.model).toBe('gpt-4o-2024-08-06');
    expect(req.json.stream).toBe(true);
    expect(req.json.stream_options).toEqual({ include_usage: true });
    expect(messages(req)).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: DEFAULT_PROMPT },
          { type: 'image_url', image_url: { url: dataUrl('image/png', catPng) } },
        ],
      },
    ]);
  });

  it('sends nothing but model, messages, stream and stream_options when no option is given', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    const body = server.requests[0]!.json as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['messages', 'model', 'stream', 'stream_options']);
    expect(messages(server.requests[0]!).map((m) => m.role)).toEqual(['user']);
    const image = userParts(server.requests[0]!).find((p) => p.type === 'image_url')!;
    expect(Object.keys(image.image_url!)).toEqual(['url']);
  });

  it('takes the last argument as the prompt when it is not a file', async () => {
    const server = await serve(okHandler({ text: 'A British Shorthair.' }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png', 'What breed is this cat?'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A British Shorthair.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(promptOf(server.requests[0]!)).toBe('What breed is this cat?');
    expect(imageUrls(server.requests[0]!)).toEqual([dataUrl('image/png', catPng)]);
  });

  it('reads the base URL from DESCRIBE_IMAGE_BASE_URL and the model from -m', async () => {
    const server = await serve(okHandler({ text: 'llava says hi', model: 'llava' }));
    const r = await runCli(['-m', 'llava', 'cat.png'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_BASE_URL: server.baseUrl },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('llava says hi\n');
    // No price is known for llava: no cost line.
    expect(r.stderr).toBe(`${USAGE_LINE}\n`);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.json.model).toBe('llava');
  });

  it('-q hides the usage line: stderr is empty on success', async () => {
    const server = await serve(okHandler({ text: 'Quiet cat.' }));
    const r = await runCli(['-q', '--base-url', server.baseUrl, 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Quiet cat.\n');
    expect(r.stderr).toBe('');
  });

  it('ends the output with exactly one newline however the model ends its answer', async () => {
    const server = await serve(okHandler({ text: 'Trailing lines.\n\n\n' }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Trailing lines.\n');
  });
});

describe('the prompt', () => {
  it('-p TEXT makes every positional argument an image', async () => {
    const server = await serve(async (req, res) => {
      const url = imageUrls(req)[0] ?? '';
      const colour =
        url === dataUrl('image/png', redPng)
          ? 'red'
          : url === dataUrl('image/png', greenPng)
            ? 'green'
            : '?';
      // Answered in input order: this test is about the prompt, not about reordering.
      if (colour === 'green') await sleep(200);
      answer(req, res, { text: colour });
    });
    const r = await runCli(
      ['--base-url', server.baseUrl, '-p', 'Name the colour', 'a.png', 'b.png'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('==> a.png <==\nred\n\n==> b.png <==\ngreen\n');
    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      expect(promptOf(req)).toBe('Name the colour');
      expect(imageUrls(req)).toHaveLength(1);
    }
  });

  it('-p TEXT: a last argument that is not a file is an image, not the prompt', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '-p', 'Describe it', 'a sunny day'], {
      cwd: dir,
    });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('describe-image: error: a sunny day: no such file\n');
    expect(server.requests).toHaveLength(0);
  });

  it('-p - reads the prompt from standard input', async () => {
    const server = await serve(okHandler({ text: 'No dog here.' }));
    const r = await runCli(['--base-url', server.baseUrl, '-p', '-', 'cat.png'], {
      cwd: dir,
      stdin: 'Is there a dog?\n',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('No dog here.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(promptOf(server.requests[0]!)).toBe('Is there a dog?');
    expect(imageUrls(server.requests[0]!)).toEqual([dataUrl('image/png', catPng)]);
  });
});

describe('image sources', () => {
  it('passes an https URL through unchanged', async () => {
    const server = await serve(okHandler({ text: 'A cat from the web.' }));
    const r = await runCli(['--base-url', server.baseUrl, 'https://example.com/cat.png']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat from the web.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(imageUrls(server.requests[0]!)).toEqual(['https://example.com/cat.png']);
    expect(promptOf(server.requests[0]!)).toBe(DEFAULT_PROMPT);
  });

  it('never fetches an image URL itself (the only request is the chat completion)', async () => {
    const server = await serve(okHandler({ text: 'Seen by URL.' }));
    const imageUrl = `${server.origin}/images/cat.png?size=large&x=1`;
    const r = await runCli(['--base-url', server.baseUrl, imageUrl]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Seen by URL.\n');
    expect(server.requests.map((q) => `${q.method} ${q.url}`)).toEqual([
      'POST /v1/chat/completions',
    ]);
    expect(imageUrls(server.requests[0]!)).toEqual([imageUrl]);
  });

  it('sends a data: URL argument as the same data URL', async () => {
    const server = await serve(okHandler({ text: 'Inline.' }));
    const url = dataUrl('image/png', redPng);
    const r = await runCli(['--base-url', server.baseUrl, url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Inline.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(imageUrls(server.requests[0]!)).toEqual([url]);
  });

  it('reads PNG bytes piped into standard input with "-"', async () => {
    const server = await serve(okHandler({ text: 'Piped.' }));
    const r = await runCli(['--base-url', server.baseUrl, '-', 'Describe it in one line'], {
      stdin: greenPng,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Piped.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(imageUrls(server.requests[0]!)).toEqual([dataUrl('image/png', greenPng)]);
    expect(promptOf(server.requests[0]!)).toBe('Describe it in one line');
  });

  it('sends JPEG bytes named .png as image/jpeg (the bytes decide, not the extension)', async () => {
    const server = await serve(okHandler({ text: 'A JPEG in disguise.' }));
    const r = await runCli(['--base-url', server.baseUrl, 'liar.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A JPEG in disguise.\n');
    expect(server.requests).toHaveLength(1);
    expect(imageUrls(server.requests[0]!)).toEqual([dataUrl('image/jpeg', jpeg)]);
  });

  it('sends a file given by absolute path with its exact bytes', async () => {
    const bytes = await readFile(path.join(dir, 'c.png'));
    const server = await serve(okHandler({ text: 'Blue.' }));
    const r = await runCli(['--base-url', server.baseUrl, path.join(dir, 'c.png')], {
      cwd: path.join(dir, 'sub'),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Blue.\n');
    expect(imageUrls(server.requests[0]!)).toEqual([dataUrl('image/png', bytes)]);
  });
});

describe('several images', () => {
  /** Answers with the name of the image it was sent; the first one slowly. */
  function namingHandler(slow: string, log: string[]): Handler {
    const names = new Map([
      [dataUrl('image/png', redPng), 'a.png'],
      [dataUrl('image/png', greenPng), 'b.png'],
      [dataUrl('image/png', bluePng), 'c.png'],
    ]);
    return async (req, res) => {
      const urls = imageUrls(req);
      const name = urls.length === 1 ? (names.get(urls[0]!) ?? 'unknown') : `${urls.length} images`;
      if (name === slow) await sleep(500);
      log.push(name);
      answer(req, res, { text: `This is ${name}.`, id: `chatcmpl-${name}` });
    };
  }

  it('sends one request per image and prints the answers in input order under ==> NAME <== headers', async () => {
    const finished: string[] = [];
    const server = await serve(namingHandler('a.png', finished));
    const r = await runCli(['--base-url', server.baseUrl, 'a.png', 'b.png', 'c.png'], { cwd: dir });

    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      '==> a.png <==\nThis is a.png.\n\n==> b.png <==\nThis is b.png.\n\n==> c.png <==\nThis is c.png.\n',
    );
    expectPlainStderr(r.stderr);
    expect(r.stderr).not.toContain('error');
    expect(server.requests).toHaveLength(3);
    for (const req of server.requests) {
      expect(imageUrls(req)).toHaveLength(1);
      expect(promptOf(req)).toBe(DEFAULT_PROMPT);
    }
    // The first image really was answered last: the order on stdout is the tool's doing.
    expect(finished[finished.length - 1]).toBe('a.png');
  });

  it('--together sends one request with every image, in order, and prints no headers', async () => {
    const server = await serve(namingHandler('none', []));
    const r = await runCli(
      ['--base-url', server.baseUrl, '--together', 'a.png', 'b.png', 'c.png', 'Which is reddest?'],
      {
        cwd: dir,
      },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('This is 3 images.\n');
    expect(r.stdout).not.toContain('==>');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(promptOf(server.requests[0]!)).toBe('Which is reddest?');
    expect(imageUrls(server.requests[0]!)).toEqual([
      dataUrl('image/png', redPng),
      dataUrl('image/png', greenPng),
      dataUrl('image/png', bluePng),
    ]);
  });

  it('--json prints one JSON object per image, each with its own answer', async () => {
    const server = await serve(namingHandler('a.png', []));
    const r = await runCli(['--base-url', server.baseUrl, '--json', 'a.png', 'b.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const byImage = new Map(records.map((rec) => [rec.image, rec]));
    expect(byImage.get('a.png')).toMatchObject({
      index: 0,
      text: 'This is a.png.',
      id: 'chatcmpl-a.png',
      finish_reason: 'stop',
    });
    expect(byImage.get('b.png')).toMatchObject({
      index: 1,
      text: 'This is b.png.',
      id: 'chatcmpl-b.png',
      finish_reason: 'stop',
    });
    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      expect(req.json.stream).toBe(false);
      expect(req.json).not.toHaveProperty('stream_options');
    }
    expectPlainStderr(r.stderr);
  });
});

describe('output modes', () => {
  it('--no-stream sends stream: false without stream_options and prints the answer', async () => {
    const server = await serve(okHandler({ text: 'Not streamed.' }));
    const r = await runCli(['--base-url', server.baseUrl, '--no-stream', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Not streamed.\n');
    expect(r.stderr).toBe(USAGE_LINES);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.json.stream).toBe(false);
    expect(server.requests[0]!.json).not.toHaveProperty('stream_options');
    expect(server.requests[0]!.headers.accept).toBe('application/json');
  });

  it('--json prints exactly one JSON object on one line and asks for stream: false', async () => {
    const server = await serve(okHandler({ text: 'A cat, in JSON.', id: 'chatcmpl-json1' }));
    const r = await runCli(['--base-url', server.baseUrl, '--json', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const record = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(record)).toEqual(
      expect.arrayContaining([
        'image',
        'model',
        'text',
        'finish_reason',
        'usage',
        'id',
        'index',
        'ms',
      ]),
    );
    expect(record).toMatchObject({
      image: 'cat.png',
      index: 0,
      model: 'gpt-4o-2024-08-06',
      text: 'A cat, in JSON.',
      finish_reason: 'stop',
      usage: { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 },
      id: 'chatcmpl-json1',
    });
    expect(typeof record.ms).toBe('number');
    expect(record).not.toHaveProperty('error');
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.json.stream).toBe(false);
    expect(server.requests[0]!.json).not.toHaveProperty('stream_options');
    expect(r.stderr).toBe(USAGE_LINES);
  });

  it('--json -q: stdout is the JSON line and stderr is empty', async () => {
    const server = await serve(okHandler({ text: 'Silent JSON.' }));
    const r = await runCli(['--base-url', server.baseUrl, '--json', '-q', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { text: string }).text).toBe('Silent JSON.');
    expect(r.stderr).toBe('');
  });

  it('warns when the answer was cut at the token limit (finish_reason "length"), and still exits 0', async () => {
    const server = await serve(
      okHandler({ text: 'The cat is sitting on a', finishReason: 'length' }),
    );
    const r = await runCli(['--base-url', server.baseUrl, '--max-tokens', '6', 'cat.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('The cat is sitting on a\n');
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('describe-image: warning: '));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('cat.png');
    expect(warnings[0]).toMatch(/cut off/);
    expect(warnings[0]).toContain('--max-tokens');
    expect(r.stderr).toContain(USAGE_LINE);
    expectPlainStderr(r.stderr);
  });
});

describe('request options', () => {
  it('--system, --detail, --max-tokens and --temperature appear in the body exactly', async () => {
    const server = await serve();
    const r = await runCli(
      [
        '--base-url',
        server.baseUrl,
        '--system',
        'You are terse.',
        '--detail',
        'low',
        '--max-tokens',
        '50',
        '--temperature',
        '0.2',
        'cat.png',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat on a mat.\n');
    const body = server.requests[0]!.json;
    expect(body.max_tokens).toBe(50);
    expect(body.temperature).toBe(0.2);
    expect(body).not.toHaveProperty('max_completion_tokens');
    expect(messages(server.requests[0]!)).toEqual([
      { role: 'system', content: 'You are terse.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: DEFAULT_PROMPT },
          { type: 'image_url', image_url: { url: dataUrl('image/png', catPng), detail: 'low' } },
        ],
      },
    ]);
  });

  it('--max-completion-tokens is sent as max_completion_tokens, without max_tokens', async () => {
    const server = await serve();
    const r = await runCli(
      ['--base-url', server.baseUrl, '--max-completion-tokens', '60', 'cat.png'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const body = server.requests[0]!.json;
    expect(body.max_completion_tokens).toBe(60);
    expect(body).not.toHaveProperty('max_tokens');
    expect(body).not.toHaveProperty('temperature');
    expect(messages(server.requests[0]!).map((m) => m.role)).toEqual(['user']);
  });

  it('--temperature 0 is sent (zero is not "absent")', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--temperature', '0', 'cat.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    expect(server.requests[0]!.json.temperature).toBe(0);
  });
});

describe('retries', () => {
  it('waits as long as Retry-After says after a 429, then prints the answer once', async () => {
    const times: number[] = [];
    const server = await serve((req, res) => {
      times.push(Date.now());
      if (times.length === 1) {
        res.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': '1',
          'x-request-id': 'req_rl1',
        });
        res.end(
          JSON.stringify({
            error: {
              message: 'Rate limit reached for requests',
              type: 'requests',
              code: 'rate_limit_exceeded',
            },
          }),
        );
        return;
      }
      answer(req, res, { text: 'Second time lucky.' });
    });
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Second time lucky.\n');
    expect(server.requests).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
    expect(server.requests[1]!.body).toBe(server.requests[0]!.body);
    expect(r.stderr).not.toContain('describe-image: error:');
    expect(r.stderr).toContain(USAGE_LINE);
    expectPlainStderr(r.stderr);
  });
});

describe('the API key', () => {
  it('is sent as a bearer token from --api-key-file and never printed, even with --debug', async () => {
    const keyFile = path.join(dir, 'key.txt');
    await writeFile(keyFile, `${KEY}\n`);
    const server = await serve(okHandler({ text: 'Keyed.' }));
    const r = await runCli(
      ['--base-url', server.baseUrl, '--api-key-file', keyFile, '--debug', 'cat.png'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Keyed.\n');
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.stderr).toContain('describe-image: debug: ');
    expect(r.stdout).not.toContain(KEY);
    expect(r.stderr).not.toContain(KEY);
    expect(r.stderr).not.toContain(KEY.slice(0, 20));
  });

  it('is sent from DESCRIBE_IMAGE_API_KEY and never printed with --debug', async () => {
    const server = await serve(okHandler({ text: 'Keyed by env.' }));
    const r = await runCli(['--base-url', server.baseUrl, '--debug', 'cat.png'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Keyed by env.\n');
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.stderr).toContain('describe-image: debug: ');
    expect(r.stdout).not.toContain(KEY);
    expect(r.stderr).not.toContain(KEY);
  });

  it('warns before sending a key over plain http:// to a host that is not this machine', async () => {
    // The image is missing, so the run fails (exit 3) after the warning and before any request.
    const r = await runCli(
      ['--base-url', 'http://192.0.2.1:9/v1', '--timeout', '0.3', '--retries', '0', 'missing.png'],
      {
        cwd: dir,
        env: { DESCRIBE_IMAGE_API_KEY: KEY },
      },
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^describe-image: warning: /);
    expect(lines[0]).toMatch(/unencrypted/);
    expect(lines[0]).toContain('192.0.2.1');
    expect(lines[1]).toBe('describe-image: error: missing.png: no such file');
    expect(r.stderr).not.toContain(KEY);
  });

  it('gives no such warning for a loopback http:// server', async () => {
    const server = await serve(okHandler({ text: 'Local.' }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(USAGE_LINES);
  });
});

describe('model output with terminal control sequences', () => {
  const evil = 'Title\u001b]0;pwned\u0007 and \u001b[31mred\u001b[0m text';

  it('passes them through unchanged when stdout is not a terminal', async () => {
    const server = await serve(okHandler({ text: evil }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${evil}\n`);
    expect(r.stderr).toBe(USAGE_LINES);
  });

  it('keeps them, escaped, in the --json text', async () => {
    const server = await serve(okHandler({ text: evil }));
    const r = await runCli(['--base-url', server.baseUrl, '--json', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { text: string }).text).toBe(evil);
    expect(r.stdout).toContain('\\u001b]0;pwned\\u0007');
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).not.toContain('\u0007');
  });
});

describe('--version and --help', () => {
  it('--version prints the version in package.json', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
    expect(r.stderr).toBe('');
  });

  it('--help mentions every option defined in src/cli.ts and exits 0', async () => {
    const source = await readFile(path.join(ROOT, 'src/cli.ts'), 'utf8');
    const flags = new Set<string>();
    for (const match of source.matchAll(
      /(?:\.option|new Option|\.helpOption|\.version\(VERSION,)\s*\(?\s*'([^']+)'/g,
    )) {
      for (const flag of match[1]!.match(/--[a-z][a-z-]*/g) ?? []) flags.add(flag);
    }
    // Sanity: the scan found the options (a changed coding style must not make this test vacuous).
    for (const known of [
      '--prompt',
      '--model',
      '--json',
      '--no-stream',
      '--base-url',
      '--help',
      '--version',
    ]) {
      expect(flags).toContain(known);
    }
    expect(flags.size).toBeGreaterThanOrEqual(25);

    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: describe-image \[options\] <image\.\.\.> \[prompt\]/);
    for (const flag of flags)
      expect(r.stdout, `--help should mention ${flag}`).toMatch(new RegExp(`${flag}(?![a-z-])`));
  });
});
