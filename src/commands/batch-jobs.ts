/**
 * The commands on jobs already submitted: `--jobs` (every job, from the records alone: no
 * network), `--job ID` (its status, asked of the provider once), `--job ID --wait`,
 * `--job ID --cancel` and `--job ID --retry-failed` (the images that failed, expired, were
 * cancelled or were never submitted, prepared again with the job's own settings).
 */
import { createReadStream } from 'node:fs';
import type { JobProgress } from '../batch-api/wait.js';
import { jobProgress } from '../batch-api/wait.js';
import { collectJob } from '../batch-api/collect.js';
import { addRetryRound, imagesToRetry } from '../batch-api/build.js';
import { isTerminal, type JobRecord, type JobStore } from '../batch-api/jobs.js';
import { readLines } from '../batch-api/lines.js';
import type { MapEntry } from '../batch-api/mapping.js';
import { applyBatch, submitJob } from '../batch-api/submit.js';
import { withOverrides } from '../batch-api/targets.js';
import { ExitCode, InputError, UsageError } from '../errors.js';
import type { ExpandedInput, InputPlan } from '../input/expand.js';
import { displayUrl, neutralize, safeJson } from '../output/guard.js';
import { formatUsd, priceFor } from '../pricing.js';
import { formatAge, formatJobProgress } from '../render/job-progress.js';
import { formatCount } from '../render/text.js';
import { answerOf, inputOf, waitAndCollect } from './batch-collect.js';
import {
  checkSameServer,
  flowContext,
  jobFromRecord,
  jobStore,
  openEngine,
  type BatchApiOptions,
  type Engine,
} from './batch-job.js';
import { jobInputs, newTally, noteFailure, reportLeftOut } from './batch-submit.js';
import { CacheSession } from './cached.js';
import { createClient, loadImage, type Job, type RunContext } from './job.js';
import type { Save } from './outcomes.js';

/** `--jobs`: one line (or JSON object) per job, oldest first, from the records alone. */
export async function listJobs(job: Job, ctx: RunContext): Promise<number> {
  const { deps, reporter } = ctx;
  const store = jobStore(ctx);
  const records = await store.list();
  if (records.length === 0) {
    reporter.notice(`no batch jobs in ${store.dir}`);
    return ExitCode.OK;
  }
  const now = deps.now();
  if (job.json) {
    for (const record of records) deps.stdout.write(`${safeJson(jobJson(record, job, now))}\n`);
    return ExitCode.OK;
  }
  const rows = [
    ['JOB', 'STATUS', 'DONE', 'FAILED', 'AGE', 'COST', 'MODEL'],
    ...records.map((r) => jobRow(r, job, now)),
  ];
  const widths =
    rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  for (const row of rows) {
    const cells = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)));
    deps.stdout.write(`${cells.join('  ')}\n`);
  }
  return ExitCode.OK;
}

/** A job's status word: the batches' own, or what happened to it here. */
function statusOf(record: JobRecord, progress: JobProgress): string {
  if (record.kind === 'file') return 'file';
  const collected = record.collectedAt ? ', collected' : '';
  return `${progress.status}${collected}`;
}

function jobRow(record: JobRecord, job: Job, now: number): string[] {
  const progress = jobProgress(record, now);
  const cost = costSoFar(record, job);
  return [
    record.id,
    statusOf(record, progress),
    record.kind === 'file'
      ? `${formatCount(record.total)} requests`
      : `${formatCount(progress.completed)}/${formatCount(progress.total)}`,
    formatCount(progress.failed + (record.unprepared ?? 0)),
    formatAge(progress.elapsedMs),
    cost === undefined ? '-' : `~${formatUsd(cost)}`,
    neutralize(`${record.provider} ${record.model}`),
  ];
}

function jobJson(record: JobRecord, job: Job, now: number): Record<string, unknown> {
  const progress = jobProgress(record, now);
  return {
    id: record.id,
    kind: record.kind,
    status: record.kind === 'file' ? 'file' : progress.status,
    collected: Boolean(record.collectedAt),
    created_at: record.createdAt,
    age_s: Math.round(progress.elapsedMs / 1000),
    provider: record.provider,
    base_url: record.baseUrl,
    model: record.model,
    total: progress.total,
    completed: progress.completed,
    failed: progress.failed,
    not_prepared: record.unprepared ?? 0,
    batches: progress.shards,
    batches_finished: progress.shardsDone,
    cost: costSoFar(record, job) ?? null,
    output: record.output.output ?? null,
  };
}

