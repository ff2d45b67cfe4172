/**
 * `--sidecar`: each answer next to its image as `NAME.txt` (`NAME.json` with --json), written
 * through `writeFileAtomic()`, so no half-written sidecar exists and no secret reaches one.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { writeFailure, writeFileAtomic } from './atomic.js';
import type { Redactor } from './guard.js';

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
export async function writeSidecar(
  target: string,
  cwd: string,
  content: string,
  redactor: Redactor,
): Promise<void> {
  try {
    await writeFileAtomic(target, cwd, content, redactor);
  } catch (error) {
    throw new InputError(
      `${target}: cannot write the sidecar (${writeFailure(error)}); the answer was not saved`,
      { cause: error },
    );
  }
}
