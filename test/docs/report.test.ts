/** The --alt-check lines: FILE:LINE:COL: message, one per image, safe to print. */
import { describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages, needsText } from '../../src/docs/find.js';
import { formatMissing, formatProblem } from '../../src/docs/report.js';
import { CORPUS_FILES, corpusDocument } from './corpus.js';

describe('formatMissing', () => {
  it('prints FILE:LINE:COL: image without alt text: SRC', () => {
    const doc = decodeDocument(
      'docs/a.md',
      new TextEncoder().encode('# A\n\nSee ![](img/x%20y.png).\n'),
    );
    expect(findImages(doc).map(formatMissing)).toEqual([
      'docs/a.md:3:5: image without alt text: img/x%20y.png',
    ]);
  });

  it('keeps each image on one line and makes control characters visible', () => {
    const doc = decodeDocument(
      'a\x1b[2J.html',
      new TextEncoder().encode('<img src="x\n\x1b[31m.png">'),
    );
    expect(findImages(doc).map(formatMissing)).toEqual([
      'a\\x1b[2J.html:1:1: image without alt text: x\\n\\x1b[31m.png',
    ]);
  });

  it('says when an image has no source', () => {
    const doc = decodeDocument('a.html', new TextEncoder().encode('<img>'));
    expect(findImages(doc).map(formatMissing)).toEqual([
      'a.html:1:1: image without alt text: (no source)',
    ]);
  });

  it('says what is wrong with a placeholder', () => {
    const doc = decodeDocument('p.md', new TextEncoder().encode('![logo](img/logo.png)\n'));
    expect(findImages(doc).map(formatMissing)).toEqual([
      'p.md:1:1: alt text only names the file or says "image" ("logo"): img/logo.png',
    ]);
  });

  it('lists the corpus as a CI job would see it', () => {
    const lines = CORPUS_FILES.flatMap((name) =>
      findImages(corpusDocument(name))
        .filter((i) => needsText(i) && i.alt === 'missing')
        .map(formatMissing),
    );
    expect(lines.filter((l) => l.startsWith('guide.md:'))).toEqual([
      'guide.md:12:1: image without alt text: img/dashboard.png',
      'guide.md:17:35: image without alt text: img/licence%20dialog.png',
      'guide.md:20:4: image without alt text: img/station-map.png',
      'guide.md:22:26: image without alt text: img/tray-icon.png',
      'guide.md:26:3: image without alt text: img/sync-progress.png?v=2#top',
      'guide.md:46:13: image without alt text: img/harbour-week.svg',
      'guide.md:46:41: image without alt text: img/up.svg',
      'guide.md:50:2: image without alt text: img/chart-small.png',
      'guide.md:52:2: image without alt text: https://example.com/badge/build.svg',
      'guide.md:59:3: image without alt text: img/share-button.png',
      'guide.md:64:3: image without alt text: img/qr-light.png',
      'guide.md:67:24: image without alt text: https://example.com/photos/pier.jpg',
      'guide.md:67:83: image without alt text: data:image/gif;base64,R0lGODlhAgACAIAAAExpcSBAYCH5BAUAAAAALAAAAAACAAIAAAICjFMAOw==',
      'guide.md:71:34: image without alt text: img/küste.png',
    ]);
    expect(lines.filter((l) => l.startsWith('clean.markdown:'))).toEqual([]);
    expect(lines).toHaveLength(34);
  });
});

describe('formatProblem', () => {
  it('prints FILE:LINE:COL: REASON', () => {
    const doc = decodeDocument('b.md', new TextEncoder().encode('x\n  ![](/abs.png)'));
    const [finding] = findImages(doc);
    expect(formatProblem({ finding: finding!, reason: 'img/a.png: not found' })).toBe(
      'b.md:2:3: img/a.png: not found',
    );
  });
});
