/**
 * Image arguments: what each one is (file, URL, data URL, stdin), and the bytes of the local
 * ones, checked to be an image before any request is made.
 */
import { closeSync, constants, fstatSync, open, read, readSync } from 'node:fs';
import path from 'node:path';
import { DescribeImageError, InputError, InterruptedError, UsageError } from '../errors.js';
import type { InStream } from '../deps.js';
import { stampOf, type FileStamp } from '../metadata/stamp.js';
import { describeNonImage, MIME_BY_FORMAT, sniffFormat, type ImageFormat } from './sniff.js';

export type ImageArg =
  | { kind: 'file'; path: string; name: string }
  | { kind: 'url'; url: string; name: string }
  | { kind: 'data'; url: string; name: string }
  | { kind: 'stdin'; name: string };

/** Largest local input read into memory, before any preparation. */
export const MAX_INPUT_BYTES = 256 * 1024 * 1024;
/** Files up to this size are read without the thread pool. */
const SYNC_READ_MAX = 1024 * 1024;

// fs's callback forms as promises, written out: `import { promisify } from 'node:util'` makes
// Node build node:util's whole module namespace, which loads several of its parts (~1 ms).
function openFile(file: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => {
    open(file, flags, (error, fd) => (error ? reject(error) : resolve(fd)));
  });
}

