/**
 * One request: one image (or several with --together) → request → streamed answer on
 * stdout → usage and cost on stderr. Several images without --together go to `batch.ts`,
 * `--dry-run` to `dry-run.ts`.
 */
import { ExitCode, UsageError } from '../errors.js';
import { planInputs } from '../input/expand.js';
import type { ImageArg } from '../input/images.js';
import { jsonLine, successRecord } from '../render/json.js';
import { AnswerWriter, formatUsage } from '../render/text.js';
import { costOf, formatCostLine } from '../pricing.js';
import { isCI } from '../ui/colors.js';
import { startSpinner } from '../ui/spinner.js';
import {
  askModel,
  buildPayload,
  checkRequestSize,
  completionWarnings,
  createClient,
  forImage,
  imageReport,
  modelOf,
  oneRequestInputs,
  prepareImage,
  type Answer,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';

export async function describe(job: Job, ctx: RunContext): Promise<number> {
  const { deps, reporter } = ctx;
  const plan = await planInputs(job.inputs, {
    cwd: deps.cwd,
    stdin: deps.stdin,
    filesFrom: job.filesFrom,
    onSkip: (name, why) => reporter.debug(`skipped ${name}: ${why}`),
  });
  if (job.dryRun) {
    const { dryRun } = await import('./dry-run.js');
    return dryRun(job, ctx, plan);
  }
  if (job.model === undefined) job = { ...job, model: await askServerForModel(job, ctx) };
  if (plan.multiple && !job.together) {
    const { runBatch } = await import('./batch.js');
    return runBatch(job, ctx, plan);
  }
  return describeTogether(job, ctx, await oneRequestInputs(plan));
}

/** Local servers serve whatever model they loaded: ask which (GET /models). */
async function askServerForModel(job: Job, ctx: RunContext): Promise<string> {
  const client = createClient(job, ctx, { connections: 1 });
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

/** All inputs in one request (the usual case: one image). */
async function describeTogether(job: Job, ctx: RunContext, args: ImageArg[]): Promise<number> {
  const { deps, reporter } = ctx;
  const name = args.map((a) => a.name).join(', ');
  const client = createClient(job, ctx, { connections: 1 });
  let images: PreparedImage[];
  try {
    images = await Promise.all(args.map((arg) => prepareImage(arg, job, ctx, client)));
  } catch (error) {
    await client.close();
    throw error;
  }
  for (const image of images) reporter.debug(imageReport(job, image));
  checkRequestSize(images, job.original);
  const payload = buildPayload(
    job,
    images.map((i) => i.source),
  );

  const spinnerOn = Boolean(deps.stderr.isTTY) && !job.quiet && !job.json && !isCI(deps.env);
  const spinner = await startSpinner(
    deps.stderr,
    `Asking ${modelOf(job)}…`,
    spinnerOn,
    reporter.chalk.level,
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
        if (spinnerOn) spinner.setText(what);
        else reporter.notice(`${name}: ${what}`);
      },
    });
  } catch (error) {
    spinner.stop();
    writer.end();
    throw forImage(name, error);
  } finally {
    spinner.stop();
    reporter.beforeWrite = undefined;
    await client.close();
  }

  const model = answer.completion.model ?? modelOf(job);
  const cost = answer.usage ? costOf(answer.usage, model, job.prices) : undefined;
  if (job.json) {
    const record = successRecord(
      name,
      0,
      { ...answer, cost: cost?.usd },
      modelOf(job),
      deps.now() - started,
    );
    deps.stdout.write(jsonLine(record));
  } else {
    if (!live) writer.write(answer.text);
    writer.end();
  }
  for (const warning of completionWarnings(job, name, answer.completion)) reporter.warn(warning);
  if (answer.usage) {
    reporter.info(reporter.chalk.dim(formatUsage(answer.usage)));
    if (cost) reporter.info(reporter.chalk.dim(formatCostLine(cost)));
  } else {
    reporter.debug('the server reported no token usage');
  }
  return ExitCode.OK;
}
