/**
 * XMP sidecars (src/metadata/writer.ts, target `sidecar`): both naming styles, read back by
 * another ExifTool; an existing sidecar updated, not replaced; the photo itself untouched.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExifTool } from 'exiftool-vendored';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataWriter } from '../../src/metadata/writer.js';
import { tempDir } from '../helpers/images.js';
import {
  ALT,
  KEYWORDS,
  listing,
  makePhoto,
  OLD_TIME,
  openWriter,
  prepare,
  readBack,
  referenceExifTool,
  TRICKY,
} from '../helpers/metadata.js';
import { phoneJpeg } from '../helpers/pixels.js';

let root: string;
let et: ExifTool;
let append: MetadataWriter;
let replace: MetadataWriter;
let n = 0;

beforeAll(async () => {
  root = await tempDir('describe-image-meta-sidecar-');
  et = referenceExifTool();
  append = await openWriter(root, { target: 'sidecar', sidecarStyle: 'append' });
  replace = await openWriter(root, { target: 'sidecar', sidecarStyle: 'replace' });
});

afterAll(async () => {
  await Promise.all([append.close(), replace.close(), et.end()]);
  await rm(root, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  const dir = path.join(root, `case${++n}`);
  await mkdir(dir);
  return dir;
}

/** Writes a caption for the photo at `file` (an absolute path). */
function caption(writer: MetadataWriter, file: string, answer = 'x') {
  return writer.write({ image: path.relative(root, file), source: 'caption', answer, model: 'm' });
}

async function writeAll(writer: MetadataWriter, image: string) {
  const results = [];
  results.push(await writer.write({ image, source: 'caption', answer: TRICKY, model: 'm' }));
  results.push(await writer.write({ image, source: 'alt-text', answer: ALT, model: 'm' }));
  results.push(await writer.write({ image, source: 'tags', answer: KEYWORDS, model: 'm' }));
  return results;
}

describe.each([
  ['append', 'photo.jpg.xmp'],
  ['replace', 'photo.xmp'],
] as const)('style %s', (style, sidecarName) => {
  it(`writes ${sidecarName} beside the photo and leaves the photo alone`, async () => {
    const dir = await folder();
    const file = await makePhoto(dir, 'photo', 'jpeg');
    const before = await readFile(file);
    const image = path.relative(root, file);
    const results = await writeAll(style === 'append' ? append : replace, image);
    expect(results.map((r) => r.status)).toEqual(['written', 'written', 'written']);
    expect(results[0]!.target).toBe(path.join(path.dirname(image), sidecarName));

    const back = await readBack(et, path.join(dir, sidecarName));
    expect(back['File:FileType']).toBe('XMP');
    expect(back['XMP-dc:Description']).toBe(TRICKY);
    expect(back['XMP-tiff:ImageDescription']).toBe(TRICKY);
    expect(back['XMP-iptcCore:AltTextAccessibility']).toBe(ALT);
    expect(back['XMP-dc:Subject']).toEqual(KEYWORDS);
    expect(back['XMP-lr:HierarchicalSubject']).toEqual(KEYWORDS);
    expect(back['XMP-digiKam:TagsList']).toEqual(KEYWORDS);
    expect(back['XMP-photoshop:CaptionWriter']).toBe('describe-image (m; caption, alt-text, tags)');

    expect((await readFile(file)).equals(before)).toBe(true);
    expect((await stat(file)).mtime.getTime()).toBe(OLD_TIME.getTime());
    expect(await listing(dir)).toEqual(['photo.jpg', sidecarName].sort());
  });
});

