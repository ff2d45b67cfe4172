/**
 * Batch mode, end to end: the built CLI spawned against a real loopback server. Each image is
 * a distinct small PNG (sent byte for byte, as it needs no preparation), so the server can
 * tell which image a request carries by the sha256 of its bytes, and answer with its name.
 * Covered: input expansion, output order, exit codes, Ctrl-C and --resume, sidecars, a batch
 * stopped by an authentication or quota failure, --rpm, and a 429 pausing the whole pool.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, type JsonRecord } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, requestImageHash, serverPool, sha256 } from '../helpers/server.js';
import type { Handler, RecordedRequest } from '../helpers/server.js';

const serve = serverPool();

let root: string;
/** Every image written by this file: name (relative to root, as the CLI shows it) ⇄ hash. */
const hashByName = new Map<string, string>();
const nameByHash = new Map<string, string>();
let colorCounter = 0;

/** Writes distinct 16×16 PNGs at these paths (relative to root). */
async function writeImages(names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const n = colorCounter++;
      const hex = (v: number): string => v.toString(16).padStart(2, '0');
      const color = `#${hex(n % 256)}${hex((n * 67 + 29) % 256)}${hex((n >> 8) * 40 + 7)}`;
      const bytes = await makeImage('png', { width: 16, height: 16, color });
      await mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await writeFile(path.join(root, name), bytes);
      const hash = sha256(bytes);
      if (nameByHash.has(hash)) throw new Error(`two test images share bytes: ${name}`);
      hashByName.set(name, hash);
      nameByHash.set(hash, name);
    }),
  );
}

