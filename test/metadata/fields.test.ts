/**
 * The pure planner (src/metadata/fields.ts): from what a file holds (ExifTool's JSON) and an
 * answer, every tag to write, the dry run's changes, the notes and warnings.
 */
import { describe, expect, it } from 'vitest';
import { contentOf, type Content } from '../../src/metadata/content.js';
import {
  exifDate,
  formatCaptionWriter,
  holdsAnswer,
  parseCaptionWriter,
  parseExisting,
  planWrite,
  type PlanInput,
} from '../../src/metadata/fields.js';
import type { MetaFormat } from '../../src/metadata/formats.js';
import { formatChanges } from '../../src/metadata/report.js';

const NOW = new Date('2026-03-14T15:09:26.500Z');
const TOOL = 'describe-image';

function plan(
  format: MetaFormat,
  raw: Record<string, unknown>,
  content: Content,
  model = 'gpt-4o',
): ReturnType<typeof planWrite> {
  if (content.kind === 'none') throw new Error('no content');
  const input: PlanInput = {
    format,
    existing: parseExisting(raw),
    content,
    tool: TOOL,
    model,
    now: NOW,
  };
  return planWrite(input);
}

const tagsOf = (p: ReturnType<typeof planWrite>) => Object.fromEntries(p.tags);

describe('parseExisting', () => {
  it('reads ExifTool JSON: text, one-item lists, IPTC and its charset', () => {
    const e = parseExisting({
      'XMP-dc:Description': 'x',
      'XMP-dc:Description-de': 'Hallo',
      'IFD0:ImageDescription': 'y',
      'XMP-dc:Subject': 'solo',
      'IPTC:Keywords': ['Köln', '42'],
      'IPTC:By-line': 'Müller',
      'IPTC:ApplicationRecordVersion': '4',
      'File:FileType': 'JPEG',
    });
    expect(e.description).toBe('x');
    expect(e.imageDescription).toBe('y');
    expect(e.subject).toEqual(['solo']);
    expect(e.iptc).toEqual({
      present: true,
      charset: undefined,
      utf8: false,
      nonAscii: { 'IPTC:Keywords': ['Köln', '42'], 'IPTC:By-line': 'Müller' },
    });
    expect(e.fileType).toBe('JPEG');
    expect(parseExisting({ 'IPTC:CodedCharacterSet': 'UTF8' }).iptc.utf8).toBe(true);
  });

  it('counts a description in any language, or in any field, as a description', () => {
    expect(parseExisting({}).hasDescription).toBe(false);
    expect(parseExisting({ 'XMP-dc:Description': '  ' }).hasDescription).toBe(false);
    expect(parseExisting({ 'XMP-dc:Description-de': 'Hallo' }).hasDescription).toBe(true);
    expect(parseExisting({ 'IFD0:ImageDescription': 'x' }).hasDescription).toBe(true);
    expect(parseExisting({ 'IPTC:Caption-Abstract': 'x' }).hasDescription).toBe(true);
    expect(parseExisting({ 'XMP-tiff:ImageDescription': 'x' }).hasDescription).toBe(true);
  });
});

