/**
 * Waiting for a batch job and writing its results (`--wait`, `--job ID --wait`), and writing
 * the results in local output files (`--batch-results`): every image of the job's map, in input
 * order, through the same `Outcomes` a synchronous batch writes through (`-o`, `--json`, text
 * under `==> NAME <==`, `--sidecar` and any other `Save`), each answer checked against its
 * schema, each failure with its own exit code, the summary at the batch price.
 *
 * Ctrl-C while waiting stops the waiting, never the job, and says how to pick it up again.
 */
import path from 'node:path';
import type { Completion } from '../api/types.js';
import {
  collectFiles,
  collectJob,
  resultsInOrder,
  type OutcomeTable,
} from '../batch-api/collect.js';
import type { JobRecord, JobStore } from '../batch-api/jobs.js';
import { jobOfCustomId, type MapEntry } from '../batch-api/mapping.js';
import { resolveResultsMap } from '../batch-api/offline.js';
import type { Outcome } from '../batch-api/results.js';
import { CANCELLED_EXIT, waitForJob, type JobProgress } from '../batch-api/wait.js';
import {
  DescribeImageError,
  ExitCode,
  InterruptedError,
  MalformedResponseError,
  SchemaMismatchError,
  UsageError,
  type ExitCode as Code,
} from '../errors.js';
import type { ExpandedInput } from '../input/expand.js';
import { STDIN_NAME, type ImageArg } from '../input/images.js';
import { formatJobProgress } from '../render/job-progress.js';
import { formatCount } from '../render/text.js';
import { isCI } from '../ui/colors.js';
import {
  checkedOutput,
  flowContext,
  jobFromRecord,
  jobStore,
  type BatchApiOptions,
  type Engine,
} from './batch-job.js';
import { forImage, type Answer, type Job, type RunContext } from './job.js';
import { CacheSession } from './cached.js';
import { Outcomes, type Save } from './outcomes.js';
import { checkAnswer, presentAnswer } from './structured.js';

export interface CollectOptions {
  saves: readonly Save[];
  /** Images that could not be prepared were reported already (by this process, at submission). */
  reported?: boolean | undefined;
}

/** Waits until every submitted batch of the job has finished, then writes its results. */
export async function waitAndCollect(
  record: JobRecord,
  job: Job,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
  opts: CollectOptions,
): Promise<number> {
  const { deps, reporter } = ctx;
  if (record.shards.length > 0 && !record.shards.some((s) => s.batchId !== undefined)) {
    throw new UsageError(
      `job ${record.id} has no batch submitted yet; describe-image --job ${record.id} --retry-failed submits it`,
    );
  }
  const line = new StatusLine(ctx, record.id);
  let done: JobRecord;
  try {
    done = await waitForJob(record, flowContext(engine, store, ctx), {
      minPollMs: engine.target.minPollMs,
      onProgress: (progress) => line.show(progress),
      now: () => deps.now(),
    });
  } catch (error) {
    line.stop();
    if (error instanceof InterruptedError) {
      reporter.line([{ text: error.message, style: 'yellow' }]);
      return ExitCode.INTERRUPTED;
    }
    throw error;
  }
  line.stop();
  const table = await collectJob(done, engine.files, {
    signal: deps.interrupt,
    onDownload: (shard, fileId) =>
      reporter.debug(`downloading ${fileId}, the results of batch ${shard.batchId ?? ''}`),
  });
  const code = await writeResults(job, done, table, ctx, {
    ...opts,
    startedAt: Date.parse(done.createdAt),
    pending: `their batches were never submitted: describe-image --job ${done.id} --retry-failed submits them`,
  });
  if (done.shards.every((s) => s.batchId !== undefined)) {
    await store.update(done.id, (r) => {
      r.collectedAt = new Date(deps.now()).toISOString();
    });
  }
  return code;
}

/** `--batch-results FILE…`: output files from `vllm run-batch`, or downloaded by hand. */
export async function collectResultFiles(
  job: Job,
  files: readonly string[],
  opts: BatchApiOptions,
  ctx: RunContext,
  saves: readonly Save[],
): Promise<number> {
  const { deps } = ctx;
  const store = jobStore(ctx);
  const given = files.map((f) => path.resolve(deps.cwd, f));
  const found = await resolveResultsMap(given, store);
  const record = await store.read(found.job).catch(() => undefined);
  const run = record ? await jobFromRecord(job, record, opts.given, deps.cwd) : checkedOutput(job);
  const table = await collectFiles(
    found.results,
    record?.lineUrl ?? '/v1/chat/completions',
    (id) => jobOfCustomId(id) === found.job,
  );
  return writeResults(
    run,
    { id: found.job, map: found.map, priceFactor: record?.priceFactor, inputs: record?.inputs },
    table,
    ctx,
    {
      saves,
      startedAt: deps.now(),
      missing: () => ({
        kind: 'failed',
        error: new MalformedResponseError('no result for this request in the given files'),
        expired: false,
      }),
    },
  );
}

