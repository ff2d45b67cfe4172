/**
 * The write step: a filled document goes back to disk atomically (temporary file + rename,
 * through the run's `Redactor`), and only when the file is still the one that was read.
 * (`--dry-run` shows a diff instead: see `diff.ts`.)
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { writeFailure, writeFileAtomic } from '../output/atomic.js';
import { neutralize, type Redactor } from '../output/guard.js';
import { documentText } from './document.js';
import type { SourceDocument } from './types.js';

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Writes `text` (the document's text with its fixes, without the BOM) over the document.
 * Returns false when there is nothing to change. Throws `InputError` when the file changed on
 * disk since it was read (it is not overwritten), when the new content holds a secret the
 * run knows (the redactor would alter it: it is not written), or when the file system refuses
 * the write (the document is unchanged: the write is a temporary file and a rename).
 */
export async function writeDocument(
  doc: SourceDocument,
  text: string,
  cwd: string,
  redactor: Redactor,
): Promise<boolean> {
  if (text === doc.text) return false;
  const content = documentText(doc, text);
  if (redactor.redact(content) !== content) {
    throw new InputError(
      `${neutralize(doc.path)}: not written: it would hold a secret this run uses (the API key?)`,
    );
  }
  const now = await readFile(path.resolve(cwd, doc.path)).catch(() => undefined);
  if (!now || !sameBytes(now, doc.bytes)) {
    throw new InputError(
      `${neutralize(doc.path)}: changed on disk since it was read; not written (run again to fill it)`,
    );
  }
  try {
    await writeFileAtomic(doc.path, cwd, content, redactor);
  } catch (error) {
    throw new InputError(
      `${neutralize(doc.path)}: cannot write it (${writeFailure(error)}); it is unchanged`,
      { cause: error },
    );
  }
  return true;
}
