/**
 * Write-back tests: photos in every format the tool reads, a second ExifTool (not the
 * writer's) to prepare files and read them back, decoded pixels, and a folder's listing.
 */
import { copyFile, readdir, readFile, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ExifTool, exiftoolPath } from 'exiftool-vendored';
import decodeHeic from 'heic-decode';
import sharp from 'sharp';
import { afterAll, beforeAll } from 'vitest';
import {
  openMetadataWriter,
  type MetadataWriter,
  type WriterOptions,
} from '../../src/metadata/writer.js';
import { tempDir } from './images.js';
import { noise } from './pixels.js';

export const FIXTURES = path.join(import.meta.dirname, '../fixtures/images');

/** Text that breaks naive writers: non-ASCII, CJK, an emoji, quotes, an entity, a newline. */
export const TRICKY = 'Ein Kätzchen (ü) 日本 🐈 "quoted" & &amp; <b>\nsecond line';
export const ALT = 'A ginger cat 🐈 on a "blue" sofa, ü 日本';
export const KEYWORDS = ['cat', 'Sofa', '日本', 'ü-umlaut', 'emoji 🐈', 'say "hi"'];

export type PhotoKind = 'jpeg' | 'png' | 'png16' | 'webp' | 'heic' | 'avif' | 'tiff' | 'gif';

export const PHOTO_KINDS: readonly PhotoKind[] = [
  'jpeg',
  'png',
  'png16',
  'webp',
  'heic',
  'avif',
  'tiff',
  'gif',
];

const EXTENSION: Record<PhotoKind, string> = {
  jpeg: 'jpg',
  png: 'png',
  png16: 'png',
  webp: 'webp',
  heic: 'heic',
  avif: 'avif',
  tiff: 'tif',
  gif: 'gif',
};

/** A whole-second time in the past, so a kept modification time is plain to see. */
export const OLD_TIME = new Date('2020-01-02T03:04:05Z');

/** Writes a photo of `kind` (random pixels; a two-frame animation for GIF) as `dir/name.ext`. */
export async function makePhoto(dir: string, name: string, kind: PhotoKind): Promise<string> {
  const file = path.join(dir, `${name}.${EXTENSION[kind]}`);
  const picture = noise(32, 24);
  switch (kind) {
    case 'heic':
      await copyFile(path.join(FIXTURES, 'split.heic'), file);
      break;
    case 'png16':
      await picture.toColourspace('rgb16').png().toFile(file);
      break;
    case 'gif': {
      const frames = await Promise.all([0, 1].map(() => noise(16, 16).png().toBuffer()));
      await sharp(frames, { join: { animated: true } })
        .gif()
        .toFile(file);
      break;
    }
    case 'jpeg':
      await picture.jpeg().toFile(file);
      break;
    case 'png':
      await picture.png().toFile(file);
      break;
    case 'webp':
      await picture.webp({ lossless: true }).toFile(file);
      break;
    case 'avif':
      await picture.avif().toFile(file);
      break;
    case 'tiff':
      await picture.tiff().toFile(file);
      break;
  }
  await utimes(file, OLD_TIME, OLD_TIME);
  return file;
}

/** Decoded pixels: every frame, 16-bit samples kept; HEIC through libheif. */
export async function pixels(file: string): Promise<Buffer> {
  if (file.endsWith('.heic')) {
    const decoded = await decodeHeic({ buffer: await readFile(file) });
    return Buffer.from(decoded.data);
  }
  return sharp(file, { pages: -1 }).raw({ depth: 'ushort' }).toBuffer();
}

/** A folder's file names, sorted. */
export async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** An ExifTool of the test's own, to prepare files and read them back. */
export function referenceExifTool(): ExifTool {
  return new ExifTool({ maxProcs: 1, taskRetries: 0, useMWG: false, readArgs: [] });
}

/** Every XMP, IPTC, EXIF IFD0 and GPS tag of a file, and its type, keyed `Group1:Tag`. */
export async function readBack(et: ExifTool, file: string): Promise<Record<string, unknown>> {
  const raw = await et.readRaw(file, {
    readArgs: [
      '-G1',
      '-api',
      'structformat=jsonq',
      '-XMP:all',
      '-IPTC:all',
      '-IFD0:all',
      '-GPS:all',
      '-File:FileType',
    ],
    useMWG: false,
  });
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'SourceFile' && key !== 'errors' && key !== 'warnings') out[key] = value;
  }
  return out;
}

/**
 * The same as `readBack()`, from the exiftool command itself, its output decoded whole: for
 * long texts, which exiftool-vendored's reader can damage (see src/metadata/exiftool.ts).
 */
export async function readBackWhole(file: string): Promise<Record<string, unknown>> {
  const run = spawnSync(
    await exiftoolPath(),
    ['-j', '-G1', '-api', 'structformat=jsonq', '-XMP:all', '-IPTC:all', '-IFD0:all', file],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const [tags] = JSON.parse(run.stdout.toString('utf8')) as Record<string, unknown>[];
  return tags ?? {};
}

/** Writes tags the way another program would (ExifTool, backups off). */
export async function prepare(
  et: ExifTool,
  file: string,
  tags: Record<string, string | string[]>,
): Promise<void> {
  await et.write(file, tags, { useMWG: false, writeArgs: ['-overwrite_original', '-P'] });
}

/** The options a run with `--write-metadata` and nothing else would use. */
export function writerOptions(cwd: string, extra: Partial<WriterOptions> = {}): WriterOptions {
  return {
    target: 'embed',
    sidecarStyle: 'append',
    keepMtime: true,
    backup: false,
    dryRun: false,
    cwd,
    now: () => Date.parse('2026-03-14T15:09:26Z'),
    ...extra,
  };
}

export const openWriter = (cwd: string, extra: Partial<WriterOptions> = {}) =>
  openMetadataWriter(writerOptions(cwd, extra));

export interface WriterSuite {
  /** A temporary folder, removed after the file's tests; the writer's `cwd`. */
  root: string;
  writer: MetadataWriter;
  /** The test's own ExifTool. */
  et: ExifTool;
}

/** A test file's folder, writer and reference ExifTool, opened before its tests, closed after. */
export function writerSuite(prefix: string, extra: Partial<WriterOptions> = {}): WriterSuite {
  const suite = {} as WriterSuite;
  beforeAll(async () => {
    suite.root = await tempDir(prefix);
    suite.writer = await openWriter(suite.root, extra);
    suite.et = referenceExifTool();
  });
  afterAll(async () => {
    await Promise.all([suite.writer.close(), suite.et.end()]);
    await rm(suite.root, { recursive: true, force: true });
  });
  return suite;
}

/** Whether a process runs (signal 0 asks without sending anything). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits, up to 10 s, until none of `pids` runs; whether they all ended. */
export async function allEnded(pids: readonly number[]): Promise<boolean> {
  for (let i = 0; i < 100 && pids.some(running); i++) await new Promise((r) => setTimeout(r, 100));
  return !pids.some(running);
}
