/**
 * The write step: a filled document goes back to disk atomically (temporary file + rename,
 * through the run's `Redactor`), and only when the file is still the one that was read.
 * `--dry-run` gets a unified diff instead.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import { neutralize, type Redactor } from '../output/guard.js';
import { documentText } from './document.js';
import type { SourceDocument } from './types.js';

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Writes `text` (the document's text with its fixes, without the BOM) over the document.
 * Returns false when there is nothing to change. Throws `InputError` when the file changed on
 * disk since it was read (it is not overwritten), or when the new content holds a secret the
 * run knows (the redactor would alter it: it is not written); the file system's errors pass
 * through (see `writeFailure()`).
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
  await writeFileAtomic(doc.path, cwd, content, redactor);
  return true;
}

/**
 * Pure: the unified diff from the document to `text`, with `a/` and `b/` prefixes on a
 * relative path as git writes them (`patch -p1` applies it). Empty when nothing changes. For a
 * terminal, CRLF is shown as a line end and other control characters made visible.
 */
export function documentDiff(doc: SourceDocument, text: string, terminal = false): string {
  if (text === doc.text) return '';
  const name = doc.path.split(path.sep).join('/');
  const [from, to] = path.isAbsolute(doc.path) ? [name, name] : [`a/${name}`, `b/${name}`];
  const patch = createTwoFilesPatch(
    from,
    to,
    documentText(doc, doc.text),
    documentText(doc, text),
    undefined,
    undefined,
    { headerOptions: FILE_HEADERS_ONLY },
  );
  return terminal ? neutralize(patch.replace(/\r\n/g, '\n')) : patch;
}
