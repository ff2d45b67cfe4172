/**
 * How each request of a batch maps back to its image. Every request's `custom_id` is the job
 * id and the image's input index (`20260321-142233-7f3a-41`); the map file (JSON Lines, next
 * to the requests, never holding image bytes) names each image. A job's map serves its
 * collection in a later process, and `--batch-results` for files written by `--batch-file`.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { safeJson, type Redactor } from '../output/guard.js';
import { BufferedFile, readLines } from './lines.js';

/** One image of a batch. */
export interface MapEntry {
  custom_id: string;
  /** Its position in the run's input (0-based): results come out in this order. */
  index: number;
  /** The image as given (a path, the URL, `-`): what results show. */
  image: string;
  /** Absolute path of a local file (for sidecars, and to prepare it again for a retry). */
  path?: string;
  /** The URL of an image given as one. */
  url?: string;
  /** The key `--resume` and duplicate detection use (absolute path, or URL). */
  key?: string;
  /**
   * Set when the image could not go into the batch (unreadable, not an image, too large): its
   * failure, reported with the results in its place, as a synchronous run reports it.
   */
  failed?: { code: number; message: string };
  /** The answer cache's key for its request (to store the answer the batch brings). */
  cache_key?: string;
  /** Answered from the cache at submission: no request was sent for it. */
  cached?: boolean;
  /**
   * The same request as an earlier image of the job (identical bytes and settings): not sent;
   * its answer is that image's, through the cache, when the results are collected.
   */
  duplicate?: boolean;
}

/** First line of a map file. */
export interface MapHeader {
  describe_image_map: 1;
  job: string;
}

/** The `custom_id` of the image at `index` in job `jobId`. */
export function customIdFor(jobId: string, index: number): string {
  return `${jobId}-${index}`;
}

/** The job id a `custom_id` belongs to, or undefined when it is not one of ours. */
export function jobOfCustomId(customId: string): string | undefined {
  return /^(.+)-\d+$/.exec(customId)?.[1];
}

/** `requests.jsonl` → `requests.map.jsonl`: where `--batch-file` puts the map. */
export function mapPathFor(requestsPath: string): string {
  const ext = path.extname(requestsPath);
  const stem = ext ? requestsPath.slice(0, -ext.length) : requestsPath;
  return `${stem}.map.jsonl`;
}

/** Appends entries to a new map file; `commit()` puts it in place. */
export class MapWriter {
  private constructor(
    private readonly file: BufferedFile,
    private readonly redactor: Redactor,
  ) {}

  static async create(target: string, jobId: string, redactor: Redactor): Promise<MapWriter> {
    const writer = new MapWriter(await BufferedFile.create(target), redactor);
    const header: MapHeader = { describe_image_map: 1, job: jobId };
    await writer.file.write(`${safeJson(header)}\n`);
    return writer;
  }

  async add(entry: MapEntry): Promise<void> {
    await this.file.write(this.redactor.redact(`${safeJson(entry)}\n`));
  }

  commit(): Promise<void> {
    return this.file.commit();
  }

  discard(): Promise<void> {
    return this.file.discard();
  }
}

/** A map file's header and its entries, read as a stream (entries in input order). */
export async function openMap(
  file: string,
): Promise<{ header: MapHeader; entries: AsyncGenerator<MapEntry> }> {
  const lines = readLines(createReadStream(file));
  let first: IteratorResult<string>;
  try {
    first = await lines.next();
  } catch (error) {
    throw new InputError(`${file}: cannot read the batch map (${describe(error)})`);
  }
  const header = first.done
    ? undefined
    : (safeParse(first.value) as Partial<MapHeader> | undefined);
  if (header?.describe_image_map !== 1 || typeof header.job !== 'string') {
    await lines.return(undefined);
    throw new InputError(`${file}: not a describe-image batch map`);
  }
  async function* entries(): AsyncGenerator<MapEntry> {
    for await (const line of lines) {
      const entry = safeParse(line) as MapEntry | undefined;
      if (entry && typeof entry.custom_id === 'string' && typeof entry.index === 'number')
        yield entry;
    }
  }
  return { header: { describe_image_map: 1, job: header.job }, entries: entries() };
}

/** Every entry of a map file, by `custom_id`. */
export async function readMap(
  file: string,
): Promise<{ job: string; entries: Map<string, MapEntry> }> {
  const { header, entries } = await openMap(file);
  const byId = new Map<string, MapEntry>();
  for await (const entry of entries) byId.set(entry.custom_id, entry);
  return { job: header.job, entries: byId };
}

function safeParse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file';
  return error instanceof Error ? error.message : String(error);
}