/** `dir/img-000.png` … in input (sorted) order. */
function numbered(dir: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${dir}/img-${String(i).padStart(3, '0')}.png`);
}

/** The image a request carried, by name. */
function imageOf(req: RecordedRequest): string {
  return nameByHash.get(requestImageHash(req)) ?? 'unknown';
}

/** Answers every request with the name of its image, after `delayMs(name)`. */
function namingHandler(delayMs: (name: string) => number = () => 0, log?: string[]): Handler {
  return async (req, res) => {
    const name = imageOf(req);
    const wait = delayMs(name);
    if (wait > 0) await sleep(wait);
    log?.push(name);
    answer(req, res, { text: `This is ${name}.`, id: `chatcmpl-${name}` });
  };
}

/** What text mode prints for these images, answered by namingHandler. */
function textOutput(names: readonly string[]): string {
  return names.map((n) => `==> ${n} <==\nThis is ${n}.\n`).join('\n');
}

function headers(stdout: string): string[] {
  return [...stdout.matchAll(/^==> (.*) <==$/gm)].map((m) => m[1]!);
}

/** The numbers of the summary line. */
function summaryOf(stderr: string): {
  succeeded: number;
  failed: number;
  skipped: number;
  notAttempted: number;
  total: number;
} {
  const m =
    /^summary: (\d+) succeeded · (\d+) failed · (\d+) skipped · (\d+) not attempted \(of (\d+)\)$/m.exec(
      stderr,
    );
  if (!m) throw new Error(`no summary line in stderr:\n${stderr}`);
  const [succeeded, failed, skipped, notAttempted, total] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { succeeded, failed, skipped, notAttempted, total };
}

/** Polls `check` until it is true (or fails after `timeoutMs`). */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const TREE = [
  'tree/a.png',
  'tree/b10.png',
  'tree/b2.png',
  'tree/B.png',
  'tree/.hidden.png',
  'tree/.cache/x.png',
  'tree/sub/c.png',
  'tree/sub/.e.png',
  'tree/sub/deep/d.png',
];
/** The visible images of TREE, in the documented order (sorted by name, directory by directory). */
const TREE_ORDER = [
  'tree/B.png',
  'tree/a.png',
  'tree/b10.png',
  'tree/b2.png',
  'tree/sub/c.png',
  'tree/sub/deep/d.png',
];

beforeAll(async () => {
  root = await tempDir('describe-image-batch-');
  await writeImages(TREE);
  await writeFile(path.join(root, 'tree/notes.txt'), 'not an image\n');
  await writeFile(path.join(root, 'tree/sub/readme.md'), '# not an image\n');
  await mkdir(path.join(root, 'noimages/inner'), { recursive: true });
  await writeFile(path.join(root, 'noimages/notes.txt'), 'nothing to see\n');
  await writeImages(['noimages/.hidden.png']);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('inputs: directories, globs, --files-from', () => {
  it('a directory: its images recursively, in sorted order, skipping hidden and non-image files', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'tree'], { cwd: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(TREE_ORDER));
    expect(server.requests.map(imageOf).sort()).toEqual([...TREE_ORDER].sort());
    expect(summaryOf(r.stderr)).toEqual({
      succeeded: 6,
      failed: 0,
      skipped: 0,
      notAttempted: 0,
      total: 6,
    });
  });

  it('a recursive glob: the same images in the same order, hidden ones left out', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'tree/**/*.png'], { cwd: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(TREE_ORDER));
    expect(server.requests).toHaveLength(6);
  });

  it('a glob matching non-image files and directories keeps only the image files', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'tree/*'], { cwd: root });
    expect(r.code).toBe(0);
    expect(headers(r.stdout)).toEqual(['tree/B.png', 'tree/a.png', 'tree/b10.png', 'tree/b2.png']);
    expect(server.requests.map(imageOf).sort()).toEqual(
      ['tree/B.png', 'tree/a.png', 'tree/b10.png', 'tree/b2.png'].sort(),
    );
  });

  it('an image given twice is described once: two globs, ./a and a, a glob and a path', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(
      [
        '--base-url',
        server.baseUrl,
        'tree/a*.png',
        'tree/*.png',
        './tree/a.png',
        'tree/a.png',
        'tree/sub/../b2.png',
        path.join(root, 'tree/B.png'),
      ],
      { cwd: root },
    );
    expect(r.code).toBe(0);
    expect(headers(r.stdout)).toEqual(['tree/a.png', 'tree/B.png', 'tree/b10.png', 'tree/b2.png']);
    expect(server.requests.map(imageOf).sort()).toEqual(
      ['tree/B.png', 'tree/a.png', 'tree/b10.png', 'tree/b2.png'].sort(),
    );
    expect(summaryOf(r.stderr).total).toBe(4);
  });

  it('--files-from FILE: paths in list order after the arguments, blank lines, CRLF, duplicates and directories handled', async () => {
    await writeFile(
      path.join(root, 'list.txt'),
      'tree/b2.png\r\n\n./tree/b2.png\ntree/a.png\n   \ntree/sub\ntree/B.png\n',
    );
    const server = await serve(namingHandler());
    const r = await runCli(
      ['--base-url', server.baseUrl, '--files-from', 'list.txt', 'tree/B.png'],
      { cwd: root },
    );
    expect(r.code).toBe(0);
    const expected = [
      'tree/B.png',
      'tree/b2.png',
      'tree/a.png',
      'tree/sub/c.png',
      'tree/sub/deep/d.png',
    ];
    expect(r.stdout).toBe(textOutput(expected));
    expect(server.requests.map(imageOf).sort()).toEqual([...expected].sort());
    expect(summaryOf(r.stderr).total).toBe(5);
  });

  it('--files-from - reads the list from standard input', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--json', '--files-from', '-'], {
      cwd: root,
      stdin: 'tree/sub/c.png\ntree/a.png\ntree/sub/c.png\n',
    });
    expect(r.code).toBe(0);
    const records = jsonLines(r.stdout);
    expect(records.map((x) => [x.index, x.image, x.text]).sort()).toEqual([
      [0, 'tree/sub/c.png', 'This is tree/sub/c.png.'],
      [1, 'tree/a.png', 'This is tree/a.png.'],
    ]);
    expect(server.requests).toHaveLength(2);
  });

  it('a glob that matches nothing is a usage error naming the pattern, before any request', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'tree/a.png', 'nothing/**/*.jpg'], {
      cwd: root,
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^describe-image: error: .*nothing\/\*\*\/\*\.jpg/m);
    expect(server.requests).toHaveLength(0);
  });

  it('a glob that matches only non-image files is a usage error', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'tree/*.txt'], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^describe-image: error: .*tree\/\*\.txt/m);
    expect(server.requests).toHaveLength(0);
  });

  it('a directory with no images (hidden ones do not count) is an input error, exit 3', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'noimages', 'tree/a.png'], {
      cwd: root,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^describe-image: error: noimages: .*no image/m);
    expect(server.requests).toHaveLength(0);
  });

  it('--files-from with a missing file is a usage error', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--files-from', 'no-such-list.txt'], {
      cwd: root,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no-such-list.txt');
    expect(server.requests).toHaveLength(0);
  });

  it('"-" as an image and as the --files-from list at once is a usage error', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--files-from', '-', '-'], {
      cwd: root,
      stdin: 'tree/a.png\n',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^describe-image: error: .*standard input/m);
    expect(server.requests).toHaveLength(0);
  });
});

describe('text output and exit codes', () => {
  const ORDER = numbered('order', 6);
  const MIX = numbered('mix', 5);
  const WINDOW = numbered('window', 12);

  beforeAll(async () => {
    await writeImages([...ORDER, ...MIX, ...WINDOW]);
  });

  it('prints answers in input order under headers, one blank line apart, however they finish', async () => {
    const finished: string[] = [];
    const slow = new Map([
      [ORDER[0]!, 700],
      [ORDER[1]!, 350],
    ]);
    const server = await serve(namingHandler((name) => slow.get(name) ?? 0, finished));
    const r = await runCli(['--base-url', server.baseUrl, '-c', '4', 'order'], { cwd: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(ORDER));
    // The server really answered out of order: the first image last.
    expect(finished).toHaveLength(6);
    expect(finished.indexOf(ORDER[0]!)).toBe(5);
    expect(finished.indexOf(ORDER[1]!)).toBeGreaterThan(finished.indexOf(ORDER[2]!));
  });

  it('holds back at most about twice the concurrency while waiting for a slow first image', async () => {
    let firstAnsweredAt: number | undefined;
    const arrivals: number[] = [];
    const server = await serve(async (req, res) => {
      arrivals.push(Date.now());
      const name = imageOf(req);
      if (name === WINDOW[0]) {
        await sleep(800);
        firstAnsweredAt = Date.now();
      }
      answer(req, res, { text: `This is ${name}.` });
    });
    const r = await runCli(['--base-url', server.baseUrl, '-c', '2', 'window'], { cwd: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(WINDOW));
    const early = arrivals.filter((at) => at < firstAnsweredAt!).length;
    expect(early).toBeGreaterThanOrEqual(2);
    expect(early).toBeLessThanOrEqual(2 * 2 + 1);
  });

  it('a missing file among good ones: exit 3, the others still described', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(
      ['--base-url', server.baseUrl, MIX[0]!, 'mix/missing.png', MIX[1]!, MIX[2]!],
      { cwd: root },
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(textOutput([MIX[0]!, MIX[1]!, MIX[2]!]));
    expect(r.stderr).toContain('describe-image: error: mix/missing.png: no such file\n');
    expect(summaryOf(r.stderr)).toMatchObject({ succeeded: 3, failed: 1, total: 4 });
    expect(server.requests.map(imageOf).sort()).toEqual([MIX[0]!, MIX[1]!, MIX[2]!].sort());
  });

  it('the exit code is the first failure in input order: a 500 on image 2 (7) beats a missing image 5 (3)', async () => {
    // The 500 comes late, so the missing file is the first failure in time, not in order.
    const server = await serve(async (req, res) => {
      const name = imageOf(req);
      if (name === MIX[1]) {
        await sleep(400);
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'boom', type: 'server_error' } }));
        return;
      }
      answer(req, res, { text: `This is ${name}.` });
    });
    const inputs = [MIX[0]!, MIX[1]!, MIX[2]!, MIX[3]!, 'mix/missing.png', MIX[4]!];
    const r = await runCli(['--base-url', server.baseUrl, '--retries', '0', ...inputs], {
      cwd: root,
    });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe(textOutput([MIX[0]!, MIX[2]!, MIX[3]!, MIX[4]!]));
    expect(r.stderr).toContain('describe-image: error: mix/missing.png: no such file\n');
    expect(r.stderr).toMatch(new RegExp(`^describe-image: error: ${MIX[1]!}: .*HTTP 500`, 'm'));
    expect(summaryOf(r.stderr)).toMatchObject({ succeeded: 4, failed: 2, total: 6 });
    // The missing file was reported before the 500 arrived.
    expect(r.stderr.indexOf('mix/missing.png: no such file')).toBeLessThan(
      r.stderr.indexOf(`${MIX[1]!}: `),
    );
  });

  it('and the other way round: a missing image 2 (3) beats a 500 on image 4 (7)', async () => {
    const server = await serve((req, res) => {
      const name = imageOf(req);
      if (name === MIX[2]) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'boom', type: 'server_error' } }));
        return;
      }
      answer(req, res, { text: `This is ${name}.` });
    });
    const r = await runCli(
      ['--base-url', server.baseUrl, '--retries', '0', MIX[0]!, 'mix/nope.png', MIX[1]!, MIX[2]!],
      { cwd: root },
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(textOutput([MIX[0]!, MIX[1]!]));
  });

  it('a rejected request (400) fails its image alone: the rest go on, exit 6', async () => {
    const server = await serve((req, res) => {
      const name = imageOf(req);
      if (name === MIX[0]) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: {
              message: 'Invalid image.',
              type: 'invalid_request_error',
              code: 'invalid_image',
            },
          }),
        );
        return;
      }
      answer(req, res, { text: `This is ${name}.` });
    });
    const r = await runCli(['--base-url', server.baseUrl, '-c', '1', 'mix'], { cwd: root });
    expect(r.code).toBe(6);
    expect(r.stdout).toBe(textOutput(MIX.slice(1)));
    expect(summaryOf(r.stderr)).toEqual({
      succeeded: 4,
      failed: 1,
      skipped: 0,
      notAttempted: 0,
      total: 5,
    });
    expect(r.stderr).not.toMatch(/^stopped:/m);
    expect(server.requests).toHaveLength(5);
  });

  it('--resume without --output, and --skip-existing without --sidecar, are usage errors', async () => {
    const a = await runCli(['--resume', 'tree/a.png', 'tree/b2.png'], { cwd: root });
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--resume/);
    const b = await runCli(['--skip-existing', 'tree/a.png', 'tree/b2.png'], { cwd: root });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--skip-existing/);
  });
});

describe('Ctrl-C and --resume', () => {
  const SIG = numbered('sig', 40);
  const GRACE = numbered('grace', 5);
  const TORN = numbered('torn', 5);

  beforeAll(async () => {
    await writeImages([...SIG, ...GRACE, ...TORN]);
  });

  it('SIGINT stops the batch (130, summary, whole lines); --resume then does exactly the rest', async () => {
    const out = path.join(root, 'sig.jsonl');
    const lineCount = async (): Promise<number> =>
      (await readFile(out, 'utf8').catch(() => '')).split('\n').length - 1;
    // The first four requests are answered at once; the next four are held until the signal,
    // so at the signal exactly four are in flight and every slot is taken: any request that
    // arrives beyond those eight was started after the signal.
    let signalled = false;
    const first = await serve(async (req, res) => {
      if (first.requests.length > 4) {
        while (!signalled) await sleep(10);
        await sleep(100);
      }
      answer(req, res, { text: requestImageHash(req) });
    });

    let child: ChildProcess | undefined;
    const running = runCli(
      ['--base-url', first.baseUrl, '--json', '-c', '4', '-o', 'sig.jsonl', 'sig'],
      { cwd: root, onSpawn: (c) => (child = c) },
    );
    await until(
      async () => (await lineCount()) >= 4 && first.requests.length >= 8,
      15_000,
      'four lines in sig.jsonl and four requests in flight',
    );
    signalled = true;
    child!.kill('SIGINT');
    const r = await running;

    expect(r.signal).toBeNull();
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('interrupted');
    const text1 = await readFile(out, 'utf8');
    const records1 = jsonLines(text1); // every line whole, valid JSON
    expect(records1.filter((x) => x.error !== undefined)).toEqual([]);
    for (const rec of records1) expect(rec.text).toBe(hashByName.get(rec.image));
    const done1 = new Set(records1.map((x) => x.image));
    expect(done1.size).toBe(records1.length);
    const summary1 = summaryOf(r.stderr);
    expect(summary1.succeeded).toBe(records1.length);
    expect(summary1.failed).toBe(0);
    expect(summary1.total).toBe(40);
    expect(summary1.succeeded + summary1.notAttempted).toBe(40);
    expect(summary1.succeeded).toBeLessThan(40);
    expect(r.stderr).toMatch(/^not attempted \(\d+\)/m);
    // The four in flight were let finish (each one is a line), and no new one was started.
    expect(first.requests).toHaveLength(8);
    expect(records1).toHaveLength(8);

    const second = await serve((req, res) => answer(req, res, { text: requestImageHash(req) }));
    const r2 = await runCli(
      ['--base-url', second.baseUrl, '--json', '-c', '4', '-o', 'sig.jsonl', '--resume', 'sig'],
      { cwd: root },
    );
    expect(r2.code).toBe(0);
    // The second run asked only for what the first did not finish, each once.
    const asked = second.requests.map(imageOf);
    expect(new Set(asked).size).toBe(asked.length);
    expect(asked.filter((n) => done1.has(n))).toEqual([]);
    expect(asked.sort()).toEqual(SIG.filter((n) => !done1.has(n)).sort());
    expect(summaryOf(r2.stderr)).toEqual({
      succeeded: 40 - done1.size,
      failed: 0,
      skipped: done1.size,
      notAttempted: 0,
      total: 40,
    });

    // Together: every image described exactly once, each with its own answer.
    const all = jsonLines(await readFile(out, 'utf8'));
    expect(all.slice(0, records1.length)).toEqual(records1);
    const perImage = new Map<string, number>();
    for (const rec of all) {
      expect(rec.error).toBeUndefined();
      expect(rec.text).toBe(hashByName.get(rec.image));
      perImage.set(rec.image, (perImage.get(rec.image) ?? 0) + 1);
    }
    expect([...perImage.keys()].sort()).toEqual([...SIG].sort());
    expect([...perImage.values()].every((n) => n === 1)).toBe(true);
  });

  it('requests still in flight when the 2 s grace ends are abandoned: 130, counted as stopped in flight', async () => {
    const server = await serve(() => undefined); // never answers
    let child: ChildProcess | undefined;
    const running = runCli(
      ['--base-url', server.baseUrl, '--timeout', '30', '-c', '2', '-o', 'grace.jsonl', 'grace'],
      { cwd: root, onSpawn: (c) => (child = c) },
    );
    await until(() => Promise.resolve(server.requests.length >= 2), 15_000, 'two requests');
    const killedAt = Date.now();
    child!.kill('SIGINT');
    const r = await running;
    const took = Date.now() - killedAt;
    expect(r.code).toBe(130);
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(6000);
    expect(server.requests).toHaveLength(2);
    expect(summaryOf(r.stderr)).toEqual({
      succeeded: 0,
      failed: 0,
      skipped: 0,
      notAttempted: 5,
      total: 5,
    });
    expect(r.stderr).toMatch(/^not attempted \(5\): .*2 stopped in flight$/m);
    // An abandoned request is not a failure: nothing in the file for --resume to skip.
    expect(await readFile(path.join(root, 'grace.jsonl'), 'utf8')).toBe('');
  });

  it('a second SIGINT quits at once, with exit code 130', async () => {
    const server = await serve(() => undefined); // never answers
    let child: ChildProcess | undefined;
    const running = runCli(
      ['--base-url', server.baseUrl, '--timeout', '30', '-c', '2', '--json', 'grace'],
      { cwd: root, onSpawn: (c) => (child = c) },
    );
    await until(() => Promise.resolve(server.requests.length >= 2), 15_000, 'two requests');
    child!.kill('SIGINT');
    await sleep(200);
    const secondAt = Date.now();
    child!.kill('SIGINT');
    const r = await running;
    expect(r.code).toBe(130);
    expect(Date.now() - secondAt).toBeLessThan(1500);
    expect(r.stdout).toBe('');
  });

  it('--resume after a crash: a torn last line and failed images are done again, on fresh lines', async () => {
    const out = path.join(root, 'torn.jsonl');
    const line = (image: string, extra: object = {}): string =>
      JSON.stringify({ image, index: 0, text: hashByName.get(image), ...extra });
    await writeFile(
      out,
      [
        line(TORN[0]!),
        line(`./${TORN[1]!}`), // the same image however it was written
        line(TORN[2]!, { text: null, error: { code: 7, message: 'boom' } }),
        '',
      ].join('\n') + line(TORN[3]!).slice(0, 30),
    );
    const server = await serve((req, res) => answer(req, res, { text: requestImageHash(req) }));
    const r = await runCli(['--base-url', server.baseUrl, '-o', 'torn.jsonl', '--resume', 'torn'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    expect(server.requests.map(imageOf).sort()).toEqual([TORN[2]!, TORN[3]!, TORN[4]!].sort());
    const lines = (await readFile(out, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(7);
    expect(lines[3]).toBe(line(TORN[3]!).slice(0, 30)); // left as it was, on its own line
    const added = lines.slice(4).map((l) => JSON.parse(l) as JsonRecord);
    expect(added.map((x) => x.image).sort()).toEqual([TORN[2]!, TORN[3]!, TORN[4]!].sort());
    for (const rec of added) expect(rec.text).toBe(hashByName.get(rec.image));
    expect(summaryOf(r.stderr)).toMatchObject({ succeeded: 3, skipped: 2, total: 5 });
  });
});

describe('--sidecar', () => {
  const SIDE = numbered('side', 12);
  const SIDEJ = numbered('sidej', 4);
  const SKIP = numbered('skip', 6);
  const BAD = numbered('bad', 2);

  beforeAll(async () => {
    await writeImages([...SIDE, ...SIDEJ, ...SKIP, ...BAD]);
  });

  it('writes NAME.txt next to each image, whole from the moment it appears; no temporary file left', async () => {
    const dir = path.join(root, 'side');
    const expected = new Map(SIDE.map((n) => [`${path.basename(n)}.txt`, `This is ${n}.\n`]));
    const seen: { name: string; content: string }[] = [];
    const state = { running: true };
    const watcher = (async () => {
      while (state.running) {
        for (const name of await readdir(dir)) {
          if (!name.endsWith('.txt')) continue;
          try {
            seen.push({ name, content: await readFile(path.join(dir, name), 'utf8') });
          } catch (error) {
            if ((error as { code?: string }).code !== 'ENOENT') throw error;
          }
        }
        await sleep(1);
      }
    })();
    const server = await serve(namingHandler(() => 120));
    let r;
    try {
      r = await runCli(['--base-url', server.baseUrl, '--sidecar', '-c', '3', 'side'], {
        cwd: root,
      });
    } finally {
      state.running = false;
      await watcher;
    }
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(SIDE));
    // Sidecars were seen while the batch ran, and never partial or empty.
    expect(new Set(seen.map((s) => s.name)).size).toBeGreaterThan(3);
    for (const s of seen) expect(s.content, s.name).toBe(expected.get(s.name));
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([...SIDE.map((n) => path.basename(n)), ...expected.keys()].sort());
    for (const [name, content] of expected)
      expect(await readFile(path.join(dir, name), 'utf8')).toBe(content);
  });

  it('with --json writes NAME.json holding the JSON record', async () => {
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--sidecar', '--json', 'sidej'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout)).toHaveLength(4);
    const files = await readdir(path.join(root, 'sidej'));
    expect(files.filter((f) => f.endsWith('.txt'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.json')).sort()).toEqual(
      SIDEJ.map((n) => `${path.basename(n)}.json`).sort(),
    );
    expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
    for (const [i, name] of SIDEJ.entries()) {
      const text = await readFile(path.join(root, `${name}.json`), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect(text.trimEnd().split('\n')).toHaveLength(1);
      expect(JSON.parse(text)).toMatchObject({ image: name, index: i, text: `This is ${name}.` });
    }
  });

  it('--skip-existing skips images that have a sidecar: fewer requests, the summary says skipped', async () => {
    // A .txt for images 0, 2, 4; a .json (the other kind) for image 1.
    for (const i of [0, 2, 4]) await writeFile(path.join(root, `${SKIP[i]!}.txt`), 'old answer\n');
    await writeFile(path.join(root, `${SKIP[1]!}.json`), '{"old":true}\n');
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--sidecar', '--skip-existing', 'skip'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    const described = [SKIP[1]!, SKIP[3]!, SKIP[5]!];
    expect(r.stdout).toBe(textOutput(described));
    expect(server.requests.map(imageOf).sort()).toEqual(described.sort());
    expect(summaryOf(r.stderr)).toEqual({
      succeeded: 3,
      failed: 0,
      skipped: 3,
      notAttempted: 0,
      total: 6,
    });
    for (const i of [0, 2, 4])
      expect(await readFile(path.join(root, `${SKIP[i]!}.txt`), 'utf8')).toBe('old answer\n');
    for (const name of described)
      expect(await readFile(path.join(root, `${name}.txt`), 'utf8')).toBe(`This is ${name}.\n`);
  });
  it('a sidecar that cannot be written fails its image, counted once (not as succeeded too)', async () => {
    // NAME.txt is a directory: the rename onto it fails.
    await mkdir(path.join(root, `${BAD[0]!}.txt`));
    const server = await serve(namingHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--sidecar', 'bad'], { cwd: root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^describe-image: error: .*${BAD[0]!}`, 'm'));
    expect(await readFile(path.join(root, `${BAD[1]!}.txt`), 'utf8')).toBe(`This is ${BAD[1]!}.\n`);
    expect((await readdir(path.join(root, 'bad'))).filter((f) => f.startsWith('.'))).toEqual([]);
    const summary = summaryOf(r.stderr);
    expect(summary.succeeded + summary.failed + summary.skipped + summary.notAttempted).toBe(
      summary.total,
    );
    expect(summary).toEqual({ succeeded: 1, failed: 1, skipped: 0, notAttempted: 0, total: 2 });
  });
});