describe('an existing sidecar', () => {
  it('is updated: what it held is kept, keywords merged', async () => {
    const dir = await folder();
    await makePhoto(dir, 'photo', 'jpeg');
    const sidecar = path.join(dir, 'photo.jpg.xmp');
    await prepare(et, sidecar, {
      'XMP-xmp:Rating': '4',
      'XMP-xmp:Label': 'Red',
      'XMP-dc:Subject': ['Holiday'],
      'XMP-dc:Description-de': 'Eine Katze',
    });
    const before = await readBack(et, sidecar);
    await writeAll(append, path.relative(root, path.join(dir, 'photo.jpg')));
    const after = await readBack(et, sidecar);
    for (const key of Object.keys(before).filter((k) => k !== 'XMP-dc:Subject'))
      expect(after[key], key).toEqual(before[key]);
    expect(after['XMP-dc:Subject']).toEqual(['Holiday', ...KEYWORDS]);
    expect(after['XMP-dc:Description']).toBe(TRICKY);
    expect(await listing(dir)).toEqual(['photo.jpg', 'photo.jpg.xmp']);
  });

  it('read-only: a clear error, unchanged', async () => {
    const dir = await folder();
    await makePhoto(dir, 'photo', 'png');
    const sidecar = path.join(dir, 'photo.png.xmp');
    await prepare(et, sidecar, { 'XMP-xmp:Rating': '2' });
    await chmod(sidecar, 0o444);
    const before = await readFile(sidecar);
    await expect(caption(append, path.join(dir, 'photo.png'), 'x')).rejects.toThrow(
      /photo\.png\.xmp: the file is read-only.*\(the sidecar is unchanged\)/,
    );
    expect((await readFile(sidecar)).equals(before)).toBe(true);
  });

  it('that is not XMP is not touched', async () => {
    const dir = await folder();
    await makePhoto(dir, 'photo', 'png');
    await writeFile(path.join(dir, 'photo.xmp'), 'notes, not XMP\n');
    await expect(caption(replace, path.join(dir, 'photo.png'), 'x')).rejects.toThrow(
      /photo\.xmp: is not an XMP sidecar \(ExifTool reads it as TXT\)/,
    );
    expect(await readFile(path.join(dir, 'photo.xmp'), 'utf8')).toBe('notes, not XMP\n');
  });
});

describe('sidecar safety', () => {
  it('holds no GPS or camera data from the photo', async () => {
    const dir = await folder();
    await writeFile(path.join(dir, 'phone.jpg'), await phoneJpeg(64, 48, 6));
    await caption(append, path.join(dir, 'phone.jpg'), 'x');
    const back = await readBack(et, path.join(dir, 'phone.jpg.xmp'));
    expect(Object.keys(back).filter((k) => /GPS|Make|Model|Orientation/.test(k))).toEqual([]);
  });

  it('photo.jpg and photo.png cannot share photo.xmp in one run', async () => {
    const dir = await folder();
    const jpg = path.relative(root, await makePhoto(dir, 'photo', 'jpeg'));
    const png = path.relative(root, await makePhoto(dir, 'photo', 'png'));
    await replace.write({ image: jpg, source: 'caption', answer: 'the JPEG', model: 'm' });
    await expect(
      replace.write({ image: png, source: 'caption', answer: 'the PNG', model: 'm' }),
    ).rejects.toThrow(/photo\.xmp already holds the answer for photo\.jpg from this run/);
    expect((await readBack(et, path.join(dir, 'photo.xmp')))['XMP-dc:Description']).toBe(
      'the JPEG',
    );
  });

  it('a photo that is gone gets no sidecar', async () => {
    const dir = await folder();
    await expect(caption(append, path.join(dir, 'gone.jpg'), 'x')).rejects.toThrow(
      /gone\.jpg: the file is gone/,
    );
    expect(await listing(dir)).toEqual([]);
  });

  it('the dry run creates nothing', async () => {
    const dry = await openWriter(root, { target: 'sidecar', sidecarStyle: 'append', dryRun: true });
    try {
      const dir = await folder();
      const image = path.relative(root, await makePhoto(dir, 'photo', 'jpeg'));
      const result = await dry.write({ image, source: 'caption', answer: 'A cat.', model: 'm' });
      expect(result.status).toBe('planned');
      expect(result.changes.map((c) => c.field)).toEqual([
        'XMP-dc:Description',
        'XMP-tiff:ImageDescription',
        'XMP-photoshop:CaptionWriter',
        'XMP-xmp:MetadataDate',
      ]);
      expect(await listing(dir)).toEqual(['photo.jpg']);
    } finally {
      await dry.close();
    }
  });

  it('knows what it already wrote', async () => {
    const dir = await folder();
    const image = path.relative(root, await makePhoto(dir, 'photo', 'jpeg'));
    expect(await append.alreadyWritten(image, 'tags')).toBe(false);
    await append.write({ image, source: 'tags', answer: ['cat'], model: 'm' });
    expect(await append.alreadyWritten(image, 'tags')).toBe(true);
    expect(await replace.alreadyWritten(image, 'tags')).toBe(false);
  });
});
