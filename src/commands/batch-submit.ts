/**
 * Submitting a run to a provider's batch engine (`--batch-api`), or writing its requests for
 * running by hand (`--batch-file`): every image read and prepared exactly as a synchronous run
 * prepares it, each request exactly the body that run would send (less `stream`), written into
 * shards in input order with a map back to the images, and recorded as a job; then each shard
 * uploaded and its batch created.
 *
 * Left out before anything is written: images the `-o` file already answers (`--resume`),
 * images whose sidecar exists (`--skip-existing`), and images already in an unfinished job with
 * the same settings (one notice per job). An image that cannot be prepared is reported at once
 * and kept in the map with its failure, so its results show it in its place.
 */
import path from 'node:path';
import type { ApiClient } from '../api/client.js';
import {
  imagesInOpenJobs,
  jobShardPath,
  newJobRecord,
  writeJobFiles,
  type JobInput,
} from '../batch-api/build.js';
import { newJobId, settingsKey, type JobRecord, type JobStore } from '../batch-api/jobs.js';
import { mapPathFor } from '../batch-api/mapping.js';
import { numberedPath } from '../batch-api/shards.js';
import { submitJob } from '../batch-api/submit.js';
import {
  batchTarget,
  OPENAI_LIMITS,
  withOverrides,
  type BatchTarget,
} from '../batch-api/targets.js';
import {
  DescribeImageError,
  ExitCode,
  exitCodeFor,
  InputError,
  InterruptedError,
  UsageError,
} from '../errors.js';
import { writeFailure } from '../output/atomic.js';
import type { ExpandedInput, InputPlan } from '../input/expand.js';
import type { ImageArg } from '../input/images.js';
import { displayUrl } from '../output/guard.js';
import { formatCount } from '../render/text.js';
import {
  flowContext,
  jobStore,
  openEngine,
  outputSettings,
  requestSettings,
  type BatchApiOptions,
  type Engine,
} from './batch-job.js';
import {
  buildPayload,
  createClient,
  forImage,
  imageReport,
  modelOf,
  loadImage,
  planRun,
  prepareLoaded,
  type LoadedImage,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';
import { doneCheck, type Save } from './outcomes.js';
import { CacheSession } from './cached.js';

/** Images read and prepared at the same time (as a synchronous batch does). */
const PREPARE_AT_ONCE = 4;

/** Every input line's `url` where no engine says otherwise (vLLM, OpenAI). */
const CHAT_LINE_URL = '/v1/chat/completions';

/** What preparing a run's images found. */
export interface Tally {
  /** Images in the run's input. */
  seen: number;
  /** Images kept in the map with their failure. */
  unprepared: number;
  firstFailure: { index: number; code: number } | undefined;
  /** Left out: already answered in `-o` (`--resume`) or saved (`--skip-existing`). */
  done: number;
  /** Left out: already in an unfinished job with the same settings (job id → images). */
  inJobs: Map<string, number>;
  /** Not sent: answered from the cache (their answers come with the job's results). */
  cached: number;
  /** Not sent: the same request as an earlier image of the run (asked once). */
  duplicates: number;
}

/** One request of the run, with what preparation did (for `--dry-run`'s report). */
export type PreparedInput = JobInput & { prepared: PreparedImage | undefined };

export interface InputOptions {
  /** How an image is read (a dry run fetches nothing). */
  load: (arg: ImageArg) => Promise<LoadedImage>;
  /**
   * The run's answer cache: each request's key goes into the map (to store the answer the
   * batch brings), and with `lookup`, an image whose answer is there is not sent.
   */
  cache?: { session: CacheSession; lookup: boolean } | undefined;
  /** Images of unfinished jobs with the same settings (resume key → job id). */
  openJobs: Map<string, string> | undefined;
  saves: readonly Save[];
  tally: Tally;
  /** Each image's position in the job's input, when not its place here (a retry's images). */
  indexes?: readonly number[] | undefined;
}

export function newTally(): Tally {
  return {
    seen: 0,
    unprepared: 0,
    firstFailure: undefined,
    done: 0,
    inJobs: new Map(),
    cached: 0,
    duplicates: 0,
  };
}

/**
 * The run's requests in input order (a few images prepared at once), without the images left
 * out; an image that cannot be prepared comes with its failure instead of a request.
 */
export async function* jobInputs(
  job: Job,
  ctx: RunContext,
  plan: InputPlan,
  opts: InputOptions,
): AsyncGenerator<PreparedInput> {
  const { tally } = opts;
  const isDone = await doneCheck(job, ctx, opts.saves);
  const one = async (input: ExpandedInput, index: number): Promise<PreparedInput | undefined> => {
    const inJob = opts.openJobs?.get(input.key);
    if (inJob !== undefined) {
      tally.inJobs.set(inJob, (tally.inJobs.get(inJob) ?? 0) + 1);
      return undefined;
    }
    if (await isDone(input)) {
      tally.done++;
      return undefined;
    }
    try {
      const loaded = await opts.load(input.arg);
      const cacheKey = opts.cache?.session.keyFor([loaded]);
      const image = {
        ...mapImage(input),
        ...(cacheKey === undefined ? {} : { cache_key: cacheKey }),
      };
      if (opts.cache?.lookup && opts.cache.session.lookup(cacheKey, input.name)) {
        tally.cached++;
        return { index, image, payload: { cached: true }, prepared: undefined };
      }
      const prepared = await prepareLoaded(loaded, job, ctx);
      ctx.reporter.debug(imageReport(job, prepared));
      return { index, image, payload: buildPayload(job, [prepared.source]), prepared };
    } catch (error) {
      if (error instanceof InterruptedError || ctx.deps.interrupt.aborted) throw error;
      const failure = forImage(input.name, error);
      noteFailure(ctx, tally, index, failure);
      const message = failure instanceof Error ? failure.message : String(failure);
      return {
        index,
        image: mapImage(input),
        payload: { failed: { code: exitCodeFor(failure), message } },
        prepared: undefined,
      };
    }
  };
  // Identical images (the same request key) are asked once, as a synchronous run asks them:
  // decided in input order, so the one sent comes first and its answer, put in the cache when
  // the results are collected, is there for the others.
  const sent = new Set<string>();
  const once = (ready: PreparedInput): PreparedInput => {
    const key = ready.image.cache_key;
    if (key === undefined || !('body' in ready.payload)) return ready;
    if (!sent.has(key)) {
      sent.add(key);
      return ready;
    }
    tally.duplicates++;
    return { ...ready, payload: { cached: true, duplicate: true }, prepared: undefined };
  };
  const queue: Promise<PreparedInput | undefined>[] = [];
  try {
    for await (const input of plan.inputs) {
      if (ctx.deps.interrupt.aborted) throw new InterruptedError();
      const position = tally.seen++;
      const next = one(input, opts.indexes?.[position] ?? position);
      // Awaited in turn below; until then a failure must not count as unhandled.
      next.catch(() => undefined);
      queue.push(next);
      if (queue.length >= PREPARE_AT_ONCE) {
        const ready = await queue.shift();
        if (ready) yield once(ready);
      }
    }
    while (queue.length > 0) {
      const ready = await queue.shift();
      if (ready) yield once(ready);
    }
  } finally {
    await Promise.allSettled(queue);
  }
}

/** Reports an image that cannot go into the batch, and counts it for the exit code. */
export function noteFailure(ctx: RunContext, tally: Tally, index: number, error: unknown): void {
  tally.unprepared++;
  const code = exitCodeFor(error);
  if (!tally.firstFailure || index < tally.firstFailure.index) tally.firstFailure = { index, code };
  ctx.reporter.error(error instanceof Error ? error.message : String(error));
}

/** What the map keeps of an image: never its bytes (a data URL or standard input is named only). */
function mapImage(input: ExpandedInput): JobInput['image'] {
  switch (input.arg.kind) {
    case 'file':
      return { image: input.name, path: input.key, key: input.key };
    case 'url':
      return { image: input.name, url: input.arg.url, key: input.key };
    default:
      return { image: input.name };
  }
}

/** Says what was left out, once per reason. */
export function reportLeftOut(job: Job, ctx: RunContext, tally: Tally): void {
  if (tally.done > 0)
    ctx.reporter.notice(
      `skipped ${formatCount(tally.done)} image(s) already done (${job.resume && job.output ? `answered in ${job.output}` : 'saved'})`,
    );
  if (tally.cached > 0)
    ctx.reporter.notice(
      `${formatCount(tally.cached)} image(s) answered from the cache: not sent (their answers come with the results)`,
    );
  if (tally.duplicates > 0)
    ctx.reporter.notice(
      `${formatCount(tally.duplicates)} image(s) identical to an earlier one: asked once (the answer is given to each)`,
    );
  for (const [id, count] of tally.inJobs)
    ctx.reporter.notice(
      `skipped ${formatCount(count)} image(s) already in job ${id} (same settings); collect it with describe-image --job ${id} --wait`,
    );
}

/** The engine's limits and line format for `--batch-file`, which any provider may write. */
function offlineTarget(job: Job): BatchTarget {
  try {
    return batchTarget(job.provider, job.api.baseUrl);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return {
      baseUrl: job.api.baseUrl,
      query: {},
      lineUrl: CHAT_LINE_URL,
      endpoint: CHAT_LINE_URL,
      limits: OPENAI_LIMITS,
      minPollMs: 0,
      label: job.provider.label,
      priceFactor: 0.5,
    };
  }
}

/** A batch needs its model named on every line: it cannot be asked of the server later. */
export function checkModel(job: Job, flag: string): void {
  if (job.model === undefined)
    throw new UsageError(
      `${flag} needs --model: every request of a batch names its model (${job.provider.label} has no default)`,
    );
}

/** `--batch-api` and `--batch-file`. */
export async function submitRun(
  job: Job,
  mode: { kind: 'submit'; wait: boolean } | { kind: 'file'; path: string },
  opts: BatchApiOptions,
  ctx: RunContext,
  saves: readonly Save[],
): Promise<number> {
  // With write-back, ExifTool starts first: its checks (--skip-existing, --resume) leave out
  // photos already written, and its writes take the results of --wait.
  const writesNow = (mode.kind === 'submit' && mode.wait) || job.skipExisting || job.resume;
  if (job.writeBack && saves.length === 0 && writesNow) {
    const { withWriteBack } = await import('./write-back.js');
    return withWriteBack(job, ctx, (wb) => submitRun(job, mode, opts, ctx, wb));
  }
  const { deps, reporter } = ctx;
  const file = mode.kind === 'file' ? path.resolve(deps.cwd, mode.path) : undefined;
  checkModel(job, file ? '--batch-file' : '--batch-api');
  if (job.cache === 'only')
    throw new UsageError(
      `--cache-only asks nothing; it cannot be used with ${file ? '--batch-file' : '--batch-api'}`,
    );
  // Before any image is read: a provider without a batch engine for images is refused here.
  const engine = file ? undefined : await openEngine(job, ctx);
  try {
    const target = engine?.target ?? offlineTarget(job);
    const limits = withOverrides(target.limits, opts);
    const store = jobStore(ctx);
    const settings = requestSettings(job);
    const openJobs = file ? undefined : await imagesInOpenJobs(store, settingsKey(settings));
    const plan = await planRun(job, ctx);
    const id = newJobId(deps.now());
    const dir = file ? undefined : await store.jobDir(id);
    const where = dir
      ? {
          pathFor: (n: number) => jobShardPath(dir, n),
          mapPath: path.join(dir, 'map.jsonl'),
          writeIds: true,
        }
      : {
          pathFor: (n: number) => numberedPath(file ?? '', n),
          mapPath: mapPathFor(file ?? ''),
          writeIds: false,
        };
    const tally = newTally();
    const chat: ApiClient | undefined = job.download ? await createClient(job, ctx) : undefined;
    const cache = await CacheSession.open(job, ctx);
    let written: Awaited<ReturnType<typeof writeJobFiles>>;
    try {
      written = await writeJobFiles(
        jobInputs(job, ctx, plan, {
          load: (arg) => loadImage(arg, job, ctx, chat),
          // A file for running by hand holds every request; its results still fill the cache.
          cache: { session: cache, lookup: !file },
          openJobs,
          saves,
          tally,
        }),
        {
          jobId: id,
          lineUrl: target.lineUrl,
          limits,
          redactor: ctx.redactor,
          ...where,
          onSkip: (input, error) => noteFailure(ctx, tally, input.index, error),
        },
      );
    } catch (error) {
      if (dir) await store.remove(id);
      throw writeError(error, file ?? store.dir);
    } finally {
      await chat?.close();
      await cache.close();
    }
    reportLeftOut(job, ctx, tally);
    const failed = tally.firstFailure?.code ?? ExitCode.OK;
    // A job whose every image is answered from the cache still brings those answers.
    if (written.written === 0 && tally.cached === 0) {
      if (dir) await store.remove(id);
      else await removeQuietly(where.mapPath);
      if (tally.seen === 0) reporter.warn('no images to describe');
      else
        reporter.notice(`nothing to ${file ? 'write' : 'submit'}: no image is left to ask about`);
      return failed;
    }
    const record = newJobRecord({
      id,
      kind: file ? 'file' : 'api',
      createdAt: deps.now(),
      provider: job.provider.name,
      target: { ...target, baseUrl: file ? job.api.baseUrl : target.baseUrl },
      model: modelOf(job),
      settings,
      output: outputSettings(opts.given, deps.cwd),
      map: where.mapPath,
      shards: written.shards,
      total: written.written,
      inputs: tally.seen,
      unprepared: tally.unprepared,
      priceFactor: target.priceFactor,
    });
    await store.save(record);
    if (!engine) {
      reportFiles(record, job, ctx);
      return failed;
    }
    return await submitRecorded(record, job, engine, store, ctx, {
      wait: mode.kind === 'submit' && mode.wait,
      saves,
      failed,
    });
  } finally {
    await engine?.client.close();
  }
}

/** `--batch-file`: where the requests went and how to run them. */
function reportFiles(record: JobRecord, job: Job, ctx: RunContext): void {
  const { reporter } = ctx;
  for (const shard of record.shards) {
    reporter.info(
      `wrote ${formatCount(shard.requests)} request(s) to ${shard.file ?? ''} (${megabytes(shard.bytes)}, ${shard.model})`,
    );
  }
  const first = record.shards[0]?.file ?? '';
  reporter.info(`the map back to the images: ${record.map} (job ${record.id})`);
  reporter.info(
    `run them with: vllm run-batch -i ${first} -o results.jsonl --model ${modelOf(job)}; then write the results with: describe-image --batch-results results.jsonl`,
  );
}

/** Uploads and creates the recorded job's batches, then returns, or waits and collects. */
async function submitRecorded(
  record: JobRecord,
  job: Job,
  engine: Engine,
  store: JobStore,
  ctx: RunContext,
  opts: { wait: boolean; saves: readonly Save[]; failed: number },
): Promise<number> {
  const { reporter } = ctx;
  const count = record.shards.length;
  if (count === 0) {
    reporter.info(`job ${record.id}: every image was answered from the cache; nothing was sent`);
    if (!opts.wait) {
      ctx.deps.stdout.write(`${record.id}\n`);
      reporter.info(`write the results with: describe-image --job ${record.id} --wait`);
      return opts.failed;
    }
    const { waitAndCollect } = await import('./batch-collect.js');
    return waitAndCollect(record, job, engine, store, ctx, { saves: opts.saves, reported: true });
  }
  const flow = {
    ...flowContext(engine, store, ctx),
    onStep: (shard: JobRecord['shards'][number], step: 'uploaded' | 'created') => {
      if (step === 'created')
        reporter.info(
          `batch ${shard.n} of ${count} submitted: ${shard.batchId ?? ''} (${formatCount(shard.requests)} requests, ${megabytes(shard.bytes)})`,
        );
    },
  };
  try {
    await submitJob(record, flow);
  } catch (error) {
    return submitFailed(record, store, ctx, error);
  }
  const what = `${formatCount(record.total)} image${record.total === 1 ? '' : 's'} in ${count} batch${count === 1 ? '' : 'es'} (${engine.target.label}, ${displayUrl(engine.target.baseUrl)})`;
  if (!opts.wait) {
    ctx.deps.stdout.write(`${record.id}\n`);
    reporter.info(
      `submitted job ${record.id}: ${what}; collect the results with: describe-image --job ${record.id} --wait`,
    );
    return opts.failed;
  }
  reporter.info(
    `submitted job ${record.id}: ${what}; waiting for it (Ctrl-C stops waiting, the job goes on)`,
  );
  const { waitAndCollect } = await import('./batch-collect.js');
  return waitAndCollect(record, job, engine, store, ctx, { saves: opts.saves, reported: true });
}

/**
 * A submission that stopped: what was created stays in the job (`--retry-failed` submits the
 * rest); a job none of whose batches may exist is removed.
 */
async function submitFailed(
  record: JobRecord,
  store: JobStore,
  ctx: RunContext,
  error: unknown,
): Promise<number> {
  const created = record.shards.filter((s) => s.batchId !== undefined).length;
  const maybe = record.shards.some((s) => s.batchId !== undefined || s.createSent);
  const left = maybe
    ? `job ${record.id} is kept with ${created} of ${record.shards.length} batches submitted: describe-image --job ${record.id} --retry-failed submits the rest`
    : 'nothing was submitted';
  if (!maybe) await store.remove(record.id);
  if (error instanceof InterruptedError) {
    ctx.reporter.line([{ text: `interrupted: ${left}`, style: 'yellow' }]);
    return ExitCode.INTERRUPTED;
  }
  ctx.reporter.error(error instanceof Error ? error.message : String(error));
  if (maybe) ctx.reporter.line(left);
  if (ctx.reporter.debugging && error instanceof Error && error.stack)
    ctx.reporter.debug(error.stack);
  return exitCodeFor(error);
}

/** A file system error while writing the batch files: one line naming where. */
function writeError(error: unknown, where: string): unknown {
  if (typeof (error as { code?: unknown }).code !== 'string' || error instanceof DescribeImageError)
    return error;
  return new InputError(`${where}: cannot write the batch files (${writeFailure(error)})`, {
    cause: error,
  });
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

async function removeQuietly(file: string): Promise<void> {
  const { rm } = await import('node:fs/promises');
  await rm(file, { force: true });
}
