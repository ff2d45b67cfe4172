/**
 * One request: one image (or several with --together) → request → streamed answer on
 * stdout → usage and cost on stderr. Several images without --together go to `batch.ts`, and
 * so does one image with an output option (--json, -o, --sidecar, write-back: a batch of one
 * writes what a batch writes); `--dry-run` goes to `dry-run.ts`.
 */
import { DescribeImageError, ExitCode, InterruptedError, UsageError, oneLine } from '../errors.js';
import type { InputPlan } from '../input/expand.js';
import type { ImageArg } from '../input/images.js';
import { jsonLine, successRecord } from '../render/json.js';
import { AnswerWriter } from '../render/text.js';
import { costOf } from '../pricing.js';
import { isCI } from '../ui/colors.js';
import { startSpinner } from '../ui/spinner.js';
import type { ApiClient } from '../api/client.js';
import { CacheSession } from './cached.js';
import { cachedNotice, type AnswerOrigin } from './outcomes.js';
import {
  askModel,
  BATCH_MAX_WAIT_MS,
  buildPayload,
  checkRequestSize,
  completionWarnings,
  createClient,
  forImage,
  imageReport,
  loadImage,
  modelOf,
  oneRequestInputs,
  planRun,
  prepareLoaded,
  reportUsage,
  SINGLE_MAX_WAIT_MS,
  type Answer,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';
import type { Save } from './outcomes.js';

export async function describe(job: Job, ctx: RunContext): Promise<number> {
  const plan = await planRun(job, ctx);
  if (job.dryRun) {
    const { dryRun } = await import('./dry-run.js');
    return dryRun(job, ctx, plan);
  }
  if (!job.writeBack) return describePlan(job, ctx, plan, []);
  // ExifTool starts before anything is sent: without Perl, the run stops here.
  const { withWriteBack } = await import('./write-back.js');
  return withWriteBack(job, ctx, (saves) => describePlan(job, ctx, plan, saves));
}

async function describePlan(
  job: Job,
  ctx: RunContext,
  plan: InputPlan,
  saves: readonly Save[],
): Promise<number> {
  if (job.model === undefined) job = { ...job, model: await askServerForModel(job, ctx) };
  job = {
    ...job,
    maxWaitMs: job.maxWaitMs ?? (plan.multiple ? BATCH_MAX_WAIT_MS : SINGLE_MAX_WAIT_MS),
  };
  if (
    !job.together &&
    (plan.multiple || job.json || job.output || job.sidecar || saves.length > 0)
  ) {
    const { runBatch } = await import('./batch.js');
    return runBatch(job, ctx, plan, saves);
  }
  return describeTogether(job, ctx, await oneRequestInputs(plan));
}

/** Local servers serve whatever model they loaded: ask which (GET /models). */
export async function askServerForModel(job: Job, ctx: RunContext): Promise<string> {
  const client = await createClient(job, ctx, { connections: 1 });
  try {
    const models = await client.listModels(ctx.deps.interrupt);
    const model = models[0];
    if (!model)
      throw new UsageError(`${job.provider.label} lists no models; give one with --model`);
    ctx.reporter.debug(
      `no --model given: using ${model}, the first of ${models.length} the server lists`,
    );
    return model;
  } finally {
    await client.close();
  }
}

/**
 * All inputs in one request (the usual case: one image). Its answer is looked up in the cache
 * first: a hit is printed with no request, no client and no image decoder loaded.
 */
async function describeTogether(job: Job, ctx: RunContext, args: ImageArg[]): Promise<number> {
  const { reporter } = ctx;
  const name = args.map((a) => a.name).join(', ');
  const cache = await CacheSession.open(job, ctx);
  try {
    const needsClient = job.download && args.some((a) => a.kind === 'url');
    let client = needsClient ? await createClient(job, ctx, { connections: 1 }) : undefined;
    try {
      const loaded = await Promise.all(args.map((arg) => loadImage(arg, job, ctx, client)));
      const key = cache.keyFor(loaded);
      const hit = cache.lookup(key, name);
      if (hit) {
        printAnswer(job, ctx, name, hit.answer, 0, { cached: true, askedAt: hit.askedAt });
        return ExitCode.OK;
      }
      const images = await Promise.all(loaded.map((image) => prepareLoaded(image, job, ctx)));
      for (const image of images) reporter.debug(imageReport(job, image));
      checkRequestSize(images, job.original);
      client ??= await createClient(job, ctx, { connections: 1 });
      const answer = await ask(job, ctx, client, name, images);
      cache.put(key, answer.answer);
      printAnswer(job, ctx, name, answer.answer, answer.ms, {}, answer.streamed);
      return ExitCode.OK;
    } finally {
      await client?.close();
    }
  } finally {
    await cache.close();
  }
}

/** Asks for the answer, streaming it to stdout as it comes when it is plain text. */
async function ask(
  job: Job,
  ctx: RunContext,
  client: ApiClient,
  name: string,
  images: PreparedImage[],
): Promise<{ answer: Answer; ms: number; streamed: AnswerWriter | undefined }> {
  const { deps, reporter } = ctx;
  const payload = buildPayload(
    job,
    images.map((i) => i.source),
  );
  const spinnerOn = Boolean(deps.stderr.isTTY) && !job.quiet && !job.json && !isCI(deps.env);
  const spinner = await startSpinner(
    deps.stderr,
    `Asking ${modelOf(job)}…`,
    spinnerOn,
    reporter.colorLevel,
  );
  reporter.beforeWrite = () => spinner.stop();
  const writer = new AnswerWriter(deps.stdout, Boolean(deps.stdout.isTTY));
  const live = job.stream && !job.json && !job.structured;
  const started = deps.now();
  let answer: Answer;
  try {
    answer = await askModel(job, ctx, client, payload, name, {
      signal: deps.interrupt,
      onText: live
        ? (text) => {
            spinner.stop();
            writer.write(text);
          }
        : undefined,
      onRetry: ({ delayMs, error, attempt }) => {
        const what = `${error.message}; retrying in ${(delayMs / 1000).toFixed(1)} s (retry ${attempt})`;
        if (spinnerOn) spinner.setText(oneLine(what, 200));
        else reporter.notice(`${name}: ${what}`);
      },
    });
  } catch (error) {
    spinner.stop();
    const printed = writer.started;
    writer.end();
    const failure = forImage(name, error);
    // Part of the answer is on stdout: say so, as it is not retried (the text would repeat).
    if (printed && failure instanceof DescribeImageError && !(failure instanceof InterruptedError))
      failure.message += ' (the answer printed above is incomplete)';
    throw failure;
  } finally {
    spinner.stop();
    reporter.beforeWrite = undefined;
  }
  return { answer, ms: deps.now() - started, streamed: live ? writer : undefined };
}

/**
 * The answer on stdout (or its JSON record), its warnings, and its usage and cost on stderr;
 * for an answer from the cache, one line saying so instead of usage.
 */
function printAnswer(
  job: Job,
  ctx: RunContext,
  name: string,
  answer: Answer,
  ms: number,
  origin: AnswerOrigin,
  streamed?: AnswerWriter,
): void {
  const { deps, reporter } = ctx;
  const model = answer.completion.model ?? modelOf(job);
  const cost = answer.usage && !origin.cached ? costOf(answer.usage, model, job.prices) : undefined;
  if (job.json) {
    const record = successRecord(
      name,
      0,
      { ...answer, cost: origin.cached ? 0 : cost?.usd },
      modelOf(job),
      ms,
    );
    if (origin.cached) record.cached = true;
    deps.stdout.write(jsonLine(record));
  } else {
    const writer = streamed ?? new AnswerWriter(deps.stdout, Boolean(deps.stdout.isTTY));
    // A streamed refusal arrives as `delta.refusal`, not as text: print it as --no-stream does.
    if (!streamed || !writer.started) writer.write(answer.text);
    writer.end();
  }
  for (const warning of completionWarnings(job, name, answer.completion)) reporter.warn(warning);
  if (!origin.cached) reportUsage(reporter, answer.usage, cost);
  else if (deps.stderr.isTTY) reporter.notice(cachedNotice(origin.askedAt));
}
