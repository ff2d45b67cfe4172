/**
 * What the answer cache stores (src/cache/entry.ts): only whole answers, and a stored entry
 * that is damaged, of another version or of the wrong shape reads as a miss.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  encodeEntry,
  ENTRY_FORMAT,
  entryFor,
  isCacheable,
  type AnswerOutcome,
  type CacheEntry,
} from '../../src/cache/entry.js';
import { cacheDirOf } from '../../src/cache/location.js';
import { InterruptedError, MalformedResponseError, SchemaMismatchError } from '../../src/errors.js';

const usage = { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 };

function outcome(patch: Partial<AnswerOutcome['completion']> = {}): AnswerOutcome {
  return {
    completion: {
      id: 'chatcmpl-1',
      model: 'gpt-4o-2024-08-06',
      text: 'A ginger cat asleep on a blue sofa.',
      refusal: false,
      finishReason: 'stop',
      ...patch,
    },
    usage,
  };
}

const KEY = 'a'.repeat(64);
const ASKED = Date.UTC(2025, 0, 2, 3, 4, 5);

describe('isCacheable', () => {
  it.each<[string, AnswerOutcome | Error]>([
    ['a refusal', outcome({ refusal: true, text: "I can't help with that." })],
    ['an answer cut at the token limit', outcome({ finishReason: 'length' })],
    ['an answer cut by the content filter', outcome({ finishReason: 'content_filter' })],
    ['an answer with no finish_reason', outcome({ finishReason: undefined })],
    ['a tool call', outcome({ finishReason: 'tool_calls' })],
    ['an empty answer', outcome({ text: '' })],
    ['a partial stream', { ...outcome(), complete: false }],
    [
      'a structured answer that failed its schema',
      { ...outcome(), structured: { checked: false } },
    ],
    ['an error', new MalformedResponseError('the stream ended before the answer was complete')],
    ['an interruption', new InterruptedError()],
    ['a schema mismatch', new SchemaMismatchError('cat.png: the answer does not match')],
  ])('does not store %s', (_what, value) => {
    expect(isCacheable(value)).toBe(false);
    expect(entryFor(value, ASKED)).toBeUndefined();
  });

  it('stores a whole text answer', () => {
    expect(isCacheable(outcome())).toBe(true);
    expect(isCacheable({ ...outcome(), complete: true })).toBe(true);
    expect(entryFor(outcome(), ASKED)).toEqual({
      answer: { kind: 'text', text: 'A ginger cat asleep on a blue sofa.' },
      model: 'gpt-4o-2024-08-06',
      id: 'chatcmpl-1',
      finishReason: 'stop',
      usage,
      askedAt: ASKED,
    });
  });

  it('stores the checked value of a structured answer, not its text', () => {
    const value = { alt_text: 'A ginger cat asleep.' };
    const checked: AnswerOutcome = {
      ...outcome({ text: JSON.stringify(value) }),
      structured: { checked: true, value },
    };
    expect(isCacheable(checked)).toBe(true);
    expect(entryFor(checked, ASKED)?.answer).toEqual({ kind: 'structured', value });
    // An empty string is a real answer for a structured one (alt text of a decorative image).
    const empty: AnswerOutcome = {
      ...outcome({ text: '""' }),
      structured: { checked: true, value: '' },
    };
    expect(isCacheable(empty)).toBe(true);
  });
});

describe('encodeEntry and decodeEntry', () => {
  const entry: CacheEntry = entryFor(outcome(), ASKED)!;

  it('round-trip an entry without its key in it', () => {
    const stored = encodeEntry(KEY, entry);
    expect(stored).not.toContain(KEY);
    expect(decodeEntry(KEY, stored)).toEqual(entry);
  });

  it('round-trip a structured value and an answer without usage, model or id', () => {
    const bare: CacheEntry = {
      answer: { kind: 'structured', value: { items: [{ name: 'cat', count: 2 }], note: null } },
      model: undefined,
      id: undefined,
      finishReason: 'stop',
      usage: undefined,
      askedAt: ASKED,
    };
    expect(decodeEntry(KEY, encodeEntry(KEY, bare))).toEqual(bare);
  });

  const stored = encodeEntry(KEY, entry);
  const body = JSON.parse(stored.slice(32)) as Record<string, unknown>;
  /**
   * The entry with its body `patch`ed and a valid checksum (the first 32 hex digits of
   * SHA-256(key, NUL, JSON), as entry.ts makes it): only the shape check can stop it.
   */
  const resealed = (patch: Record<string, unknown>): string => {
    const json = JSON.stringify({ ...body, ...patch });
    const sum = createHash('sha256').update(KEY).update('\u0000').update(json).digest('hex');
    return sum.slice(0, 32) + json;
  };

  it.each<[string, unknown]>([
    ['nothing', undefined],
    ['a number', 42],
    ['an empty string', ''],
    ['garbage', 'x'.repeat(100)],
    ['a flipped byte', stored.slice(0, 40) + (stored[40] === 'a' ? 'b' : 'a') + stored.slice(41)],
    ['a cut entry', stored.slice(0, -5)],
    ['the checksum alone', stored.slice(0, 32)],
  ])('read %s as a miss', (_what, value) => {
    expect(decodeEntry(KEY, value)).toBeUndefined();
  });

  it('reads an entry stored under another key as a miss', () => {
    expect(decodeEntry('b'.repeat(64), stored)).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>]>([
    ['another format version', { v: ENTRY_FORMAT + 1 }],
    ['no format version', { v: undefined }],
    ['a finish_reason other than stop', { finish_reason: 'length' }],
    ['an empty text answer', { answer: { kind: 'text', text: '' } }],
    ['an answer of an unknown kind', { answer: { kind: 'image', data: 'x' } }],
    ['usage without token counts', { usage: { total_tokens: 3 } }],
    ['a model that is not a string', { model: 4 }],
    ['no date', { asked_at: undefined }],
  ])('reads an entry with %s as a miss', (_what, patch) => {
    expect(decodeEntry(KEY, resealed({}))).toEqual(entry);
    expect(decodeEntry(KEY, resealed(patch))).toBeUndefined();
  });
});

describe('cacheDirOf', () => {
  it.each<[string | undefined, Record<string, string>, string, string]>([
    [undefined, {}, '/home/me/.cache/describe-image', 'default'],
    [
      undefined,
      { XDG_CACHE_HOME: '/var/cache/me' },
      '/var/cache/me/describe-image',
      '$XDG_CACHE_HOME',
    ],
    [undefined, { XDG_CACHE_HOME: 'relative/dir' }, '/home/me/.cache/describe-image', 'default'],
    [undefined, { XDG_CACHE_HOME: '  ' }, '/home/me/.cache/describe-image', 'default'],
    ['answers', { XDG_CACHE_HOME: '/var/cache/me' }, '/work/answers', '--cache-dir'],
    ['/tmp/c', {}, '/tmp/c', '--cache-dir'],
    ['', {}, '/home/me/.cache/describe-image', 'default'],
  ])('--cache-dir %s with %j is %s', (flag, env, value, source) => {
    expect(cacheDirOf(flag, env, '/home/me', '/work')).toEqual({ value, source });
  });
});
