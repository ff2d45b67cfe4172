/**
 * End to end, failures: every documented exit code, the one-line error on stderr (naming the
 * image, quoting the server, giving its request id, no stack trace unless --debug), retries,
 * network failures, Ctrl-C, and the API key never reaching the terminal.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { errorHandler, okHandler, serverPool, startServer } from '../helpers/server.js';
import type { Handler } from '../helpers/server.js';

const KEY = 'sk-test-0123456789abcdefSECRET';
const ERROR_PREFIX = 'describe-image: error: ';

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/responses', name), 'utf8'));
}

/** The one error line on stderr; checks there is exactly one, with no stack and no escapes. */
function errorLine(r: CliResult, { debug = false } = {}): string {
  if (!debug) expect(r.stderr, 'no stack trace without --debug').not.toMatch(/^\s{4}at /m);
  expect(r.stderr, 'no escape codes when stderr is not a terminal').not.toContain('\u001b');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith(ERROR_PREFIX));
  expect(lines, `one error line in:\n${r.stderr}`).toHaveLength(1);
  return lines[0]!;
}

/** The error line, which must be all there is on stderr. */
function onlyErrorLine(r: CliResult): string {
  const line = errorLine(r);
  expect(r.stderr).toBe(`${line}\n`);
  return line;
}

let dir: string;
const serve = serverPool();

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-errors-');
  await writeFile(path.join(dir, 'cat.png'), await makeImage('png'));
  await writeFile(path.join(dir, 'dog.png'), await makeImage('png', { color: '#ff8800' }));
  await writeFile(path.join(dir, 'empty.png'), Buffer.alloc(0));
  await writeFile(path.join(dir, 'x.png'), 'this is not an image, only text\n');
  await mkdir(path.join(dir, 'no-images'));
  await writeFile(path.join(dir, 'no-images', 'notes.txt'), 'nothing to see\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exit 2: usage', () => {
  const cases: { name: string; args: string[]; says: RegExp }[] = [
    { name: 'an unknown option', args: ['--bogus', 'cat.png'], says: /unknown option '--bogus'/ },
    { name: '--timeout abc', args: ['--timeout', 'abc', 'cat.png'], says: /--timeout.*abc/ },
    { name: '--detail ultra', args: ['--detail', 'ultra', 'cat.png'], says: /--detail.*ultra/ },
    { name: '--max-tokens -1', args: ['--max-tokens', '-1', 'cat.png'], says: /--max-tokens.*-1/ },
    { name: '--retries -1', args: ['--retries', '-1', 'cat.png'], says: /--retries.*-1/ },
    { name: 'no argument at all', args: [], says: /no image given/ },
    { name: 'only a prompt, no image', args: ['what is this thing'], says: /no image given/ },
    {
      name: 'a glob that matches nothing',
      args: ['nothing/*.png'],
      says: /no files match nothing\/\*\.png/,
    },
    {
      name: 'both --max-tokens and --max-completion-tokens',
      args: ['--max-tokens', '5', '--max-completion-tokens', '5', 'cat.png'],
      says: /--max-tokens.*--max-completion-tokens/,
    },
  ];

  it.each(cases)('$name', async ({ args, says }) => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, ...args], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(onlyErrorLine(r)).toMatch(says);
    expect(server.requests).toHaveLength(0);
  });
});

describe('exit 3: input', () => {
  const cases: { name: string; arg: string; says: RegExp }[] = [
    {
      name: 'a missing file',
      arg: 'nope.png',
      says: /^describe-image: error: nope\.png: no such file$/,
    },
    {
      name: 'an empty file',
      arg: 'empty.png',
      says: /^describe-image: error: empty\.png: .*empty/,
    },
    {
      name: 'a text file named x.png',
      arg: 'x.png',
      says: /^describe-image: error: x\.png: not a valid PNG image/,
    },
    {
      name: 'a directory with no images',
      arg: 'no-images',
      says: /^describe-image: error: no-images: .*no image/,
    },
  ];

  it.each(cases)('$name', async ({ arg, says }) => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, arg], { cwd: dir });
    expect(onlyErrorLine(r)).toMatch(says);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(0);
    expect(r.code).toBe(3);
  });

  it('in a batch, a missing file fails alone: the others are answered, the exit code is 3', async () => {
    const server = await serve(okHandler({ text: 'A cat.' }));
    const r = await runCli(['--base-url', server.baseUrl, 'cat.png', 'nope.png'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('==> cat.png <==\nA cat.\n');
    expect(errorLine(r)).toBe('describe-image: error: nope.png: no such file');
    expect(server.requests).toHaveLength(1);
  });
});

