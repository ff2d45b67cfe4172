/**
 * Reading local images (src/input/images.ts readImage): small files (read once open), large
 * ones (read on the thread pool), pipes with no size, and each way a path can be wrong.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { classifyImageArg, readImage } from '../../src/input/images.js';
import { tempDir } from '../helpers/images.js';
import { noise } from '../helpers/pixels.js';

let dir: string;
const noStdin = Readable.from([]);

function read(file: string) {
  const arg = classifyImageArg(file);
  if (arg.kind === 'url') throw new Error('not a local file');
  return readImage(arg, dir, noStdin);
}

async function inputError(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return (error as InputError).message;
}

beforeAll(async () => {
  dir = await tempDir();
});

describe('readImage on local files', () => {
  it('a small file: its exact bytes, its format', async () => {
    const png = await noise(20, 10).png().toBuffer();
    await writeFile(path.join(dir, 'small.png'), png);
    const got = await read('small.png');
    expect(Buffer.from(got.data).equals(png)).toBe(true);
    expect(got).toMatchObject({ name: 'small.png', format: 'png', mime: 'image/png' });
  });

  it('a file over 1 MB: its exact bytes too', async () => {
    const png = await noise(700, 700).png({ compressionLevel: 0 }).toBuffer();
    expect(png.length).toBeGreaterThan(1024 * 1024);
    await writeFile(path.join(dir, 'large.png'), png);
    const got = await read('large.png');
    expect(Buffer.from(got.data).equals(png)).toBe(true);
  });

  it('a pipe, which has no size, is read to its end', async () => {
    const fifo = path.join(dir, 'pipe.png');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const png = await noise(300, 300).png().toBuffer();
    const writer = createWriteStream(fifo);
    writer.end(png);
    const got = await read('pipe.png');
    expect(Buffer.from(got.data).equals(png)).toBe(true);
  });

  it('a missing file, a directory, an empty file, a file that is not an image', async () => {
    expect(await inputError(read('missing.png'))).toBe('missing.png: no such file');
    await mkdir(path.join(dir, 'folder.png'));
    expect(await inputError(read('folder.png'))).toBe(
      'folder.png: is a directory; give the image files in it',
    );
    await writeFile(path.join(dir, 'empty.png'), '');
    expect(await inputError(read('empty.png'))).toBe('empty.png: the image is empty (0 bytes)');
    await writeFile(path.join(dir, 'notes.png'), 'just some text\n');
    expect(await inputError(read('notes.png'))).toBe(
      'notes.png: not a valid PNG image (it looks like text); check the file',
    );
  });
});
