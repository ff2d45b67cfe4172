/**
 * Shared by the answer cache's tests: keys and entries that can be told apart and checked,
 * a temporary directory per test, and the store opened with its warnings collected.
 */
import { rm } from 'node:fs/promises';
import { afterEach } from 'vitest';
import { openAnswerCache, type AnswerCache, type OpenOptions } from '../../src/cache/store.js';
import { tempDir } from '../helpers/images.js';

export { entryOf, keyOf } from './answers.js';

const dirs: string[] = [];
const open: AnswerCache[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temporary directory, removed after the test. */
export async function scratch(): Promise<string> {
  const dir = await tempDir('describe-image-cache-');
  dirs.push(dir);
  return dir;
}

/** The store in `dir`, closed after the test, with the warnings it gave. */
export async function openCache(
  dir: string,
  options: Partial<OpenOptions> = {},
): Promise<{ cache: AnswerCache; warnings: string[] }> {
  const warnings: string[] = [];
  const cache = await openAnswerCache(dir, { warn: (m) => warnings.push(m), ...options });
  open.push(cache);
  return { cache, warnings };
}

/** Whether this process can read and write whatever it likes (root). */
export const isRoot = process.getuid?.() === 0;
