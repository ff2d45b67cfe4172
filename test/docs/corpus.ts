/**
 * The test corpus (test/fixtures/docs/) and what every corpus test does with it: fill each
 * document with fixed stand-in alt texts, no model involved; take the texts out again; ask
 * the real linters (markdownlint's MD045, HTMLHint's alt-require) what is left.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import htmlhint from 'htmlhint';
import { lint } from 'markdownlint/sync';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages, needsText } from '../../src/docs/find.js';
import { applyFixes, documentFixes, type AltChoice } from '../../src/docs/fixes.js';
import type { Fix, ImageFinding, SourceDocument } from '../../src/docs/types.js';
import { ROOT } from '../helpers/cli.js';

export const CORPUS = path.join(ROOT, 'test/fixtures/docs');

/** Every document of the corpus, by file name. */
export const CORPUS_FILES = readdirSync(CORPUS)
  .filter((f) => !f.endsWith('.png'))
  .sort();

export function corpusDocument(name: string): SourceDocument {
  return decodeDocument(name, readFileSync(path.join(CORPUS, name)));
}

/** A stand-in alt text that holds every character that needs escaping somewhere. */
export function standIn(i: number): string {
  return `Stand-in ${i}: [a] *b* _c_ \`d\` <e> & "f" 'g' | h {i} \\ j ~k~ &amp; é 😀`;
}

export interface Filled {
  doc: SourceDocument;
  images: ImageFinding[];
  choices: AltChoice[];
  fixes: Fix[];
  text: string;
}

/** The document with every image a fill writes given `standIn(i)` (or `""` when hidden). */
export function fillWithStandIns(doc: SourceDocument): Filled {
  const images = findImages(doc);
  const choices = images
    .filter((image) => needsText(image, { placeholders: true }))
    .map((image, i) => ({ image, alt: image.alt === 'unmarked-decorative' ? '' : standIn(i) }));
  const fixes = documentFixes(choices);
  return { doc, images, choices, fixes, text: applyFixes(doc.text, fixes) };
}

/** `filled` with each fix's text taken out again and the original text put back. */
export function unfill(original: string, filled: string, fixes: readonly Fix[]): string {
  let out = '';
  let from = 0; // in `filled`
  let shift = 0;
  for (const fix of [...fixes].sort((a, b) => a.offset - b.offset)) {
    const at = fix.offset + shift;
    if (filled.slice(at, at + fix.text.length) !== fix.text)
      throw new Error(`the inserted text is not at ${at}`);
    out += filled.slice(from, at) + original.slice(fix.offset, fix.offset + fix.length);
    from = at + fix.text.length;
    shift += fix.text.length - fix.length;
  }
  return out + filled.slice(from);
}

/** The lines markdownlint's MD045 (no-alt-text) reports. */
export function md045Lines(text: string): number[] {
  const results = lint({ strings: { doc: text }, config: { default: false, MD045: true } });
  return (results.doc ?? []).map((e) => e.lineNumber);
}

/** Where HTMLHint's alt-require reports an image, as `LINE:COL`. */
export function altRequire(text: string): string[] {
  return htmlhint.HTMLHint.verify(text, { 'alt-require': true }).map((m) => `${m.line}:${m.col}`);
}

/**
 * Lines that carry our decorative marker (`<!-- decorative -->`, MDX `{/* decorative *\/}`),
 * which markdownlint does not know.
 */
export function markerLines(text: string): number[] {
  return text
    .split(/\r\n|\n/)
    .flatMap((line, i) =>
      /<!-{2}\s*decorative\s*-{2}>|\{\/\*\s*decorative\s*\*\/\}/i.test(line) ? [i + 1] : [],
    );
}

/**
 * Where HTMLHint's regular-expression parser reads HTML otherwise than the standard (and
 * parse5, and browsers) do, so that it reports images that have their alt text:
 * - it reads attribute names case-sensitively: `<IMG … ALT="…">` has no `alt` for it
 *   (archive.htm line 7, valueless `ALT`, decorative; line 8, `ALT='…'` filled in place);
 * - it reads `<img>` inside `<textarea>`, which is text, as an element (index.html line 35).
 */
export const HTMLHINT_MISREADS: Record<string, string[]> = {
  'archive.htm': ['7:37', '8:8'],
  'index.html': ['35:19'],
};
