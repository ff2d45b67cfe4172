/**
 * The per-image line of --dry-run and --debug (src/render/image-report.ts): original format,
 * size and bytes, what is sent, the saving, and the estimated image tokens.
 */
import { describe, expect, it } from 'vitest';
import type { ImageFacts, PreparedBytes } from '../../src/input/prepare.js';
import { formatBytes, formatImageReport } from '../../src/render/image-report.js';

function prepared(
  original: ImageFacts,
  sent: ImageFacts | 'same',
  ms = 12,
  notes: string[] = [],
): PreparedBytes {
  const s = sent === 'same' ? original : sent;
  return {
    mime: `image/${s.format}`,
    data: new Uint8Array(s.bytes),
    original,
    sent: s,
    notes,
    ms,
  };
}

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KB'],
    [1536, '1.5 KB'],
    [10 * 1024 - 1, '10.0 KB'],
    [10 * 1024, '10 KB'],
    [112 * 1024, '112 KB'],
    [1024 * 1024, '1.0 MB'],
    [2.1 * 1024 * 1024, '2.1 MB'],
    [20 * 1024 * 1024, '20.0 MB'],
  ])('%i → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatImageReport', () => {
  const heic: ImageFacts = { format: 'heic', width: 4032, height: 3024, bytes: 2.1 * 1048576 };
  const jpeg: ImageFacts = { format: 'jpeg', width: 1024, height: 768, bytes: 112 * 1024 };

  it('a converted image: original → sent, the saving, the time and the tokens (README example)', () => {
    expect(formatImageReport('cat.heic', prepared(heic, jpeg), 765, 'high')).toBe(
      'cat.heic: HEIC 4,032×3,024 2.1 MB → JPEG 1,024×768 112 KB (95 % smaller, 12 ms) · ~765 image tokens',
    );
  });

  it('detail low says ~N; auto and unset say "≤ N (detail auto)"', () => {
    expect(formatImageReport('a.heic', prepared(heic, jpeg), 85, 'low')).toMatch(
      / · ~85 image tokens$/,
    );
    expect(formatImageReport('a.heic', prepared(heic, jpeg), 765, 'auto')).toMatch(
      / · ≤ 765 image tokens \(detail auto\)$/,
    );
    expect(formatImageReport('a.heic', prepared(heic, jpeg), 765, undefined)).toMatch(
      / · ≤ 765 image tokens \(detail auto\)$/,
    );
    expect(formatImageReport('a.heic', prepared(heic, jpeg), 25501, 'high')).toMatch(
      / · ~25,501 image tokens$/,
    );
  });

  it('an unknown model says so instead of guessing', () => {
    const line = formatImageReport('a.heic', prepared(heic, jpeg), undefined, 'high');
    expect(line).toMatch(/ · image tokens: unknown for this model$/);
    expect(line).not.toMatch(/~|≤/);
  });

  it('an image sent as it is says so, once, with its facts', () => {
    const png: ImageFacts = { format: 'png', width: 100, height: 80, bytes: 354 };
    expect(formatImageReport('small.png', prepared(png, 'same'), 255, 'high')).toBe(
      'small.png: PNG 100×80 354 B, sent as it is · ~255 image tokens',
    );
  });

  it('a re-encoded image of the same format and size still shows both sides', () => {
    const before: ImageFacts = { format: 'jpeg', width: 200, height: 150, bytes: 20_000 };
    const after: ImageFacts = { format: 'jpeg', width: 200, height: 150, bytes: 5_000 };
    expect(formatImageReport('exif.jpg', prepared(before, after, 3.4), 255, 'low')).toBe(
      'exif.jpg: JPEG 200×150 20 KB → JPEG 200×150 4.9 KB (75 % smaller, 3 ms) · ~255 image tokens',
    );
  });

  it('an image that grew says "% larger"', () => {
    const bmp: ImageFacts = { format: 'png', width: 96, height: 64, bytes: 400 };
    const out: ImageFacts = { format: 'jpeg', width: 96, height: 64, bytes: 600 };
    expect(formatImageReport('x.png', prepared(bmp, out), 255, 'high')).toContain(
      'PNG 96×64 400 B → JPEG 96×64 600 B (50 % larger, 12 ms)',
    );
  });

  it('a URL passed through: the server fetches it, the tokens are unknown until then', () => {
    expect(formatImageReport('https://example.com/a.jpg', undefined, undefined, 'high')).toBe(
      'https://example.com/a.jpg: URL, sent as it is (the server fetches it) · image tokens: unknown until fetched',
    );
  });

  it('is one line', () => {
    for (const line of [
      formatImageReport('a.heic', prepared(heic, jpeg), 765, 'high'),
      formatImageReport('a.heic', prepared(heic, 'same'), undefined, undefined),
      formatImageReport('https://x/y.png', undefined, undefined, undefined),
    ]) {
      expect(line).not.toContain('\n');
    }
  });
});
