/**
 * Write-back into every format the tool reads (src/metadata/writer.ts with a real ExifTool):
 * a description, alt text and keywords, read back by another ExifTool and compared exactly;
 * the decoded pixels identical, the modification time kept, nothing else left in the folder.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatOfFileType } from '../../src/metadata/formats.js';
import {
  ALT,
  KEYWORDS,
  listing,
  makePhoto,
  OLD_TIME,
  writerSuite,
  PHOTO_KINDS,
  pixels,
  prepare,
  readBack,
  readBackWhole,
  TRICKY,
} from '../helpers/metadata.js';

const suite = writerSuite('describe-image-meta-rt-');

const MODEL = 'test-model';

describe.each(PHOTO_KINDS)('%s', (kind) => {
  it('takes a description, alt text and keywords, exactly, and nothing else changes', async () => {
    const dir = path.join(suite.root, kind);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir);
    const file = await makePhoto(dir, 'photo', kind);
    const name = path.relative(suite.root, file);
    const before = await pixels(file);
    const filesBefore = await listing(dir);
    const tagsBefore = await readBack(suite.et, file);

    const caption = await suite.writer.write({
      image: name,
      source: 'caption',
      answer: TRICKY,
      model: MODEL,
    });
    const alt = await suite.writer.write({
      image: name,
      source: 'alt-text',
      answer: ALT,
      model: MODEL,
    });
    const tags = await suite.writer.write({
      image: name,
      source: 'tags',
      answer: KEYWORDS,
      model: MODEL,
    });
    expect([caption.status, alt.status, tags.status]).toEqual(['written', 'written', 'written']);

    const after = await readBack(suite.et, file);
    expect(after['XMP-dc:Description']).toBe(TRICKY);
    expect(after['XMP-iptcCore:AltTextAccessibility']).toBe(ALT);
    expect(after['XMP-dc:Subject']).toEqual(KEYWORDS);
    expect(after['XMP-lr:HierarchicalSubject']).toEqual(KEYWORDS);
    expect(after['XMP-digiKam:TagsList']).toEqual(KEYWORDS);
    expect(after['XMP-photoshop:CaptionWriter']).toBe(
      'describe-image (test-model; caption, alt-text, tags)',
    );
    expect(after['XMP-xmp:MetadataDate']).toBe('2026:03:14 15:09:26+00:00');
    if (kind === 'gif') {
      expect(after).not.toHaveProperty('IFD0:ImageDescription');
      expect(caption.notes).toEqual([
        { key: 'gif:exif', message: expect.stringMatching(/^GIF files cannot hold EXIF/) },
      ]);
    } else {
      expect(after['IFD0:ImageDescription']).toBe(TRICKY);
    }
    // Nothing else: every tag there before is still there with its value (but where the image
    // data starts, in a TIFF, and a simple WebP's becoming "Extended WEBP", the only kind that
    // holds metadata), and the only new ones are those written (and ExifTool's XMP mark).
    for (const [key, value] of Object.entries(tagsBefore)) {
      if (key === 'File:FileType')
        expect(formatOfFileType(String(after[key]))).toBe(formatOfFileType(String(value)));
      else if (!/(Offsets|Start)$/.test(key)) expect(after[key], key).toEqual(value);
    }
    const added = Object.keys(after).filter((k) => !(k in tagsBefore));
    expect(added.sort()).toEqual(
      [
        'XMP-x:XMPToolkit',
        'XMP-dc:Description',
        'XMP-iptcCore:AltTextAccessibility',
        'XMP-dc:Subject',
        'XMP-lr:HierarchicalSubject',
        'XMP-digiKam:TagsList',
        'XMP-photoshop:CaptionWriter',
        'XMP-xmp:MetadataDate',
        ...(kind === 'gif' ? [] : ['IFD0:ImageDescription']),
      ]
        .filter((k) => !(k in tagsBefore))
        .sort(),
    );

    expect((await pixels(file)).equals(before)).toBe(true);
    expect((await stat(file)).mtime.getTime()).toBe(OLD_TIME.getTime());
    expect(await listing(dir)).toEqual(filesBefore);
  });
});

describe('an IPTC block', () => {
  it('gets the description and keywords too, as UTF-8, and its Latin-1 values keep their meaning', async () => {
    const file = await makePhoto(suite.root, 'iptc', 'jpeg');
    await prepare(suite.et, file, { 'IPTC:By-line': 'Jürgen Müller', 'IPTC:Keywords': ['Köln'] });
    expect((await readBack(suite.et, file))['IPTC:CodedCharacterSet']).toBeUndefined();
    await suite.writer.write({
      image: 'iptc.jpg',
      source: 'caption',
      answer: TRICKY,
      model: MODEL,
    });
    await suite.writer.write({ image: 'iptc.jpg', source: 'tags', answer: KEYWORDS, model: MODEL });
    const after = await readBack(suite.et, file);
    expect(after['IPTC:CodedCharacterSet']).toBe('UTF8');
    expect(after['IPTC:Caption-Abstract']).toBe(TRICKY);
    expect(after['IPTC:By-line']).toBe('Jürgen Müller');
    expect(after['IPTC:Keywords']).toEqual(['Köln', ...KEYWORDS]);
  });
});

describe('existing metadata', () => {
  it('keeps keywords already there and descriptions in other languages', async () => {
    const file = await makePhoto(suite.root, 'merge', 'jpeg');
    await prepare(suite.et, file, {
      'XMP-dc:Description-x-default': 'old caption',
      'XMP-dc:Description-de': 'Eine Katze',
      'XMP-dc:Description-fr': 'Un chat',
      'XMP-dc:Subject': ['Holiday', 'CAT'],
      'XMP-lr:HierarchicalSubject': ['Places|Paris'],
      'XMP-xmp:Rating': '4',
    });
    await suite.writer.write({
      image: 'merge.jpg',
      source: 'caption',
      answer: TRICKY,
      model: MODEL,
    });
    const result = await suite.writer.write({
      image: 'merge.jpg',
      source: 'tags',
      answer: ['cat', 'sofa', 'holiday', 'Sofa'],
      model: MODEL,
    });
    expect(result.changes.find((c) => c.field === 'XMP-dc:Subject')).toEqual({
      field: 'XMP-dc:Subject',
      before: ['Holiday', 'CAT'],
      after: ['Holiday', 'CAT', 'sofa'],
    });
    const after = await readBack(suite.et, file);
    expect(after['XMP-dc:Description']).toBe(TRICKY);
    expect(after['XMP-dc:Description-de']).toBe('Eine Katze');
    expect(after['XMP-dc:Description-fr']).toBe('Un chat');
    expect(after['XMP-dc:Subject']).toEqual(['Holiday', 'CAT', 'sofa']);
    expect(after['XMP-lr:HierarchicalSubject']).toEqual(['Places|Paris', 'cat', 'sofa', 'holiday']);
    expect(after['XMP-xmp:Rating']).toBe('4');
  });

  it('writes nothing when the photo already holds the answer', async () => {
    const file = await makePhoto(suite.root, 'again', 'png');
    await suite.writer.write({
      image: 'again.png',
      source: 'caption',
      answer: TRICKY,
      model: MODEL,
    });
    const { readFile } = await import('node:fs/promises');
    const once = await readFile(file);
    const again = await suite.writer.write({
      image: 'again.png',
      source: 'caption',
      answer: TRICKY,
      model: MODEL,
    });
    expect(again.status).toBe('unchanged');
    expect((await readFile(file)).equals(once)).toBe(true);
  });
});

describe('long text', () => {
  it('a long caption and a long keyword list come back whole, not a character damaged', async () => {
    const file = await makePhoto(suite.root, 'long', 'jpeg');
    const keywords = Array.from({ length: 600 }, (_, i) => `schlüssel 日本 ${i}`);
    await prepare(suite.et, file, { 'XMP-dc:Subject': keywords });
    const caption = Array.from({ length: 800 }, () => 'Ein Kätzchen 日本 🐈.').join(' ');
    await suite.writer.write({
      image: 'long.jpg',
      source: 'caption',
      answer: caption,
      model: MODEL,
    });
    const tags = await suite.writer.write({
      image: 'long.jpg',
      source: 'tags',
      answer: ['cat'],
      model: MODEL,
    });
    // What the writer read (and merged) was whole...
    expect(tags.changes[0]).toEqual({
      field: 'XMP-dc:Subject',
      before: keywords,
      after: [...keywords, 'cat'],
    });
    // ...and so is what it wrote.
    const back = await readBackWhole(file);
    expect(back['XMP-dc:Subject']).toEqual([...keywords, 'cat']);
    expect(back['XMP-dc:Description']).toBe(caption);
    expect(back['IFD0:ImageDescription']).toBe(caption);
    expect(await suite.writer.alreadyWritten('long.jpg', 'caption')).toBe(true);
  });

  it("a text too long for a JPEG's EXIF goes into XMP alone, with a warning", async () => {
    const file = await makePhoto(suite.root, 'page', 'jpeg');
    const page = Array.from({ length: 3000 }, (_, i) => `Zeile ${i}: Grüße 日本`).join('\n');
    const result = await suite.writer.write({
      image: 'page.jpg',
      source: 'ocr',
      answer: page,
      model: MODEL,
    });
    expect(result.status).toBe('written');
    expect(result.warnings).toEqual([expect.stringMatching(/EXIF ImageDescription was left/)]);
    const back = await readBackWhole(file);
    expect(back['XMP-dc:Description']).toBe(page);
    expect(back).not.toHaveProperty('IFD0:ImageDescription');
  });
});