function readAt(
  fd: number,
  into: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<{ bytesRead: number }> {
  return new Promise((resolve, reject) => {
    read(fd, into, offset, length, position, (error, bytesRead) =>
      error ? reject(error) : resolve({ bytesRead }),
    );
  });
}

export const STDIN_NAME = '-';

/** Whether the text is a URL or data URL that this tool sends as an image. */
export function isUrlArg(arg: string): boolean {
  return /^https?:\/\//i.test(arg) || /^data:/i.test(arg);
}

// mime-types carries a 160 KB database: it is loaded only when an extension must be looked up.
const loadMime = async () => (await import('mime-types')).default;

/** Whether a string that is not an existing path still looks like a file name of an image. */
export async function looksLikeImagePath(arg: string): Promise<boolean> {
  if (/\s/.test(arg) || arg.length > 4096 || !/\.[a-z0-9]{2,5}$/i.test(arg)) return false;
  const type = (await loadMime()).lookup(arg);
  return typeof type === 'string' && type.startsWith('image/');
}

/** Classifies one argument already known to be an image (not the prompt). */
export function classifyImageArg(arg: string): ImageArg {
  if (arg === STDIN_NAME) return { kind: 'stdin', name: STDIN_NAME };
  if (/^https?:\/\//i.test(arg)) return { kind: 'url', url: arg, name: arg };
  if (/^data:/i.test(arg)) return { kind: 'data', url: arg, name: shortDataName(arg) };
  return { kind: 'file', path: arg, name: path.normalize(arg) };
}

function shortDataName(url: string): string {
  const comma = url.indexOf(',');
  const head = comma === -1 ? url.slice(0, 40) : url.slice(0, comma);
  return `${head},…`;
}

/** Local image bytes and what they are. */
export interface ImageBytes {
  name: string;
  data: Uint8Array;
  format: ImageFormat;
  mime: string;
  /**
   * A regular file's size, times and inode when it was read (from the descriptor it was read
   * from, so it describes exactly these bytes): write-back refuses a file changed since.
   */
  stamp?: FileStamp | undefined;
}

/**
 * Reads a local image (file, stdin or data URL) and checks its bytes are an image. `signal`
 * (Ctrl-C) stops the wait for a pipe's writer with an InterruptedError (`notSent`).
 */
export async function readImage(
  arg: Exclude<ImageArg, { kind: 'url' }>,
  cwd: string,
  stdin: InStream,
  signal?: AbortSignal,
): Promise<ImageBytes> {
  let data: Uint8Array;
  let claim: Claim | undefined;
  let stamp: FileStamp | undefined;
  switch (arg.kind) {
    case 'file':
      ({ data, stamp } = await readLocalFile(arg.path, cwd, signal));
      claim = { path: arg.path };
      break;
    case 'stdin':
      data = await readStdin(stdin);
      break;
    case 'data': {
      const decoded = decodeDataUrl(arg.url);
      data = decoded.data;
      claim = { mime: decoded.mime };
      break;
    }
  }
  const format = await checkImageBytes(arg.name, data, claim);
  return { name: arg.name, data, format, mime: MIME_BY_FORMAT[format], stamp };
}

/** What a file name or a data URL says the bytes are. */
export interface Claim {
  path?: string | undefined;
  mime?: string | undefined;
}

/**
 * The format of `data`, from its magic numbers, or an InputError saying why it is not an
 * image. The name's extension (or a data URL's type), looked up with mime-types, only makes
 * the message say what the file claimed to be.
 */
export async function checkImageBytes(
  name: string,
  data: Uint8Array,
  claim?: Claim,
): Promise<ImageFormat> {
  const label = name === STDIN_NAME ? 'standard input' : name;
  if (data.length === 0) throw new InputError(`${label}: the image is empty (0 bytes)`);
  const format = sniffFormat(data);
  if (format) return format;
  const mime = await loadMime();
  const claimed = claim?.mime ?? (claim?.path ? mime.lookup(claim.path) : false);
  const what = describeNonImage(data);
  if (typeof claimed === 'string' && claimed.startsWith('image/')) {
    throw new InputError(
      `${label}: not a valid ${(mime.extension(claimed) || claimed).toUpperCase()} image (${what}); check the file`,
    );
  }
  throw new InputError(
    `${label}: not an image (${what}); give a PNG, JPEG, WebP, GIF, HEIC, AVIF, TIFF or BMP file`,
  );
}

// O_NONBLOCK: a FIFO opened without it waits for a writer inside one of libuv's threads,
// where nothing can stop it (Node waits for that thread at exit, so even Ctrl-C hangs). It
// changes nothing for a regular file. Windows has no such flag (and no FIFOs): 0.
const OPEN_FLAGS = constants.O_RDONLY | ((constants.O_NONBLOCK as number | undefined) ?? 0);

async function readLocalFile(
  file: string,
  cwd: string,
  signal: AbortSignal | undefined,
): Promise<{ data: Uint8Array; stamp?: FileStamp }> {
  const full = path.resolve(cwd, file);
  let fd: number | undefined;
  try {
    // Opened on the thread pool (a slow disk or network mount stalls nothing else), then
    // checked and, when small, read with blocking calls: for a file the open has just found
    // that takes microseconds, where fs/promises' FileHandle costs ~250 µs of this thread's
    // time per file, and a batch reads thousands of files while answers stream in.
    fd = await openFile(full, OPEN_FLAGS);
    const info = fstatSync(fd);
    if (info.isDirectory())
      throw new InputError(`${file}: is a directory; give the image files in it`);
    if (info.isFIFO()) {
      // A pipe (`<(curl …)`) has no size: read it to the end, on the event loop.
      const pipe = fd;
      fd = undefined;
      return { data: await readPipe(pipe, file, signal) };
    }
    if (!info.isFile()) throw notRegular(file);
    if (info.size > MAX_INPUT_BYTES) {
      throw new InputError(
        `${file}: too large (${(info.size / 1048576).toFixed(0)} MB); the limit is 256 MB`,
      );
    }
    // A large file is read on the thread pool, so as not to stall requests in flight.
    const data = Buffer.allocUnsafe(info.size);
    const sync = info.size <= SYNC_READ_MAX;
    let filled = 0;
    while (filled < data.length) {
      const want = data.length - filled;
      const got = sync
        ? readSync(fd, data, filled, want, filled)
        : (await readAt(fd, data, filled, want, filled)).bytesRead;
      if (got === 0) break;
      filled += got;
    }
    return { data: data.subarray(0, filled), stamp: stampOf(info) };
  } catch (error) {
    if (error instanceof DescribeImageError) throw error;
    throw fileError(file, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function notRegular(file: string): InputError {
  return new InputError(`${file}: not a regular file (a socket or a device); give an image file`);
}

/**
 * Reads a FIFO or pipe opened non-blocking through a `net.Socket`, so that the wait for its
 * writer holds no thread and `signal` can end it (Node's advice for non-blocking fds:
 * https://nodejs.org/api/fs.html#fscreatereadstreampath-options). The socket owns `fd`.
 */
async function readPipe(fd: number, file: string, signal?: AbortSignal): Promise<Uint8Array> {
  const { socket, release } = await pipeSocket(fd, signal);
  try {
    return await readCapped(socket, file);
  } finally {
    release();
  }
}

/** A socket over a non-blocking pipe fd, destroyed with an InterruptedError on `signal`. */
async function pipeSocket(
  fd: number,
  signal: AbortSignal | undefined,
): Promise<{ socket: import('node:net').Socket; release: () => void }> {
  const { Socket } = await import('node:net');
  let socket: import('node:net').Socket;
  try {
    socket = new Socket({ fd, readable: true, writable: false });
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  const stop = (): void => {
    socket.destroy(new InterruptedError('stopped while waiting for a pipe', { notSent: true }));
  };
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  return {
    socket,
    release: () => {
      signal?.removeEventListener('abort', stop);
      socket.destroy();
    },
  };
}

/**
 * A text file or a FIFO (`--files-from <(find …)`) as a stream, opened without blocking one of
 * libuv's threads; `signal` ends the wait for a FIFO's writer with an InterruptedError.
 */
export async function openListStream(
  file: string,
  cwd: string,
  signal: AbortSignal | undefined,
): Promise<{ stream: NodeJS.ReadableStream; release: () => void }> {
  let fd: number;
  try {
    fd = await openFile(path.resolve(cwd, file), OPEN_FLAGS);
  } catch (error) {
    throw fileError(file, error);
  }
  const info = fstatSync(fd);
  if (info.isFIFO()) {
    const { socket, release } = await pipeSocket(fd, signal);
    return { stream: socket, release };
  }
  if (!info.isFile()) {
    closeSync(fd);
    throw notRegular(file);
  }
  const { createReadStream } = await import('node:fs');
  const stream = createReadStream('', { fd });
  return { stream, release: () => stream.destroy() };
}

/** All of a stream's bytes, or an InputError past MAX_INPUT_BYTES. */
async function readCapped(
  stream: AsyncIterable<string | Uint8Array>,
  label: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > MAX_INPUT_BYTES)
      throw new InputError(`${label}: more than 256 MB; the limit is 256 MB`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** One line on why a file could not be read. */
export function fileError(file: string, error: unknown): InputError {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return new InputError(`${file}: no such file`);
    case 'EACCES':
    case 'EPERM':
      return new InputError(`${file}: permission denied; check the file's permissions`);
    case 'EISDIR':
      return new InputError(`${file}: is a directory; give the image files in it`);
    case 'ENOTDIR':
      return new InputError(`${file}: a part of the path is not a directory`);
    // open(2) of a socket, or of a device with no driver behind it.
    case 'ENXIO':
      return notRegular(file);
    default:
      return new InputError(
        `${file}: cannot read it (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
  }
}

async function readStdin(stdin: InStream): Promise<Uint8Array> {
  if (stdin.isTTY) {
    throw new UsageError(
      '"-" reads the image from standard input, but it is a terminal; pipe an image into it',
    );
  }
  return readCapped(stdin, 'standard input');
}

/** Reads all of standard input as text (for `-p -`). */
export async function readStdinText(stdin: InStream): Promise<string> {
  if (stdin.isTTY)
    throw new UsageError(
      '"-p -" reads the prompt from standard input, but it is a terminal; pipe the prompt into it',
    );
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of stdin)
    text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

/** Parses `data:[<mime>][;base64],<data>` (RFC 2397). */
export function decodeDataUrl(url: string): { mime: string | undefined; data: Uint8Array } {
  const match = /^data:([^,]*?),(.*)$/is.exec(url);
  if (!match)
    throw new InputError(
      `${shortDataName(url)}: not a valid data URL (expected data:<type>;base64,<data>)`,
    );
  const meta = (match[1] ?? '').split(';').map((s) => s.trim());
  const isBase64 = meta.some((m) => m.toLowerCase() === 'base64');
  const type = meta[0] && meta[0].includes('/') ? meta[0].toLowerCase() : undefined;
  const payload = match[2] ?? '';
  if (isBase64) {
    const clean = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) {
      throw new InputError(`${shortDataName(url)}: the data URL's base64 is not valid`);
    }
    return { mime: type, data: Buffer.from(clean, 'base64') };
  }
  try {
    return { mime: type, data: Buffer.from(decodeURIComponent(payload), 'latin1') };
  } catch {
    throw new InputError(`${shortDataName(url)}: the data URL's percent-encoding is not valid`);
  }
}
