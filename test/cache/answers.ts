/**
 * Test answers that can be told apart and checked, for the cache's tests and for the child
 * processes they start (store-child.ts): nothing here loads vitest.
 */
import { createHash } from 'node:crypto';
import type { CacheEntry } from '../../src/cache/entry.js';

/** The key of the i-th test answer (a SHA-256 in hex, like a real key). */
export function keyOf(i: number): string {
  return createHash('sha256').update(`answer ${i}`).digest('hex');
}

/** The i-th test answer: about 600 bytes stored, its text naming i. */
export function entryOf(i: number, askedAt = Date.UTC(2025, 0, 1)): CacheEntry {
  return {
    answer: {
      kind: 'text',
      text: `Answer number ${i}. ${'A ginger cat on a blue sofa. '.repeat(18)}`,
    },
    model: 'gpt-4o-2024-08-06',
    id: `chatcmpl-${i}`,
    finishReason: 'stop',
    usage: { prompt_tokens: 1000 + i, completion_tokens: 89, total_tokens: 1089 + i },
    askedAt,
  };
}
