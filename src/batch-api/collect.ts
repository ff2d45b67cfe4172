/**
 * Collecting: the output and error files of every finished batch of a job (downloaded as
 * streams), or local files given to `--batch-results`, joined on `custom_id` into one outcome
 * per request; then the outcomes in input order, from the job's map.
 */
import { createReadStream } from 'node:fs';
import type { Files } from '../api/files.js';
import { InputError } from '../errors.js';
import { isTerminal, type JobRecord, type JobShard } from './jobs.js';
import { readLines } from './lines.js';
import { openMap, type MapEntry } from './mapping.js';
import {
  outcomeOfLine,
  outcomeWithoutLine,
  parseOutputLine,
  preferOutcome,
  type Outcome,
} from './results.js';

/** The outcome of each request seen so far, by `custom_id`. */
export class OutcomeTable {
  private readonly byId = new Map<string, { outcome: Outcome; batchId: string | undefined }>();
  /** Lines that were not JSON or had no custom_id. */
  badLines = 0;
  /** custom_ids that are not in the job (a file from another job?), the first few. */
  readonly unknown: string[] = [];
  unknownCount = 0;

  add(customId: string, outcome: Outcome, batchId: string | undefined): void {
    const earlier = this.byId.get(customId);
    const kept = preferOutcome(earlier?.outcome, outcome);
    if (kept !== earlier?.outcome) this.byId.set(customId, { outcome: kept, batchId });
  }

  get(customId: string): { outcome: Outcome; batchId: string | undefined } | undefined {
    return this.byId.get(customId);
  }

  has(customId: string): boolean {
    return this.byId.has(customId);
  }

  get size(): number {
    return this.byId.size;
  }

  noteUnknown(customId: string): void {
    this.unknownCount++;
    if (this.unknown.length < 5) this.unknown.push(customId);
  }
}

export interface LineSource {
  lines: AsyncIterable<string>;
  /** The batch the lines belong to (recorded with each outcome). */
  batchId: string | undefined;
  /** Names the request in errors (`/v1/chat/completions`). */
  url: string;
}

/**
 * Reads output lines into `table`; returns the custom_ids seen. `known` tells the job's own
 * custom_ids from strangers (which are counted, not kept).
 */
export async function addLines(
  table: OutcomeTable,
  source: LineSource,
  known: (customId: string) => boolean,
): Promise<Set<string>> {
  const seen = new Set<string>();
  for await (const text of source.lines) {
    const line = parseOutputLine(text);
    if (!line) {
      table.badLines++;
      continue;
    }
    if (!known(line.customId)) {
      table.noteUnknown(line.customId);
      continue;
    }
    seen.add(line.customId);
    table.add(line.customId, outcomeOfLine(line, source.url), source.batchId);
  }
  return seen;
}

export interface CollectOptions {
  signal?: AbortSignal | undefined;
  /** Called before each download (for a progress line or a debug line). */
  onDownload?: ((shard: JobShard, fileId: string) => void) | undefined;
}

/**
 * Every outcome of a job whose shards have finished: each batch's output and error file, then
 * what the batch says of requests with no line (validation failure, expiry, cancellation).
 * Shards that have not finished are skipped: their requests have no outcome yet.
 */
export async function collectJob(
  job: JobRecord,
  files: Files,
  options: CollectOptions = {},
): Promise<OutcomeTable> {
  const table = new OutcomeTable();
  const prefix = `${job.id}-`;
  const known = (id: string): boolean => id.startsWith(prefix);
  const shards = [...job.shards].sort((a, b) => a.round - b.round || a.n - b.n);
  for (const shard of shards) {
    if (!isTerminal(shard.status)) continue;
    const seen = new Set<string>();
    for (const fileId of [shard.outputFileId, shard.errorFileId]) {
      if (!fileId) continue;
      options.onDownload?.(shard, fileId);
      const lines = readLines(await files.content(fileId, options.signal));
      for (const id of await addLines(
        table,
        { lines, batchId: shard.batchId, url: job.lineUrl },
        known,
      ))
        seen.add(id);
    }
    if (!shard.ids) continue;
    let lineNo = 0;
    for await (const id of readLines(createReadStream(shard.ids))) {
      lineNo++;
      if (seen.has(id)) continue;
      const outcome = outcomeWithoutLine(
        { status: shard.status, errors: shard.errors ?? [] },
        lineNo,
        job.lineUrl,
      );
      if (outcome) table.add(id, outcome, shard.batchId);
    }
  }
  return table;
}

/** Outcomes from local output files (`--batch-results`): vLLM's one file, or OpenAI's two. */
export async function collectFiles(
  paths: readonly string[],
  url: string,
  known: (customId: string) => boolean,
): Promise<OutcomeTable> {
  const table = new OutcomeTable();
  for (const file of paths) {
    try {
      await addLines(
        table,
        { lines: readLines(createReadStream(file)), batchId: undefined, url },
        known,
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new InputError(
        `${file}: cannot read the batch results (${code === 'ENOENT' ? 'no such file' : error instanceof Error ? error.message : String(error)})`,
      );
    }
  }
  return table;
}

export interface ImageResult {
  entry: MapEntry;
  /** Undefined while the request's batch has not finished. */
  outcome: Outcome | undefined;
  batchId: string | undefined;
}

/** Every image of the map, in input order, with its outcome. */
export async function* resultsInOrder(
  mapFile: string,
  table: OutcomeTable,
): AsyncGenerator<ImageResult> {
  const { entries } = await openMap(mapFile);
  const ordered: MapEntry[] = [];
  let sorted = true;
  for await (const entry of entries) {
    if (ordered.length > 0 && entry.index < (ordered.at(-1)?.index ?? 0)) sorted = false;
    ordered.push(entry);
  }
  // Entries are written as images are added to shards, which may be slightly out of order
  // when several images are prepared at once.
  if (!sorted) ordered.sort((a, b) => a.index - b.index);
  for (const entry of ordered) {
    const found = table.get(entry.custom_id);
    yield { entry, outcome: found?.outcome, batchId: found?.batchId };
  }
}
