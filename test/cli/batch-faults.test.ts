/**
 * Batch mode under faults, end to end: the built CLI against a real loopback server that
 * misbehaves (rate limits, 5xx, reset connections, truncated streams, stalls), permanently or
 * on a seeded fraction of requests. Every answer carries the sha256 of the image bytes the
 * server received, so each result can be checked to belong to its own image.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, type JsonRecord } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import {
  answer,
  completionBody,
  requestImageHash,
  serverPool,
  sha256,
  sseBody,
} from '../helpers/server.js';
import type { RecordedRequest } from '../helpers/server.js';

const serve = serverPool();

/** mulberry32: a small seeded PRNG, so the faults are the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ImageSet {
  dir: string;
  /** Relative names as the CLI reports them (`imgs/img-007.png`), in input order. */
  names: string[];
  hashByName: Map<string, string>;
  nameByHash: Map<string, string>;
}

/** `count` distinct 16×16 PNGs (they need no preparation, so they are sent byte for byte). */
async function makeImageSet(root: string, sub: string, count: number): Promise<ImageSet> {
  const dir = path.join(root, sub);
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  const hashByName = new Map<string, string>();
  const nameByHash = new Map<string, string>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const hex = (n: number): string => n.toString(16).padStart(2, '0');
      const color = `#${hex(i % 256)}${hex((i * 37 + 11) % 256)}${hex(255 - (i % 256))}`;
      const bytes = await makeImage('png', { width: 16, height: 16, color });
      const base = `img-${String(i).padStart(3, '0')}.png`;
      await writeFile(path.join(dir, base), bytes);
      const name = `${sub}/${base}`;
      names[i] = name;
      hashByName.set(name, sha256(bytes));
      nameByHash.set(sha256(bytes), name);
    }),
  );
  // Distinct images, or the hash check below would prove nothing.
  expect(nameByHash.size).toBe(count);
  return { dir, names, hashByName, nameByHash };
}

const RATE_LIMIT_BODY = JSON.stringify({
  error: {
    message: 'Rate limit reached for requests',
    type: 'requests',
    code: 'rate_limit_exceeded',
  },
});

type Fault =
  '429-retry-after' | '429-bare' | '500' | '503' | 'reset-before' | 'reset-mid-body' | 'stall';

const FAULTS: readonly Fault[] = [
  '429-retry-after',
  '429-bare',
  '500',
  '503',
  'reset-before',
  'reset-mid-body',
  'stall',
];

interface FaultLog {
  /** Every request: which image, which attempt for that image, and what it got. */
  events: { hash: string; attempt: number; fault: Fault | 'ok' }[];
  counts: Map<Fault | 'ok', number>;
}

/**
 * A server that fails `rate` of requests with one of FAULTS. Whether a request fails, and
 * how, is drawn from a PRNG seeded with (seed, image, attempt number for that image), so a
 * run is reproducible whatever order the requests arrive in. Successful answers are the
 * sha256 of the image bytes received.
 */
function faultyHandler(seed: number, rate: number, log: FaultLog) {
  const attempts = new Map<string, number>();
  return (req: RecordedRequest, res: http.ServerResponse): void => {
    const hash = requestImageHash(req);
    const attempt = (attempts.get(hash) ?? 0) + 1;
    attempts.set(hash, attempt);
    const random = mulberry32(seed ^ Number.parseInt(hash.slice(0, 8), 16) ^ (attempt * 7919));
    const fault: Fault | 'ok' =
      random() < rate ? FAULTS[Math.floor(random() * FAULTS.length)]! : 'ok';
    log.events.push({ hash, attempt, fault });
    log.counts.set(fault, (log.counts.get(fault) ?? 0) + 1);
    switch (fault) {
      case 'ok':
        answer(req, res, { text: hash, id: `chatcmpl-${hash.slice(0, 12)}` });
        return;
      case '429-retry-after':
        // Half of them in seconds, half in milliseconds.
        res.writeHead(429, {
          'content-type': 'application/json',
          ...(random() < 0.5 ? { 'retry-after': '1' } : { 'retry-after-ms': '200' }),
        });
        res.end(RATE_LIMIT_BODY);
        return;
      case '429-bare':
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end(RATE_LIMIT_BODY);
        return;
      case '500':
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'internal error', type: 'server_error' } }));
        return;
      case '503':
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('Service Unavailable');
        return;
      case 'reset-before':
        res.socket?.destroy();
        return;
      case 'reset-mid-body': {
        // A 200 whose body stops halfway: a few SSE events, or half of the JSON.
        const stream = Boolean(req.json?.stream);
        const body = stream
          ? sseBody({ text: `${hash} and some more words to make a few chunks` })
          : JSON.stringify(completionBody({ text: hash }));
        res.writeHead(200, {
          'content-type': stream ? 'text/event-stream' : 'application/json',
          ...(stream ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
        });
        const cut = stream
          ? body.split('\n\n').slice(0, 3).join('\n\n') + '\n\n'
          : body.slice(0, body.length >> 1);
        res.write(cut);
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      case 'stall':
        // Never answer: the client's --timeout has to notice.
        return;
    }
  };
}

