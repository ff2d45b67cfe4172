/**
 * Issue 9, "nothing leaked, nothing lost, nothing surprising", end to end: the built CLI
 * spawned against hostile and flaky loopback servers, with hostile file names.
 *
 * - One output layer: a server that echoes every header it received (the key among them) into
 *   error messages, stream errors and answer ids leaks the key nowhere, in any mode; control
 *   characters in file names and server text never reach stderr raw; JSON escapes C1 and
 *   U+2028/U+2029.
 * - A paid answer is never thrown away: `[DONE]` ends an answer, whatever comes after it.
 * - Ctrl-C means stop: nothing new is sent after the first SIGINT; nothing lingers.
 * - One image is a batch of one: every output option works for n = 1.
 * - Waits and errors say the truth: long Retry-After, persistent 429s, dry runs, downloads.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, type CliResult } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import {
  answer,
  errorHandler,
  serverPool,
  sseBody,
  type Handler,
  type RecordedRequest,
} from '../helpers/server.js';

const serve = serverPool();

const KEY = 'sk-live-ECHOED-0123456789abcdef';
/** Another provider's key in the environment: never used, never shown either. */
const OTHER_KEY = 'sk-or-v1-OTHERVENDOR-fedcba9876543210';

let root: string;
let imageNo = 0;

/** A small distinct PNG at `name` (relative to `dir`, by default the root). */
async function image(name: string, dir = root): Promise<string> {
  const n = imageNo++;
  const color = `#${((n * 40 + 10) % 256).toString(16).padStart(2, '0')}3366`;
  const bytes = await makeImage('png', { width: 16, height: 16, color });
  await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
  await writeFile(path.join(dir, name), bytes);
  return name;
}

/** Every file under `dir`, with its text. */
async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(full, await readFile(full, 'latin1'));
  }
  return out;
}

/** The headers a request carried, as text (what an echoing server puts in its messages). */
function echo(req: RecordedRequest): string {
  return JSON.stringify(req.headers);
}

function cli(
  args: string[],
  extraEnv: Record<string, string> = {},
  opts: { cwd?: string; stdin?: string } = {},
) {
  return runCli(args, {
    cwd: opts.cwd ?? root,
    env: { DESCRIBE_IMAGE_API_KEY: KEY, OPENROUTER_API_KEY: OTHER_KEY, ...extraEnv },
    ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
  });
}

/** Asserts that no secret appears in a run's output or in any file under `dir`. */
async function expectNoSecret(r: CliResult, dir: string, label: string): Promise<void> {
  for (const secret of [KEY, OTHER_KEY]) {
    expect(r.stdout, `${label}: stdout`).not.toContain(secret);
    expect(r.stderr, `${label}: stderr`).not.toContain(secret);
    for (const [file, text] of await filesUnder(dir)) {
      expect(text, `${label}: ${file}`).not.toContain(secret);
    }
  }
}

beforeAll(async () => {
  root = await tempDir('describe-image-trust-');
});

