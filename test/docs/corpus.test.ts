/**
 * Every document of the corpus, filled with stand-in alt texts: nothing but the alt texts
 * changes (taking them out again gives back the original bytes), each filled image reads back
 * with exactly its text, and the real linters, markdownlint's MD045 and HTMLHint's
 * `alt-require`, find nothing left to fix.
 */
import { describe, expect, it } from 'vitest';
import { documentText } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import { oneLine } from '../../src/docs/fixes.js';
import {
  altRequire,
  CORPUS_FILES,
  corpusDocument,
  fillWithStandIns,
  HTMLHINT_MISREADS,
  markerLines,
  md045Lines,
  unfill,
} from './corpus.js';

describe.each(CORPUS_FILES)('%s', (name) => {
  const doc = corpusDocument(name);
  const filled = fillWithStandIns(doc);
  const full = documentText(doc, filled.text);

  it('changes nothing but the alt texts: taking them out gives the original bytes', () => {
    const back = documentText(doc, unfill(doc.text, filled.text, filled.fixes));
    expect(Buffer.from(back, 'utf8').equals(Buffer.from(doc.bytes))).toBe(true);
    expect(full.startsWith('\ufeff')).toBe(doc.bom);
    // Line endings as they were: a CRLF document gets no lone LF, and the reverse.
    const crlf = doc.text.includes('\r\n');
    expect(filled.text.replace(/\r\n/g, '').includes('\n')).toBe(!crlf);
  });

  it('reads each filled image back with exactly its text', () => {
    const after = findImages({ ...doc, text: filled.text });
    expect(after.map((i) => i.element)).toEqual(filled.images.map((i) => i.element));
    for (const { image, alt } of filled.choices) {
      const now = after[filled.images.indexOf(image)]!;
      expect(now.src).toBe(image.src);
      if (alt === '') {
        expect(now.alt).toBe('decorative');
      } else {
        expect(now.alt).toBe('present');
        expect(now.currentAlt).toBe(oneLine(alt));
      }
    }
    // The images that were not filled are as they were.
    const untouched = filled.images.filter((i) => !filled.choices.some((c) => c.image === i));
    for (const image of untouched) {
      const now = after[filled.images.indexOf(image)]!;
      expect([now.alt, now.currentAlt]).toEqual([image.alt, image.currentAlt]);
    }
  });

  if (doc.kind === 'html') {
    it('leaves HTMLHint alt-require nothing to report', () => {
      if (filled.choices.length > 0)
        expect(altRequire(documentText(doc, doc.text)).length).toBeGreaterThan(0);
      expect(altRequire(full)).toEqual(HTMLHINT_MISREADS[name] ?? []);
    });
  } else {
    it('leaves markdownlint MD045 only the images marked decorative', () => {
      const before = md045Lines(documentText(doc, doc.text));
      if (filled.choices.some((c) => c.image.alt === 'missing'))
        expect(before.length).toBeGreaterThan(0);
      expect([...new Set(md045Lines(full))]).toEqual(markerLines(filled.text));
    });
  }
});
