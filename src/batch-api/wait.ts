/**
 * Waiting for a job: every unfinished batch is polled, the record saved when anything changed,
 * and progress reported, with waits that grow from a few seconds to about a minute (Azure: at
 * least 60 s). Aborting stops the waiting and never cancels the job; nothing is ever
 * resubmitted from here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, InterruptedError } from '../errors.js';
import { isFinished, isTerminal, type JobRecord } from './jobs.js';
import { applyBatch, isTransient, type FlowContext } from './submit.js';

export interface JobProgress {
  /** One word for the whole job: the least advanced status of its unfinished shards. */
  status: string;
  completed: number;
  failed: number;
  total: number;
  elapsedMs: number;
  /** Shards that have finished, of all. */
  shardsDone: number;
  shards: number;
}

/** Order in which statuses advance, for naming the job's status by its slowest shard. */
const ORDER = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/** Pure: the job's progress as its record has it. */
export function jobProgress(job: JobRecord, now: number): JobProgress {
  let completed = 0;
  let failed = 0;
  let total = 0;
  let shardsDone = 0;
  let slowest: string | undefined;
  for (const shard of job.shards) {
    total += shard.counts?.total || shard.requests;
    completed += shard.counts?.completed ?? 0;
    failed += shard.counts?.failed ?? 0;
    if (isTerminal(shard.status)) {
      shardsDone++;
      continue;
    }
    const status = shard.status ?? (shard.batchId ? 'validating' : 'not submitted');
    const rank = (s: string | undefined): number => (s === undefined ? 99 : ORDER.indexOf(s));
    if (slowest === undefined || rank(status) < rank(slowest)) slowest = status;
  }
  const finalStatus = (): string => {
    const statuses = new Set(job.shards.map((s) => s.status));
    return statuses.size === 1 ? (job.shards[0]?.status ?? 'completed') : 'finished';
  };
  return {
    status: slowest ?? finalStatus(),
    completed,
    failed,
    total,
    elapsedMs: Math.max(0, now - Date.parse(job.createdAt)),
    shardsDone,
    shards: job.shards.length,
  };
}

/** Pure: the wait before poll number `poll` (0-based): ×1.5 from `minMs`, at most `maxMs`. */
export function pollDelayMs(poll: number, minMs: number, maxMs = 60_000): number {
  return Math.max(minMs, Math.min(maxMs, minMs * 1.5 ** poll));
}

export interface WaitOptions {
  /** Shortest wait (the target's `minPollMs`). */
  minPollMs: number;
  maxPollMs?: number | undefined;
  onProgress?: ((progress: JobProgress) => void) | undefined;
  now?: (() => number) | undefined;
  /** Failed polls in a row tolerated before giving up (default 10). */
  maxFailures?: number | undefined;
}

/**
 * Polls until every shard has finished; returns the saved record. Throws `InterruptedError`
 * when `ctx.signal` aborts (the job goes on at the provider), and any error that is not
 * transient (a rejected key, say).
 */
export async function waitForJob(
  job: JobRecord,
  ctx: FlowContext,
  opts: WaitOptions,
): Promise<JobRecord> {
  const now = opts.now ?? Date.now;
  const wait =
    ctx.sleep ?? ((ms: number, signal?: AbortSignal) => sleep(ms, undefined, { signal }));
  let failures = 0;
  for (let poll = 0; ; poll++) {
    if (ctx.signal?.aborted) throw new InterruptedError(waitStopped(job));
    let changed = false;
    for (const shard of job.shards) {
      if (!shard.batchId || isTerminal(shard.status)) continue;
      try {
        const batch = await ctx.batches.retrieve(shard.batchId, ctx.signal);
        failures = 0;
        // Not output: a cheap way to see whether the shard's record changed.
        // eslint-disable-next-line no-restricted-properties
        const before = JSON.stringify(shard);
        applyBatch(shard, batch);
        // eslint-disable-next-line no-restricted-properties
        if (JSON.stringify(shard) !== before) changed = true;
      } catch (error) {
        if (ctx.signal?.aborted) throw new InterruptedError(waitStopped(job));
        if (!isTransient(error) || ++failures >= (opts.maxFailures ?? 10)) throw error;
        ctx.log?.(`poll of ${shard.batchId} failed: ${(error as Error).message}`);
      }
    }
    if (changed) await ctx.store.save(job);
    opts.onProgress?.(jobProgress(job, now()));
    if (isFinished(job) || job.shards.every((s) => !s.batchId || isTerminal(s.status))) return job;
    if (ctx.signal?.aborted) throw new InterruptedError(waitStopped(job));
    try {
      await wait(pollDelayMs(poll, opts.minPollMs, opts.maxPollMs), ctx.signal);
    } catch {
      throw new InterruptedError(waitStopped(job));
    }
  }
}

/** What Ctrl-C while waiting says: the job goes on, and how to pick it up again. */
export function waitStopped(job: JobRecord): string {
  return `stopped waiting; job ${job.id} goes on at the provider: collect it with describe-image --job ${job.id} --wait`;
}

/** The exit code for a request the batch cancelled before it ran (it was never answered). */
export const CANCELLED_EXIT = ExitCode.INTERRUPTED;