describe('planWrite: description', () => {
  const caption = contentOf('caption', 'A cat "Ü" 日本 🐈\nline two');

  it('writes XMP and EXIF, the caption writer and the metadata date; no IPTC where there is none', () => {
    const p = plan('jpeg', {}, caption);
    expect(p.tags).toEqual([
      ['XMP-dc:Description-x-default', 'A cat "Ü" 日本 🐈\nline two'],
      ['EXIF:ImageDescription', 'A cat "Ü" 日本 🐈\nline two'],
      ['XMP-photoshop:CaptionWriter', 'describe-image (gpt-4o; caption)'],
      ['XMP-xmp:MetadataDate', '2026:03:14 15:09:26+00:00'],
    ]);
    expect(p.changes[0]).toEqual({
      field: 'XMP-dc:Description',
      before: undefined,
      after: 'A cat "Ü" 日本 🐈\nline two',
    });
    expect(p.notes).toEqual([]);
  });

  it('writes IPTC Caption-Abstract where IPTC is, marked UTF-8, and re-encodes Latin-1 values', () => {
    const p = plan(
      'jpeg',
      { 'IPTC:By-line': 'Müller', 'IPTC:Keywords': ['Köln'], 'IPTC:ObjectName': 'ascii' },
      caption,
    );
    const tags = tagsOf(p);
    expect(tags['IPTC:Caption-Abstract']).toBe('A cat "Ü" 日本 🐈\nline two');
    expect(tags['IPTC:CodedCharacterSet']).toBe('UTF8');
    expect(tags['IPTC:By-line']).toBe('Müller');
    expect(tags['IPTC:Keywords']).toEqual(['Köln']);
    expect(tags).not.toHaveProperty('IPTC:ObjectName');
    expect(p.changes.find((c) => c.field.startsWith('IPTC:By-line'))?.field).toMatch(/as UTF-8/);
  });

  it('leaves the charset alone when IPTC is UTF-8 already', () => {
    const tags = tagsOf(
      plan('tiff', { 'IPTC:CodedCharacterSet': 'UTF8', 'IPTC:By-line': 'Müller' }, caption),
    );
    expect(tags['IPTC:Caption-Abstract']).toBeDefined();
    expect(tags).not.toHaveProperty('IPTC:CodedCharacterSet');
    expect(tags).not.toHaveProperty('IPTC:By-line');
  });

  it('never writes IPTC into formats without it, even when asked about one', () => {
    expect(tagsOf(plan('webp', { 'IPTC:Keywords': 'x' }, caption))).not.toHaveProperty(
      'IPTC:Caption-Abstract',
    );
  });

  it('GIF: XMP only, with a note saying EXIF is skipped', () => {
    const p = plan('gif', {}, caption);
    expect(tagsOf(p)).not.toHaveProperty('EXIF:ImageDescription');
    expect(p.notes).toEqual([
      { key: 'gif:exif', message: expect.stringMatching(/^GIF files cannot hold EXIF/) },
    ]);
  });

  it('a sidecar gets XMP tiff:ImageDescription for EXIF ImageDescription', () => {
    const tags = tagsOf(plan('xmp', {}, caption));
    expect(tags['XMP-tiff:ImageDescription-x-default']).toBe('A cat "Ü" 日本 🐈\nline two');
    expect(tags).not.toHaveProperty('EXIF:ImageDescription');
  });

  it('writes nothing at all when the file holds the answer already', () => {
    const text = 'A cat "Ü" 日本 🐈\nline two';
    const p = plan(
      'jpeg',
      { 'XMP-dc:Description': text, 'IFD0:ImageDescription': text, 'IPTC:Caption-Abstract': text },
      caption,
    );
    expect(p.tags).toEqual([]);
    expect(p.changes).toEqual([]);
  });

  it('writes only the fields that differ, then who and when', () => {
    const p = plan('jpeg', { 'XMP-dc:Description': 'A cat "Ü" 日本 🐈\nline two' }, caption);
    expect(p.tags.map(([t]) => t)).toEqual([
      'EXIF:ImageDescription',
      'XMP-photoshop:CaptionWriter',
      'XMP-xmp:MetadataDate',
    ]);
  });

  it('keeps IPTC Caption-Abstract when the text is over its 2,000 bytes, with a warning', () => {
    const long = contentOf('ocr', 'ü'.repeat(1001));
    const p = plan('jpeg', { 'IPTC:Caption-Abstract': 'old' }, long);
    expect(tagsOf(p)).not.toHaveProperty('IPTC:Caption-Abstract');
    expect(p.warnings).toEqual([expect.stringMatching(/over IPTC's 2,000 bytes/)]);
  });
});

describe('planWrite: long descriptions', () => {
  it("keep out of a JPEG's EXIF what would not fit its 64 KB segment", () => {
    const long = contentOf('ocr', 'x'.repeat(32_001));
    const p = plan('jpeg', {}, long);
    expect(tagsOf(p)).not.toHaveProperty('EXIF:ImageDescription');
    expect(tagsOf(p)['XMP-dc:Description-x-default']).toBe('x'.repeat(32_001));
    expect(p.warnings).toEqual([expect.stringMatching(/over the 32,000 bytes a JPEG's EXIF/)]);
    expect(tagsOf(plan('tiff', {}, long))['EXIF:ImageDescription']).toBe('x'.repeat(32_001));
    expect(tagsOf(plan('jpeg', {}, contentOf('ocr', 'x'.repeat(32_000))))).toHaveProperty(
      'EXIF:ImageDescription',
    );
  });
});

describe('planWrite: alt text', () => {
  it('writes alt text, and the description fields when the file has no description', () => {
    const tags = tagsOf(plan('png', {}, contentOf('alt-text', 'A cat.')));
    expect(tags['XMP-iptcCore:AltTextAccessibility-x-default']).toBe('A cat.');
    expect(tags['XMP-dc:Description-x-default']).toBe('A cat.');
    expect(tags['EXIF:ImageDescription']).toBe('A cat.');
    expect(tags['XMP-photoshop:CaptionWriter']).toBe('describe-image (gpt-4o; alt-text)');
  });

  it('leaves a description in any language alone', () => {
    const tags = tagsOf(
      plan('jpeg', { 'XMP-dc:Description-de': 'Eine Katze' }, contentOf('alt-text', 'A cat.')),
    );
    expect(tags['XMP-iptcCore:AltTextAccessibility-x-default']).toBe('A cat.');
    expect(tags).not.toHaveProperty('XMP-dc:Description-x-default');
    expect(tags).not.toHaveProperty('EXIF:ImageDescription');
  });

  it('warns when it is over the 250 characters IPTC recommends', () => {
    const p = plan('jpeg', {}, contentOf('alt-text', '日'.repeat(251)));
    expect(p.warnings).toEqual([expect.stringMatching(/251 characters, over the 250/)]);
    expect(plan('jpeg', {}, contentOf('alt-text', '日'.repeat(250))).warnings).toEqual([]);
  });
});

describe('planWrite: keywords', () => {
  const tags = contentOf('tags', ['cat', 'Sofa', '日本 🐈', 'ac/dc', 'a|b']);

  it('adds keywords to dc:subject, lr:hierarchicalSubject and digiKam:TagsList, keeping those there', () => {
    const p = plan(
      'jpeg',
      { 'XMP-dc:Subject': ['Holiday', 'CAT'], 'XMP-lr:HierarchicalSubject': 'Places|Paris' },
      tags,
    );
    const t = tagsOf(p);
    expect(t['XMP-dc:Subject']).toEqual(['Holiday', 'CAT', 'Sofa', '日本 🐈', 'ac/dc', 'a|b']);
    expect(t['XMP-lr:HierarchicalSubject']).toEqual([
      'Places|Paris',
      'cat',
      'Sofa',
      '日本 🐈',
      'ac/dc',
    ]);
    expect(t['XMP-digiKam:TagsList']).toEqual(['cat', 'Sofa', '日本 🐈', 'a|b']);
    expect(t).not.toHaveProperty('IPTC:Keywords');
    expect(p.warnings).toEqual([
      expect.stringMatching(/"a\|b" is not added to lr:hierarchicalSubject/),
      expect.stringMatching(/"ac\/dc" is not added to digiKam:TagsList/),
    ]);
    expect(p.changes[0]).toMatchObject({ field: 'XMP-dc:Subject', before: ['Holiday', 'CAT'] });
  });

  it('adds them to IPTC Keywords where IPTC is, except those over 64 bytes', () => {
    const long = 'ü'.repeat(33);
    const p = plan(
      'jpeg',
      { 'IPTC:Keywords': ['cat'], 'IPTC:CodedCharacterSet': 'UTF8' },
      contentOf('tags', ['cat', 'dog', long]),
    );
    expect(tagsOf(p)['IPTC:Keywords']).toEqual(['cat', 'dog']);
    expect(tagsOf(p)['XMP-dc:Subject']).toEqual(['cat', 'dog', long]);
    expect(p.warnings).toEqual([expect.stringMatching(/over IPTC's 64 bytes/)]);
  });

  it('writes nothing when every keyword is there already', () => {
    const p = plan(
      'png',
      {
        'XMP-dc:Subject': ['CAT', 'dog'],
        'XMP-lr:HierarchicalSubject': ['cat', 'Dog'],
        'XMP-digiKam:TagsList': ['Cat', 'DOG'],
      },
      contentOf('tags', ['cat', 'dog']),
    );
    expect(p.tags).toEqual([]);
  });
});

describe('the caption writer', () => {
  it('names the tool, the model and what it wrote, and parses back', () => {
    const value = formatCaptionWriter(TOOL, 'org/model (v2); beta', ['caption', 'tags']);
    expect(value).toBe('describe-image (org/model (v2); beta; caption, tags)');
    expect(parseCaptionWriter(value, TOOL)).toEqual({
      model: 'org/model (v2); beta',
      sources: ['caption', 'tags'],
    });
    expect(parseCaptionWriter('Jane Doe', TOOL)).toBeUndefined();
    expect(parseCaptionWriter('describe-image (m; nonsense)', TOOL)).toBeUndefined();
  });

  it('adds to what this tool wrote before; a new description replaces the old one', () => {
    const before = {
      'XMP-photoshop:CaptionWriter': 'describe-image (old; caption, tags)',
      'XMP-dc:Description': 'A cat.',
    };
    expect(
      tagsOf(plan('jpeg', before, contentOf('alt-text', 'x')))['XMP-photoshop:CaptionWriter'],
    ).toBe('describe-image (gpt-4o; caption, alt-text, tags)');
    expect(tagsOf(plan('jpeg', before, contentOf('ocr', 'x')))['XMP-photoshop:CaptionWriter']).toBe(
      'describe-image (gpt-4o; ocr, tags)',
    );
  });

  it("keeps a person's name unless their description is replaced", () => {
    const before = { 'XMP-photoshop:CaptionWriter': 'Jane Doe', 'XMP-dc:Description': 'Hers' };
    expect(tagsOf(plan('jpeg', before, contentOf('tags', ['cat'])))).not.toHaveProperty(
      'XMP-photoshop:CaptionWriter',
    );
    expect(tagsOf(plan('jpeg', before, contentOf('alt-text', 'x')))).not.toHaveProperty(
      'XMP-photoshop:CaptionWriter',
    );
    expect(
      tagsOf(plan('jpeg', before, contentOf('caption', 'x')))['XMP-photoshop:CaptionWriter'],
    ).toBe('describe-image (gpt-4o; caption)');
  });
});

describe('holdsAnswer', () => {
  const ours = 'describe-image (gpt-4o; caption, tags)';
  it('is true when the caption writer names the source and its field holds text', () => {
    const e = parseExisting({
      'XMP-photoshop:CaptionWriter': ours,
      'XMP-dc:Description': 'A cat.',
      'XMP-dc:Subject': ['cat'],
    });
    expect(holdsAnswer(e, 'caption', TOOL)).toBe(true);
    expect(holdsAnswer(e, 'tags', TOOL)).toBe(true);
    expect(holdsAnswer(e, 'ocr', TOOL)).toBe(false);
    expect(holdsAnswer(e, 'alt-text', TOOL)).toBe(false);
  });

  it('is false when the field was emptied since, or someone else wrote it', () => {
    expect(
      holdsAnswer(parseExisting({ 'XMP-photoshop:CaptionWriter': ours }), 'caption', TOOL),
    ).toBe(false);
    expect(
      holdsAnswer(
        parseExisting({ 'XMP-photoshop:CaptionWriter': 'Jane', 'XMP-dc:Description': 'x' }),
        'caption',
        TOOL,
      ),
    ).toBe(false);
  });
});

describe('exifDate', () => {
  it('is ExifTool date format, in UTC', () => {
    expect(exifDate(NOW)).toBe('2026:03:14 15:09:26+00:00');
  });
});

describe('formatChanges', () => {
  const base = { image: 'a.jpg', target: 'a.jpg', notes: [], warnings: [] };
  it('shows each field before and after, quoted, one line each', () => {
    expect(
      formatChanges({
        ...base,
        status: 'planned',
        changes: [
          { field: 'XMP-dc:Description', before: undefined, after: 'A "cat"\nline\u202e' },
          { field: 'XMP-dc:Subject', before: ['x'], after: ['x', 'cat'] },
        ],
      }),
    ).toEqual([
      'a.jpg: would set XMP-dc:Description: (none) → "A \\"cat\\"\\nline\\u202e"',
      'a.jpg: would set XMP-dc:Subject: ["x"] → ["x","cat"]',
    ]);
    expect(
      formatChanges({
        ...base,
        status: 'written',
        changes: [{ field: 'XMP-dc:Subject', before: ['x'], after: ['x', 'cat'] }],
      }),
    ).toEqual(['a.jpg: XMP-dc:Subject: ["x"] → ["x","cat"]']);
  });

  it('says why nothing changes', () => {
    expect(formatChanges({ ...base, status: 'unchanged', changes: [] })).toEqual([
      'a.jpg: already holds this answer; nothing to change',
    ]);
    expect(
      formatChanges({ ...base, status: 'empty', changes: [], reason: 'the image holds no text' }),
    ).toEqual(['a.jpg: nothing to write (the image holds no text)']);
  });
});
