/**
 * Reading local images (src/input/images.ts readImage): small files (read once open), large
 * ones (read on the thread pool), pipes with no size, and each way a path can be wrong.
 */
import { closeSync, constants, createWriteStream, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { InputError, InterruptedError } from '../../src/errors.js';
import { classifyImageArg, readImage } from '../../src/input/images.js';
import { HAS_PROC_FD, hasReader, mkfifo, waitUntilOpen } from '../helpers/fifo.js';
import { tempDir } from '../helpers/images.js';
import { noise } from '../helpers/pixels.js';

let dir: string;
const noStdin = Readable.from([]);

function read(file: string, signal?: AbortSignal) {
  const arg = classifyImageArg(file);
  if (arg.kind === 'url') throw new Error('not a local file');
  return readImage(arg, dir, noStdin, signal);
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
    mkfifo(fifo);
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

describe('readImage on pipes, sockets and devices', () => {
  /** Reads the FIFO with nobody writing, stops the read once it waits, and checks it let go. */
  async function stopWhileWaiting(name: string, writer: 'none' | 'silent'): Promise<void> {
    const fifo = path.join(dir, name);
    mkfifo(fifo);
    const stop = new AbortController();
    const reading = read(name, stop.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    let writerFd: number | undefined;
    try {
      if (HAS_PROC_FD) await waitUntilOpen('self', fifo, 5000);
      // A writer that has opened the pipe but sends nothing: `<(curl …)` on a slow network.
      if (writer === 'silent') writerFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      stop.abort();
      const error = await reading;
      expect(error).toBeInstanceOf(InterruptedError);
      expect((error as InterruptedError).notSent).toBe(true);
      // The pipe is closed: no reader is left waiting on it, in a thread or anywhere else.
      if (writerFd !== undefined) closeSync(writerFd);
      writerFd = undefined;
      expect(hasReader(fifo)).toBe(false);
    } finally {
      if (writerFd !== undefined) closeSync(writerFd);
      // Before the fix the open blocked a thread of the pool: let it go, whatever happened.
      hasReader(fifo);
    }
  }

  it('a FIFO with no writer: the signal (Ctrl-C) stops the wait and closes it', async () => {
    await stopWhileWaiting('no-writer.png', 'none');
  });

  it('a FIFO whose writer sends nothing: the signal stops the read and closes it', async () => {
    await stopWhileWaiting('silent-writer.png', 'silent');
  });

  it('a signal already aborted stops a pipe read at once', async () => {
    mkfifo(path.join(dir, 'late.png'));
    const error = await read('late.png', AbortSignal.abort()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(hasReader(path.join(dir, 'late.png'))).toBe(false);
  });

  it('a socket or a device is an InputError: not a regular file', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'sock.png'), resolve));
    try {
      expect(await inputError(read('sock.png'))).toBe(
        'sock.png: not a regular file (a socket or a device); give an image file',
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await inputError(read('/dev/null'))).toBe(
      '/dev/null: not a regular file (a socket or a device); give an image file',
    );
  });
});
