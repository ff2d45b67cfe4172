/**
 * Submitting a job's shards: upload each (`POST /files`, purpose `batch`), then create its
 * batch (`POST /batches`, 24 h, metadata naming the job and the shard). The record is saved
 * after every step, so a later process carries on where this one stopped.
 *
 * A create that fails without a clear answer (a timeout, a reset, a 5xx) may still have
 * created the batch: before creating again, the batches are listed and one tagged with this
 * job and shard is taken instead. The same search runs first when an earlier process sent a
 * create and died before recording its answer. So one shard never gets two batches.
 */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Batch, Batches } from '../api/batches.js';
import type { Files } from '../api/files.js';
import { isQuotaError } from '../api/errors.js';
import {
  APIError,
  ConnectionError,
  DescribeImageError,
  InterruptedError,
  TimeoutError,
} from '../errors.js';
import { isTerminal, type JobRecord, type JobShard, type JobStore } from './jobs.js';
import type { ShardInfo } from './shards.js';

/** Metadata keys on every batch this tool creates. */
export const JOB_KEY = 'describe_image_job';
export const SHARD_KEY = 'describe_image_shard';

export function batchMetadata(jobId: string, shard: number): Record<string, string> {
  return { [JOB_KEY]: jobId, [SHARD_KEY]: String(shard) };
}

export interface FlowContext {
  files: Files;
  batches: Batches;
  store: JobStore;
  signal?: AbortSignal | undefined;
  /** Attempts per upload or create (default 3). */
  attempts?: number | undefined;
  /** Waits between attempts (tests pass a fast one). */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Debug lines. */
  log?: ((line: string) => void) | undefined;
  /** Called after each step of each shard (uploaded, created). */
  onStep?: ((shard: JobShard, step: 'uploaded' | 'created') => void) | undefined;
  /** Keep each shard's local file after its batch exists (default: remove it). */
  keepFiles?: boolean | undefined;
}

/** The record's shard entries for freshly written shards of `round`. */
export function shardsFromFiles(
  infos: readonly ShardInfo[],
  round: number,
  firstN = 1,
): JobShard[] {
  return infos.map((info, i) => ({
    n: firstN + i,
    round,
    model: info.model,
    requests: info.requests,
    bytes: info.bytes,
    file: info.path,
    ids: info.idsPath,
  }));
}

/**
 * Uploads and creates every shard that has no batch yet; returns the saved record. Stops at
 * the first shard that cannot be submitted (the error is thrown; what was done is saved).
 */
export async function submitJob(job: JobRecord, ctx: FlowContext): Promise<JobRecord> {
  for (const shard of job.shards) {
    if (shard.batchId) continue;
    if (ctx.signal?.aborted) throw new InterruptedError();
    if (!shard.fileId) {
      if (!shard.file)
        throw new Error(`shard ${shard.n} of job ${job.id} has neither a file nor a file id`);
      const file = shard.file;
      const uploaded = await attempt(ctx, `upload of shard ${shard.n}`, () =>
        ctx.files.upload(file, `describe-image-${job.id}-${shard.n}.jsonl`, ctx.signal),
      );
      shard.fileId = uploaded.id;
      await ctx.store.save(job);
      ctx.onStep?.(shard, 'uploaded');
    }
    const batch = await createOnce(job, shard, ctx);
    applyBatch(shard, batch);
    await ctx.store.save(job);
    ctx.onStep?.(shard, 'created');
    if (shard.file && !ctx.keepFiles) {
      await rm(shard.file, { force: true });
      shard.file = undefined;
      await ctx.store.save(job);
    }
  }
  return job;
}

