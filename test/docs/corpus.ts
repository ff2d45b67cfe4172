/**
 * The test corpus (test/fixtures/docs/) and what every corpus test does with it: fill each
 * document with fixed stand-in alt texts, no model involved.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
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
