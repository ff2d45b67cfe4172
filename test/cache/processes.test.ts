/**
 * The answer cache across processes (store-child.ts, bundled with esbuild, run with node):
 * two runs filling one cache at once, a full disk, and damage inside the data file. In child
 * processes because a crash there (lmdb's is a signal, not an exception) must fail a test,
 * not end the test runner, and because a file size limit can only be set on a new process.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_FILE } from '../../src/cache/store.js';
import { ROOT } from '../helpers/cli.js';
import { entryOf, keyOf, openCache, scratch } from './fixtures.js';

let bundleDir = '';
let child = '';

beforeAll(async () => {
  // Inside the project, so that the bundle's `import('lmdb')` finds node_modules/lmdb.
  const parent = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(parent, { recursive: true });
  bundleDir = await mkdtemp(path.join(parent, 'describe-image-cache-test-'));
  child = path.join(bundleDir, 'store-child.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'test/cache/store-child.ts')],
    outfile: child,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    external: ['lmdb'],
    logLevel: 'warning',
  });
});

afterAll(async () => {
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

interface Report {
  warnings: string[];
  wrong: number;
  hits?: number;
  misses?: number;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  report: Report | undefined;
}

/** Runs the child script; `limitKb` sets a file size limit first (a full disk). */
function run(args: string[], opts: { limitKb?: number; onReady?: () => void } = {}) {
  const argv = [child, ...args];
  const proc =
    opts.limitKb === undefined
      ? spawn(process.execPath, argv)
      : spawn('sh', [
          '-c',
          `ulimit -f ${opts.limitKb * 2} && exec "$0" "$@"`,
          process.execPath,
          ...argv,
        ]);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    if (text.includes('ready')) opts.onReady?.();
  });
  proc.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const done = new Promise<Run>((resolve) =>
    proc.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let report: Report | undefined;
      try {
        report = JSON.parse(last) as Report;
      } catch {
        report = undefined;
      }
      resolve({ code, signal, stdout, stderr, report });
    }),
  );
  return { proc, done };
}

function expectClean(r: Run): Report {
  expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({
    code: 0,
    signal: null,
    stderr: '',
  });
  expect(r.report).toBeDefined();
  return r.report!;
}

describe('two processes filling one cache at once', () => {
  it('with overlapping answers: no corruption, and every answer found afterwards', async () => {
    const dir = await scratch();
    let ready = 0;
    const go = () => {
      if (++ready === 2) for (const c of children) c.proc.stdin.end('go\n');
    };
    const children = [
      run(['fill', dir, '0', '800'], { onReady: go }),
      run(['fill', dir, '400', '1200'], { onReady: go }),
    ];
    const [a, b] = await Promise.all(children.map((c) => c.done));
    for (const r of [a!, b!]) expect(expectClean(r)).toEqual({ warnings: [], wrong: 0 });

    const { cache, warnings } = await openCache(dir);
    expect(cache.stats().entries).toBe(1200);
    for (let i = 0; i < 1200; i++) expect(cache.get(keyOf(i))).toEqual(entryOf(i));
    expect(warnings).toEqual([]);
    const read = await run(['read', dir, '1200']).done;
    expect(expectClean(read)).toEqual({ warnings: [], hits: 1200, misses: 0, wrong: 0 });
  });
});

describe('a process killed while it writes', () => {
  it('leaves a store that opens without a warning and answers right', async () => {
    const dir = await scratch();
    const writer = run(['endless', dir], {
      onReady: () => setTimeout(() => writer.proc.kill('SIGKILL'), 150),
    });
    const killed = await writer.done;
    expect(killed.signal).toBe('SIGKILL');

    const read = expectClean(await run(['read', dir, '5000']).done);
    expect(read.warnings).toEqual([]);
    expect(read.wrong).toBe(0);
    // At least what was committed before "ready" (its commits run every 512 answers or 50 ms).
    expect(read.hits).toBeGreaterThanOrEqual(512);
    const { cache, warnings } = await openCache(dir);
    cache.put(keyOf(99_999), entryOf(99_999));
    expect(cache.get(keyOf(99_999))).toEqual(entryOf(99_999));
    expect(warnings).toEqual([]);
  });
});

describe('a full disk', () => {
  it('gives one warning, stops storing, and crashes nothing', async () => {
    const dir = await scratch();
    const r = await run(['full', dir, '3000'], { limitKb: 512 }).done;
    // LMDB itself prints "Write error: …" on standard error: only the exit matters there.
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    const report = r.report!;
    expect(report.warnings).toHaveLength(1);
    // ENOSPC or EFBIG says "the disk is full"; LMDB may also report the failed write as EIO.
    expect(report.warnings[0]).toMatch(
      new RegExp(`^the answer cache ${dir} .+\\(.+\\); answers are no longer stored this run$`),
    );
    expect(report.wrong).toBe(0);
    expect(report.misses).toBeGreaterThan(0);
    expect((await stat(path.join(dir, DATA_FILE))).size).toBeLessThanOrEqual(512 * 1024);

    // What was stored before the disk filled up is still there, and right.
    const read = expectClean(await run(['read', dir, '3000']).done);
    expect(read).toMatchObject({ warnings: [], wrong: 0, hits: report.hits });
  });
});

describe('damage inside the data file', () => {
  it.each([
    ['a page of the tree', 0.5],
    ['the last pages', 0.9],
  ])('(%s overwritten) is never a crash or a wrong answer', async (_what, where) => {
    const dir = await scratch();
    const fill = await openCache(dir);
    for (let i = 0; i < 3000; i++) fill.cache.put(keyOf(i), entryOf(i));
    await fill.cache.close();
    const file = path.join(dir, DATA_FILE);
    const data = await readFile(file);
    const page = 4096;
    const at = Math.floor((data.length * where) / page) * page;
    data.fill(0xa5, at, at + 4 * page);
    await writeFile(file, data);

    const r = await run(['read', dir, '3000']).done;
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    const report = r.report!;
    expect(report.wrong).toBe(0);
    // LMDB finds the damage on a lookup (MDB_PAGE_NOTFOUND): the rest of the run is a fresh
    // store, every lookup after that a miss.
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/^the answer cache .+ was damaged \(MDB_/);
    expect(report.misses).toBeGreaterThan(0);
    expect((await readdir(dir)).filter((n) => n.startsWith(`${DATA_FILE}.damaged-`))).toHaveLength(
      1,
    );
  });
});
