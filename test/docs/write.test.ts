/**
 * The write step: a filled document replaces the file atomically with every other byte kept,
 * a file changed on disk since it was read is left alone, a secret never reaches a file; the
 * --dry-run diff applies as a patch.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyPatch } from 'diff';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readDocument } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import { altFixes, applyFixes } from '../../src/docs/fixes.js';
import { documentDiff } from '../../src/docs/diff.js';
import { writeDocument } from '../../src/docs/write.js';
import { InputError } from '../../src/errors.js';
import { Redactor } from '../../src/output/guard.js';
import type { SourceDocument } from '../../src/docs/types.js';
import { CORPUS_FILES, corpusDocument, fillWithStandIns } from './corpus.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'docs-write-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const ORIGINAL = '\ufeff# Notes\r\n\r\nThe pier: ![](pier.png "At dawn")\r\n';

async function filledDoc(): Promise<{ doc: SourceDocument; text: string }> {
  await writeFile(path.join(dir, 'notes.md'), ORIGINAL);
  const doc = await readDocument('notes.md', dir);
  const [image] = findImages(doc);
  return { doc, text: applyFixes(doc.text, altFixes(image!, 'The north pier at low tide')) };
}

describe('writeDocument', () => {
  it('writes the alt text and keeps the BOM, CRLF, title and file mode', async () => {
    const { doc, text } = await filledDoc();
    await chmod(path.join(dir, 'notes.md'), 0o640);
    expect(await writeDocument(doc, text, dir, new Redactor())).toBe(true);
    const bytes = await readFile(path.join(dir, 'notes.md'));
    expect(bytes.toString('utf8')).toBe(
      '\ufeff# Notes\r\n\r\nThe pier: ![The north pier at low tide](pier.png "At dawn")\r\n',
    );
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect((await stat(path.join(dir, 'notes.md'))).mode & 0o777).toBe(0o640);
    // No temporary file left beside it.
    expect(await readdir(dir)).toEqual(['notes.md']);
  });

  it('writes nothing when nothing changes', async () => {
    const { doc } = await filledDoc();
    const before = await stat(path.join(dir, 'notes.md'));
    expect(await writeDocument(doc, doc.text, dir, new Redactor())).toBe(false);
    expect((await stat(path.join(dir, 'notes.md'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('does not overwrite a document that changed on disk since it was read', async () => {
    const { doc, text } = await filledDoc();
    const edited = `${ORIGINAL}\r\nA line someone added meanwhile.\r\n`;
    await writeFile(path.join(dir, 'notes.md'), edited);
    const write = writeDocument(doc, text, dir, new Redactor());
    await expect(write).rejects.toBeInstanceOf(InputError);
    await expect(write).rejects.toThrow(
      /^notes\.md: changed on disk since it was read; not written/,
    );
    expect(await readFile(path.join(dir, 'notes.md'), 'utf8')).toBe(edited);
  });

  it('does not write a document that was deleted meanwhile', async () => {
    const { doc, text } = await filledDoc();
    await rm(path.join(dir, 'notes.md'));
    await expect(writeDocument(doc, text, dir, new Redactor())).rejects.toThrow(/changed on disk/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to write a secret the run knows, instead of redacting the document', async () => {
    const { doc } = await filledDoc();
    const redactor = new Redactor();
    redactor.add('sk-test-0123456789');
    const text = doc.text.replace('![]', '![sk-test-0123456789]');
    await expect(writeDocument(doc, text, dir, redactor)).rejects.toThrow(/secret/);
    expect(await readFile(path.join(dir, 'notes.md'), 'utf8')).toBe(ORIGINAL);
  });
});

describe('documentDiff', () => {
  it('is empty when nothing changes', async () => {
    const { doc } = await filledDoc();
    expect(documentDiff(doc, doc.text)).toBe('');
  });

  it('is a unified diff with a/ and b/ names, the CRLF kept when piped', async () => {
    const { doc, text } = await filledDoc();
    const diff = documentDiff(doc, text);
    expect(diff).toBe(
      [
        '--- a/notes.md',
        '+++ b/notes.md',
        '@@ -1,3 +1,3 @@',
        '\ufeff# Notes\r',
        ' \r',
        '-The pier: ![](pier.png "At dawn")\r',
        '+The pier: ![The north pier at low tide](pier.png "At dawn")\r',
        '',
      ]
        .join('\n')
        .replace('\ufeff#', ' \ufeff#'),
    );
  });

  it('shows control characters and no CR on a terminal', async () => {
    const { doc, text } = await filledDoc();
    const diff = documentDiff({ ...doc, path: 'a\x1b[31m.md' }, text, true);
    // The diff library quotes such a name C-style; no raw escape reaches the terminal.
    expect(diff).toContain('--- "a/a\\033[31m.md"');
    expect(diff.includes('\x1b') || diff.includes('\r')).toBe(false);
  });

  it.each(CORPUS_FILES)('for %s applies as a patch and gives the filled document', (name) => {
    const filled = fillWithStandIns(corpusDocument(name));
    const diff = documentDiff(filled.doc, filled.text);
    const original = Buffer.from(filled.doc.bytes).toString('utf8');
    const expected = (filled.doc.bom ? '\ufeff' : '') + filled.text;
    expect(applyPatch(original, diff)).toBe(expected);
  });

  it('applies with patch -p1, the tool a user would run', async () => {
    const filled = fillWithStandIns(corpusDocument('release-notes.md'));
    await writeFile(path.join(dir, 'release-notes.md'), filled.doc.bytes);
    execFileSync('patch', ['-p1', '--quiet'], {
      cwd: dir,
      input: documentDiff(filled.doc, filled.text),
    });
    expect(await readFile(path.join(dir, 'release-notes.md'), 'utf8')).toBe(`\ufeff${filled.text}`);
  });
});
