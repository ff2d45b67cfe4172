/**
 * `--dry-run`: everything up to the request, nothing sent, no key needed. stdout gets the
 * request body as it would be sent (inline images shortened to their size; pretty JSON for one
 * request, JSON Lines for several); stderr gets the endpoint, the headers with the key
 * redacted, and per image what preparation did and its estimated tokens.
 */
import { chatCompletionsUrl, displayBody } from '../api/request.js';
import { ExitCode, exitCodeFor } from '../errors.js';
import type { InputPlan } from '../input/expand.js';
import { estimateImageTokens } from '../input/tokens.js';
import { formatCount } from '../render/text.js';
import { formatUsd, priceFor } from '../pricing.js';
import { VERSION } from '../version.js';
import {
  buildPayload,
  checkRequestSize,
  createClient,
  imageReport,
  prepareImage,
  modelOf,
  oneRequestInputs,
  type Job,
  type PreparedImage,
  type RunContext,
} from './job.js';

export async function dryRun(job: Job, ctx: RunContext, plan: InputPlan): Promise<number> {
  const { deps, reporter } = ctx;
  const client = job.download ? createClient(job, ctx, { connections: 2 }) : undefined;
  const oneRequest = job.together || !plan.multiple;
  reporter.line(`POST ${chatCompletionsUrl(job.api.baseUrl, job.api.query)}`);
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
    deps.stdout.write(
      oneRequest ? `${JSON.stringify(body, null, 2)}\n` : `${JSON.stringify(body)}\n`,
    );
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

  try {
    if (oneRequest) {
      const args = await oneRequestInputs(plan);
      send(await Promise.all(args.map((arg) => prepareImage(arg, job, ctx, client))));
    } else {
      for await (const input of plan.inputs) {
        try {
          send([await prepareImage(input.arg, job, ctx, client)]);
        } catch (error) {
          reporter.error(error instanceof Error ? error.message : String(error));
          firstFailure ??= exitCodeFor(error);
        }
      }
    }
  } finally {
    await client?.close();
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
  return firstFailure ?? ExitCode.OK;
}