function newLog(): FaultLog {
  return { events: [], counts: new Map() };
}

/** Every image exactly once, each answer the hash of its own bytes. */
function expectAllDescribedOnce(records: JsonRecord[], set: ImageSet): void {
  expect(records.filter((r) => r.error !== undefined)).toEqual([]);
  expect(records).toHaveLength(set.names.length);
  const seen = new Map<string, number>();
  for (const rec of records) seen.set(rec.image, (seen.get(rec.image) ?? 0) + 1);
  expect([...seen.keys()].sort()).toEqual([...set.names].sort());
  expect([...seen.values()].every((n) => n === 1)).toBe(true);
  for (const rec of records) {
    expect(rec.text, rec.image).toBe(set.hashByName.get(rec.image));
    expect(rec.index, rec.image).toBe(set.names.indexOf(rec.image));
  }
}

let root: string;

beforeAll(async () => {
  root = await tempDir('describe-image-faults-');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('transient faults on a seeded 20 % of requests', () => {
  let set: ImageSet;

  beforeAll(async () => {
    set = await makeImageSet(root, 'imgs', 200);
  });

  it('--json -c 16: all 200 images described exactly once, each with its own answer', async () => {
    const log = newLog();
    const server = await serve(faultyHandler(20240607, 0.2, log));
    const r = await runCli(
      ['--base-url', server.baseUrl, '--json', '-c', '16', '--timeout', '1', 'imgs'],
      { cwd: root, timeoutMs: 90_000 },
    );

    expect(r.stderr).not.toContain('describe-image: error:');
    expect(r.code).toBe(0);
    const records = jsonLines(r.stdout);
    expectAllDescribedOnce(records, set);

    // The faults really happened, of every kind, on about a fifth of the requests.
    const faults = log.events.filter((e) => e.fault !== 'ok').length;
    expect(faults / log.events.length).toBeGreaterThan(0.1);
    expect(faults / log.events.length).toBeLessThan(0.3);
    for (const fault of FAULTS) expect(log.counts.get(fault) ?? 0, fault).toBeGreaterThan(0);
    // One success per image reached the server, and every request carried a known image.
    expect(log.counts.get('ok')).toBe(200);
    for (const e of log.events) expect(set.nameByHash.has(e.hash)).toBe(true);
    expect(r.stderr).toMatch(/summary: 200 succeeded · 0 failed · 0 skipped · 0 not attempted/);
  }, 120_000);

  it('text mode, streamed (resets cut SSE streams), 100 images: each answer once, in input order', async () => {
    const log = newLog();
    const server = await serve(faultyHandler(7, 0.2, log));
    const names = set.names.slice(0, 100);
    const r = await runCli(
      ['--base-url', server.baseUrl, '-c', '16', '--timeout', '1', 'imgs/img-0*.png'],
      { cwd: root, timeoutMs: 90_000 },
    );

    expect(r.stderr).not.toContain('describe-image: error:');
    expect(r.code).toBe(0);
    const expected = names.map((n) => `==> ${n} <==\n${set.hashByName.get(n)!}\n`).join('\n');
    expect(r.stdout).toBe(expected);
    expect(server.requests.every((q) => q.json.stream === true)).toBe(true);
    expect(log.counts.get('reset-mid-body') ?? 0).toBeGreaterThan(0);
    expect(log.counts.get('stall') ?? 0).toBeGreaterThan(0);
    expect(log.counts.get('ok')).toBe(100);
    expect(r.stderr).toMatch(/summary: 100 succeeded · 0 failed · 0 skipped · 0 not attempted/);
  }, 120_000);
});

describe('permanent faults', () => {
  let set: ImageSet;

  beforeAll(async () => {
    set = await makeImageSet(root, 'perm', 5);
  });

  /** Each image named in the summary's failure list with the reason; JSON lines carry code 7. */
  function expectEveryImageFailed(
    r: { code: number | null; stdout: string; stderr: string },
    reason: RegExp,
  ): void {
    expect(r.code).toBe(7);
    const records = jsonLines(r.stdout);
    expect(records.map((x) => x.image).sort()).toEqual([...set.names].sort());
    for (const rec of records) {
      expect(rec.text).toBeNull();
      expect(rec.error?.code).toBe(7);
      expect(rec.error?.message).toContain(rec.image);
      expect(rec.error?.message).toMatch(reason);
    }
    expect(r.stderr).toContain('summary: 0 succeeded · 5 failed · 0 skipped · 0 not attempted');
    const lines = r.stderr.split('\n');
    const listAt = lines.findIndex((l) => l === 'failed (5):');
    expect(listAt).toBeGreaterThan(-1);
    const listed = lines.slice(listAt + 1, listAt + 6);
    for (const name of set.names) {
      const line = listed.find((l) => l.startsWith(`  ${name}: `));
      expect(line, `summary line for ${name}`).toBeDefined();
      expect(line).toMatch(reason);
      // And the error line as it happened.
      expect(lines.some((l) => l.startsWith(`describe-image: error: ${name}: `))).toBe(true);
    }
  }

  it('every request answers 500: each image fails with its reason, exit 7', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'the model crashed', type: 'server_error' } }));
    });
    const r = await runCli(
      ['--base-url', server.baseUrl, '--json', '--retries', '0', '-c', '2', 'perm'],
      { cwd: root },
    );
    expectEveryImageFailed(r, /HTTP 500.*the model crashed/);
    for (const rec of jsonLines(r.stdout)) expect(rec.error?.status).toBe(500);
    // --retries 0: one request per image, no second round.
    expect(server.requests).toHaveLength(5);
  });

  it('every request stalls past --timeout: each image fails with a timeout, exit 7', async () => {
    const server = await serve(() => undefined);
    const r = await runCli(
      [
        '--base-url',
        server.baseUrl,
        '--json',
        '--retries',
        '0',
        '--timeout',
        '0.3',
        '-c',
        '5',
        'perm',
      ],
      { cwd: root },
    );
    expectEveryImageFailed(r, /no answer .* within 0\.3 s/);
    expect(server.requests).toHaveLength(5);
  });

  it('every connection is reset: each image fails (after its retries), exit 7', async () => {
    const server = await serve((_req, res) => {
      res.socket?.destroy();
    });
    const r = await runCli(
      ['--base-url', server.baseUrl, '--json', '--retries', '1', '-c', '5', 'perm'],
      { cwd: root },
    );
    expectEveryImageFailed(r, /closed unexpectedly|connection|reset/i);
    // One retry each, and no second round when nothing succeeds at all.
    expect(server.requests).toHaveLength(10);
  });
});

