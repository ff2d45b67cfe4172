/**
 * Write-back: an answer into its photo's metadata, or into an XMP sidecar beside it.
 *
 * For each image, under a per-path lock (lock.ts): check the file is still the one that was
 * read (stamp.ts), writable, and really the image its name says; read the fields it holds;
 * plan the change (fields.ts, pure); then write it with ExifTool (exiftool.ts) in one step,
 * through a temporary file and a rename. A failure belongs to that image and leaves it as it
 * was: a temporary file ExifTool left is removed, and the message says whether the photo
 * changed. Things a format cannot hold are reported once per run, as `notes`.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import {
  InputError,
  InterruptedError,
  MalformedResponseError,
  oneLine,
  UsageError,
} from '../errors.js';
import { neutralize } from '../output/guard.js';
import { contentOf, UnwritableAnswer, type Content, type Source } from './content.js';
import {
  startExifTool,
  type ExifToolSession,
  type SessionOptions,
  type WriteOutcome,
} from './exiftool.js';
import {
  emptyExisting,
  holdsAnswer,
  parseExisting,
  planWrite,
  READ_TAGS,
  type Change,
  type Existing,
  type Note,
} from './fields.js';
import {
  extensionOf,
  FORMAT_LABEL,
  formatOfFileType,
  formatOfName,
  sidecarPathFor,
  type MetaFormat,
  type SidecarStyle,
} from './formats.js';
import { lockKey, PathLocks } from './lock.js';
import { registerWriter, unregisterWriter } from './registry.js';
import { Semaphore } from '../util/semaphore.js';
import { sameStamp, stampOf, type FileStamp } from './stamp.js';

// What a caller needs besides the writer, from one place.
export { stampOf, type FileStamp } from './stamp.js';
export type { Change, Note } from './fields.js';
export type { Source } from './content.js';
export { formatChanges } from './report.js';

export const TOOL_NAME = 'describe-image';

export interface WriterOptions {
  /** Where the answer goes: into the image, or into an XMP sidecar beside it. */
  target: 'embed' | 'sidecar';
  /** `append`: `photo.jpg.xmp`; `replace`: `photo.xmp`. */
  sidecarStyle: SidecarStyle;
  /** Keep the image's modification time (default true). A sidecar's is always updated. */
  keepMtime: boolean;
  /** Leave ExifTool's `FILE_original` copy beside each changed image (default false). */
  backup: boolean;
  /** Plan and report the changes, write nothing. */
  dryRun: boolean;
  /** Relative image paths are resolved against this. */
  cwd: string;
  /** `Date.now()`, injected: the time written to `xmp:MetadataDate`. */
  now: () => number;
  /** Tests: an ExifTool that cannot start, and how long to wait for it. */
  exiftoolPath?: string | undefined;
  startTimeoutMs?: number | undefined;
}

export interface WriteRequest {
  /** The image as the user gave it (a path relative to `cwd`, or absolute). */
  image: string;
  /** What produced the answer (see content.ts). */
  source: Source;
  /** The answer's natural value (`Answer.json`): text, a list of tags, a list of objects. */
  answer: unknown;
  /** The model that answered (named in `photoshop:CaptionWriter`). */
  model: string;
  /** The image's stamp when it was read: a file changed since is not written. */
  stamp?: FileStamp | undefined;
}

export type WriteStatus =
  /** Written. */
  | 'written'
  /** The dry run: `changes` is what would be written. */
  | 'planned'
  /** The file already holds this answer: nothing written. */
  | 'unchanged'
  /** The answer holds nothing to write (an empty OCR, a decorative image's alt text). */
  | 'empty'
  /** The format can hold none of it (BMP): said in a note. */
  | 'unsupported';

export interface WriteResult {
  image: string;
  /** The file written (or that would be): the image, or its sidecar; as `image` is given. */
  target: string;
  status: WriteStatus;
  changes: Change[];
  /**
   * About formats (`{key: 'gif:exif', message: 'GIF files cannot hold EXIF: …'}`), each
   * returned once per run, with the first result it concerns: print `message` as it comes.
   */
  notes: Note[];
  /** About this image. */
  warnings: string[];
  /** For `empty`: why. */
  reason?: string;
}