describe('exit 4: authentication', () => {
  it('no key for a base URL that is not this machine: names DESCRIBE_IMAGE_API_KEY, sends nothing', async () => {
    const r = await runCli(['--base-url', 'https://api.example.invalid/v1', 'cat.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    const line = onlyErrorLine(r);
    expect(line).toContain('DESCRIBE_IMAGE_API_KEY');
    expect(line).toContain('api.example.invalid');
  });

  it('--api-key-file that does not exist', async () => {
    const server = await serve();
    const r = await runCli(
      ['--base-url', server.baseUrl, '--api-key-file', 'no-such-key.txt', 'cat.png'],
      { cwd: dir },
    );
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(onlyErrorLine(r)).toMatch(/--api-key-file no-such-key\.txt: no such file/);
    expect(server.requests).toHaveLength(0);
  });
});

interface ServerCase {
  name: string;
  status: number;
  body: unknown;
  args?: string[];
  code: number;
  /** Requests the server should see (1 unless retried). */
  requests: number;
  says: (string | RegExp)[];
}

describe('errors from the server', () => {
  const cases: ServerCase[] = [
    {
      name: '401 → 4',
      status: 401,
      body: fixture('error_401_invalid_api_key.json'),
      code: 4,
      requests: 1,
      says: ['Incorrect API key provided', /API key/],
    },
    {
      name: '403 insufficient balance → 4, says insufficient balance',
      status: 403,
      body: {
        error: {
          message: 'Insufficient balance: top up to continue.',
          type: 'insufficient_balance',
          code: 'insufficient_balance',
        },
      },
      code: 4,
      requests: 1,
      says: [/insufficient balance \(HTTP 403\)/i, 'Insufficient balance: top up to continue.'],
    },
    {
      name: '429 insufficient_quota → 5, not retried',
      status: 429,
      body: fixture('error_429_insufficient_quota.json'),
      args: ['--retries', '2'],
      code: 5,
      requests: 1,
      says: [
        'You exceeded your current quota, please check your plan and billing details.',
        /quota/,
      ],
    },
    {
      name: '429 rate limit, still limited after the retries → 5',
      status: 429,
      body: fixture('error_429_rate_limit_exceeded_tpm.reconstructed.json'),
      args: ['--retries', '1'],
      code: 5,
      requests: 2,
      says: ['Rate limit reached for o4-mini', /rate limit/i],
    },
    {
      name: '400 content filter → 6, says content policy',
      status: 400,
      body: fixture('azure_error_400_content_filter.reconstructed.json'),
      args: ['--retries', '2'],
      code: 6,
      requests: 1,
      says: [
        /content policy/,
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
      ],
    },
    {
      name: '400 max_tokens unsupported → 6, suggests --max-completion-tokens',
      status: 400,
      body: fixture('error_400_unsupported_parameter_max_tokens.json'),
      args: ['--max-tokens', '100'],
      code: 6,
      requests: 1,
      says: [
        "Unsupported parameter: 'max_tokens' is not supported with this model.",
        '--max-completion-tokens',
      ],
    },
    {
      name: '404 model_not_found → 6',
      status: 404,
      body: fixture('error_404_model_not_found.json'),
      code: 6,
      requests: 1,
      says: [
        /model not found/,
        'The model `gpt-4o` does not exist or you do not have access to it.',
      ],
    },
    {
      name: '413 → 6',
      status: 413,
      body: {
        error: {
          message: 'Request body too large: 20971520 bytes.',
          type: 'invalid_request_error',
        },
      },
      code: 6,
      requests: 1,
      says: ['Request body too large: 20971520 bytes.', /too large/],
    },
    {
      name: '422 → 6',
      status: 422,
      body: {
        detail: [
          {
            loc: ['body', 'messages', 0, 'content'],
            msg: 'Input should be a valid list',
            type: 'list_type',
          },
        ],
      },
      code: 6,
      requests: 1,
      says: ['Input should be a valid list'],
    },
    {
      name: '500, still failing after the retries → 7',
      status: 500,
      body: {
        error: {
          message: 'The server had an error while processing your request. Sorry about that!',
          type: 'server_error',
        },
      },
      args: ['--retries', '1'],
      code: 7,
      requests: 2,
      says: [
        'The server had an error while processing your request. Sorry about that!',
        /HTTP 500/,
      ],
    },
  ];

  it.each(cases)(
    '$name',
    async ({ status, body, args = ['--retries', '0'], code, requests, says }) => {
      const requestId = `req_${status}_abc123`;
      const server = await serve(
        errorHandler(status, body, { 'x-request-id': requestId, 'retry-after-ms': '0' }),
      );
      const r = await runCli(['--base-url', server.baseUrl, ...args, 'cat.png'], { cwd: dir });
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      expect(server.requests).toHaveLength(requests);
      const line = requests === 1 ? onlyErrorLine(r) : errorLine(r);
      expect(line.startsWith(`${ERROR_PREFIX}cat.png: `)).toBe(true);
      expect(line).toContain(requestId);
      for (const s of says) {
        if (typeof s === 'string') expect(line).toContain(s);
        else expect(line).toMatch(s);
      }
    },
  );

  it('with --debug there is debug output (and still one error line)', async () => {
    const server = await serve(
      errorHandler(
        500,
        { error: { message: 'kaput', type: 'server_error' } },
        { 'x-request-id': 'req_dbg' },
      ),
    );
    const r = await runCli(['--base-url', server.baseUrl, '--retries', '0', '--debug', 'cat.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines.filter((l) => l.startsWith('describe-image: debug: ')).length).toBeGreaterThan(0);
    // --help promises stack traces under --debug.
    expect(r.stderr).toMatch(/^\s{4}at /m);
    const errors = lines.filter((l) => l.startsWith(ERROR_PREFIX));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('kaput');
    expect(errors[0]).toContain('req_dbg');
  });
});

describe('exit 7: network failures', () => {
  it('connection refused (a closed port)', async () => {
    const closed = await startServer();
    const baseUrl = closed.baseUrl;
    await closed.close();
    const r = await runCli(['--base-url', baseUrl, '--retries', '0', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    const line = onlyErrorLine(r);
    expect(line.startsWith(`${ERROR_PREFIX}cat.png: `)).toBe(true);
    expect(line).toMatch(/connection refused/);
  });

  it('a connection reset in the middle of a stream: exit 7, no retry, at most the partial text on stdout', async () => {
    const chunk = (delta: object): string =>
      `data: ${JSON.stringify({ id: 'chatcmpl-reset', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_reset' });
      res.write(chunk({ role: 'assistant', content: '' }));
      res.write(chunk({ content: 'The first ' }));
      res.write(chunk({ content: 'half' }));
      setTimeout(() => res.socket?.destroy(), 150);
    });
    const r = await runCli(['--base-url', server.baseUrl, '--retries', '2', 'cat.png'], {
      cwd: dir,
    });
    expect(r.code).toBe(7);
    expect(server.requests).toHaveLength(1);
    expect('The first half'.startsWith(r.stdout.trimEnd())).toBe(true);
    expect(r.stdout === '' || r.stdout.endsWith('\n')).toBe(true);
    const line = errorLine(r);
    expect(line.startsWith(`${ERROR_PREFIX}cat.png: `)).toBe(true);
  });

  it('a timeout with --timeout 0.5', async () => {
    const server = await serve(() => undefined); // never answers
    const started = Date.now();
    const r = await runCli(
      ['--base-url', server.baseUrl, '--timeout', '0.5', '--retries', '0', 'cat.png'],
      { cwd: dir },
    );
    const elapsed = Date.now() - started;
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    expect(server.requests).toHaveLength(1);
    const line = onlyErrorLine(r);
    expect(line.startsWith(`${ERROR_PREFIX}cat.png: `)).toBe(true);
    expect(line).toMatch(/0\.5 s/);
    expect(line).toContain('--timeout');
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(5000);
  });

  it('a 200 with an HTML body for --no-stream', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'x-request-id': 'req_html' });
      res.end(
        '<!doctype html><html><head><title>Sign in</title></head><body><h1>Sign in</h1></body></html>',
      );
    });
    const r = await runCli(['--base-url', server.baseUrl, '--no-stream', 'cat.png'], { cwd: dir });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    const line = onlyErrorLine(r);
    expect(line.startsWith(`${ERROR_PREFIX}cat.png: `)).toBe(true);
    // The wording may change; the hint to check the base URL is what the user needs.
    expect(line).toContain('--base-url');
    expect(server.requests).toHaveLength(1);
  });
});

describe('exit 130: Ctrl-C', () => {
  it('SIGINT while the server stalls exits 130 at once and says interrupted, without escape codes', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const server = await serve(() => arrived()); // stalls: never answers
    let child: ChildProcess | undefined;
    const running = runCli(['--base-url', server.baseUrl, 'cat.png'], {
      cwd: dir,
      onSpawn: (c) => (child = c),
    });
    await requestArrived;
    const sentAt = Date.now();
    child!.kill('SIGINT');
    const r = await running;
    const took = Date.now() - sentAt;

    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.stderr).not.toContain('\u001b');
    expect(r.stderr).not.toMatch(/^\s{4}at /m);
    expect(took).toBeLessThan(1500);
    expect(server.requests).toHaveLength(1);
  });
});

describe('the API key never reaches stdout or stderr', () => {
  /** A server that quotes the Authorization header back in its error message. */
  const echo: Handler = (req, res) => {
    res.writeHead(401, { 'content-type': 'application/json', 'x-request-id': 'req_echo' });
    res.end(
      JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${String(req.headers.authorization)}.`,
          code: 'invalid_api_key',
        },
      }),
    );
  };

  it.each([[[] as string[]], [['--debug']]])(
    'when the server echoes it in an error (extra args %j)',
    async (extra) => {
      const server = await serve(echo);
      const r = await runCli(['--base-url', server.baseUrl, ...extra, 'cat.png'], {
        cwd: dir,
        env: { DESCRIBE_IMAGE_API_KEY: KEY },
      });
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.code).toBe(4);
      expect(r.stdout).toBe('');
      expect(r.stdout).not.toContain(KEY);
      expect(r.stderr).not.toContain(KEY);
      const line = errorLine(r, { debug: extra.includes('--debug') });
      expect(line).toContain('Incorrect API key provided');
      expect(line).toContain('req_echo');
      if (extra.includes('--debug')) expect(r.stderr).toContain('describe-image: debug: ');
    },
  );

  it('when it comes from --api-key-file and the server echoes it, with --debug', async () => {
    const keyFile = path.join(dir, 'key.txt');
    await writeFile(keyFile, `${KEY}\n`);
    const server = await serve(echo);
    const r = await runCli(
      ['--base-url', server.baseUrl, '--api-key-file', keyFile, '--debug', 'cat.png'],
      { cwd: dir },
    );
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.code).toBe(4);
    expect(r.stdout).not.toContain(KEY);
    expect(r.stderr).not.toContain(KEY);
    expect(r.stderr).toContain('describe-image: debug: ');
  });

  it('when it is sent unencrypted over http:// to another host (warning, then exit 3 on a missing image)', async () => {
    const r = await runCli(['--base-url', 'http://192.0.2.1:9/v1', '--debug', 'missing.png'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^describe-image: warning: .*unencrypted/m);
    expect(r.stderr).not.toContain(KEY);
    expect(r.stdout).not.toContain(KEY);
  });
});