describe('a failure that stops the batch', () => {
  const AUTH = numbered('auth', 10);
  const MANY = numbered('many', 30);

  beforeAll(async () => {
    await writeImages([...AUTH, ...MANY]);
  });

  /** Answers the first `ok` requests, then `fail` for everything. */
  function failAfter(ok: number, fail: (res: http.ServerResponse) => void): Handler {
    let count = 0;
    return (req, res) => {
      if (++count <= ok) {
        answer(req, res, { text: `This is ${imageOf(req)}.` });
        return;
      }
      fail(res);
    };
  }

  const unauthorized = (res: http.ServerResponse): void => {
    res.writeHead(401, { 'content-type': 'application/json', 'x-request-id': 'req_401' });
    res.end(
      JSON.stringify({
        error: {
          message: 'Incorrect API key provided',
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      }),
    );
  };

  const outOfQuota = (res: http.ServerResponse): void => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(
      JSON.stringify({
        error: {
          message: 'You exceeded your current quota, please check your plan and billing details.',
          type: 'insufficient_quota',
          code: 'insufficient_quota',
        },
      }),
    );
  };

  function expectStopped(
    r: { code: number | null; stdout: string; stderr: string },
    code: number,
    reason: string,
    requests: number,
  ): void {
    expect(r.code).toBe(code);
    expect(requests).toBe(4);
    expect(r.stdout).toBe(textOutput(AUTH.slice(0, 3)));
    expect(summaryOf(r.stderr)).toEqual({
      succeeded: 3,
      failed: 1,
      skipped: 0,
      notAttempted: 6,
      total: 10,
    });
    expect(r.stderr).toMatch(new RegExp(`^stopped: ${reason}$`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^describe-image: error: ${AUTH[3]!}: `, 'm'));
    expect(r.stderr).toContain(`not attempted (6): ${AUTH.slice(4).join(', ')}`);
  }

  it('a 401 halfway through stops it: exit 4, the rest not attempted and named', async () => {
    const server = await serve(failAfter(3, unauthorized));
    const r = await runCli(['--base-url', server.baseUrl, '-c', '1', 'auth'], { cwd: root });
    expectStopped(r, 4, 'authentication failed', server.requests.length);
    expect(r.stderr).toMatch(/HTTP 401/);
  });

  it('an exhausted quota (429 insufficient_quota) stops it the same way: exit 5, not retried', async () => {
    const server = await serve(failAfter(3, outOfQuota));
    const r = await runCli(['--base-url', server.baseUrl, '-c', '1', 'auth'], { cwd: root });
    expectStopped(r, 5, 'out of quota', server.requests.length);
    expect(r.stderr).toMatch(/quota/);
  });

  it('names the first 20 images not attempted, and counts the rest', async () => {
    const server = await serve(failAfter(0, unauthorized));
    const r = await runCli(['--base-url', server.baseUrl, '-c', '1', '-q', 'many'], {
      cwd: root,
    });
    expect(r.code).toBe(4);
    expect(server.requests).toHaveLength(1);
    // Under -q the summary's important lines remain: why it stopped, and what was left.
    expect(r.stderr).toContain('stopped: authentication failed\n');
    expect(r.stderr).toContain(`not attempted (29): ${MANY.slice(1, 21).join(', ')}, and 9 more\n`);
  });

  it('with -c 4 and --json: only requests already in flight finish; nothing new is sent', async () => {
    const server = await serve(failAfter(5, unauthorized));
    const r = await runCli(['--base-url', server.baseUrl, '--json', '-c', '4', 'auth'], {
      cwd: root,
    });
    expect(r.code).toBe(4);
    const records = jsonLines(r.stdout);
    const ok = records.filter((x) => x.error === undefined);
    const failed = records.filter((x) => x.error !== undefined);
    expect(ok).toHaveLength(5);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const rec of failed) {
      expect(rec.error).toMatchObject({ code: 4, status: 401 });
      expect(rec.error?.message).toContain(rec.image);
    }
    expect(server.requests.length).toBe(records.length);
    expect(server.requests.length).toBeLessThanOrEqual(5 + 4);
    const summary = summaryOf(r.stderr);
    expect(summary).toMatchObject({ succeeded: 5, failed: failed.length, total: 10 });
    expect(summary.notAttempted).toBe(10 - records.length);
    expect(summary.notAttempted).toBeGreaterThan(0);
    const listed = /^not attempted \(\d+\): (.*)$/m.exec(r.stderr)?.[1]?.split(', ') ?? [];
    expect(listed.sort()).toEqual(AUTH.filter((n) => !records.some((x) => x.image === n)).sort());
  });
});

describe('pacing', () => {
  const RPM = numbered('rpm', 4);
  const RL = numbered('rl', 16);

  beforeAll(async () => {
    await writeImages([...RPM, ...RL]);
  });

  it('--rpm 120 spaces requests at least half a second apart', async () => {
    const arrivals: number[] = [];
    const server = await serve((req, res) => {
      arrivals.push(Date.now());
      answer(req, res, { text: `This is ${imageOf(req)}.` });
    });
    const r = await runCli(['--base-url', server.baseUrl, '--rpm', '120', '-c', '4', 'rpm'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(textOutput(RPM));
    expect(arrivals).toHaveLength(4);
    for (let i = 1; i < arrivals.length; i++)
      expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThanOrEqual(450);
  });

  it('a 429 with retry-after: 1 pauses the whole pool for that second, and the batch succeeds', async () => {
    const arrivals: { at: number; name: string }[] = [];
    let limitedAt: number | undefined;
    const server = await serve(async (req, res) => {
      const name = imageOf(req);
      arrivals.push({ at: Date.now(), name });
      if (limitedAt === undefined) {
        limitedAt = Date.now();
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end(
          JSON.stringify({
            error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
          }),
        );
        return;
      }
      await sleep(200);
      answer(req, res, { text: `This is ${name}.` });
    });
    const r = await runCli(['--base-url', server.baseUrl, '--json', '-c', '8', 'rl'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    const records = jsonLines(r.stdout);
    expect(records.map((x) => x.image).sort()).toEqual([...RL].sort());
    for (const rec of records) expect(rec.text).toBe(`This is ${rec.image}.`);
    // 16 images and the one retry.
    expect(server.requests).toHaveLength(17);
    const t = limitedAt!;
    // Nothing arrives while the pool waits out the Retry-After (requests already on their way
    // when the 429 was sent are allowed a moment to land).
    const during = arrivals.filter((a) => a.at > t + 250 && a.at < t + 950);
    expect(during).toEqual([]);
    const limited = arrivals[0]!.name;
    const retry = arrivals.slice(1).find((a) => a.name === limited);
    expect(retry!.at - t).toBeGreaterThanOrEqual(950);
    // Work did continue after the pause, at about half the concurrency (8 → 4, plus one for
    // the run of successes of the requests that were already in flight during the pause).
    expect(arrivals.filter((a) => a.at >= t + 950).length).toBeGreaterThanOrEqual(8);
    const resumedAt = arrivals.find((a) => a.at >= t + 950)!.at;
    const firstRound = arrivals.filter((a) => a.at >= resumedAt && a.at < resumedAt + 150);
    expect(firstRound.length).toBeGreaterThanOrEqual(1);
    expect(firstRound.length).toBeLessThanOrEqual(5);
  });
});