/** Opens a writer: starts ExifTool, which needs Perl. Close it with `close()`. */
export async function openMetadataWriter(options: WriterOptions): Promise<MetadataWriter> {
  let session: ExifToolSession;
  try {
    const sessionOptions: SessionOptions = {
      exiftoolPath: options.exiftoolPath,
      startTimeoutMs: options.startTimeoutMs,
    };
    session = await startExifTool(sessionOptions);
  } catch (error) {
    throw new UsageError(
      `--write-metadata: ExifTool could not start (${firstLine(error)}); it needs Perl: install perl (e.g. apt install perl) and try again`,
      { cause: error },
    );
  }
  return new MetadataWriter(session, options);
}

export class MetadataWriter {
  private readonly locks = new PathLocks();
  /**
   * Images being read or written at once. ExifTool does one thing at a time; two keep it busy
   * (one read waits while a write runs), and the rest wait here, where closing turns them
   * away at once instead of after a respawned ExifTool has read them.
   */
  private readonly slots = new Semaphore(2);
  private readonly saidNotes = new Set<string>();
  /** Sidecar → the image whose answer it holds in this run (`photo.xmp` can serve two). */
  private readonly sidecarOwners = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly session: ExifToolSession,
    private readonly options: WriterOptions,
  ) {
    registerWriter(this);
  }

  /**
   * Writes one answer. Rejects with a one-line error naming the image: `InputError` when the
   * file cannot be written (gone, changed, read-only, not an image, a name that lies),
   * `MalformedResponseError` when the answer is not valid text, `InterruptedError` once the
   * writer is closing.
   */
  write(request: WriteRequest): Promise<WriteResult> {
    if (this.closing) return Promise.reject(stopped(request.image));
    const task = this.writeOne(request);
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task)).catch(() => undefined);
    return task;
  }

  /**
   * Whether the image (or its sidecar, when writing sidecars) already holds an answer this
   * tool wrote from `source`, for `--resume` and `--skip-existing`. False when it cannot be
   * read: the write then says why.
   */
  async alreadyWritten(image: string, source: Source): Promise<boolean> {
    const full = path.resolve(this.options.cwd, image);
    const file =
      this.options.target === 'sidecar' ? sidecarPathFor(full, this.options.sidecarStyle) : full;
    try {
      const existing = parseExisting(await this.session.read(file, READ_TAGS));
      return holdsAnswer(existing, source, TOOL_NAME);
    } catch {
      return false;
    }
  }

  /** The running ExifTool (Perl) processes. */
  processIds(): number[] {
    return this.session.processIds();
  }

  /**
   * Refuses new writes, lets those in progress finish (waiting at most `graceMs`, default
   * 10 s), and ends ExifTool. Safe to call more than once; never rejects.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
      await this.session.end().catch(() => undefined);
      unregisterWriter(this);
    })();
    return this.closing;
  }

  private async writeOne(request: WriteRequest): Promise<WriteResult> {
    const name = neutralize(request.image);
    let content: Content;
    try {
      content = contentOf(request.source, request.answer);
    } catch (error) {
      if (!(error instanceof UnwritableAnswer)) throw error;
      throw new MalformedResponseError(`${name}: ${error.message}; nothing was written`);
    }
    const full = path.resolve(this.options.cwd, request.image);
    const sidecar = this.options.target === 'sidecar';
    const target = sidecar
      ? sidecarPathFor(request.image, this.options.sidecarStyle)
      : request.image;
    const result: WriteResult = {
      image: request.image,
      target,
      status: 'empty',
      changes: [],
      notes: [],
      warnings: [],
    };
    if (content.kind === 'none') return { ...result, reason: content.reason };

    const file = sidecar ? sidecarPathFor(full, this.options.sidecarStyle) : full;
    const key = await lockKey(file);
    return this.locks.run(key, () =>
      this.slots.run(async () => {
        this.refuseIfClosing(request.image);
        const image = await this.checkImage(
          sidecar ? await lockKey(full) : key,
          name,
          request.stamp,
          !sidecar,
        );
        if (image.links > 1 && !sidecar) {
          result.warnings.push(
            `${name} has ${image.links} hard links: ExifTool writes a new file, so the other names keep the old metadata`,
          );
        }
        let format: MetaFormat;
        let existing: Existing;
        let exists = true;
        this.refuseIfClosing(request.image);
        if (sidecar) {
          this.claimSidecar(file, full, name, target);
          const found = await this.readSidecar(file, neutralize(target));
          exists = found !== undefined;
          existing = found ?? emptyExisting();
          format = 'xmp';
        } else {
          existing = await this.readImage(image.real, name);
          format = this.imageFormat(existing, full, name);
          if (format === 'bmp' || format === 'xmp') {
            this.note(result, {
              key: format,
              message: `${FORMAT_LABEL[format]} files cannot hold metadata: answers for them are not written (an XMP sidecar can hold them)`,
            });
            return { ...result, status: 'unsupported' };
          }
        }

        const plan = planWrite({
          format,
          existing,
          content,
          tool: TOOL_NAME,
          model: request.model,
          now: new Date(this.options.now()),
        });
        for (const note of plan.notes) this.note(result, note);
        result.warnings.push(...plan.warnings.map((w) => `${name}: ${w}`));
        result.changes = plan.changes;
        if (plan.tags.length === 0) return { ...result, status: 'unchanged' };
        if (this.options.dryRun) return { ...result, status: 'planned' };
        // Closing (Ctrl-C): a write not begun is not begun.
        this.refuseIfClosing(request.image);

        const written = sidecar
          ? await this.writeSidecar(file, exists, plan.tags, neutralize(target))
          : await this.writeImage(image.real, image.stamp, plan.tags, name);
        result.warnings.push(...written.map((w) => `${name}: ExifTool: ${exiftoolMessage(w)}`));
        if (!sidecar && this.options.keepMtime) {
          const problem = await keepModifyTime(image.real, image.stamp);
          if (problem !== undefined) result.warnings.push(`${name}: ${problem}`);
        }
        return { ...result, status: 'written' };
      }),
    );
  }

  private refuseIfClosing(image: string): void {
    if (this.closing) throw stopped(image);
  }

  /** Says a note once per run. */
  private note(result: WriteResult, note: Note): void {
    if (this.saidNotes.has(note.key)) return;
    this.saidNotes.add(note.key);
    result.notes.push(note);
  }

  /**
   * The image (at its real path: a symbolic link is written through, not replaced) is still
   * there, still the file that was read, and, when it is to be written, writable.
   */
  private async checkImage(
    real: string,
    name: string,
    read: FileStamp | undefined,
    writing: boolean,
  ): Promise<{ real: string; stamp: FileStamp; links: number }> {
    let info;
    try {
      info = await stat(real);
    } catch (error) {
      throw new InputError(`${name}: ${gone(error)}; nothing was written`, { cause: error });
    }
    if (!info.isFile()) throw new InputError(`${name}: is not a file; nothing was written`);
    const stamp = stampOf(info);
    if (read && !sameStamp(read, stamp)) {
      throw new InputError(
        `${name}: the file changed after it was read; its metadata was not written (describe it again)`,
      );
    }
    if (writing) await this.checkWritable(real, info.mode, name, 'the photo is unchanged');
    return { real, stamp, links: info.nlink };
  }

  /**
   * ExifTool replaces a file by a rename, which a read-only file does not prevent: check the
   * file's mode, whether this user may write it, and its folder (where the temporary file goes).
   */
  private async checkWritable(
    file: string,
    mode: number,
    name: string,
    after: string,
  ): Promise<void> {
    const writable = (mode & 0o222) !== 0 && (await canWrite(file));
    if (!writable) {
      throw new InputError(
        `${name}: the file is read-only, so its metadata was not written (${after}); make it writable (chmod u+w) or write sidecars`,
      );
    }
    if (!(await canWrite(path.dirname(file)))) {
      throw new InputError(
        `${name}: its folder is not writable, so its metadata was not written (${after})`,
      );
    }
  }

  private async readImage(real: string, name: string): Promise<Existing> {
    try {
      return parseExisting(await this.again(() => this.session.read(real, READ_TAGS)));
    } catch (error) {
      throw this.failure(error, name, 'could not read its metadata', 'the photo is unchanged');
    }
  }

  /** The image's real format; its name must not say another. */
  private imageFormat(existing: Existing, full: string, name: string): MetaFormat {
    const format = formatOfFileType(existing.fileType);
    if (!format) {
      throw new InputError(
        `${name}: not an image write-back knows (ExifTool reads it as ${existing.fileType ?? 'unknown'}); nothing was written`,
      );
    }
    const named = formatOfName(full);
    if (named !== undefined && named !== format) {
      throw new InputError(
        `${name}: is a ${FORMAT_LABEL[format]} file named as ${FORMAT_LABEL[named]}; rename it to ${extensionOf(format)} before writing its metadata (nothing was written)`,
      );
    }
    return format;
  }

  /** `photo.xmp` serves `photo.jpg` and `photo.png` alike: only one of them per run. */
  private claimSidecar(file: string, image: string, name: string, target: string): void {
    const owner = this.sidecarOwners.get(file);
    if (owner !== undefined && owner !== image) {
      throw new InputError(
        `${name}: its sidecar ${neutralize(target)} already holds the answer for ${neutralize(path.basename(owner))} from this run; name sidecars photo.jpg.xmp instead so each image has its own`,
      );
    }
    this.sidecarOwners.set(file, image);
  }

  /** The sidecar's fields, or undefined when there is none yet. */
  private async readSidecar(file: string, shown: string): Promise<Existing | undefined> {
    let info;
    try {
      info = await stat(file);
    } catch {
      return undefined;
    }
    if (!info.isFile()) throw new InputError(`${shown}: is not a file; nothing was written`);
    await this.checkWritable(file, info.mode, shown, 'the sidecar is unchanged');
    let existing: Existing;
    try {
      existing = parseExisting(await this.again(() => this.session.read(file, READ_TAGS)));
    } catch (error) {
      throw this.failure(error, shown, 'could not read the sidecar', 'it is unchanged');
    }
    if (formatOfFileType(existing.fileType) !== 'xmp') {
      throw new InputError(
        `${shown}: is not an XMP sidecar (ExifTool reads it as ${existing.fileType ?? 'unknown'}); nothing was written`,
      );
    }
    return existing;
  }

  private async writeImage(
    real: string,
    before: FileStamp,
    tags: Parameters<ExifToolSession['write']>[1],
    name: string,
  ): Promise<string[]> {
    const temporary = `${real}_exiftool_tmp`;
    if (await exists(temporary)) {
      throw new InputError(
        `${name}: ${neutralize(path.basename(temporary))} is in the way (left by an interrupted ExifTool?); remove it and try again`,
      );
    }
    const options = { keepMtime: this.options.keepMtime, backup: this.options.backup };
    try {
      const outcome = await this.again(
        () => this.session.write(real, tags, options),
        () => removeQuietly(temporary),
      );
      return warningsIfWritten(outcome, outcome.updated);
    } catch (error) {
      await removeQuietly(temporary);
      const after = await stat(real).then(
        (s) =>
          sameStamp(stampOf(s), before) ? 'the photo is unchanged' : 'the photo was rewritten',
        () => 'the photo is gone',
      );
      throw this.failure(error, name, 'could not write its metadata', after);
    }
  }

  /**
   * An existing sidecar is updated in place (ExifTool's temporary file and rename); a new one
   * is made under a temporary name and renamed, so no half-made sidecar is ever seen.
   */
  private async writeSidecar(
    file: string,
    existed: boolean,
    tags: Parameters<ExifToolSession['write']>[1],
    shown: string,
  ): Promise<string[]> {
    const options = { keepMtime: false, backup: false };
    if (existed) {
      const leftover = `${file}_exiftool_tmp`;
      try {
        const outcome = await this.again(
          () => this.session.write(file, tags, options),
          () => removeQuietly(leftover),
        );
        return warningsIfWritten(outcome, outcome.updated);
      } catch (error) {
        await removeQuietly(leftover);
        throw this.failure(error, shown, 'could not update the sidecar', 'it is unchanged');
      }
    }
    const temporary = path.join(
      path.dirname(file),
      `.${path.basename(file, '.xmp')}.${randomUUID().slice(0, 8)}.xmp`,
    );
    try {
      const outcome = await this.again(
        () => this.session.write(temporary, tags, options),
        () => removeQuietly(temporary),
      );
      const warnings = warningsIfWritten(outcome, outcome.created);
      await rename(temporary, file);
      return warnings;
    } catch (error) {
      await removeQuietly(temporary);
      throw this.failure(error, shown, 'could not create the sidecar', 'nothing was written');
    }
  }

  /**
   * Runs an ExifTool call, and once more if its process ended under it (a Ctrl-C at the
   * terminal reaches ExifTool too; or it crashed) while this writer is not closing. Safe:
   * every write sets whole values, so a write done twice leaves what one leaves, and `tidy`
   * removes a temporary file a killed ExifTool left in the way.
   */
  private async again<T>(call: () => Promise<T>, tidy?: () => Promise<void>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (this.closing || !processEnded(error)) throw error;
      await tidy?.();
      return call();
    }
  }

  /** A failed ExifTool call as one line naming the file; `InterruptedError` when closing. */
  private failure(error: unknown, name: string, what: string, after: string): Error {
    if (error instanceof InputError) return error;
    if (this.closing)
      return new InterruptedError(`${name}: stopped before its metadata was written (${after})`);
    return new InputError(`${name}: ${what}: ${exiftoolMessage(error)} (${after})`, {
      cause: error,
    });
  }
}

