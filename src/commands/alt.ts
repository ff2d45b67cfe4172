/**
 * `--alt-check`: the images of Markdown, MDX and HTML documents that have no alt text, listed
 * without a key and without the network: a `FILE:LINE:COL` line (or a `--json` record) per
 * image on stdout, exit 1 when there is one. The documents' side (find, decide, write) is
 * `src/docs/`, loaded only by these commands; `--alt-fill` is `alt-fill.ts`, which alone
 * loads the request machinery.
 */
import { ExitCode, exitCodeFor } from '../errors.js';
import { classifyImageArg } from '../input/images.js';
import { safeJson } from '../output/guard.js';
import { formatCount } from '../render/text.js';
import type { ImageFinding } from '../docs/types.js';
import type { RunContext } from './job.js';

export interface AltCheckOptions {
  /** The document arguments: files, quoted globs, directories. */
  documents: readonly string[];
  /** `--alt-placeholders`: alt texts that only name the file count as missing. */
  placeholders: boolean;
  json: boolean;
}

/** What `--alt-check --json` prints for an image. */
interface CheckRecord {
  file: string;
  line: number;
  column: number;
  element: ImageFinding['element'];
  source: string;
  /** The alt text there is (a placeholder), or null when there is none. */
  alt: string | null;
}

/** The documents' modules (parse5, micromark…), for these commands only. */
export const loadDocs = () =>
  Promise.all([import('../docs/run.js'), import('../docs/files.js'), import('../docs/report.js')]);

/**
 * `--alt-check`: lists the images without alt text. Returns 1 when there is one, 3 when a
 * document could not be read or parsed (the others are still checked), else 0.
 */
export async function runAltCheck(opts: AltCheckOptions, ctx: RunContext): Promise<number> {
  const { deps, reporter } = ctx;
  const [docs, files, report] = await loadDocs();
  const paths = await files.expandDocuments(opts.documents, deps.cwd);
  let broken: unknown;
  const loaded = await docs.loadDocuments(paths, deps.cwd, {
    documentError: (_file, error) => {
      broken ??= error;
      reporter.error(messageOf(error));
    },
  });
  const missing = docs.missingImages(loaded, { placeholders: opts.placeholders });
  for (const image of missing) {
    const record: CheckRecord = {
      file: image.file,
      line: image.line,
      column: image.column,
      element: image.element,
      source: shownSource(image.src),
      alt: image.currentAlt ?? null,
    };
    deps.stdout.write(`${opts.json ? safeJson(record) : report.formatMissing(image)}\n`);
  }
  reporter.notice(
    `${plural(missing.length, 'image')} without alt text in ${plural(loaded.length, 'document')}`,
  );
  // A document that could not be read was not checked: that is worth more than the findings.
  if (broken !== undefined) return exitCodeFor(broken);
  return missing.length > 0 ? ExitCode.FINDINGS : ExitCode.OK;
}

/** A source as records show it: a `data:` URL without its (possibly huge) data. */
export function shownSource(src: string): string {
  return /^\s*data:/i.test(src) ? classifyImageArg(src.trim()).name : src;
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `1 image`, `2 images`. */
export function plural(n: number, word: string): string {
  return `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`;
}
