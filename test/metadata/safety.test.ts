/**
 * Write-back's safety (src/metadata/writer.ts with a real ExifTool): a photo that cannot or
 * must not be written fails alone with a clear message and stays byte for byte as it was;
 * nothing is left beside it; the dry run writes nothing; options that change what is kept.
 */
import {
  chmod,
  copyFile,
  link,
  mkdir,
  readFile,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ExitCode,
  InputError,
  InterruptedError,
  MalformedResponseError,
  UsageError,
} from '../../src/errors.js';
import { stampOf } from '../../src/metadata/stamp.js';
import { openMetadataWriter } from '../../src/metadata/writer.js';
import {
  listing,
  makePhoto,
  OLD_TIME,
  openWriter,
  writerSuite,
  readBack,
  TRICKY,
  writerOptions,
} from '../helpers/metadata.js';

let n = 0;

const suite = writerSuite('describe-image-meta-safety-');

/** A fresh folder with one photo in it: [folder, photo path relative to suite.root]. */
async function photo(kind: 'jpeg' | 'png' = 'jpeg'): Promise<[string, string, string]> {
  const dir = path.join(suite.root, `case${++n}`);
  await mkdir(dir);
  const file = await makePhoto(dir, 'photo', kind);
  return [dir, file, path.relative(suite.root, file)];
}

const caption = (image: string) =>
  ({ image, source: 'caption', answer: TRICKY, model: 'm' }) as const;

