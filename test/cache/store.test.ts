/**
 * The answer cache on disk (src/cache/store.ts), in this process: a round trip, pruning and
 * clearing, files readable by the user alone, and the ways it can fail: a damaged data file
 * (one warning, moved aside, started afresh, never a wrong answer) and a directory that
 * cannot be used (one warning, every lookup a miss, nothing thrown). Two processes at once,
 * a full disk and damage inside the data are in processes.test.ts.
 */
import { chmod, mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATA_FILE } from '../../src/cache/store.js';
import { entryOf, isRoot, keyOf, openCache, scratch } from './fixtures.js';

const DAY = 24 * 60 * 60 * 1000;

describe('the answer store', () => {
  it('gives back what was put, before and after it is committed and reopened', async () => {
    const dir = path.join(await scratch(), 'cache');
    const first = await openCache(dir);
    expect(first.cache.enabled).toBe(true);
    expect(first.cache.get(keyOf(1))).toBeUndefined();
    first.cache.put(keyOf(1), entryOf(1));
    first.cache.put(keyOf(2), entryOf(2));
    expect(first.cache.get(keyOf(1))).toEqual(entryOf(1));
    expect(first.cache.stats().entries).toBe(2);
    await first.cache.close();
    expect(first.cache.get(keyOf(1))).toBeUndefined();

    const second = await openCache(dir);
    expect(second.cache.get(keyOf(1))).toEqual(entryOf(1));
    expect(second.cache.get(keyOf(2))).toEqual(entryOf(2));
    expect(second.cache.get(keyOf(3))).toBeUndefined();
    const stats = second.cache.stats();
    expect(stats.entries).toBe(2);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(first.warnings).toEqual([]);
    expect(second.warnings).toEqual([]);
  });

  it('replaces an entry put again under the same key', async () => {
    const { cache } = await openCache(await scratch());
    cache.put(keyOf(1), entryOf(1));
    await new Promise((resolve) => setTimeout(resolve, 120));
    cache.put(keyOf(1), entryOf(7));
    expect(cache.get(keyOf(1))).toEqual(entryOf(7));
    expect(cache.stats().entries).toBe(1);
  });

  it('commits many answers without waiting for close', async () => {
    const dir = await scratch();
    const { cache } = await openCache(dir);
    for (let i = 0; i < 1500; i++) cache.put(keyOf(i), entryOf(i));
    const reader = await openCache(dir);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Committed by count (FLUSH_COUNT) and by the timer, and seen by another connection.
    for (const i of [0, 700, 1499]) expect(reader.cache.get(keyOf(i))).toEqual(entryOf(i));
  });

  it('creates its directory 0700 and its files 0600, and holds no image bytes or keys', async () => {
    const dir = path.join(await scratch(), 'a', 'cache');
    const { cache } = await openCache(dir);
    cache.put(keyOf(1), entryOf(1));
    await cache.close();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const names = await readdir(dir);
    expect(names.sort()).toEqual([DATA_FILE, `${DATA_FILE}-lock`]);
    for (const name of names) expect((await stat(path.join(dir, name))).mode & 0o777).toBe(0o600);
    const data = await readFile(path.join(dir, DATA_FILE));
    expect(data.includes('Answer number 1.')).toBe(true);
    expect(data.includes(keyOf(1).slice(0, 20))).toBe(true);
  });

  it('tightens the mode of files it finds readable by others', async () => {
    const dir = await scratch();
    await writeFile(path.join(dir, DATA_FILE), '');
    await chmod(path.join(dir, DATA_FILE), 0o644);
    const { cache, warnings } = await openCache(dir);
    expect(cache.enabled).toBe(true);
    expect((await stat(path.join(dir, DATA_FILE))).mode & 0o777).toBe(0o600);
    expect(warnings).toEqual([]);
  });

  it('removes entries older than an age, and all of them', async () => {
    const dir = await scratch();
    const now = Date.UTC(2025, 5, 1);
    const { cache } = await openCache(dir);
    for (let i = 0; i < 10; i++) cache.put(keyOf(i), entryOf(i, now - i * DAY));
    expect(cache.prune(5 * DAY, now)).toBe(4); // asked 6 to 9 days ago
    expect(cache.stats().entries).toBe(6);
    expect(cache.get(keyOf(5))).toEqual(entryOf(5, now - 5 * DAY));
    expect(cache.get(keyOf(6))).toBeUndefined();
    await writeFile(path.join(dir, `${DATA_FILE}.damaged-2025-01-01T00-00-00-000Z`), 'old');
    expect(cache.clear()).toBe(6);
    expect(cache.stats().entries).toBe(0);
    expect(cache.get(keyOf(0))).toBeUndefined();
    expect((await readdir(dir)).sort()).toEqual([DATA_FILE, `${DATA_FILE}-lock`]);
  });

  it('opens nothing and creates nothing when told not to create a missing store', async () => {
    const dir = path.join(await scratch(), 'none');
    const { cache, warnings } = await openCache(dir, { create: false });
    expect(cache.enabled).toBe(false);
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0 });
    expect(warnings).toEqual([]);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });
});

