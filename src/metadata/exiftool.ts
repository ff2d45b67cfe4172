/**
 * The one module that knows exiftool-vendored (loaded here, with `import()`, only when a run
 * writes metadata). One long-lived ExifTool process per session, as Immich's
 * metadata.repository.ts keeps one: Perl starts once (~200 ms), and a warm write then takes a
 * few milliseconds (reference §8).
 *
 * Options that matter (reference §8):
 * - `-overwrite_original`: ExifTool writes `FILE_exiftool_tmp` and renames it over the file,
 *   and leaves no `FILE_original` (unless backups are asked for);
 * - `-P`: the file keeps its modification time (unless told otherwise);
 * - no MWG composites: every tag is named with its group, and `-api NoMandatory`: nothing is
 *   written that was not asked for;
 * - one process (`maxProcs: 1`): a second one gave no reliable gain on two cores, and writes
 *   are never retried (`taskRetries: 0`): a retry after the process died could race a
 *   shutdown;
 * - batch-cluster's own exit handler (`cleanupChildProcsOnExit`) is off: it sends SIGKILL,
 *   which leaves `FILE_exiftool_tmp` behind; src/main.ts sends SIGINT instead (registry.ts).
 */
import type { ExifTool as ExifToolClass } from 'exiftool-vendored';
import type { TagValue } from './fields.js';

export interface WriteOutcome {
  /** Files ExifTool updated (1 for an existing file). */
  updated: number;
  /** Files it created (1 for a new sidecar). */
  created: number;
  warnings: string[];
}

export interface ExifToolSession {
  /** The tags named in `tagArgs` (`-XMP-dc:Description` …), keys `Group1:Tag`, values as text. */
  read(file: string, tagArgs: readonly string[]): Promise<Record<string, unknown>>;
  /** Writes `tags` in order. Rejects with ExifTool's message (`… - /path`) on failure. */
  write(
    file: string,
    tags: readonly (readonly [string, TagValue])[],
    options: { keepMtime: boolean; backup: boolean },
  ): Promise<WriteOutcome>;
  /** The running Perl processes. */
  processIds(): number[];
  /** Ends the process; tasks still queued are rejected. */
  end(): Promise<void>;
}

export interface SessionOptions {
  /** Another `exiftool` script (tests: one that cannot start). */
  exiftoolPath?: string | undefined;
  /** How long ExifTool may take to answer its first question (default 30 s). */
  startTimeoutMs?: number | undefined;
}

/** Starts ExifTool and waits until it answers; rejects when it cannot start (no Perl). */
export async function startExifTool(options: SessionOptions = {}): Promise<ExifToolSession> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const mod = await import('exiftool-vendored');
  // CommonJS: bundled or not, the class is a named export or sits on the default export.
  const ExifTool =
    (mod.ExifTool as typeof ExifToolClass | undefined) ??
    (mod as unknown as { default: { ExifTool: typeof ExifToolClass } }).default.ExifTool;
  const et = new ExifTool({
    maxProcs: 1,
    taskRetries: 0,
    maxTasksPerProcess: 2000,
    cleanupChildProcsOnExit: false,
    useMWG: false,
    readArgs: [],
    writeArgs: [],
    ...(options.exiftoolPath === undefined ? {} : { exiftoolPath: options.exiftoolPath }),
  });
  // batch-cluster decodes each chunk of ExifTool's output on its own (`chunk.toString()`), so
  // a character whose UTF-8 bytes straddle two chunks came back as two U+FFFD: a long
  // caption or keyword list read back damaged, and would have been written back so. A
  // decoding stream keeps characters whole; `childStart` fires before any output arrives.
  et.on('childStart', (child) => {
    child.proc.stdout?.setEncoding('utf8');
    child.proc.stderr?.setEncoding('utf8');
  });
  // A process that dies at once is respawned quietly and the first task never settles (and
  // batch-cluster's handles do not keep Node alive): give up after a while instead.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${startTimeoutMs / 1000} s`));
    }, startTimeoutMs);
  });
  try {
    await Promise.race([et.version(), timeout]);
  } catch (error) {
    await et.end(false).catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // batch-cluster unrefs its child process, its pipes and its timers, so a call in progress
  // does not keep Node running: when nothing else does (a run's last requests are done, or
  // were stopped by Ctrl-C, and a write waits for a new ExifTool to start after the old one
  // took the Ctrl-C too), Node would exit with the call unsettled (exit code 13). A timer
  // holds the event loop while any call is pending.
  let pending = 0;
  let holder: NodeJS.Timeout | undefined;
  const held = async <T>(call: () => Promise<T>): Promise<T> => {
    if (pending++ === 0) holder = setInterval(() => undefined, 60_000);
    try {
      return await call();
    } finally {
      if (--pending === 0) clearInterval(holder);
    }
  };
  return {
    read: (file, tagArgs) =>
      held(async () => {
        const raw = await et.readRaw(file, {
          readArgs: ['-G1', '-api', 'structformat=jsonq', ...tagArgs],
          useMWG: false,
        });
        return raw as unknown as Record<string, unknown>;
      }),
    write: (file, tags, options) => held(() => write(file, tags, options)),
    processIds: () => (et.ended ? [] : et.pids),
    end: () => held(() => et.end(true)),
  };

  async function write(
    file: string,
    tags: readonly (readonly [string, TagValue])[],
    { keepMtime, backup }: { keepMtime: boolean; backup: boolean },
  ): Promise<WriteOutcome> {
    const object: Record<string, string | string[]> = {};
    for (const [tag, value] of tags) object[tag] = escapeValue(value);
    const writeArgs = [
      ...(backup ? [] : ['-overwrite_original']),
      ...(keepMtime ? ['-P'] : []),
      // A new EXIF block would get "mandatory" tags (YCbCrPositioning, resolution…) that
      // were not asked for: nothing but the answer is written.
      '-api',
      'NoMandatory=1',
      // …and never an EXIF block split over several JPEG segments, which most readers
      // cannot follow: such a write fails instead (fields.ts keeps long text out of EXIF).
      '-api',
      'NoMultiExif=1',
    ];
    const result = await et.write(file, object, { useMWG: false, writeArgs });
    return {
      updated: result.updated,
      created: result.created,
      warnings: result.warnings ?? [],
    };
  }
}

/**
 * exiftool-vendored sends values with `-E` (HTML entities) but leaves `&` as it is, so ExifTool
 * would decode a literal `&amp;` in a caption to `&`: `&` itself is sent as an entity.
 */
export function escapeValue(value: TagValue): TagValue {
  return Array.isArray(value) ? value.map(escapeText) : escapeText(value);
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&#38;');
}