describe('a photo that must not be written', () => {
  it('read-only: a clear error, and the file untouched (ExifTool alone would replace it)', async () => {
    const [dir, file, name] = await photo();
    await chmod(file, 0o444);
    const before = await readFile(file);
    const error = await suite.writer.write(caption(name)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `${name}: the file is read-only, so its metadata was not written (the photo is unchanged); make it writable (chmod u+w) or write sidecars`,
    );
    expect((await readFile(file)).equals(before)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o444);
    expect(await listing(dir)).toEqual(['photo.jpg']);
  });

  it('deleted mid-run: that photo fails, the others are written, nothing is left behind', async () => {
    const [dir, , first] = await photo();
    const second = path.relative(suite.root, await makePhoto(dir, 'second', 'jpeg'));
    const gone = path.relative(suite.root, await makePhoto(dir, 'gone', 'jpeg'));
    const stamp = stampOf(await stat(path.join(suite.root, gone)));
    const a = suite.writer.write(caption(first));
    await unlink(path.join(suite.root, gone));
    const c = suite.writer.write({ ...caption(gone), stamp });
    const b = suite.writer.write(caption(second));
    expect((await a).status).toBe('written');
    expect((await b).status).toBe('written');
    await expect(c).rejects.toThrow(
      `${gone}: the file is gone (deleted or moved since it was read); nothing was written`,
    );
    expect(await listing(dir)).toEqual(['photo.jpg', 'second.jpg']);
  });

  it('changed since it was read: not written, the new content untouched', async () => {
    const [, file, name] = await photo();
    const stamp = stampOf(await stat(file));
    await copyFile(await makePhoto(suite.root, `other${n}`, 'jpeg'), file);
    const changed = await readFile(file);
    await expect(suite.writer.write({ ...caption(name), stamp })).rejects.toThrow(
      `${name}: the file changed after it was read; its metadata was not written (describe it again)`,
    );
    expect((await readFile(file)).equals(changed)).toBe(true);
  });

  it('a JPEG named .png: says what it is and what to do', async () => {
    const [dir, file] = await photo();
    const named = path.join(dir, 'fake.png');
    await copyFile(file, named);
    const before = await readFile(named);
    const error = await suite.writer
      .write(caption(path.relative(suite.root, named)))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(ExitCode.INPUT);
    expect((error as Error).message).toBe(
      `${path.relative(suite.root, named)}: is a JPEG file named as PNG; rename it to .jpg before writing its metadata (nothing was written)`,
    );
    expect((await readFile(named)).equals(before)).toBe(true);
    expect(await listing(dir)).toEqual(['fake.png', 'photo.jpg']);
  });

  it('not an image at all', async () => {
    const file = path.join(suite.root, 'notes.jpg');
    await writeFile(file, 'just some text, not a photo\n');
    await expect(suite.writer.write(caption('notes.jpg'))).rejects.toThrow(
      'notes.jpg: not an image write-back knows (ExifTool reads it as TXT); nothing was written',
    );
    expect(await readFile(file, 'utf8')).toBe('just some text, not a photo\n');
  });

  it('an answer that is not valid UTF-8 writes nothing', async () => {
    const [, file, name] = await photo();
    const before = await readFile(file);
    const error = await suite.writer
      .write({ ...caption(name), answer: 'broken \ud83d text' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MalformedResponseError);
    expect((error as Error).message).toMatch(/not valid UTF-8.*nothing was written$/);
    expect((await readFile(file)).equals(before)).toBe(true);
  });

  it('an empty alt text (a decorative image) writes nothing, and says why', async () => {
    const [, file, name] = await photo();
    const before = await readFile(file);
    const result = await suite.writer.write({
      image: name,
      source: 'alt-text',
      answer: '',
      model: 'm',
    });
    expect(result).toMatchObject({ status: 'empty', reason: /decorative/ });
    expect((await readFile(file)).equals(before)).toBe(true);
  });

  it('a temporary file ExifTool left behind is not overwritten', async () => {
    const [dir, file, name] = await photo();
    await writeFile(`${file}_exiftool_tmp`, 'left over');
    await expect(suite.writer.write(caption(name))).rejects.toThrow(
      /photo\.jpg_exiftool_tmp is in the way/,
    );
    expect(await readFile(`${file}_exiftool_tmp`, 'utf8')).toBe('left over');
    expect(await listing(dir)).toEqual(['photo.jpg', 'photo.jpg_exiftool_tmp']);
  });

  it('a BMP cannot hold metadata: skipped, said once per run', async () => {
    const dir = path.join(suite.root, 'bmp');
    await mkdir(dir);
    for (const name of ['a.bmp', 'b.bmp'])
      await copyFile(
        path.join(import.meta.dirname, '../fixtures/images/split.bmp'),
        path.join(dir, name),
      );
    const first = await suite.writer.write(caption('bmp/a.bmp'));
    const second = await suite.writer.write(caption('bmp/b.bmp'));
    expect(first.status).toBe('unsupported');
    expect(first.notes).toEqual([
      { key: 'bmp', message: expect.stringMatching(/^BMP files cannot hold metadata/) },
    ]);
    expect(second.notes).toEqual([]);
    expect(await listing(dir)).toEqual(['a.bmp', 'b.bmp']);
  });
});

describe('files that are more than one name', () => {
  it('a symbolic link is written through: the link stays a link', async () => {
    const [dir, file] = await photo();
    await symlink('photo.jpg', path.join(dir, 'link.jpg'));
    await suite.writer.write(caption(path.relative(suite.root, path.join(dir, 'link.jpg'))));
    expect((await readBack(suite.et, file))['XMP-dc:Description']).toBe(TRICKY);
    const { lstat } = await import('node:fs/promises');
    expect((await lstat(path.join(dir, 'link.jpg'))).isSymbolicLink()).toBe(true);
  });

  it('a hard link gets a warning: its other name keeps the old metadata', async () => {
    const [dir, file, name] = await photo();
    await link(file, path.join(dir, 'twin.jpg'));
    const result = await suite.writer.write(caption(name));
    expect(result.warnings).toEqual([expect.stringMatching(/has 2 hard links/)]);
  });
});

describe('the dry run', () => {
  it('reports every change and writes nothing', async () => {
    const dry = await openWriter(suite.root, { dryRun: true });
    try {
      const [dir, file, name] = await photo();
      await (
        await import('../helpers/metadata.js')
      ).prepare(suite.et, file, {
        'XMP-dc:Subject': ['Holiday'],
      });
      const { utimes } = await import('node:fs/promises');
      await utimes(file, OLD_TIME, OLD_TIME);
      const before = await readFile(file);
      const result = await dry.write({
        image: name,
        source: 'tags',
        answer: ['cat', 'holiday'],
        model: 'm',
      });
      expect(result.status).toBe('planned');
      expect(result.changes).toEqual([
        { field: 'XMP-dc:Subject', before: ['Holiday'], after: ['Holiday', 'cat'] },
        { field: 'XMP-lr:HierarchicalSubject', before: undefined, after: ['cat', 'holiday'] },
        { field: 'XMP-digiKam:TagsList', before: undefined, after: ['cat', 'holiday'] },
        {
          field: 'XMP-photoshop:CaptionWriter',
          before: undefined,
          after: 'describe-image (m; tags)',
        },
        { field: 'XMP-xmp:MetadataDate', before: undefined, after: '2026:03:14 15:09:26+00:00' },
      ]);
      expect((await readFile(file)).equals(before)).toBe(true);
      expect((await stat(file)).mtime.getTime()).toBe(OLD_TIME.getTime());
      expect(await listing(dir)).toEqual(['photo.jpg']);
    } finally {
      await dry.close();
    }
  });
});

describe('options', () => {
  it('the modification time is kept to its fraction of a second (-P alone keeps whole seconds)', async () => {
    const [, file, name] = await photo();
    const { utimes } = await import('node:fs/promises');
    // 2020-01-02T03:04:05.123456 UTC: most file systems keep the fraction.
    await utimes(file, 1577934245.123456, 1577934245.123456);
    const before = (await stat(file)).mtimeMs;
    expect(before % 1000).toBeGreaterThan(0);
    expect((await suite.writer.write(caption(name))).status).toBe('written');
    expect(Math.abs((await stat(file)).mtimeMs - before)).toBeLessThan(0.001);
    expect((await readBack(suite.et, file))['XMP-dc:Description']).toBe(TRICKY);
  });

  it('--touch: the modification time is updated', async () => {
    const touching = await openWriter(suite.root, { keepMtime: false });
    try {
      const [, file, name] = await photo();
      await touching.write(caption(name));
      expect((await stat(file)).mtime.getTime()).toBeGreaterThan(OLD_TIME.getTime());
    } finally {
      await touching.close();
    }
  });

  it('--backup: the original is kept beside the photo, as ExifTool names it', async () => {
    const backing = await openWriter(suite.root, { backup: true });
    try {
      const [dir, file, name] = await photo();
      const before = await readFile(file);
      await backing.write(caption(name));
      expect(await listing(dir)).toEqual(['photo.jpg', 'photo.jpg_original']);
      expect((await readFile(`${file}_original`)).equals(before)).toBe(true);
    } finally {
      await backing.close();
    }
  });
});

describe('the suite.writer', () => {
  it('serialises writes to one photo: ten at once lose no keyword', async () => {
    const [, file, name] = await photo();
    const words = Array.from({ length: 10 }, (_, i) => `word${i}`);
    await Promise.all(
      words.map((w) =>
        suite.writer.write({ image: name, source: 'tags', answer: [w], model: 'm' }),
      ),
    );
    // In the order each reached the lock, which need not be the order of the calls.
    expect([(await readBack(suite.et, file))['XMP-dc:Subject']].flat().sort()).toEqual(words);
  });

  it('knows what it already wrote, per source', async () => {
    const [, , name] = await photo('png');
    expect(await suite.writer.alreadyWritten(name, 'caption')).toBe(false);
    await suite.writer.write(caption(name));
    expect(await suite.writer.alreadyWritten(name, 'caption')).toBe(true);
    expect(await suite.writer.alreadyWritten(name, 'ocr')).toBe(false);
    expect(await suite.writer.alreadyWritten(name, 'alt-text')).toBe(false);
    expect(await suite.writer.alreadyWritten('no/such.jpg', 'caption')).toBe(false);
  });

  it('refuses writes once closed', async () => {
    const closing = await openWriter(suite.root);
    const [, , name] = await photo();
    await closing.close();
    await expect(closing.write(caption(name))).rejects.toBeInstanceOf(InterruptedError);
    expect(closing.processIds()).toEqual([]);
  });

  it('says Perl is needed when ExifTool cannot start', async () => {
    const error = await openMetadataWriter(
      writerOptions(suite.root, { exiftoolPath: '/bin/false', startTimeoutMs: 1500 }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(
      /^--write-metadata: ExifTool could not start \(no answer within 1.5 s\); it needs Perl/,
    );
  });
});
