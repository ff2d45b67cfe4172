/**
 * Pure: the lines `--alt-check` prints, one per image, in the `FILE:LINE:COL: message` form
 * that editors, CI annotations and problem matchers read.
 */
import { neutralize } from '../output/guard.js';
import type { FindingProblem } from './sources.js';
import type { ImageFinding } from './types.js';

/** Document text shown on one line: control characters visible, line breaks as `\n`. */
function shown(text: string): string {
  return neutralize(text).replace(/\r\n|\r|\n/g, '\\n');
}

function where(image: ImageFinding): string {
  return `${shown(image.file)}:${image.line}:${image.column}`;
}

/**
 * `FILE:LINE:COL: image without alt text: SRC` (no newline); for a placeholder,
 * `FILE:LINE:COL: alt text only names the file ("logo"): SRC`.
 */
export function formatMissing(image: ImageFinding): string {
  const src = image.src === '' ? '(no source)' : shown(image.src);
  const what =
    image.alt === 'placeholder'
      ? `alt text only names the file or says "image" ("${shown(image.currentAlt ?? '')}")`
      : 'image without alt text';
  return `${where(image)}: ${what}: ${src}`;
}

/** `FILE:LINE:COL: REASON` for an image that cannot be filled (no newline). */
export function formatProblem(problem: FindingProblem): string {
  return `${where(problem.finding)}: ${shown(problem.reason)}`;
}
