/**
 * Write-back in a run (`--write-metadata`, `--xmp-sidecar`): each answer into its photo's
 * metadata, or into an XMP sidecar beside it. `src/metadata/writer.ts` does the writing (one
 * ExifTool for the run, atomic writes, a per-path lock); this module connects it to a run:
 *
 * - `openWriteBack()`: a `Save` for `Outcomes` (a photo that cannot be written fails, with a
 *   one-line error naming it; the others go on), and `done()` for `--resume` and
 *   `--skip-existing`. Opened before anything is sent, so a missing Perl stops the run first.
 * - `openWriteBackPreview()`: `--dry-run`'s view of what would change in each photo, with a
 *   placeholder for the answer (a dry run sends nothing, so there is no answer yet).
 *
 * This module loads the writer (and so, on open, exiftool-vendored): import it lazily.
 */
import type { ExpandedInput } from '../input/expand.js';
import type { ImageArg } from '../input/images.js';
import type { Source } from '../metadata/content.js';
import {
  formatChanges,
  openMetadataWriter,
  type FileStamp,
  type MetadataWriter,
  type WriteResult,
  type WriteStatus,
} from '../metadata/writer.js';
import { formatCount } from '../render/text.js';
import type { Save } from './outcomes.js';
import { modelOf, type Job, type RunContext, type WriteBack } from './job.js';

/** The write-back of a run: a `Save`, its end-of-run line, and the writer's shutdown. */
export interface WriteBackSave extends Save {
  done(input: ExpandedInput): Promise<boolean>;
  /** What was written, for the end of the run (undefined when nothing was tried). */
  summary(): string | undefined;
  /** Ends ExifTool, once writes in progress are done. Never rejects. */
  close(): Promise<void>;
}

/** Opens the writer (starting ExifTool: a `UsageError` when Perl is missing). */
export async function openWriteBack(job: Job, ctx: RunContext): Promise<WriteBackSave> {
  const wb = writeBackOf(job);
  const writer = await open(wb, ctx, false);
  const counts = emptyCounts();
  return {
    done: async (input) =>
      input.arg.kind === 'file' && (await writer.alreadyWritten(input.arg.path, wb.source)),
    save: async (input, answer, record) => {
      if (input.arg.kind !== 'file') {
        ctx.reporter.warn(`${input.name}: not a local file, so its answer is not written into it`);
        return;
      }
      const result = await writer.write({
        image: input.arg.path,
        source: wb.source,
        answer: answer.json,
        model: answer.completion.model ?? modelOf(job),
        stamp: answer.stamp,
      });
      report(result, ctx);
      if (job.debug) for (const line of formatChanges(result)) ctx.reporter.debug(line);
      counts[result.status]++;
      record.metadata = { file: result.target, status: result.status };
    },
    summary: () => summaryLine(counts, wb),
    close: () => writer.close(),
  };
}

/**
 * Runs `run` with the job's write-back as a save when it asks for one (opened first, so a
 * missing Perl stops before anything is sent; closed after, with its line on stderr), or with
 * no save at all.
 */
export async function withWriteBack(
  job: Job,
  ctx: RunContext,
  run: (saves: readonly Save[]) => Promise<number>,
): Promise<number> {
  if (!job.writeBack) return run([]);
  const writeBack = await openWriteBack(job, ctx);
  try {
    const code = await run([writeBack]);
    const summary = writeBack.summary();
    if (summary !== undefined) ctx.reporter.info(summary);
    return code;
  } finally {
    await writeBack.close();
  }
}

/** `--dry-run`: shows what each photo's metadata would become; writes nothing. */
export interface WriteBackPreview {
  /** The changes for one image, on stderr; throws (one line) when it could not be written. */
  preview(arg: ImageArg, stamp: FileStamp | undefined): Promise<void>;
  /** The dry run's closing line about write-back. */
  summary(): string;
  close(): Promise<void>;
}

export async function openWriteBackPreview(job: Job, ctx: RunContext): Promise<WriteBackPreview> {
  const wb = writeBackOf(job);
  const writer = await open(wb, ctx, true);
  const counts = emptyCounts();
  const stand = PLACEHOLDER[wb.source];
  return {
    preview: async (arg, stamp) => {
      if (arg.kind !== 'file') {
        ctx.reporter.line(`${arg.name}: not a local file: its answer would not be written into it`);
        return;
      }
      const result = await writer.write({
        image: arg.path,
        source: wb.source,
        answer: stand.answer,
        model: modelOf(job),
        stamp,
      });
      report(result, ctx);
      counts[result.status]++;
      for (const line of formatChanges(result)) ctx.reporter.line(line);
    },
    summary: () => {
      const files = wb.target === 'sidecar' ? 'XMP sidecar' : 'photo';
      return (
        `dry run: ${formatCount(counts.planned)} ${plural(counts.planned, files)} would change, nothing was written ` +
        `(${stand.shown} stands for each answer)`
      );
    },
    close: () => writer.close(),
  };
}

/** What stands for the answer in a dry run, in the shape each source's answer has. */
const PLACEHOLDER: Record<Source, { answer: unknown; shown: string }> = {
  prompt: text('<answer>'),
  caption: text('<caption>'),
  ocr: text('<text in the image>'),
  'alt-text': text('<alt text>'),
  tags: { answer: ['<keywords>'], shown: '<keywords>' },
  objects: { answer: [{ name: '<object names>', count: 1 }], shown: '<object names>' },
};

function text(shown: string): { answer: unknown; shown: string } {
  return { answer: shown, shown };
}

function writeBackOf(job: Job): WriteBack {
  if (!job.writeBack) throw new Error('write-back was not asked for');
  return job.writeBack;
}

function open(wb: WriteBack, ctx: RunContext, dryRun: boolean): Promise<MetadataWriter> {
  return openMetadataWriter({
    target: wb.target,
    sidecarStyle: wb.sidecarStyle,
    keepMtime: wb.keepMtime,
    backup: wb.backup,
    dryRun,
    cwd: ctx.deps.cwd,
    now: () => ctx.deps.now(),
  });
}

/** Notes about formats (each once per run), warnings about this image, and why nothing went. */
function report(result: WriteResult, ctx: RunContext): void {
  for (const note of result.notes) ctx.reporter.notice(note.message);
  for (const warning of result.warnings) ctx.reporter.warn(warning);
  if (result.status === 'empty')
    ctx.reporter.notice(`${result.image}: nothing written: ${result.reason ?? 'empty answer'}`);
}

type Counts = Record<WriteStatus, number>;

function emptyCounts(): Counts {
  return { written: 0, planned: 0, unchanged: 0, empty: 0, unsupported: 0 };
}

/**
 * `metadata: 48 photos written, 2 already held the answer, 1 with nothing to write` (the noun
 * with the first count).
 */
function summaryLine(counts: Counts, wb: WriteBack): string | undefined {
  const files = wb.target === 'sidecar' ? 'XMP sidecar' : 'photo';
  const parts = (
    [
      [counts.written, 'written'],
      [counts.unchanged, 'already held the answer'],
      [counts.empty, 'with nothing to write'],
      [counts.unsupported, 'in a format that holds no metadata'],
    ] as const
  )
    .filter(([count]) => count > 0)
    .map(([count, what], i) =>
      i === 0
        ? `${formatCount(count)} ${plural(count, files)} ${what}`
        : `${formatCount(count)} ${what}`,
    );
  return parts.length === 0 ? undefined : `metadata: ${parts.join(', ')}`;
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}