function stopped(image: string): InterruptedError {
  return new InterruptedError(`${neutralize(image)}: not written: the run was stopped`);
}

/**
 * ExifTool's warnings for a write that changed `files` files; a write that changed none
 * (every tag refused, with only a warning to say so) is an error.
 */
function warningsIfWritten(outcome: WriteOutcome, files: number): string[] {
  if (files === 0) throw new Error(outcome.warnings[0] ?? 'ExifTool wrote nothing');
  return outcome.warnings;
}

/** Whether ExifTool's process ended while it had the task (batch-cluster's messages). */
function processEnded(error: unknown): boolean {
  return /Process terminated before task completed|stdin unexpectedly closed/.test(
    firstLine(error),
  );
}

/**
 * ExifTool's message, short: without the ` - /absolute/path` it ends with, and without the
 * JSON that batch-cluster appends (the whole command, values and all).
 */
export function exiftoolMessage(error: unknown): string {
  if (processEnded(error)) return 'ExifTool stopped before it was done';
  const text = firstLine(error)
    .replace(/ \(\{.*$/, '')
    .replace(/ - \/.*$|^(Error|Warning): /g, '')
    .trim();
  return neutralize(oneLine(text, 200) || 'unknown error');
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

function gone(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code === 'ENOENT'
    ? 'the file is gone (deleted or moved since it was read)'
    : firstLine(error);
}

/**
 * ExifTool's `-P` keeps the modification time in whole seconds only (Perl's `utime`): a photo
 * whose time had a fraction (most file systems keep nanoseconds) would still look changed to
 * a backup tool or a photo manager. Put the time it had back, to the microsecond (what a
 * JavaScript number holds); `-P` stays, so a failure here leaves the second right.
 */
async function keepModifyTime(file: string, before: FileStamp): Promise<string | undefined> {
  try {
    const now = await stat(file);
    if (now.mtimeMs !== before.mtimeMs)
      await utimes(file, now.atimeMs / 1000, before.mtimeMs / 1000);
    return undefined;
  } catch (error) {
    return `its modification time could not be kept to the second's fraction (${firstLine(error)})`;
  }
}

async function removeQuietly(file: string): Promise<void> {
  await rm(file, { force: true }).catch(() => undefined);
}

async function canWrite(file: string): Promise<boolean> {
  try {
    await access(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
