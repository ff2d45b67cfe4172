/**
 * `--dry-run --batch-api`: everything up to the upload, nothing sent and nothing written, no
 * key needed: the images prepared and left out as a submission would, each request line on
 * stdout (inline images shortened to their size), and on stderr the engine's endpoints, the
 * shards (requests, bytes, model), and the estimated cost at the batch price beside the
 * synchronous price.
 */
import { displayBody } from '../api/request.js';
import { imagesInOpenJobs } from '../batch-api/build.js';
import { settingsKey } from '../batch-api/jobs.js';
import { customIdFor } from '../batch-api/mapping.js';
import { batchPayload, encodeLine, ShardPlanner } from '../batch-api/shards.js';
import { batchTarget, withOverrides } from '../batch-api/targets.js';
import { ExitCode, InputError } from '../errors.js';
import { estimateImageTokens } from '../input/tokens.js';
import { displayUrl, safeJson } from '../output/guard.js';
import { formatUsd, priceFor } from '../pricing.js';
import { formatCount } from '../render/text.js';
import { jobStore, requestSettings, type BatchApiOptions } from './batch-job.js';
import {
  checkModel,
  jobInputs,
  megabytes,
  newTally,
  noteFailure,
  reportLeftOut,
} from './batch-submit.js';
import { dryLoad } from './dry-run.js';
import { imageReport, modelOf, planRun, type Job, type RunContext } from './job.js';
import type { Save } from './outcomes.js';

export async function batchDryRun(
  job: Job,
  opts: BatchApiOptions,
  ctx: RunContext,
  saves: readonly Save[],
): Promise<number> {
  const { deps, reporter } = ctx;
  checkModel(job, '--batch-api');
  const target = batchTarget(job.provider, job.api.baseUrl);
  const base = displayUrl(target.baseUrl);
  reporter.line(
    `POST ${base}/files (purpose batch), then POST ${base}/batches (endpoint ${target.endpoint}, 24h): ${target.label}'s batch engine`,
  );
  const planner = new ShardPlanner(withOverrides(target.limits, opts));
  const settings = requestSettings(job);
  const openJobs = await imagesInOpenJobs(jobStore(ctx), settingsKey(settings));
  const tally = newTally();
  const totals = { requests: 0, imageTokens: 0, tokensKnown: true };
  for await (const input of jobInputs(job, ctx, await planRun(job, ctx), {
    load: (arg) => dryLoad(arg, job, ctx),
    openJobs,
    saves,
    tally,
  })) {
    if (!('body' in input.payload)) continue;
    const customId = customIdFor('dry-run', input.index);
    const line = encodeLine(customId, target.lineUrl, input.payload);
    if (!planner.fits(line.length)) {
      noteFailure(
        ctx,
        tally,
        input.index,
        new InputError(
          `${input.image.image}: its request is ${megabytes(line.length)}, over the batch file limit; use a smaller --max-size or --detail low`,
        ),
      );
      continue;
    }
    planner.place(input.payload.body.model, line.length);
    const body = displayBody(batchPayload(input.payload));
    deps.stdout.write(
      `${safeJson({ custom_id: customId, method: 'POST', url: target.lineUrl, body })}\n`,
    );
    totals.requests++;
    if (input.prepared) reporter.line(imageReport(job, input.prepared));
    const tokens = input.prepared?.prepared
      ? estimateImageTokens(modelOf(job), input.prepared.prepared.sent, job.detail)
      : undefined;
    if (tokens === undefined) totals.tokensKnown = false;
    else totals.imageTokens += tokens;
  }
  reportLeftOut(job, ctx, tally);
  for (const shard of planner.shards) {
    reporter.line(
      `batch file ${shard.n}: ${formatCount(shard.requests)} request${shard.requests === 1 ? '' : 's'}, ${megabytes(shard.bytes)}, ${shard.model}`,
    );
  }
  const { requests, imageTokens, tokensKnown } = totals;
  const about = tokensKnown ? '~' : '≥ ';
  const price = priceFor(modelOf(job), job.prices);
  const usd = price ? (imageTokens * price.input) / 1_000_000 : undefined;
  const cost =
    usd !== undefined && imageTokens > 0
      ? ` · estimated input cost for the images ${about}${formatUsd(usd * target.priceFactor)} at the batch price (${about}${formatUsd(usd)} synchronous)`
      : '';
  reporter.line(
    `dry run: ${formatCount(requests)} request${requests === 1 ? '' : 's'} in ${planner.shards.length} batch file${planner.shards.length === 1 ? '' : 's'}, not sent · estimated image tokens: ${about}${formatCount(imageTokens)} (plus the prompt's)${cost}`,
  );
  return tally.firstFailure?.code ?? ExitCode.OK;
}
