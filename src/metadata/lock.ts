/**
 * One write at a time per file. ExifTool reads a file, writes a temporary copy and renames it
 * over the original; two of those on one path at once lost updates and, in 5 of 15 trials,
 * deleted the file (reference §8). Callers name a file by its real path (see `lockKey()`), so
 * two spellings of one path share a lock.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';

export class PathLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task on `key` has finished, and before any later one. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      await previous;
      return await task();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Paths with a task running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}

/** The real path of `file` (symbolic links resolved); for a file not there yet, of its folder. */
export async function lockKey(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    const dir = await realpath(path.dirname(file)).catch(() => path.dirname(file));
    return path.join(dir, path.basename(file));
  }
}
