/**
 * Pure: every image of a document, with its file, line and column, whatever the document's
 * kind. `needsText()` says which of them a fill writes.
 */
import { InputError } from '../errors.js';
import { neutralize } from '../output/guard.js';
import { LineIndex } from './document.js';
import { scanHtml } from './html.js';
import { scanMarkdown } from './markdown.js';
import type { ImageFinding, SourceDocument } from './types.js';

/**
 * Every image in `doc`, in document order, with the state of its alt text. Markdown and HTML
 * always parse; MDX that does not is an `InputError` naming the place.
 */
export function findImages(doc: SourceDocument): ImageFinding[] {
  let images;
  try {
    images = doc.kind === 'html' ? scanHtml(doc.text) : scanMarkdown(doc.text, doc.kind === 'mdx');
  } catch (error) {
    const place = error as { line?: unknown; column?: unknown; reason?: unknown };
    if (typeof place.line !== 'number') throw error;
    const column = typeof place.column === 'number' ? place.column : 1;
    const reason = typeof place.reason === 'string' ? place.reason : 'invalid syntax';
    throw new InputError(
      `${neutralize(doc.path)}:${place.line}:${column}: cannot parse it as MDX: ${reason}`,
      { cause: error },
    );
  }
  const lines = new LineIndex(doc.text);
  return images
    .sort((a, b) => a.offset - b.offset)
    .map((image) => ({ file: doc.path, ...lines.at(image.offset), ...image }));
}

export interface FillScope {
  /** Also replace alt texts that only repeat the file name or say "image". */
  placeholders?: boolean;
}

/**
 * Whether a fill writes this image's alt text: a model's text for a missing one (and a
 * placeholder, when asked), `alt=""` for an HTML image hidden from assistive technology.
 */
export function needsText(image: ImageFinding, scope: FillScope = {}): boolean {
  return (
    image.alt === 'missing' ||
    image.alt === 'unmarked-decorative' ||
    (image.alt === 'placeholder' && scope.placeholders === true)
  );
}

/** Whether this image needs a model's description (not just `alt=""`). */
export function needsModel(image: ImageFinding, scope: FillScope = {}): boolean {
  return needsText(image, scope) && image.alt !== 'unmarked-decorative';
}
