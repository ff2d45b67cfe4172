/**
 * Small streaming helpers for JSON Lines: a file written through a 1 MiB buffer (a shard of
 * 200 MB goes out in large writes, never whole in memory), and lines read back from any byte
 * stream (a local file or a download), split across chunks and UTF-8 sequences alike.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { temporaryPath } from '../output/atomic.js';

const BUFFER = 1024 * 1024;

/**
 * A file written to a temporary name beside `target` and renamed over it by `commit()`, so
 * that a crash never leaves half a file under the real name. Writes are buffered.
 */
export class BufferedFile {
  private chunks: Uint8Array[] = [];
  private pending = 0;
  /** Bytes written so far. */
  bytes = 0;

  private constructor(
    readonly target: string,
    private readonly temp: string,
    private handle: FileHandle | undefined,
  ) {}

  static async create(target: string, mode = 0o600): Promise<BufferedFile> {
    const temp = temporaryPath(target);
    return new BufferedFile(target, temp, await open(temp, 'wx', mode));
  }

  async write(chunk: Uint8Array | string): Promise<void> {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.bytes += bytes.length;
    if (this.pending + bytes.length > BUFFER) await this.flush();
    if (bytes.length >= BUFFER) {
      await this.writeAll(bytes);
      return;
    }
    this.chunks.push(bytes);
    this.pending += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.pending === 0) return;
    const chunks = this.chunks;
    const total = this.pending;
    this.chunks = [];
    this.pending = 0;
    if (!this.handle) throw new Error(`${this.target} is closed`);
    // writev, not a concatenated copy: a copy per megabyte is garbage the collector lets pile up.
    const { bytesWritten } = await this.handle.writev(chunks);
    if (bytesWritten < total) await this.writeAll(Buffer.concat(chunks).subarray(bytesWritten));
  }

  private async writeAll(bytes: Uint8Array): Promise<void> {
    if (!this.handle) throw new Error(`${this.target} is closed`);
    for (let at = 0; at < bytes.length;) {
      const { bytesWritten } = await this.handle.write(bytes, at, bytes.length - at);
      at += bytesWritten;
    }
  }

  /** Flushes, syncs and renames the file to its real name. */
  async commit(): Promise<void> {
    await this.flush();
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return;
    await handle.sync().catch(() => undefined);
    await handle.close();
    await rename(this.temp, this.target);
  }

  /** Drops the file (nothing appears under the real name). */
  async discard(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
    await rm(this.temp, { force: true });
  }
}

/**
 * The lines of a byte stream, without their line ends; blank lines are skipped. Each chunk is
 * searched once: a line of megabytes (an image in base64) arriving in small chunks costs
 * linear time.
 */
export async function* readLines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let pending: string[] = [];
  const take = (end: string): string => {
    const line = (pending.join('') + end).replace(/\r$/, '');
    pending = [];
    return line;
  };
  for await (const chunk of chunks) {
    const text = decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      const line = take(text.slice(start, end));
      start = end + 1;
      if (line.trim() !== '') yield line;
    }
    if (start < text.length) pending.push(text.slice(start));
  }
  const last = take(decoder.decode());
  if (last.trim() !== '') yield last;
}
