/**
 * `--alt-check` and `--alt-fill` end to end, with the model and the terminal injected: the
 * command layer passes a `describe` function (the batch engine: cache, concurrency, rate
 * limits, retries, usage) and `DocsEvents` (its Reporter, stdout, `--json` records). The steps
 * are find (read, parse), decide (pure) and write (atomic, per document).
 */
import { readDocument } from './document.js';
import { findImages, needsModel, type FillScope } from './find.js';
import { applyFixes, documentFixes } from './fixes.js';
import { FillPlan, planFill, type DocumentFill } from './plan.js';
import { altPrompt, finalizeAlt } from './prompt.js';
import {
  checkLocalSources,
  type FindingProblem,
  type ImageGroup,
  type ResolveOptions,
} from './sources.js';
import type { ImageFinding, SourceDocument } from './types.js';
import type { Redactor } from '../output/guard.js';

/** What the command layer is told as the run goes. */
export interface DocsEvents {
  /** A document that cannot be read, parsed or written (changed on disk, …): it is untouched. */
  documentError(file: string, error: unknown): void;
  /** An image that cannot be filled (its source is missing, the model failed, …). */
  problem(problem: FindingProblem): void;
  /** `--dry-run`: the document's diff (empty string: nothing to change). */
  diff?(doc: SourceDocument, text: string): void;
  /** A document was written (or, with `--dry-run`, would be) with these alt texts. */
  filled(doc: SourceDocument, choices: { image: ImageFinding; alt: string }[]): void;
}

/** Reads and parses every document; one that fails is reported and left out. */
export async function loadDocuments(
  files: readonly string[],
  cwd: string,
  events: Pick<DocsEvents, 'documentError'>,
): Promise<DocumentFill[]> {
  const out: DocumentFill[] = [];
  for (const file of files) {
    try {
      const doc = await readDocument(file, cwd);
      out.push({ doc, images: findImages(doc) });
    } catch (error) {
      events.documentError(file, error);
    }
  }
  return out;
}

/**
 * `--alt-check`: the images that have no alt text (a fill would ask the model for them), in
 * document order; with `placeholders`, also those whose text only repeats the file name.
 * Needs no model and no key.
 */
export function missingImages(
  documents: readonly DocumentFill[],
  scope: FillScope = {},
): ImageFinding[] {
  return documents.flatMap((d) => d.images.filter((i) => needsModel(i, scope)));
}

/**
 * The model's side of a fill: the alt text for one image, from its raw answer. Called once per
 * group (an image shared by documents is one group), possibly for every group at once: the
 * function applies its own concurrency and rate limits. It throws on failure, and with the
 * interrupt's reason when the run was stopped.
 */
export type DescribeImage = (group: ImageGroup, prompt: string) => Promise<string>;

export interface FillRunOptions extends ResolveOptions, FillScope {
  redactor: Redactor;
  /** Aborted by Ctrl-C: no request or write starts after it. */
  signal: AbortSignal;
  /** `--dry-run`: each document's diff goes to `events.diff`; nothing is written. */
  dryRun?: boolean;
  /** The diff is for a terminal (control characters made visible, CRLF as a line end). */
  terminal?: boolean;
  /** When set, the model is not asked: this text goes where each image's alt text would. */
  standIn?: (group: ImageGroup) => string;
}

export interface FillSummary {
  documents: number;
  written: number;
  images: number;
  described: number;
  failed: number;
}

/**
 * `--alt-fill`: describes each image once and writes every document as soon as all its images
 * are settled, so that a run stopped half-way leaves each document filled or untouched.
 */
export async function fillDocuments(
  documents: readonly DocumentFill[],
  options: FillRunOptions,
  describe: DescribeImage,
  events: DocsEvents,
): Promise<FillSummary> {
  // The diff library or the writer, whichever this run needs, and only that.
  const output = options.dryRun
    ? await import('./diff.js').then(
        ({ documentDiff }) =>
          (doc: SourceDocument, text: string): Promise<boolean> => {
            events.diff?.(doc, documentDiff(doc, text, options.terminal));
            return Promise.resolve(false);
          },
      )
    : await import('./write.js').then(
        ({ writeDocument }) =>
          (doc: SourceDocument, text: string): Promise<boolean> =>
            writeDocument(doc, text, options.cwd, options.redactor),
      );
  const summary: FillSummary = {
    documents: documents.length,
    written: 0,
    images: 0,
    described: 0,
    failed: 0,
  };
  const planned = planFill(documents, options);
  const checked = await checkLocalSources(planned.groups);
  for (const problem of [...planned.problems, ...checked.problems]) {
    summary.failed++;
    events.problem(problem);
  }
  summary.images = planned.fills.reduce((n, f) => n + f.images.length, 0);
  const plan = new FillPlan(planned.fills, checked.groups);

  const finish = async (fill: DocumentFill): Promise<void> => {
    if (options.signal.aborted) return;
    const choices = plan.choices(fill);
    if (choices.length === 0) return;
    const text = applyFixes(fill.doc.text, documentFixes(choices));
    try {
      if (await output(fill.doc, text)) summary.written++;
      events.filled(fill.doc, choices);
    } catch (error) {
      events.documentError(fill.doc.path, error);
    }
  };

  // Writes run one at a time, in the order documents complete.
  let writing = Promise.resolve();
  const queue = (fills: DocumentFill[]): Promise<void> => {
    for (const fill of fills) writing = writing.then(() => finish(fill));
    return writing;
  };

  await queue(plan.ready());
  await Promise.all(
    checked.groups.map(async (group) => {
      let alt: string | undefined;
      try {
        if (options.signal.aborted) return;
        const answer = options.standIn
          ? options.standIn(group)
          : await describe(group, altPrompt(group));
        const final = finalizeAlt(answer);
        if (!final.ok) throw new Error(final.reason);
        alt = final.text;
        summary.described++;
      } catch (error) {
        // Stopped: the group stays unsettled, so its documents are never written.
        if (options.signal.aborted) return;
        summary.failed += group.findings.length;
        const reason = error instanceof Error ? error.message : String(error);
        for (const finding of group.findings) events.problem({ finding, reason });
      }
      await queue(plan.settle(group.key, alt));
    }),
  );
  await writing;
  return summary;
}