describe('one output layer: a server that echoes the key', () => {
  /** Answers with the request's headers in the error message (400), or in the answer's id. */
  const echoError: Handler = (req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: { message: `bad request; you sent ${echo(req)}`, type: 'invalid_request_error' },
      }),
    );
  };
  const echoStreamError: Handler = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(
      `data: ${JSON.stringify({ error: { message: `stream failed; you sent ${echo(req)}` } })}\n\n`,
    );
  };
  const echoId: Handler = (req, res) =>
    answer(req, res, { id: `chatcmpl-${String(req.headers.authorization)}`, text: 'A cat.' });

  const modes: [string, string[]][] = [
    ['single text', []],
    ['single --json', ['--json']],
    ['single --no-stream', ['--no-stream']],
    ['batch text', ['EXTRA']],
    ['batch --json', ['EXTRA', '--json']],
    ['batch -o', ['EXTRA', '--json', '-o', 'out.jsonl']],
    ['batch --sidecar --json', ['EXTRA', '--sidecar', '--json']],
    ['single --sidecar', ['--sidecar']],
    ['--debug', ['EXTRA', '--debug']],
  ];

  for (const [handlerName, handler] of [
    ['error message', echoError],
    ['stream error', echoStreamError],
    ['answer id', echoId],
  ] as const) {
    it(`the key appears nowhere: echoed in the ${handlerName}, in every output mode`, async () => {
      const server = await serve(handler);
      for (const [label, extra] of modes) {
        const dir = path.join(
          root,
          `echo-${handlerName.replace(/ /g, '-')}-${label.replace(/\W+/g, '-')}`,
        );
        const a = await image('a.png', dir);
        const b = await image('b.png', dir);
        const args = [
          '--base-url',
          server.baseUrl,
          '--retries',
          '0',
          a,
          ...extra.map((x) => (x === 'EXTRA' ? b : x)),
        ];
        const r = await cli(args, {}, { cwd: dir });
        expect(r.code, `${label}: ${r.stderr}`).not.toBe(70);
        await expectNoSecret(r, dir, `${handlerName} / ${label}`);
      }
      // The key did go to the server, as a header: it is the output that must not carry it.
      expect(server.requests.some((q) => q.headers.authorization === `Bearer ${KEY}`)).toBe(true);
    });
  }

  it('a --dry-run shows the headers with the key redacted, and sends nothing', async () => {
    const server = await serve(echoError);
    const a = await image('dry.png');
    const r = await cli(['--base-url', server.baseUrl, '--dry-run', a]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('authorization: Bearer *** (redacted)');
    expect(server.requests).toHaveLength(0);
    await expectNoSecret(r, path.join(root), 'dry run');
  });

  it('the key inside an error is redacted even when the server splits nothing for us: a streamed answer echoing it', async () => {
    const server = await serve((req, res) =>
      answer(req, res, { text: `Your key is ${String(req.headers.authorization)}.` }),
    );
    const a = await image('answer-echo.png');
    const r = await cli(['--base-url', server.baseUrl, a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Your key is Bearer ***.\n');
    expect(r.stdout).not.toContain(KEY);
  });
});

describe('one output layer: control characters', () => {
  const EVIL = 'evil\x1b]0;TITLE\x07\u009b2J\u2028.png';

  it('a hostile file name never reaches stderr or stdout raw, in text and JSON', async () => {
    const dir = path.join(root, 'hostile');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, EVIL), await makeImage('png', { width: 12, height: 12 }));
    // And one that is not an image, so the name shows up in an error and in the summary.
    await writeFile(path.join(dir, `bad${EVIL}`), 'not an image');
    const server = await serve((req, res) => answer(req, res, { text: 'A cat.' }));

    const text = await runCli(['--base-url', server.baseUrl, '.'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(text.code).toBe(3);
    for (const out of [text.stdout, text.stderr]) {
      // eslint-disable-next-line no-control-regex -- the check is that none remain
      expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028]/);
    }
    expect(text.stderr).toContain('evil\\x1b]0;TITLE\\x07\\x9b2J\\u2028.png');
    expect(text.stdout).toContain('==> evil\\x1b]0;TITLE\\x07\\x9b2J\\u2028.png <==');

    const json = await runCli(['--base-url', server.baseUrl, '--json', '.'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    // eslint-disable-next-line no-control-regex -- the check is that none remain
    expect(json.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(json.stdout).toContain('\\u001b]0;TITLE\\u0007\\u009b2J\\u2028.png');
    const records = jsonLines(json.stdout);
    expect(records.map((r) => r.image).sort()).toEqual([`bad${EVIL}`, EVIL].sort());
    // eslint-disable-next-line no-control-regex -- the check is that none remain
    expect(json.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028]/);
  });

  it('server text (a body that is not JSON, an error event) never reaches stderr raw', async () => {
    const a = await image('server-text.png');
    const notJson = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('oops \x1b]0;HACKED\x07 \x1b[2J');
    });
    const r1 = await cli(['--base-url', notJson.baseUrl, '--retries', '0', '--no-stream', a]);
    expect(r1.code).toBe(7);
    expect(r1.stderr).not.toContain('\x1b');
    expect(r1.stderr).toContain('HACKED');

    const streamError = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        `data: ${JSON.stringify({ error: { message: 'boom \x1b]52;c;cHduZWQ=\x07 \u009b31m' } })}\n\n`,
      );
    });
    const r2 = await cli(['--base-url', streamError.baseUrl, '--retries', '0', a]);
    expect(r2.code).toBe(7);
    // eslint-disable-next-line no-control-regex -- the check is that none remain
    expect(r2.stderr).not.toMatch(/[\u001b\u0007\u009b]/);
    expect(r2.stderr).toContain('boom');
  });
});

