/**
 * Test images, generated with sharp (no binary fixtures needed for common formats).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

export type Format = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif';

export async function makeImage(
  format: Format = 'png',
  opts: { width?: number; height?: number; color?: string; alpha?: boolean } = {},
): Promise<Buffer> {
  const { width = 64, height = 48, color = '#3366cc', alpha = false } = opts;
  const image = sharp({
    create: {
      width,
      height,
      channels: alpha ? 4 : 3,
      background: alpha ? { r: 50, g: 100, b: 200, alpha: 0.5 } : color,
    },
  });
  return image.toFormat(format).toBuffer();
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'describe-image-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Writes an image file and returns its path. */
export async function writeImage(
  dir: string,
  name: string,
  format: Format = 'png',
  opts = {},
): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, await makeImage(format, opts));
  return file;
}
