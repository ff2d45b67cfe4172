/**
 * Turning a run's prepared requests into a job's files (shards, `.ids`, the map) and its
 * record; and, for `--retry-failed`, the images to submit again and the new round's shards.
 */
import path from 'node:path';
import type { ChatRequestPayload } from '../api/request.js';
import type { Completion } from '../api/types.js';
import { InputError } from '../errors.js';
import type { Redactor } from '../output/guard.js';
import type { OutcomeTable } from './collect.js';
import { settingsKey, type JobRecord, type JobShard, type JobStore } from './jobs.js';
import { customIdFor, MapWriter, openMap, type MapEntry } from './mapping.js';
import { ShardWriter, type ShardInfo, type ShardLimits } from './shards.js';
import { shardsFromFiles } from './submit.js';
import type { BatchTarget } from './targets.js';

/** One image of the run, ready to go into a batch. */
export interface JobInput {
  /** Its position in the run's input (0-based). */
  index: number;
  /** Name, path, URL and resume key, as the map keeps them (`custom_id` is added here). */
  image: Omit<MapEntry, 'custom_id' | 'index'>;
  /**
   * The body the synchronous call would send (`buildPayload`); or why there is none: its
   * failure, or its answer is in the cache.
   */
  payload:
    | ChatRequestPayload
    | { failed: { code: number; message: string } }
    | { cached: true; duplicate?: true };
}

export interface WriteOptions {
  jobId: string;
  lineUrl: string;
  limits: ShardLimits;
  redactor: Redactor;
  /** Path of shard `n`. */
  pathFor: (n: number) => string;
  /** Where the map goes; none for a retry round (the job's map already names its images). */
  mapPath?: string | undefined;
  /** Write `.ids` beside each shard (for a job; `--batch-file` needs none). */
  writeIds: boolean;
  /**
   * An image whose request cannot go into any batch file (too large): reported, and kept in
   * the map as failed.
   */
  onSkip?: ((input: JobInput, error: InputError) => void) | undefined;
}

/**
 * Writes every input into shards (and the map), a line at a time, in the order given. Nothing
 * is left behind when it fails (shards and map are put in place only when all is written).
 */
export async function writeJobFiles(
  inputs: AsyncIterable<JobInput>,
  opts: WriteOptions,
): Promise<{ shards: ShardInfo[]; written: number }> {
  const writer = new ShardWriter({
    pathFor: opts.pathFor,
    lineUrl: opts.lineUrl,
    maxBytes: opts.limits.maxBytes,
    maxRequests: opts.limits.maxRequests,
    redactor: opts.redactor,
    writeIds: opts.writeIds,
  });
  const map = opts.mapPath
    ? await MapWriter.create(opts.mapPath, opts.jobId, opts.redactor)
    : undefined;
  let written = 0;
  let shards: ShardInfo[];
  try {
    for await (const input of inputs) {
      const customId = customIdFor(opts.jobId, input.index);
      const entry: MapEntry = { custom_id: customId, index: input.index, ...input.image };
      if ('failed' in input.payload) {
        await map?.add({ ...entry, failed: input.payload.failed });
        continue;
      }
      if ('cached' in input.payload) {
        await map?.add({
          ...entry,
          cached: true,
          ...(input.payload.duplicate ? { duplicate: true } : {}),
        });
        continue;
      }
      try {
        await writer.add({ customId, payload: input.payload, name: input.image.image });
      } catch (error) {
        if (error instanceof InputError && opts.onSkip) {
          opts.onSkip(input, error);
          await map?.add({ ...entry, failed: { code: error.exitCode, message: error.message } });
          continue;
        }
        throw error;
      }
      await map?.add(entry);
      written++;
    }
    shards = await writer.close();
    await map?.commit();
  } catch (error) {
    await writer.discard();
    await map?.discard();
    throw error;
  }
  return { shards, written };
}

/** The shard file names inside a job's folder. */
export function jobShardPath(jobDir: string, n: number): string {
  return path.join(jobDir, `shard-${n}.jsonl`);
}

export interface NewJob {
  id: string;
  kind: JobRecord['kind'];
  createdAt: number;
  provider: string;
  target: Pick<BatchTarget, 'baseUrl' | 'lineUrl' | 'endpoint'>;
  model: string;
  settings: Record<string, unknown>;
  output: Record<string, unknown>;
  map: string;
  shards: readonly ShardInfo[];
  total: number;
  /** Images in the run's input, those left out included. */
  inputs?: number | undefined;
  /** Images of the map that could not go into the batch. */
  unprepared?: number | undefined;
  priceFactor?: number | undefined;
}

/** Pure: the record of a job whose files were just written. */
export function newJobRecord(job: NewJob): JobRecord {
  return {
    version: 1,
    id: job.id,
    kind: job.kind,
    createdAt: new Date(job.createdAt).toISOString(),
    provider: job.provider,
    baseUrl: job.target.baseUrl,
    model: job.model,
    lineUrl: job.target.lineUrl,
    endpoint: job.target.endpoint,
    settings: job.settings,
    settingsKey: settingsKey(job.settings),
    output: job.output,
    total: job.total,
    inputs: job.inputs,
    unprepared: job.unprepared,
    priceFactor: job.priceFactor,
    map: job.map,
    shards: shardsFromFiles(job.shards, 1),
  };
}

/**
 * The images `--retry-failed` submits again: every image of the job whose outcome is not an
 * answer (failed, expired, cancelled, or never run), or an answer `accepted` refuses (one that
 * does not match its schema), in input order.
 */
export async function imagesToRetry(
  job: JobRecord,
  table: OutcomeTable,
  accepted: (completion: Completion) => Promise<boolean> = () => Promise.resolve(true),
): Promise<MapEntry[]> {
  const { entries } = await openMap(job.map);
  const out: MapEntry[] = [];
  for await (const entry of entries) {
    const outcome = table.get(entry.custom_id)?.outcome;
    if (outcome?.kind !== 'answered' || !(await accepted(outcome.completion))) out.push(entry);
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * Writes a retry round's shards into the job's folder (numbered after the existing ones) and
 * adds them to the record (not saved: `submitJob` saves as it goes).
 */
export async function addRetryRound(
  job: JobRecord,
  jobDir: string,
  inputs: AsyncIterable<JobInput>,
  opts: Pick<WriteOptions, 'limits' | 'redactor' | 'onSkip'>,
): Promise<JobShard[]> {
  const firstN = Math.max(0, ...job.shards.map((s) => s.n)) + 1;
  const round = Math.max(1, ...job.shards.map((s) => s.round)) + 1;
  const { shards } = await writeJobFiles(inputs, {
    jobId: job.id,
    lineUrl: job.lineUrl,
    limits: opts.limits,
    redactor: opts.redactor,
    pathFor: (n) => jobShardPath(jobDir, firstN + n - 1),
    writeIds: true,
    onSkip: opts.onSkip,
  });
  const added = shardsFromFiles(shards, round, firstN);
  job.shards.push(...added);
  return added;
}

/**
 * The images of jobs not collected yet (nor cancelled) whose settings have `key`: resume key
 * → job id. A submission skips them with a notice naming the job.
 */
export async function imagesInOpenJobs(store: JobStore, key: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const job of await store.list()) {
    if (job.kind !== 'api' || job.settingsKey !== key || job.collectedAt || job.cancelRequested)
      continue;
    const { entries } = await openMap(job.map).catch(() => ({ entries: undefined }));
    if (!entries) continue;
    for await (const entry of entries) if (entry.key && !entry.failed) found.set(entry.key, job.id);
  }
  return found;
}