describe('retries in a batch', () => {
  let set: ImageSet;

  beforeAll(async () => {
    set = await makeImageSet(root, 'retry', 4);
  });

  it('an image that runs out of retries while others succeed gets a second round, and succeeds', async () => {
    const unlucky = set.hashByName.get(set.names[1]!)!;
    const times: number[] = [];
    const server = await serve((req, res) => {
      const hash = requestImageHash(req);
      if (hash === unlucky) {
        times.push(Date.now());
        // Two failures use up --retries 1; the third request is the second round.
        if (times.length <= 2) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('Service Unavailable');
          return;
        }
      }
      answer(req, res, { text: hash });
    });
    const r = await runCli(['--base-url', server.baseUrl, '--json', '--retries', '1', 'retry'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    expectAllDescribedOnce(jsonLines(r.stdout), set);
    expect(times).toHaveLength(3);
    // "a little later": after a pause longer than the backoff.
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1000);
  }, 20_000);

  it('--retries bounds rate limits in a batch too: three 429s, then success, with --retries 3', async () => {
    const counts = new Map<string, number>();
    const server = await serve((req, res) => {
      const hash = requestImageHash(req);
      const n = (counts.get(hash) ?? 0) + 1;
      counts.set(hash, n);
      if (n <= 3) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '50' });
        res.end(RATE_LIMIT_BODY);
        return;
      }
      answer(req, res, { text: hash });
    });
    const r = await runCli(['--base-url', server.baseUrl, '--json', '--retries', '3', 'retry'], {
      cwd: root,
    });
    expect(r.stderr).not.toContain('describe-image: error:');
    expect(r.code).toBe(0);
    expectAllDescribedOnce(jsonLines(r.stdout), set);
    expect([...counts.values()]).toEqual([4, 4, 4, 4]);
  });

  it("--retries 0 sends each image once, rate limits included: the 429s are the images' failures", async () => {
    const counts = new Map<string, number>();
    const server = await serve((req, res) => {
      const hash = requestImageHash(req);
      counts.set(hash, (counts.get(hash) ?? 0) + 1);
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '50' });
      res.end(RATE_LIMIT_BODY);
    });
    const r = await runCli(['--base-url', server.baseUrl, '--json', '--retries', '0', 'retry'], {
      cwd: root,
    });
    expect(r.code).toBe(5);
    expect([...counts.values()]).toEqual([1, 1, 1, 1]);
    expect(jsonLines(r.stdout).every((x) => x.error?.code === 5)).toBe(true);
  });
});
