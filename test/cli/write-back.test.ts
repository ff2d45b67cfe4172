/**
 * Write-back end to end (`--write-metadata`, `--xmp-sidecar`): the built CLI spawned against a
 * loopback server, writing with a real ExifTool, read back by another. The photos are small
 * and need no preparation, so each request carries a photo's exact bytes and the server can
 * tell which photo it is about.
 */
import { chmod, copyFile, mkdir, readFile, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { ExifTool } from 'exiftool-vendored';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/images.js';
import {
  ALT,
  listing,
  makePhoto,
  pixels,
  prepare,
  readBack,
  referenceExifTool,
  TRICKY,
} from '../helpers/metadata.js';
import { answer, serverPool, sha256, type RecordedRequest } from '../helpers/server.js';

const serve = serverPool();
/** Keywords as the tags preset gives them (lowercase), with what breaks naive writers. */
const TAGS = ['cat', 'sofa', '日本', 'ü-umlaut', 'emoji 🐈', 'say "hi"'];
const MODEL = 'gpt-4o-2024-08-06';
/** A modification time with a fraction of a second, as most file systems keep them. */
const MTIME = 1577934245.123456;

let root: string;
let et: ExifTool;
let n = 0;

beforeAll(async () => {
  root = await tempDir('describe-image-cli-wb-');
  et = referenceExifTool();
});

afterAll(async () => {
  await et.end();
  await rm(root, { recursive: true, force: true });
});

/** A fresh folder of photos (`a.jpg`, `b.png` by default), each with MTIME. */
async function folder(
  photos: readonly [string, 'jpeg' | 'png' | 'gif'][] = [
    ['a', 'jpeg'],
    ['b', 'png'],
  ],
): Promise<{ dir: string; files: string[] }> {
  const dir = path.join(root, `case${++n}`);
  await mkdir(dir);
  const files: string[] = [];
  for (const [name, kind] of photos) {
    const file = await makePhoto(dir, name, kind);
    await utimes(file, MTIME, MTIME);
    files.push(file);
  }
  return { dir, files };
}

/** The answer each preset's schema asks for. */
function presetAnswer(req: RecordedRequest): string {
  const schema = String(req.json?.response_format?.json_schema?.name ?? '');
  if (schema.includes('caption')) return JSON.stringify({ caption: TRICKY });
  if (schema.includes('alt')) return JSON.stringify({ alt_text: ALT });
  if (schema.includes('tags')) return JSON.stringify({ tags: TAGS });
  if (schema.includes('objects')) return JSON.stringify({ objects: [{ name: 'cat', count: 2 }] });
  return TRICKY;
}

/** sha256 of the image a request carries (any format, sent as its bytes). */
function imageHash(req: RecordedRequest): string {
  const url = JSON.stringify(req.json?.messages ?? []).match(/data:image\/\w+;base64,([^"]+)/);
  if (!url) throw new Error('no image in the request');
  return sha256(Buffer.from(url[1]!, 'base64'));
}

/** A server that answers every preset; `before(file)` runs first for the photo a request is about. */
async function presetServer(
  files: readonly string[] = [],
  before?: (file: string) => Promise<void>,
): Promise<Awaited<ReturnType<typeof serve>>> {
  const byHash = new Map<string, string>();
  for (const file of files) byHash.set(sha256(await readFile(file)), file);
  return serve(async (req, res) => {
    const file = byHash.get(imageHash(req));
    if (file && before) await before(file);
    answer(req, res, { text: presetAnswer(req), model: MODEL });
  });
}

function run(args: string[], baseUrl: string, cwd: string): Promise<CliResult> {
  return runCli(args, { cwd, env: { DESCRIBE_IMAGE_BASE_URL: baseUrl }, timeoutMs: 60_000 });
}

/** Each photo's bytes, pixels and modification time, to compare after. */
async function snapshot(files: readonly string[]) {
  return Promise.all(
    files.map(async (file) => ({
      file,
      bytes: await readFile(file),
      pixels: await pixels(file),
      mtimeMs: (await stat(file)).mtimeMs,
    })),
  );
}

/** Only metadata changed: the same pixels, the same modification time. */
async function expectOnlyMetadataChanged(
  before: Awaited<ReturnType<typeof snapshot>>,
): Promise<void> {
  for (const photo of before) {
    expect((await readFile(photo.file)).equals(photo.bytes), photo.file).toBe(false);
    expect((await pixels(photo.file)).equals(photo.pixels), photo.file).toBe(true);
    expect(Math.abs((await stat(photo.file)).mtimeMs - photo.mtimeMs), photo.file).toBeLessThan(
      0.001,
    );
  }
}

describe('--write-metadata: each preset into JPEG and PNG, read back exactly', () => {
  it('caption, then alt text, then tags: every field, pixels and mtime kept, nothing else left', async () => {
    const { dir, files } = await folder();
    // What other programs put there: a keyword and a German description, which stay.
    await prepare(et, files[0]!, {
      'XMP-dc:Subject': ['Holiday', 'CAT'],
      'XMP-dc:Description-de': 'Eine Katze',
    });
    await utimes(files[0]!, MTIME, MTIME);
    const server = await presetServer();
    const names = await listing(dir);

    let before = await snapshot(files);
    const caption = await run(
      ['.', '--preset', 'caption', '--write-metadata'],
      server.baseUrl,
      dir,
    );
    expect(caption.stderr).toMatch(/metadata: 2 photos written/);
    expect(caption.code).toBe(0);
    expect(caption.stdout).toBe(`==> a.jpg <==\n${TRICKY}\n\n==> b.png <==\n${TRICKY}\n`);
    await expectOnlyMetadataChanged(before);

    before = await snapshot(files);
    const alt = await run(['.', '--preset', 'alt-text', '--write-metadata'], server.baseUrl, dir);
    expect(alt.code).toBe(0);
    await expectOnlyMetadataChanged(before);

    before = await snapshot(files);
    const tags = await run(['.', '--preset', 'tags', '--write-metadata'], server.baseUrl, dir);
    expect(tags.code).toBe(0);
    await expectOnlyMetadataChanged(before);

    for (const file of files) {
      const tags = await readBack(et, file);
      expect(tags['XMP-dc:Description'], file).toBe(TRICKY);
      expect(tags['IFD0:ImageDescription'], file).toBe(TRICKY);
      expect(tags['XMP-iptcCore:AltTextAccessibility'], file).toBe(ALT);
      expect(tags['XMP-lr:HierarchicalSubject'], file).toEqual(TAGS);
      expect(tags['XMP-digiKam:TagsList'], file).toEqual(TAGS);
      expect(tags['XMP-photoshop:CaptionWriter'], file).toBe(
        `describe-image (${MODEL}; caption, alt-text, tags)`,
      );
    }
    const jpeg = await readBack(et, files[0]!);
    // Merged: kept as they were, and "cat" not added again beside "CAT".
    expect(jpeg['XMP-dc:Subject']).toEqual(['Holiday', 'CAT', ...TAGS.slice(1)]);
    expect(jpeg['XMP-dc:Description-de']).toBe('Eine Katze');
    expect((await readBack(et, files[1]!))['XMP-dc:Subject']).toEqual(TAGS);
    expect(await listing(dir)).toEqual(names);
  });

  it('--json: each record says what was written where', async () => {
    const { dir } = await folder([['a', 'jpeg']]);
    const server = await presetServer();
    const r = await run(
      ['a.jpg', '--preset', 'caption', '--write-metadata', '--json'],
      server.baseUrl,
      dir,
    );
    expect(r.code).toBe(0);
    const [record] = jsonLines<Record<string, unknown>>(r.stdout);
    expect(record).toMatchObject({
      image: 'a.jpg',
      text: TRICKY,
      metadata: { file: 'a.jpg', status: 'written' },
    });
  });
});

describe('--xmp-sidecar', () => {
  it('writes photo.jpg.xmp (or photo.xmp) and leaves the photo byte for byte; an existing one is updated', async () => {
    const { dir, files } = await folder([['a', 'jpeg']]);
    const photo = await readFile(files[0]!);
    const server = await presetServer();

    const first = await run(['a.jpg', '--preset', 'caption', '--xmp-sidecar'], server.baseUrl, dir);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/metadata: 1 XMP sidecar written/);
    expect(await listing(dir)).toEqual(['a.jpg', 'a.jpg.xmp']);
    expect((await readFile(files[0]!)).equals(photo)).toBe(true);
    expect((await readBack(et, path.join(dir, 'a.jpg.xmp')))['XMP-dc:Description']).toBe(TRICKY);

    // Another program's field in the sidecar survives the next write.
    await prepare(et, path.join(dir, 'a.jpg.xmp'), { 'XMP-xmp:Rating': '4' });
    const second = await run(['a.jpg', '--preset', 'tags', '--xmp-sidecar'], server.baseUrl, dir);
    expect(second.code).toBe(0);
    const sidecar = await readBack(et, path.join(dir, 'a.jpg.xmp'));
    expect(sidecar['XMP-xmp:Rating']).toBe('4');
    expect(sidecar['XMP-dc:Description']).toBe(TRICKY);
    // Immich reads the description there first.
    expect(sidecar['XMP-tiff:ImageDescription']).toBe(TRICKY);
    expect(sidecar['XMP-dc:Subject']).toEqual(TAGS);

    const lightroom = await run(
      ['a.jpg', '--preset', 'alt-text', '--xmp-sidecar', '--xmp-name', 'photo.xmp'],
      server.baseUrl,
      dir,
    );
    expect(lightroom.code).toBe(0);
    expect(await listing(dir)).toEqual(['a.jpg', 'a.jpg.xmp', 'a.xmp']);
    expect((await readBack(et, path.join(dir, 'a.xmp')))['XMP-iptcCore:AltTextAccessibility']).toBe(
      ALT,
    );
    expect((await readFile(files[0]!)).equals(photo)).toBe(true);
  });
});

describe('a photo that cannot be written fails alone', () => {
  it('read-only, deleted mid-run, changed mid-run, a JPEG named .png: one error each, the rest written, exit 3', async () => {
    const { dir, files } = await folder([
      ['fine', 'jpeg'],
      ['gone', 'jpeg'],
      ['later', 'png'],
      ['locked', 'jpeg'],
      ['touched', 'jpeg'],
    ]);
    // A JPEG of its own (the server tells photos apart by their bytes), named .png.
    const liar = path.join(dir, 'liar.png');
    const source = await makePhoto(dir, 'liar-src', 'jpeg');
    await copyFile(source, liar);
    await unlink(source);
    const locked = path.join(dir, 'locked.jpg');
    await chmod(locked, 0o444);
    const bytes = new Map<string, Buffer>();
    for (const f of [...files, liar]) bytes.set(f, await readFile(f));
    // While the model "looks at" them, one photo is deleted and another is edited.
    const server = await presetServer([...files, liar], async (file) => {
      if (file.endsWith('gone.jpg')) await unlink(file);
      if (file.endsWith('touched.jpg')) await utimes(file, MTIME + 60, MTIME + 60);
    });

    const r = await run(['.', '--preset', 'caption', '--write-metadata'], server.baseUrl, dir);
    expect(r.code).toBe(3);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('describe-image: error: '));
    expect(errors.sort()).toEqual([
      'describe-image: error: gone.jpg: the file is gone (deleted or moved since it was read); nothing was written',
      'describe-image: error: liar.png: is a JPEG file named as PNG; rename it to .jpg before writing its metadata (nothing was written)',
      'describe-image: error: locked.jpg: the file is read-only, so its metadata was not written (the photo is unchanged); make it writable (chmod u+w) or write sidecars',
      'describe-image: error: touched.jpg: the file changed after it was read; its metadata was not written (describe it again)',
    ]);
    expect(r.stderr).toMatch(/summary: 2 succeeded · 4 failed/);
    for (const done of ['fine.jpg', 'later.png'])
      expect((await readBack(et, path.join(dir, done)))['XMP-dc:Description']).toBe(TRICKY);
    for (const untouched of [liar, locked, path.join(dir, 'touched.jpg')])
      expect((await readFile(untouched)).equals(bytes.get(untouched)!), untouched).toBe(true);
    expect(await listing(dir)).toEqual([
      'fine.jpg',
      'later.png',
      'liar.png',
      'locked.jpg',
      'touched.jpg',
    ]);
  });
});

describe('--dry-run', () => {
  it('sends nothing, writes nothing, and shows each field that would change', async () => {
    const { dir, files } = await folder([
      ['a', 'jpeg'],
      ['b', 'gif'],
    ]);
    await prepare(et, files[0]!, { 'XMP-dc:Subject': ['Holiday'] });
    await utimes(files[0]!, MTIME, MTIME);
    const before = await snapshot(files);
    const server = await presetServer();
    for (const target of ['--write-metadata', '--xmp-sidecar']) {
      const r = await run(['.', '--preset', 'tags', target, '--dry-run'], server.baseUrl, dir);
      expect(r.code).toBe(0);
      const file = target === '--xmp-sidecar' ? 'a.jpg.xmp' : 'a.jpg';
      const holiday = target === '--xmp-sidecar' ? '(none)' : '["Holiday"]';
      const added = target === '--xmp-sidecar' ? '["<keywords>"]' : '["Holiday","<keywords>"]';
      expect(r.stderr).toContain(`${file}: would set XMP-dc:Subject: ${holiday} → ${added}\n`);
      expect(r.stderr).toContain(
        `${file}: would set XMP-photoshop:CaptionWriter: (none) → "describe-image (${MODEL}; tags)"\n`,
      );
      expect(r.stderr).toMatch(
        /dry run: 2 (photos|XMP sidecars) would change, nothing was written \(<keywords> stands for each answer\)\n$/,
      );
    }
    expect(server.requests).toHaveLength(0);
    for (const photo of before) {
      expect((await readFile(photo.file)).equals(photo.bytes)).toBe(true);
      expect((await stat(photo.file)).mtimeMs).toBe(photo.mtimeMs);
    }
    expect(await listing(dir)).toEqual(['a.jpg', 'b.gif']);
  });
});

describe('--skip-existing and --resume', () => {
  it('skip the photos that already hold this preset’s answer, and only those', async () => {
    const { dir, files } = await folder();
    const server = await presetServer();
    const first = await run(['.', '--preset', 'caption', '--write-metadata'], server.baseUrl, dir);
    expect(first.code).toBe(0);
    expect(server.requests).toHaveLength(2);

    // Each time: a new photo, and b.png's caption now someone else's (so not this tool's).
    for (const [option, added, skipped] of [
      ['--skip-existing', 'c', 1],
      ['--resume', 'd', 2],
    ] as const) {
      await makePhoto(dir, added, 'jpeg');
      await prepare(et, files[1]!, { 'XMP-photoshop:CaptionWriter': 'Jane' });
      server.requests.length = 0;
      const again = await run(
        ['.', '--preset', 'caption', '--write-metadata', option],
        server.baseUrl,
        dir,
      );
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(
        new RegExp(`summary: 2 succeeded · 0 failed · ${skipped} skipped`),
      );
      expect(server.requests).toHaveLength(2);
    }
    // Another preset's answer is not this one: nothing is skipped.
    server.requests.length = 0;
    const tags = await run(
      ['.', '--preset', 'tags', '--write-metadata', '--skip-existing'],
      server.baseUrl,
      dir,
    );
    expect(tags.code).toBe(0);
    expect(server.requests).toHaveLength(4);
  });
});

describe('refused before any request (exit 2)', () => {
  it.each([
    [
      ['--schema', '{"type":"object"}', '--write-metadata'],
      /--write-metadata cannot write a custom --schema answer/,
    ],
    [
      ['--schema', '{"type":"object"}', '--xmp-sidecar'],
      /--xmp-sidecar cannot write a custom --schema answer/,
    ],
    [
      ['--together', '--write-metadata'],
      /--together gives one answer for all the images; it cannot be used with --write-metadata/,
    ],
    [
      ['--write-metadata', '--xmp-sidecar'],
      /give --write-metadata \(into the photo\) or --xmp-sidecar/,
    ],
    [['--backup'], /--backup needs --write-metadata or --xmp-sidecar/],
    [['--update-mtime'], /--update-mtime needs --write-metadata or --xmp-sidecar/],
    [['--write-metadata', '--xmp-name', 'photo.xmp'], /--xmp-name needs --xmp-sidecar/],
    [
      ['--xmp-sidecar', '--backup'],
      /--backup is about the photo, which --xmp-sidecar leaves as it is/,
    ],
  ])('%j', async (args, message) => {
    const { dir } = await folder();
    const server = await presetServer();
    const r = await run(['a.jpg', 'b.png', ...args], server.baseUrl, dir);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(server.requests).toHaveLength(0);
  });
});
