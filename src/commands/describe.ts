/**
 * One request: one image (or several with --together) → request → streamed answer on
 * stdout → usage on stderr. Several images without --together go to `batch.ts`.
 */
import type { Completion } from '../api/types.js';
import { ExitCode, UsageError } from '../errors.js';
import { planInputs } from '../input/expand.js';
import type { ImageArg } from '../input/images.js';
import { jsonLine, successRecord } from '../render/json.js';
import { AnswerWriter, formatUsage } from '../render/text.js';
import { isCI } from '../ui/colors.js';
import { startSpinner } from '../ui/spinner.js';
import {
  buildPayload,
  checkRequestSize,
  createClient,
  forImage,
  imageReport,
  prepareImage,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';

/** Most images in one request (OpenAI's limit). */
const MAX_IMAGES_PER_REQUEST = 500;

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
  if (plan.multiple && !job.together) {
    const { runBatch } = await import('./batch.js');
    return runBatch(job, ctx, plan);
  }
  const args: ImageArg[] = [];
  for await (const input of plan.inputs) {
    args.push(input.arg);
    if (args.length > MAX_IMAGES_PER_REQUEST) {
      throw new UsageError(
        `--together sends at most ${MAX_IMAGES_PER_REQUEST} images in one request`,
      );
    }
  }
  if (args.length === 0) throw new UsageError('no image given');
  return describeTogether(job, ctx, args);
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
  checkRequestSize(images);
  const payload = buildPayload(
    job,
    images.map((i) => i.source),
    true,
  );

  const spinnerOn = Boolean(deps.stderr.isTTY) && !job.quiet && !job.json && !isCI(deps.env);
  const spinner = await startSpinner(deps.stderr, `Asking ${job.model}…`, spinnerOn);
  reporter.beforeWrite = () => spinner.stop();
  const writer = new AnswerWriter(deps.stdout, Boolean(deps.stdout.isTTY));
  const started = deps.now();
  let completion: Completion;
  try {
    completion = await client.complete(payload, {
      signal: deps.interrupt,
      onText:
        job.stream && !job.json
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

  if (job.json) {
    deps.stdout.write(
      jsonLine(successRecord(name, 0, completion, job.model, deps.now() - started)),
    );
  } else {
    if (!job.stream) writer.write(completion.text);
    writer.end();
  }
  reportCompletion(job, ctx, name, completion);
  return ExitCode.OK;
}

/** Usage line and warnings for a finished answer, on stderr. */
export function reportCompletion(
  job: Job,
  ctx: RunContext,
  name: string,
  completion: Completion,
): void {
  const { reporter } = ctx;
  if (completion.refusal) reporter.warn(`${name}: the model refused to answer`);
  if (completion.finishReason === 'length') {
    const option =
      job.maxCompletionTokens !== undefined ? '--max-completion-tokens' : '--max-tokens';
    reporter.warn(
      `${name}: the answer was cut off at the token limit; raise ${option} for a longer one`,
    );
  } else if (completion.finishReason === 'content_filter') {
    reporter.warn(`${name}: the answer was cut off by the content filter`);
  }
  if (completion.text === '' && !completion.refusal)
    reporter.warn(`${name}: the model returned an empty answer`);
  if (completion.usage) reporter.info(reporter.chalk.dim(formatUsage(completion.usage)));
  else reporter.debug('the server reported no token usage');
}
