/**
 * Pure pieces of write-back (src/metadata/text.ts, content.ts): which answers can be
 * written, what each becomes, how text is cleaned and keywords merged.
 */
import { describe, expect, it } from 'vitest';
import {
  contentOf,
  mergeKeywords,
  UnwritableAnswer,
  writeBackSource,
} from '../../src/metadata/content.js';
import {
  characters,
  cleanKeyword,
  cleanText,
  invalidText,
  utf8Bytes,
} from '../../src/metadata/text.js';

const TRICKY = 'Ein Kätzchen 日本 🐈 "quoted"\nsecond line';

describe('text', () => {
  it('keeps text as it is, newline, tab, quotes and all, and trims the ends', () => {
    expect(cleanText(`  ${TRICKY}\n`)).toBe(TRICKY);
    expect(cleanText('a\tb')).toBe('a\tb');
  });

  it('strips control characters and makes line ends \\n', () => {
    expect(cleanText('a\x1b[31mred\x1b[0m\x07 b\u0085c\u009bd')).toBe('a[31mred[0m bcd');
    expect(cleanText('one\r\ntwo\rthree')).toBe('one\ntwo\nthree');
    expect(cleanText('x\u0000y\uffffz')).toBe('xyz');
  });

  it('finds text that is not valid UTF-8', () => {
    expect(invalidText(TRICKY)).toBeUndefined();
    expect(invalidText('bad \ud800 surrogate')).toMatch(/lone surrogate/);
    expect(invalidText('bad \udc00')).toMatch(/lone surrogate/);
    expect(invalidText('decoded \ufffd badly')).toMatch(/U\+FFFD/);
  });

  it('makes a keyword one line', () => {
    expect(cleanKeyword('  red\n car\t ')).toBe('red car');
    expect(cleanKeyword('a\x1fb')).toBe('a b');
  });

  it('counts characters and UTF-8 bytes', () => {
    expect(characters('🐈日')).toBe(2);
    expect(utf8Bytes('🐈日')).toBe(7);
  });
});

describe('writeBackSource', () => {
  it('accepts a plain prompt and the presets', () => {
    expect(writeBackSource({ preset: undefined, schema: false })).toEqual({
      ok: true,
      source: 'prompt',
    });
    for (const preset of ['caption', 'ocr', 'alt-text', 'tags', 'objects'])
      expect(writeBackSource({ preset, schema: true })).toEqual({ ok: true, source: preset });
  });

  it('refuses a custom schema, saying what to use instead', () => {
    const r = writeBackSource({ preset: undefined, schema: true });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toMatch(/custom --schema.*--preset caption, alt-text, tags/);
    expect(writeBackSource({ preset: 'prompt', schema: false }).ok).toBe(false);
  });
});

describe('contentOf', () => {
  it('turns text answers into a description or alt text', () => {
    expect(contentOf('caption', ` ${TRICKY} `)).toEqual({
      kind: 'description',
      source: 'caption',
      text: TRICKY,
    });
    expect(contentOf('prompt', 'x').kind).toBe('description');
    expect(contentOf('ocr', 'x').kind).toBe('description');
    expect(contentOf('alt-text', 'A cat.')).toEqual({
      kind: 'alt-text',
      source: 'alt-text',
      text: 'A cat.',
    });
  });

  it('has nothing to write for an empty answer, and says why', () => {
    expect(contentOf('alt-text', '')).toMatchObject({ kind: 'none', reason: /decorative/ });
    expect(contentOf('ocr', ' \n')).toMatchObject({ kind: 'none', reason: /no text/ });
    expect(contentOf('tags', [])).toMatchObject({ kind: 'none' });
  });

  it('makes tags and object names keywords, cleaned and without duplicates', () => {
    expect(contentOf('tags', ['cat', 'Cat', ' sofa\n', '', '日本'])).toEqual({
      kind: 'keywords',
      source: 'tags',
      keywords: ['cat', 'sofa', '日本'],
    });
    expect(
      contentOf('objects', [
        { name: 'dog', count: 2 },
        { name: 'ball', count: 1 },
      ]),
    ).toEqual({ kind: 'keywords', source: 'objects', keywords: ['dog', 'ball'] });
  });

  it('refuses damaged text and answers of the wrong shape', () => {
    expect(() => contentOf('caption', 'a\ud800')).toThrow(UnwritableAnswer);
    expect(() => contentOf('tags', ['ok', 'b\ufffd'])).toThrow(/keyword cannot be written/);
    expect(() => contentOf('caption', { caption: 'x' })).toThrow(/not text/);
    expect(() => contentOf('tags', 'cat')).toThrow(/not a list/);
    expect(() => contentOf('tags', [1])).toThrow(/not text/);
  });
});

describe('mergeKeywords', () => {
  it('keeps existing keywords as they are and appends new ones, case-insensitively', () => {
    expect(mergeKeywords(['Cat', 'holiday', 'cat'], ['CAT', 'sofa', 'Holiday', 'sofa'])).toEqual({
      merged: ['Cat', 'holiday', 'cat', 'sofa'],
      added: ['sofa'],
    });
  });

  it('compares composed and decomposed accents alike', () => {
    expect(mergeKeywords(['Ku\u0308che'], ['küche']).added).toEqual([]);
  });
});
