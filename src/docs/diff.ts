/**
 * Pure: what `--dry-run` prints for a document, a unified diff (its own module, so that a run
 * that writes never loads the diff library).
 */
import path from 'node:path';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { neutralize } from '../output/guard.js';
import { documentText } from './document.js';
import type { SourceDocument } from './types.js';

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