/** What the finished requests cost so far, from the tokens the provider reported, at the batch price. */
function costSoFar(record: JobRecord, job: Job): number | undefined {
  const price = priceFor(record.model, job.prices);
  const used = record.shards.filter((s) => s.usage !== undefined);
  if (!price || used.length === 0) return undefined;
  let usd = 0;
  for (const shard of used) {
    const usage = shard.usage ?? { input_tokens: 0, output_tokens: 0 };
    usd += (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000;
  }
  return usd * (record.priceFactor ?? 1);
}

/** `--job ID` with its action. */
export async function jobCommand(
  job: Job,
  id: string,
  action: 'status' | 'wait' | 'cancel' | 'retry',
  wait: boolean,
  opts: BatchApiOptions,
  ctx: RunContext,
  saves: readonly Save[],
): Promise<number> {
  const store = jobStore(ctx);
  const record = await store.read(id);
  if (record.kind === 'file' && action === 'status') return fileStatus(record, job, ctx);
  const engine = await openEngine(job, ctx);
  try {
    checkSameServer(record, engine, job.provider.name);
    switch (action) {
      case 'status':
        return await status(record, job, engine, store, ctx);
      case 'cancel':
        return await cancel(record, engine, store, ctx);
      case 'wait': {
        const run = await jobFromRecord(job, record, opts.given, ctx.deps.cwd);
        return await waitAndCollect(record, run, engine, store, ctx, { saves });
      }
      case 'retry':
        return await retry(record, job, engine, store, ctx, { wait, opts, saves });
    }
  } finally {
    await engine.client.close();
  }
}

/** Asks the provider once about each unfinished batch, and saves what changed. */
async function refresh(
  record: JobRecord,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
): Promise<void> {
  let changed = false;
  for (const shard of record.shards) {
    if (!shard.batchId || isTerminal(shard.status)) continue;
    applyBatch(shard, await engine.batches.retrieve(shard.batchId, ctx.deps.interrupt));
    changed = true;
  }
  if (changed) await store.save(record);
}

/** `--job ID`: the job's line and one per batch (stdout), or one JSON object. */
async function status(
  record: JobRecord,
  job: Job,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
): Promise<number> {
  await refresh(record, engine, store, ctx);
  const { deps, reporter } = ctx;
  const now = deps.now();
  if (job.json) {
    deps.stdout.write(
      `${safeJson({
        ...jobJson(record, job, now),
        batches: record.shards.map((s) => ({
          n: s.n,
          round: s.round,
          id: s.batchId ?? null,
          status: s.status ?? (s.batchId ? 'validating' : 'not submitted'),
          requests: s.requests,
          bytes: s.bytes,
          completed: s.counts?.completed ?? 0,
          failed: s.counts?.failed ?? 0,
        })),
      })}\n`,
    );
  } else {
    const progress = jobProgress(record, now);
    deps.stdout.write(`job ${record.id}: ${formatJobProgress(progress)}\n`);
    for (const s of record.shards) {
      const counts = s.counts
        ? ` · ${formatCount(s.counts.completed)}/${formatCount(s.counts.total || s.requests)} done${s.counts.failed > 0 ? ` · ${formatCount(s.counts.failed)} failed` : ''}`
        : '';
      deps.stdout.write(
        `  batch ${s.n}${s.round > 1 ? ` (retry ${s.round - 1})` : ''}: ${neutralize(s.batchId ?? '-')} · ${s.status ?? (s.batchId ? 'validating' : 'not submitted')} · ${formatCount(s.requests)} requests${counts}\n`,
      );
    }
  }
  if (record.shards.every((s) => isTerminal(s.status)))
    reporter.notice(`finished: write the results with describe-image --job ${record.id} --wait`);
  return ExitCode.OK;
}

function fileStatus(record: JobRecord, job: Job, ctx: RunContext): number {
  const { deps, reporter } = ctx;
  if (job.json) deps.stdout.write(`${safeJson(jobJson(record, job, deps.now()))}\n`);
  else {
    deps.stdout.write(
      `job ${record.id}: ${formatCount(record.total)} requests written by --batch-file\n`,
    );
    for (const s of record.shards)
      deps.stdout.write(`  ${neutralize(s.file ?? '-')} · ${formatCount(s.requests)} requests\n`);
  }
  reporter.notice(
    `run the requests yourself (vllm run-batch -i …), then write the results with describe-image --batch-results FILE`,
  );
  return ExitCode.OK;
}

/** `--job ID --cancel`: every unfinished batch; what finished is kept. */
async function cancel(
  record: JobRecord,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
): Promise<number> {
  const { cancelJob } = await import('../batch-api/submit.js');
  await refresh(record, engine, store, ctx);
  const running = record.shards.filter((s) => s.batchId && !isTerminal(s.status)).length;
  if (running === 0) {
    ctx.reporter.notice(
      `job ${record.id} has no batch running: nothing to cancel (write its results with describe-image --job ${record.id} --wait)`,
    );
    return ExitCode.OK;
  }
  await cancelJob(record, flowContext(engine, store, ctx));
  ctx.reporter.info(
    `cancelling job ${record.id} (${running} batch${running === 1 ? '' : 'es'}): answers already finished are kept; write them with describe-image --job ${record.id} --wait`,
  );
  return ExitCode.OK;
}

/**
 * `--job ID --retry-failed`: first the batches a stopped submission left (never resubmitting
 * what a batch holds), then every image whose outcome is not a valid answer, prepared again
 * with the job's own settings, as a new round of the same job.
 */
async function retry(
  record: JobRecord,
  job: Job,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
  o: { wait: boolean; opts: BatchApiOptions; saves: readonly Save[] },
): Promise<number> {
  const { deps, reporter } = ctx;
  await refresh(record, engine, store, ctx);
  const running = record.shards.filter((s) => s.batchId && !isTerminal(s.status));
  if (running.length > 0) {
    throw new UsageError(
      `job ${record.id} is still running (${running.length} batch${running.length === 1 ? '' : 'es'}); wait for it with --job ${record.id} --wait, or --cancel it first`,
    );
  }
  const flow = flowContext(engine, store, ctx);
  const unsent = record.shards.filter((s) => !s.batchId);
  if (unsent.length > 0) {
    await submitJob(record, flow);
    reporter.info(`submitted the ${unsent.length} batch(es) job ${record.id} had left to submit`);
  }
  const run = await jobFromRecord(job, record, o.opts.given, deps.cwd);
  const table = await collectJob(record, engine.files, { signal: deps.interrupt });
  // Images in the batches just submitted have no outcome yet: they are not failures.
  const waiting = await idsOf(unsent);
  const tty = Boolean(deps.stdout.isTTY);
  const entries = (
    await imagesToRetry(
      record,
      table,
      async (completion) => !((await answerOf(run, '', completion, tty)) instanceof Error),
    )
  ).filter((e) => !waiting.has(e.custom_id));
  const tally = newTally();
  const retriable: MapEntry[] = [];
  for (const entry of entries) {
    if (entry.path || entry.url) retriable.push(entry);
    else
      noteFailure(
        ctx,
        tally,
        entry.index,
        new InputError(
          `${entry.image}: cannot be submitted again: it came from ${entry.image === '-' ? 'standard input' : 'a data: URL'}, which the job does not keep`,
        ),
      );
  }
  let added = 0;
  if (retriable.length > 0) {
    const chat = run.download ? await createClient(run, ctx) : undefined;
    // An image answered since (by a synchronous run, say) is not asked again.
    const cache = await CacheSession.open(run, ctx);
    try {
      const shards = await addRetryRound(
        record,
        await store.jobDir(record.id),
        jobInputs(run, ctx, planOf(retriable), {
          load: (arg) => loadImage(arg, run, ctx, chat),
          cache: { session: cache, lookup: true },
          openJobs: undefined,
          saves: [],
          tally,
          indexes: retriable.map((e) => e.index),
        }),
        {
          limits: withOverrides(engine.target.limits, o.opts),
          redactor: ctx.redactor,
          onSkip: (input, error) => noteFailure(ctx, tally, input.index, error),
        },
      );
      added = shards.reduce((sum, s) => sum + s.requests, 0);
    } finally {
      await chat?.close();
      await cache.close();
    }
    reportLeftOut(run, ctx, tally);
    record.collectedAt = undefined;
    await store.save(record);
    await submitJob(record, flow);
  }
  if (added === 0 && unsent.length === 0) {
    reporter.notice(`job ${record.id}: no image to submit again`);
    return tally.firstFailure?.code ?? ExitCode.OK;
  }
  if (added > 0)
    reporter.info(
      `submitted ${formatCount(added)} image(s) of job ${record.id} again (${displayUrl(engine.target.baseUrl)})`,
    );
  if (!o.wait) {
    deps.stdout.write(`${record.id}\n`);
    reporter.info(`collect the results with: describe-image --job ${record.id} --wait`);
    return tally.firstFailure?.code ?? ExitCode.OK;
  }
  return waitAndCollect(record, run, engine, store, ctx, { saves: o.saves });
}

/** The custom_ids of the given shards (from their `.ids` files). */
async function idsOf(shards: readonly JobRecord['shards'][number][]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const shard of shards) {
    if (!shard.ids) continue;
    for await (const id of readLines(createReadStream(shard.ids))) ids.add(id);
  }
  return ids;
}

/** Map entries as a run's input. */
function planOf(entries: readonly MapEntry[]): InputPlan {
  const inputs: ExpandedInput[] = entries.map(inputOf);
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- an input plan is async
    inputs: (async function* () {
      yield* inputs;
    })(),
    multiple: true,
    count: () => Promise.resolve(inputs.length),
  };
}
