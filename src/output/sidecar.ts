/**
 * `--sidecar`: each answer next to its image as `NAME.txt` (`NAME.json` with --json), written
 * to a temporary file in the same directory and renamed, so no half-written sidecar exists.
 */
import { randomUUID } from 'node:crypto';
import { access, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';

/** `photos/cat.jpg` → `photos/cat.jpg.txt` (or `.json`). */
export function sidecarPath(image: string, json: boolean): string {
  return `${image}${json ? '.json' : '.txt'}`;
}

export async function sidecarExists(image: string, cwd: string, json: boolean): Promise<boolean> {
  try {
    await access(path.resolve(cwd, sidecarPath(image, json)));
    return true;
  } catch {
    return false;
  }
}

/** Writes `content` to `target` atomically (temporary file + rename). */
export async function writeSidecar(target: string, cwd: string, content: string): Promise<void> {
  const full = path.resolve(cwd, target);
  const temp = path.join(
    path.dirname(full),
    `.${path.basename(full)}.${randomUUID().slice(0, 8)}.tmp`,
  );
  try {
    await writeFile(temp, content, { flag: 'wx' });
    await rename(temp, full);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    const code = (error as { code?: string }).code;
    const why =
      code === 'EISDIR'
        ? 'a directory of that name is in the way'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'ENOSPC'
            ? 'the disk is full'
            : (error as Error).message;
    throw new InputError(`${target}: cannot write the sidecar (${why}); the answer was not saved`, {
      cause: error,
    });
  }
}
