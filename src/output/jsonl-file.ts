/**
 * `--output FILE`: JSON Lines appended one whole line per write, as each image finishes, so a
 * crash loses nothing finished; `--resume` reads back which images already succeeded.
 */
import {
  closeSync,
  createReadStream,
  fsyncSync,
  openSync,
  readSync,
  fstatSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileError, isUrlArg, STDIN_NAME } from '../input/images.js';
import type { Redactor } from './guard.js';

export class JsonlFile {
  private constructor(
    private fd: number | undefined,
    private readonly redactor: Redactor,
  ) {}

  /** Opens `file` for appending (creating it), starting on a fresh line. */
  static open(file: string, cwd: string, redactor: Redactor): JsonlFile {
    const full = path.resolve(cwd, file);
    let fd: number;
    try {
      fd = openSync(full, 'a+');
    } catch (error) {
      throw fileError(file, error);
    }
    // A crash in the middle of a line leaves no newline at the end: do not glue onto it.
    const size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) writeSync(fd, '\n');
    }
    return new JsonlFile(fd, redactor);
  }

  /** Appends one line (already ending in a newline) in a single write, redacted. */
  append(line: string): void {
    if (this.fd === undefined) throw new Error('the output file is closed');
    writeSync(this.fd, this.redactor.redact(line));
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fsyncSync(this.fd);
    } catch {
      // Not every file system supports fsync (pipes, some FUSE mounts); the data is written.
    }
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The key an image is resumed by: its absolute path, or the URL. */
export function resumeKey(image: string, cwd: string): string | undefined {
  if (image === STDIN_NAME || /^data:/i.test(image)) return undefined;
  return isUrlArg(image) ? image : path.resolve(cwd, image);
}

/** Keys of the images recorded in `file` with an answer (no `error`). Missing file: none. */
export async function readFinished(file: string, cwd: string): Promise<Set<string>> {
  const done = new Set<string>();
  const full = path.resolve(cwd, file);
  const stream = createReadStream(full);
  // Loaded here: only --resume reads a file back, and other runs need not load readline.
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      let record: { image?: unknown; error?: unknown };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        continue; // a line torn by a crash: that image is simply done again
      }
      if (typeof record.image !== 'string' || record.error) continue;
      const key = resumeKey(record.image, cwd);
      if (key) done.add(key);
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return done;
    throw fileError(file, error);
  } finally {
    lines.close();
  }
  return done;
}
