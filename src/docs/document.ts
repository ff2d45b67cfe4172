/**
 * Documents as text: which kind a path is, how its bytes become the text every offset indexes
 * (UTF-8, the BOM set aside), and offsets as 1-based line and column.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { DocKind, SourceDocument } from './types.js';

const KINDS: Record<string, DocKind> = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.mdx': 'mdx',
  '.html': 'html',
  '.htm': 'html',
};

/** The document kind of a path, from its extension (any case); undefined for others. */
export function documentKind(file: string): DocKind | undefined {
  return KINDS[path.extname(file).toLowerCase()];
}

/** The extensions `documentKind` knows, for messages and globs. */
export const DOCUMENT_EXTENSIONS = Object.keys(KINDS);

const BOM = '\ufeff';

/**
 * Pure: a document from its bytes. Only UTF-8 is read (with or without a BOM): any other
 * encoding would not survive being written back, so it is an `InputError`.
 */
export function decodeDocument(file: string, bytes: Uint8Array, kind?: DocKind): SourceDocument {
  const docKind = kind ?? documentKind(file);
  if (!docKind) {
    throw new InputError(
      `${file}: not a document this tool edits (${DOCUMENT_EXTENSIONS.join(', ')})`,
    );
  }
  let text: string;
  try {
    // ignoreBOM keeps the BOM in the text, so that it is seen and set aside here.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new InputError(`${file}: not UTF-8 text; convert it to UTF-8 to edit its alt texts`);
  }
  const bom = text.startsWith(BOM);
  return { path: file, kind: docKind, bytes, text: bom ? text.slice(1) : text, bom };
}

/** Reads and decodes a document (`file` relative to `cwd`). */
export async function readDocument(file: string, cwd: string): Promise<SourceDocument> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path.resolve(cwd, file));
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : code;
    throw new InputError(`${file}: cannot read it (${why ?? 'unknown error'})`, { cause: error });
  }
  return decodeDocument(file, bytes);
}

/** The full text of a document as it goes back to disk: the BOM, if it had one, restored. */
export function documentText(doc: SourceDocument, text: string): string {
  return doc.bom ? BOM + text : text;
}

/** 1-based line and column of offsets in a text; CRLF, LF and CR all end a line. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.starts.push(i + 1);
      else if (c === 13) {
        if (text.charCodeAt(i + 1) === 10) i++;
        this.starts.push(i + 1);
      }
    }
  }

  /** Line and column (both 1-based; the column counts UTF-16 units, as editors' tools do). */
  at(offset: number): { line: number; column: number } {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (this.starts[low] ?? 0) + 1 };
  }

  /** Offsets where the line holding `offset` starts and ends (before its line ending). */
  lineSpan(offset: number, text: string): { start: number; end: number } {
    const { line } = this.at(offset);
    const start = this.starts[line - 1] ?? 0;
    let end = this.starts[line] ?? text.length;
    while (end > start && (text[end - 1] === '\n' || text[end - 1] === '\r')) end--;
    return { start, end };
  }
}