describe('a damaged store', () => {
  /** A store holding answers 0 to 49, closed. */
  async function filled(): Promise<string> {
    const dir = await scratch();
    const { cache } = await openCache(dir);
    for (let i = 0; i < 50; i++) cache.put(keyOf(i), entryOf(i));
    await cache.close();
    return dir;
  }

  it.each([
    ['garbage over the whole file', (file: string, size: number) => writeFile(file, garbage(size))],
    ['a few bytes of text', (file: string) => writeFile(file, 'hello')],
    ['the file cut short', (file: string, size: number) => truncate(file, Math.floor(size / 3))],
  ])('with %s: one warning, moved aside, started afresh', async (_what, damage) => {
    const dir = await filled();
    const file = path.join(dir, DATA_FILE);
    await damage(file, (await stat(file)).size);
    const damaged = await readFile(file);
    const now = Date.UTC(2025, 2, 4, 5, 6, 7);

    const { cache, warnings } = await openCache(dir, { now: () => now });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`the answer cache ${file} was damaged (`);
    expect(warnings[0]).toContain('moved it to data.mdb.damaged-2025-03-04T05-06-07-000Z');
    const aside = await readFile(`${file}.damaged-2025-03-04T05-06-07-000Z`);
    expect(aside.equals(damaged)).toBe(true);
    expect(cache.enabled).toBe(true);
    for (let i = 0; i < 50; i++) expect(cache.get(keyOf(i))).toBeUndefined();

    cache.put(keyOf(1), entryOf(1));
    await cache.close();
    const again = await openCache(dir);
    expect(again.cache.get(keyOf(1))).toEqual(entryOf(1));
    expect(again.warnings).toEqual([]);
  });

  it('reads an answer whose stored bytes were changed as a miss, never as another answer', async () => {
    const dir = await filled();
    const file = path.join(dir, DATA_FILE);
    const data = await readFile(file);
    const at = data.indexOf('Answer number 7.');
    expect(at).toBeGreaterThan(0);
    data.write('8', at + 'Answer number '.length);
    await writeFile(file, data);

    const { cache, warnings } = await openCache(dir);
    expect(cache.get(keyOf(7))).toBeUndefined();
    expect(cache.get(keyOf(6))).toEqual(entryOf(6));
    expect(warnings).toEqual([]);
  });
});

describe('a directory that cannot be used', () => {
  it.each([
    [
      'a file where the directory should be',
      async (root: string) => {
        await writeFile(path.join(root, 'cache'), 'not a directory');
        return path.join(root, 'cache');
      },
    ],
    [
      'a file on the way to it',
      async (root: string) => {
        await writeFile(path.join(root, 'file'), 'not a directory');
        return path.join(root, 'file', 'cache');
      },
    ],
    [
      'a directory where the data file should be',
      async (root: string) => {
        await mkdir(path.join(root, 'cache', DATA_FILE), { recursive: true });
        return path.join(root, 'cache');
      },
    ],
  ])('(%s) gives one warning and a disabled cache', async (_what, make) => {
    const dir = await make(await scratch());
    const { cache, warnings } = await openCache(dir);
    expectDisabled(cache, warnings, dir);
  });

  it.skipIf(isRoot)(
    '(no permission to read it) gives one warning and a disabled cache',
    async () => {
      const dir = path.join(await scratch(), 'cache');
      const first = await openCache(dir);
      first.cache.put(keyOf(1), entryOf(1));
      await first.cache.close();
      await chmod(dir, 0o000);
      try {
        const { cache, warnings } = await openCache(dir);
        expectDisabled(cache, warnings, dir);
      } finally {
        await chmod(dir, 0o700);
      }
    },
  );

  function expectDisabled(
    cache: Awaited<ReturnType<typeof openCache>>['cache'],
    warnings: string[],
    dir: string,
  ): void {
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^the answer cache ${dir} cannot be used \\(.+\\); answers are neither looked up nor stored this run$`,
      ),
    );
    expect(cache.enabled).toBe(false);
    expect(cache.get(keyOf(1))).toBeUndefined();
    cache.put(keyOf(1), entryOf(1));
    expect(cache.get(keyOf(1))).toBeUndefined();
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0 });
    expect(warnings).toHaveLength(1);
  }
});

/** Bytes that are no LMDB file, the same on every run. */
function garbage(size: number): Buffer {
  return Buffer.alloc(size, 'garbage, not an LMDB page \u00ff\u0001 ');
}