interface WriteOptions extends CollectOptions {
  /** When the job began (the summary's time). */
  startedAt: number;
  /** The outcome of an image of the map with no result (none: it has no result yet). */
  missing?: ((entry: MapEntry) => Outcome) | undefined;
  /** Why an image with no result has none (for the line that counts them). */
  pending?: string | undefined;
}

/** Writes every image of the job's map, in input order, as a synchronous batch would. */
async function writeResults(
  job: Job,
  source: Pick<JobRecord, 'id' | 'map' | 'priceFactor' | 'inputs'>,
  table: OutcomeTable,
  ctx: RunContext,
  opts: WriteOptions,
): Promise<number> {
  // The job's write-back (asked for now, or remembered from the submission) is one more save.
  if (job.writeBack && opts.saves.length === 0) {
    const { withWriteBack } = await import('./write-back.js');
    return withWriteBack(job, ctx, (saves) =>
      writeResults(job, source, table, ctx, { ...opts, saves }),
    );
  }
  const { deps, reporter } = ctx;
  const outcomes = await Outcomes.open(job, ctx, {
    multiple: (source.inputs ?? 2) > 1,
    window: 2,
    print: (text) => deps.stdout.write(text),
    saves: opts.saves,
  });
  const stats = outcomes.stats;
  const tty = Boolean(deps.stdout.isTTY);
  // Collecting asks nothing: the cache gives the answers it holds and takes the batch's.
  const cache = await CacheSession.open(
    { ...job, cache: job.cache === 'off' ? 'off' : 'use' },
    ctx,
  );
  let next = 0;
  let cancelled = 0;
  let pending = 0;
  try {
    for await (const { entry, outcome, batchId } of resultsInOrder(source.map, table)) {
      // Images left out at submission (done already, or in another job) hold no line.
      for (; next < entry.index; next++) leftOut(outcomes, next);
      next = Math.max(next, entry.index + 1);
      stats.total++;
      const input = inputOf(entry);
      if (await outcomes.skip(input, entry.index)) continue;
      // Answered from the cache at submission, or since (an answer beats a failure).
      const hit =
        outcome?.kind === 'answered' ? undefined : cache.lookup(entry.cache_key, input.name);
      if (hit) {
        await outcomes.succeed(input, entry.index, hit.answer, 0, {
          cached: true,
          askedAt: hit.askedAt,
        });
        continue;
      }
      if (!outcome && entry.cached) {
        outcomes.fail(input, entry.index, cacheLost(input.name, entry.duplicate === true), 0);
        continue;
      }
      if (!outcome && entry.failed) {
        const error = new DescribeImageError(entry.failed.message, entry.failed.code as Code);
        outcomes.fail(input, entry.index, error, 0, opts.reported);
        continue;
      }
      const found = outcome ?? opts.missing?.(entry);
      if (!found || found.kind === 'cancelled') {
        if (found) cancelled++;
        else pending++;
        outcomes.notSent(input, entry.index, false);
        continue;
      }
      if (found.kind === 'failed') {
        outcomes.fail(input, entry.index, forImage(input.name, found.error), 0);
        continue;
      }
      const answer = await answerOf(job, input.name, found.completion, tty);
      if (answer instanceof SchemaMismatchError) {
        outcomes.fail(input, entry.index, answer, 0);
        continue;
      }
      cache.put(entry.cache_key, answer);
      await outcomes.succeed(input, entry.index, answer, 0, {
        batchId,
        priceFactor: source.priceFactor,
      });
    }
    for (; next < (source.inputs ?? 0); next++) leftOut(outcomes, next);
  } finally {
    outcomes.close();
    await cache.close();
  }
  outcomes.report(deps.now() - opts.startedAt);
  if (table.unknownCount > 0)
    reporter.warn(
      `${formatCount(table.unknownCount)} result line(s) belong to no image of job ${source.id} (${table.unknown.join(', ')}): left out`,
    );
  if (table.badLines > 0)
    reporter.warn(
      `${formatCount(table.badLines)} line(s) of the results are not batch results: left out`,
    );
  if (cancelled > 0)
    reporter.line(
      `${formatCount(cancelled)} image(s) were cancelled before they ran: describe-image --job ${source.id} --retry-failed submits them again`,
    );
  if (pending > 0 && opts.pending)
    reporter.line(`${formatCount(pending)} image(s) have no result: ${opts.pending}`);
  if (stats.cost > 0 && source.priceFactor !== undefined && source.priceFactor !== 1)
    reporter.info([
      {
        text: `costs are at the batch price (${Math.round(source.priceFactor * 100)} % of the list price)`,
        style: 'dim',
      },
    ]);
  const code = outcomes.exitCode;
  return code === ExitCode.OK && cancelled + pending > 0 ? CANCELLED_EXIT : code;
}

