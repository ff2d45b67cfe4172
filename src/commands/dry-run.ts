/**
 * `--dry-run`: everything up to the request, nothing sent, no key needed, and no network at
 * all: an image URL that would be downloaded (--download, or a provider that needs it) is not
 * fetched, only named. stdout gets the request body as it would be sent (inline images
 * shortened to their size; pretty JSON for one request, JSON Lines for several); stderr gets
 * the endpoint, the headers with the key redacted, and per image what preparation did and its
 * estimated tokens. With write-back, each photo's metadata fields that would change (old → new,
 * a placeholder standing for the answer) follow its line; nothing is written.
 */
import { chatCompletionsUrl, displayBody } from '../api/request.js';
import type { ImageArg } from '../input/images.js';
import { displayUrl, safeJson } from '../output/guard.js';
import { ExitCode, exitCodeFor } from '../errors.js';
import type { InputPlan } from '../input/expand.js';
import { estimateImageTokens } from '../input/tokens.js';
import { formatCount } from '../render/text.js';
import { formatUsd, priceFor } from '../pricing.js';
import { VERSION } from '../version.js';
import {
  buildPayload,
  checkRequestSize,
  imageReport,
  loadImage,
  prepareLoaded,
  type LoadedImage,
  modelOf,
  oneRequestInputs,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';
import type { WriteBackPreview } from './write-back.js';

export async function dryRun(job: Job, ctx: RunContext, plan: InputPlan): Promise<number> {
  if (!job.writeBack) return dryRunWith(job, ctx, plan, undefined);
  const { openWriteBackPreview } = await import('./write-back.js');
  const writeBack = await openWriteBackPreview(job, ctx);
  try {
    return await dryRunWith(job, ctx, plan, writeBack);
  } finally {
    await writeBack.close();
  }
}

async function dryRunWith(
  job: Job,
  ctx: RunContext,
  plan: InputPlan,
  writeBack: WriteBackPreview | undefined,
): Promise<number> {
  const { deps, reporter } = ctx;
  const oneRequest = job.together || !plan.multiple;
  reporter.line(`POST ${displayUrl(chatCompletionsUrl(job.api.baseUrl, job.api.query))}`);
  reporter.line(`content-type: application/json · user-agent: describe-image/${VERSION}`);
  const keyHeader =
    job.provider.keyHeader === 'api-key' ? 'api-key: ***' : 'authorization: Bearer ***';
  reporter.line(job.api.apiKey ? `${keyHeader} (redacted)` : 'authorization: none (no key)');

  const totals = { requests: 0, imageTokens: 0, tokensKnown: true };
  let firstFailure: number | undefined;

  const send = (images: PreparedImage[]): void => {
    checkRequestSize(images, job.original);
    const body = displayBody(
      buildPayload(
        job,
        images.map((i) => i.source),
      ),
    );
    deps.stdout.write(oneRequest ? `${safeJson(body, 2)}\n` : `${safeJson(body)}\n`);
    totals.requests++;
    for (const image of images) {
      reporter.line(imageReport(job, image));
      const tokens = image.prepared
        ? estimateImageTokens(modelOf(job), image.prepared.sent, job.detail)
        : undefined;
      if (tokens === undefined) totals.tokensKnown = false;
      else totals.imageTokens += tokens;
    }
  };

  const prepare = (arg: ImageArg): Promise<PreparedImage> => dryPrepare(arg, job, ctx);
  const failed = (error: unknown): void => {
    reporter.error(error instanceof Error ? error.message : String(error));
    firstFailure ??= exitCodeFor(error);
  };
  // What write-back would change in the photo (or its sidecar), shown after its request.
  const preview = async (arg: ImageArg, image: PreparedImage): Promise<void> => {
    if (!writeBack) return;
    try {
      await writeBack.preview(arg, image.stamp);
    } catch (error) {
      failed(error);
    }
  };
  if (oneRequest) {
    const args = await oneRequestInputs(plan);
    const images = await Promise.all(args.map(prepare));
    send(images);
    for (const [i, arg] of args.entries()) await preview(arg, images[i] as PreparedImage);
  } else {
    for await (const input of plan.inputs) {
      try {
        const image = await prepare(input.arg);
        send([image]);
        await preview(input.arg, image);
      } catch (error) {
        failed(error);
      }
    }
  }

  const { requests, imageTokens } = totals;
  const total = totals.tokensKnown
    ? `~${formatCount(imageTokens)}`
    : `at least ${formatCount(imageTokens)} (some unknown)`;
  const price = priceFor(modelOf(job), job.prices);
  const cost =
    price && imageTokens > 0
      ? ` · estimated input cost ${totals.tokensKnown ? '~' : '≥ '}${formatUsd((imageTokens * price.input) / 1_000_000)} for the images`
      : '';
  reporter.line(
    `dry run: ${formatCount(requests)} request${requests === 1 ? '' : 's'} not sent · estimated image tokens: ${total} (plus the prompt's)${cost}`,
  );
  if (writeBack) reporter.line(writeBack.summary());
  return firstFailure ?? ExitCode.OK;
}

/** An image prepared as a run would, except that a URL to download is named, not fetched. */
export async function dryPrepare(arg: ImageArg, job: Job, ctx: RunContext): Promise<PreparedImage> {
  return prepareLoaded(await dryLoad(arg, job, ctx), job, ctx);
}

/** An image read as a run reads it, except that a URL to download is named, not fetched. */
export function dryLoad(arg: ImageArg, job: Job, ctx: RunContext): Promise<LoadedImage> {
  if (arg.kind === 'url' && job.download)
    ctx.reporter.line(
      `${arg.name}: would be downloaded and sent as bytes (not fetched in a dry run)`,
    );
  return loadImage(arg, job, ctx, undefined);
}
