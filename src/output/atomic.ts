/**
 * Whole-file writes that never leave half a file: the content goes to a temporary file in the
 * same directory, is flushed to disk, and is renamed over the target. Text passes the run's
 * `Redactor` first (see `guard.ts`): a secret cannot reach a file through here.
 */
import { randomUUID } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Redactor } from './guard.js';

export interface AtomicWriteOptions {
  /** File mode for a new file (default 0o666 less the umask). An existing file keeps its own. */
  mode?: number;
}

/**
 * Writes `content` to `target` (relative to `cwd`) atomically. Throws the file system's error
 * (with its `code`); the temporary file is removed on failure.
 */
export async function writeFileAtomic(
  target: string,
  cwd: string,
  content: string | Uint8Array,
  redactor: Redactor,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const full = path.resolve(cwd, target);
  const temp = temporaryPath(full);
  const data = typeof content === 'string' ? redactor.redact(content) : content;
  const mode =
    options.mode ??
    (await stat(full)
      .then((s) => s.mode & 0o7777)
      .catch(() => 0o666));
  let handle;
  try {
    handle = await open(temp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync().catch(() => undefined);
    await handle.close();
    handle = undefined;
    await rename(temp, full);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** `dir/.name.<random>.tmp`: hidden, beside the target, unique. */
export function temporaryPath(full: string): string {
  return path.join(path.dirname(full), `.${path.basename(full)}.${randomUUID().slice(0, 8)}.tmp`);
}

/** A short reason for a failed write, from the error's code. */
export function writeFailure(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'EISDIR':
      return 'a directory of that name is in the way';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOENT':
      return 'its folder does not exist';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