/** An image whose answer was in the cache at submission, and is not any more. */
function cacheLost(name: string, duplicate: boolean): DescribeImageError {
  return new DescribeImageError(
    duplicate
      ? `${name}: asked once for an identical image earlier in the job, which has no answer; --retry-failed asks for it`
      : `${name}: its answer was in the cache when the job was submitted, and is not any more; --retry-failed asks for it`,
    ExitCode.CACHE_MISS,
  );
}

/** An image left out of the job at submission: counted as skipped, as `--resume` counts it. */
function leftOut(outcomes: Outcomes, index: number): void {
  outcomes.stats.total++;
  outcomes.skipped(index);
}

/** The image a map entry names, as the run's input named it. */
export function inputOf(entry: MapEntry): ExpandedInput {
  const arg: ImageArg = entry.path
    ? { kind: 'file', path: entry.path, name: entry.image }
    : entry.url
      ? { kind: 'url', url: entry.url, name: entry.image }
      : entry.image === STDIN_NAME
        ? { kind: 'stdin', name: STDIN_NAME }
        : { kind: 'data', url: '', name: entry.image };
  // A key no `-o` line can have, for images that have none (standard input, data URLs).
  return { arg, name: entry.image, key: entry.key ?? `\0${entry.custom_id}` };
}

/**
 * A batch's answer as a synchronous run presents it: a structured answer checked against its
 * schema (a batch asks once: a mismatch is the image's failure, and `--retry-failed` asks again).
 */
export async function answerOf(
  job: Job,
  name: string,
  completion: Completion,
  tty: boolean,
): Promise<Answer | SchemaMismatchError> {
  const spec = job.structured;
  if (!spec)
    return { completion, json: completion.text, text: completion.text, usage: completion.usage };
  if (completion.refusal)
    return new SchemaMismatchError(`${name}: the model refused to answer: ${completion.text}`);
  const checked = await checkAnswer(spec, completion.text);
  if (!checked.ok)
    return new SchemaMismatchError(`${name}: ${checked.problem} (--retry-failed asks again)`);
  const shown = presentAnswer(spec, checked.value, tty);
  return {
    completion,
    json: shown.json,
    text: shown.text,
    usage: completion.usage,
    value: checked.value,
  };
}

/**
 * The waiting job's progress: redrawn in place on a terminal; elsewhere one line each time the
 * status or the number of finished batches changes (for logs).
 */
class StatusLine {
  private readonly live: boolean;
  private shown = false;
  private text = '';
  private last = '';

  constructor(
    private readonly ctx: RunContext,
    private readonly jobId: string,
  ) {
    const { deps, reporter } = ctx;
    this.live = Boolean(deps.stderr.isTTY) && !reporter.quiet && !isCI(deps.env);
    if (this.live) {
      reporter.beforeWrite = () => this.clear();
      reporter.afterWrite = () => this.draw();
    }
  }

  show(progress: JobProgress): void {
    this.text = formatJobProgress(progress);
    if (this.live) {
      this.draw();
      return;
    }
    const key = `${progress.status} ${progress.shardsDone}`;
    if (key === this.last) return;
    this.last = key;
    this.ctx.reporter.info(`job ${this.jobId}: ${this.text}`);
  }

  private draw(): void {
    if (!this.live || this.text === '') return;
    const width = this.ctx.reporter.stream.columns ?? 80;
    this.ctx.reporter.status(this.text.length >= width ? this.text.slice(0, width - 1) : this.text);
    this.shown = true;
  }

  private clear(): void {
    if (!this.shown) return;
    this.ctx.reporter.clearStatus();
    this.shown = false;
  }

  stop(): void {
    this.clear();
    if (this.live) {
      this.ctx.reporter.beforeWrite = undefined;
      this.ctx.reporter.afterWrite = undefined;
    }
  }
}