describe('a paid answer is never thrown away', () => {
  /** The whole answer, [DONE], then the connection is reset. */
  const doneThenReset: Handler = (req, res, raw) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sseBody({ text: 'A whole answer.' }, { usageChunk: true }));
    setTimeout(() => raw.socket.resetAndDestroy(), 50);
  };

  it('[DONE] then a reset: the answer is printed and the run succeeds, one request', async () => {
    const server = await serve(doneThenReset);
    const a = await image('done-reset.png');
    const r = await cli(['--base-url', server.baseUrl, a]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A whole answer.\n');
    expect(server.requests).toHaveLength(1);
  });

  it('[DONE] then a reset, in a batch: every image succeeds, one request each', async () => {
    const server = await serve(doneThenReset);
    const a = await image('done-reset-b1.png');
    const b = await image('done-reset-b2.png');
    // Text mode streams (--json asks for the whole answer at once).
    const r = await cli(['--base-url', server.baseUrl, a, b]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`==> ${a} <==\nA whole answer.\n\n==> ${b} <==\nA whole answer.\n`);
    expect(server.requests).toHaveLength(2);
  });

  it('--json (not streamed): the whole JSON answer, then a reset before the body ends, still counts', async () => {
    const server = await serve((_req, res, raw) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(
        JSON.stringify({
          id: 'chatcmpl-whole',
          object: 'chat.completion',
          created: 1,
          model: 'm',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: 'Whole JSON.' },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
        }),
      );
      setTimeout(() => raw.socket.resetAndDestroy(), 50);
    });
    const a = await image('json-reset-1.png');
    const b = await image('json-reset-2.png');
    const r = await cli(['--base-url', server.baseUrl, '--json', a, b]);
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout).map((x) => x.text)).toEqual(['Whole JSON.', 'Whole JSON.']);
    expect(server.requests).toHaveLength(2);
  });

  it('[DONE] then a stall: the answer is not held hostage by the open connection', async () => {
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sseBody({ text: 'Done, then silence.' }, { usageChunk: true }));
      // …and never ends the response.
    });
    const a = await image('done-stall.png');
    const r = await cli(['--base-url', server.baseUrl, '--timeout', '20', a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Done, then silence.\n');
  });

  it('a stream that breaks after part of the answer was printed: no second attempt, exit 7, said on stderr', async () => {
    const server = await serve((_req, res, raw) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (content: string) =>
        `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
      res.write(chunk('The first half'));
      setTimeout(() => raw.socket.resetAndDestroy(), 100);
    });
    const a = await image('half.png');
    const r = await cli(['--base-url', server.baseUrl, a]);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('The first half\n');
    expect(server.requests).toHaveLength(1);
    expect(r.stderr).toMatch(
      /closed unexpectedly while streaming.*the answer printed above is incomplete/,
    );
  });
});

describe('Ctrl-C means stop', () => {
  it('nothing waiting for a slot is sent after the first SIGINT (-c 2, a 1-second server)', async () => {
    let signalledAt = Infinity;
    const afterSignal: string[] = [];
    const server = await serve(async (req, res) => {
      if (Date.now() >= signalledAt) afterSignal.push(req.url);
      await sleep(1000);
      answer(req, res, { text: 'ok' });
    });
    const names = await Promise.all(
      ['s1', 's2', 's3', 's4', 's5', 's6'].map((n) => image(`ctrlc/${n}.png`)),
    );
    let child: ChildProcess | undefined;
    const running = runCli(['--base-url', server.baseUrl, '-c', '2', '--json', ...names], {
      cwd: root,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
      onSpawn: (c) => (child = c),
    });
    const deadline = Date.now() + 15_000;
    while (server.requests.length < 2 && Date.now() < deadline) await sleep(10);
    signalledAt = Date.now();
    child!.kill('SIGINT');
    const r = await running;
    expect(r.code).toBe(130);
    expect(afterSignal).toEqual([]);
    expect(server.requests).toHaveLength(2);
    // The two in flight finished within the grace and were written.
    expect(jsonLines(r.stdout).filter((x) => x.text === 'ok')).toHaveLength(2);
  });

  it('Ctrl-C while the pool waits out a rate limit: out at once, nothing lingers', async () => {
    const server = await serve(
      errorHandler(
        429,
        { error: { message: 'Rate limit reached', type: 'requests' } },
        { 'retry-after': '30' },
      ),
    );
    const names = await Promise.all(['p1', 'p2', 'p3'].map((n) => image(`pause/${n}.png`)));
    let child: ChildProcess | undefined;
    let stderr = '';
    const running = runCli(['--base-url', server.baseUrl, '-c', '1', ...names], {
      cwd: root,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
      onSpawn: (c) => (child = c),
      onStderr: (t) => (stderr += t),
    });
    const deadline = Date.now() + 15_000;
    while (!stderr.includes('pausing') && Date.now() < deadline) await sleep(10);
    expect(stderr).toContain('rate limited: pausing every request for 30 s');
    const killedAt = Date.now();
    child!.kill('SIGINT');
    const r = await running;
    expect(r.code).toBe(130);
    // The old code spent the 2 s grace with nothing in flight, then lingered 5.5 s on a timer.
    expect(Date.now() - killedAt).toBeLessThan(1500);
    expect(server.requests).toHaveLength(1);
  });
});

describe('one image is a batch of one', () => {
  it('-o writes the record, and --resume then skips the image', async () => {
    const server = await serve((req, res) => answer(req, res, { text: 'One.' }));
    const a = await image('one/o.png');
    const r = await cli(['--base-url', server.baseUrl, '-o', 'one.jsonl', a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(
      jsonLines(await readFile(path.join(root, 'one.jsonl'), 'utf8')).map((x) => x.text),
    ).toEqual(['One.']);
    const again = await cli(['--base-url', server.baseUrl, '-o', 'one.jsonl', '--resume', a]);
    expect(again.code).toBe(0);
    expect(server.requests).toHaveLength(1);
  });

  it('--sidecar writes NAME.txt, and --skip-existing then skips the image; no header for one image', async () => {
    const server = await serve((req, res) => answer(req, res, { text: 'Side.' }));
    const a = await image('one/s.png');
    const r = await cli(['--base-url', server.baseUrl, '--sidecar', a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Side.\n');
    expect(await readFile(path.join(root, 'one/s.png.txt'), 'utf8')).toBe('Side.\n');
    const again = await cli(['--base-url', server.baseUrl, '--sidecar', '--skip-existing', a]);
    expect(again.code).toBe(0);
    expect(server.requests).toHaveLength(1);
  });

  it('a single failing image under --json prints its error record on stdout, as a batch does', async () => {
    const server = await serve(
      errorHandler(400, { error: { message: 'Invalid image.', code: 'invalid_image' } }),
    );
    const a = await image('one/f.png');
    const r = await cli(['--base-url', server.baseUrl, '--json', a]);
    expect(r.code).toBe(6);
    const [record] = jsonLines(r.stdout);
    expect(record).toMatchObject({
      image: a,
      index: 0,
      text: null,
      error: { code: 6, status: 400 },
    });
  });
});

describe('waits and errors that say the truth', () => {
  const limited = {
    error: {
      message: 'Rate limit reached for requests',
      type: 'requests',
      code: 'rate_limit_exceeded',
    },
  };

  it('Retry-After: 300 on one image: exit 5 at once, naming the wait; asked once', async () => {
    const server = await serve(errorHandler(429, limited, { 'retry-after': '300' }));
    const a = await image('wait/one.png');
    const started = Date.now();
    const r = await cli(['--base-url', server.baseUrl, a]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('the server asks to retry in 5 min');
    expect(server.requests).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a batch waits out a Retry-After within --max-wait, saying so on a non-terminal stderr', async () => {
    let calls = 0;
    const server = await serve((req, res, raw) => {
      calls++;
      if (calls === 1) return errorHandler(429, limited, { 'retry-after': '1' })(req, res, raw);
      answer(req, res, { text: 'after the pause' });
    });
    const names = await Promise.all(['w1', 'w2'].map((n) => image(`wait/${n}.png`)));
    const r = await cli(['--base-url', server.baseUrl, '-c', '1', '--json', ...names]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('rate limited: pausing every request for 1 s');
    expect(jsonLines(r.stdout).map((x) => x.text)).toEqual(['after the pause', 'after the pause']);
  });

  it('a batch asked to wait longer than --max-wait stops with exit 5; the rest is left for --resume', async () => {
    const server = await serve(errorHandler(429, limited, { 'retry-after': '300' }));
    const names = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((n) => image(`maxwait/${n}.png`)));
    const r = await cli([
      '--base-url',
      server.baseUrl,
      '-c',
      '1',
      '--max-wait',
      '10',
      '-o',
      'maxwait.jsonl',
      ...names,
    ]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('the server asks to retry in 5 min, longer than --max-wait (10 s)');
    expect(r.stderr).toContain('stopped: the server asks for a longer wait than --max-wait');
    expect(server.requests).toHaveLength(1);
    // Nothing in the file counts as done: --resume will ask for every image again.
    const records = jsonLines(await readFile(path.join(root, 'maxwait.jsonl'), 'utf8'));
    expect(records.every((x) => x.error !== undefined)).toBe(true);
  });

  it('a gateway that answers every request with 429: --retries 0 is one request per image, and it ends soon', async () => {
    const server = await serve(errorHandler(429, limited));
    const names = await Promise.all(['g1', 'g2'].map((n) => image(`gateway/${n}.png`)));
    const started = Date.now();
    const r = await cli(['--base-url', server.baseUrl, '--retries', '0', ...names]);
    expect(r.code).toBe(5);
    expect(server.requests).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stderr).toMatch(/rate limited: pausing every request for/);
  });

  it('--dry-run --download names the URL and fetches nothing', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end();
    });
    const url = `${server.origin}/cat.png`;
    const r = await cli(['--dry-run', '--download', url]);
    expect(r.code).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect(r.stderr).toContain(
      `${url}: would be downloaded and sent as bytes (not fetched in a dry run)`,
    );
  });

  it('--download of an unreachable host: exit 3, naming the image, not blaming --base-url', async () => {
    const api = await serve((req, res) => answer(req, res));
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/cat.png`;
    const r = await cli(['--base-url', api.baseUrl, '--download', url]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${url}: could not download the image`);
    expect(r.stderr).not.toContain('--base-url');
    expect(api.requests).toHaveLength(0);
  });

  it('a streamed refusal is printed, as --no-stream prints it', async () => {
    const server = await serve((req, res) =>
      answer(req, res, { refusal: "I can't help with that." }),
    );
    const a = await image('refusal.png');
    const streamed = await cli(['--base-url', server.baseUrl, a]);
    const whole = await cli(['--base-url', server.baseUrl, '--no-stream', a]);
    expect(streamed.stdout).toBe("I can't help with that.\n");
    expect(streamed.stdout).toBe(whole.stdout);
    expect(streamed.code).toBe(whole.code);
    expect(streamed.stderr).toContain('the model refused to answer');
  });

  it('a 403 exits 4 (spawned, not just the mapper)', async () => {
    const server = await serve(
      errorHandler(403, {
        error: { message: 'You do not have access to this model.', type: 'permission_error' },
      }),
    );
    const a = await image('forbidden.png');
    const r = await cli(['--base-url', server.baseUrl, a]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('permission denied (HTTP 403)');
  });

  it('-q prints each failure once, and no summary', async () => {
    const server = await serve(
      errorHandler(400, { error: { message: 'Invalid image.', code: 'invalid_image' } }),
    );
    const names = await Promise.all(['q1', 'q2'].map((n) => image(`quiet/${n}.png`)));
    const r = await cli(['--base-url', server.baseUrl, '-q', ...names]);
    expect(r.code).toBe(6);
    expect(r.stderr.match(/Invalid image\./g)).toHaveLength(2);
    expect(r.stderr).not.toContain('summary:');
    expect(r.stderr).not.toContain('failed (');
  });
});

describe('proxies', () => {
  it('HTTPS_PROXY/HTTP_PROXY: requests go through a real CONNECT proxy and are answered', async () => {
    const api = await serve((req, res) => answer(req, res, { text: 'Through the proxy.' }));
    const apiPort = Number(new URL(api.origin).port);
    const tunnels: string[] = [];
    // A CONNECT proxy that sends every tunnel for api.proxied.test to the loopback API.
    const proxy = http.createServer((_req, res) => {
      res.writeHead(405);
      res.end();
    });
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const upstream = net.connect(apiPort, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    try {
      const a = await image('proxied.png');
      const r = await cli(['--base-url', 'http://api.proxied.test/v1', a], {
        HTTP_PROXY: proxyUrl,
        HTTPS_PROXY: proxyUrl,
      });
      expect(r.stderr).not.toContain('kClient');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('Through the proxy.\n');
      expect(tunnels).toEqual(['api.proxied.test:80']);
      expect(api.requests).toHaveLength(1);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