/** Creates the shard's batch at most once, however the attempts fail. */
async function createOnce(job: JobRecord, shard: JobShard, ctx: FlowContext): Promise<Batch> {
  const fileId = shard.fileId;
  if (!fileId) throw new Error(`shard ${shard.n} has no file id`);
  const notBefore = Math.floor(Date.parse(job.createdAt) / 1000) - 3600;
  if (shard.createSent) {
    const found = await findTaggedBatch(ctx.batches, job.id, shard.n, notBefore, ctx.signal);
    if (found) {
      ctx.log?.(`shard ${shard.n}: found batch ${found.id}, created by an earlier attempt`);
      return found;
    }
  }
  const attempts = ctx.attempts ?? 3;
  for (let round = 1; ; round++) {
    shard.createSent = true;
    await ctx.store.save(job);
    try {
      return await ctx.batches.create(
        {
          input_file_id: fileId,
          endpoint: job.endpoint,
          completion_window: '24h',
          metadata: batchMetadata(job.id, shard.n),
        },
        ctx.signal,
      );
    } catch (error) {
      if (ctx.signal?.aborted) throw new InterruptedError();
      if (!isTransient(error)) throw error;
      ctx.log?.(`create of shard ${shard.n} failed (${describe(error)}); looking for its batch`);
      if (mayHaveHappened(error)) {
        const found = await findTaggedBatch(ctx.batches, job.id, shard.n, notBefore, ctx.signal);
        if (found) return found;
      }
      if (round >= attempts) throw error;
      await pause(ctx, round);
    }
  }
}

/**
 * The batch tagged with `jobId` and `shard`, searching the list newest first and stopping at
 * batches created before `notBefore` (Unix seconds).
 */
export async function findTaggedBatch(
  batches: Batches,
  jobId: string,
  shard: number,
  notBefore: number,
  signal?: AbortSignal,
): Promise<Batch | undefined> {
  for await (const batch of batches.listAll({ maxPages: 50 }, signal)) {
    if (batch.metadata[JOB_KEY] === jobId && batch.metadata[SHARD_KEY] === String(shard))
      return batch;
    if (batch.created_at !== undefined && batch.created_at < notBefore) return undefined;
  }
  return undefined;
}

/** Copies what the record keeps of a batch into its shard. */
export function applyBatch(shard: JobShard, batch: Batch): void {
  shard.batchId = batch.id;
  shard.status = batch.status;
  shard.counts = batch.request_counts;
  shard.outputFileId = batch.output_file_id;
  shard.errorFileId = batch.error_file_id;
  shard.errors = batch.errors.length > 0 ? batch.errors : undefined;
  shard.createdAt = batch.created_at;
  shard.usage = batch.usage
    ? { input_tokens: batch.usage.input_tokens, output_tokens: batch.usage.output_tokens }
    : undefined;
}

/** Cancels every batch of the job that has not finished; returns the saved record. */
export async function cancelJob(job: JobRecord, ctx: FlowContext): Promise<JobRecord> {
  job.cancelRequested = true;
  for (const shard of job.shards) {
    if (!shard.batchId || isTerminal(shard.status)) continue;
    const batchId = shard.batchId;
    applyBatch(
      shard,
      await attempt(ctx, `cancel of ${batchId}`, () => ctx.batches.cancel(batchId, ctx.signal)),
    );
  }
  await ctx.store.save(job);
  return job;
}

/** Runs `call`, again after transient failures (a cancel or an upload may be repeated). */
async function attempt<T>(ctx: FlowContext, what: string, call: () => Promise<T>): Promise<T> {
  const attempts = ctx.attempts ?? 3;
  for (let round = 1; ; round++) {
    try {
      return await call();
    } catch (error) {
      if (ctx.signal?.aborted) throw new InterruptedError();
      if (!isTransient(error) || round >= attempts) throw error;
      ctx.log?.(`${what} failed (${describe(error)}); trying again`);
      await pause(ctx, round);
    }
  }
}

async function pause(ctx: FlowContext, round: number): Promise<void> {
  const ms = Math.min(1000 * 2 ** (round - 1), 16_000);
  try {
    await (ctx.sleep ?? ((t: number, s?: AbortSignal) => sleep(t, undefined, { signal: s })))(
      ms,
      ctx.signal,
    );
  } catch {
    throw new InterruptedError();
  }
}

/** A failure worth another attempt: the network, a timeout, 408/409/429/5xx (not a quota). */
export function isTransient(error: unknown): boolean {
  if (error instanceof ConnectionError || error instanceof TimeoutError) return true;
  if (error instanceof APIError && error.status !== undefined) {
    if (isQuotaError(error.status, error.info)) return false;
    return (
      error.status === 408 || error.status === 409 || error.status === 429 || error.status >= 500
    );
  }
  return false;
}

/** Whether the server may have done the work although the answer did not arrive. */
function mayHaveHappened(error: unknown): boolean {
  if (error instanceof APIError) return error.status === undefined || error.status >= 500;
  return true;
}

function describe(error: unknown): string {
  return error instanceof DescribeImageError || error instanceof Error
    ? error.message
    : String(error);
}
