/**
 * Many images, one request each: a bounded pool over a lazily expanded list, a shared rate
 * gate, results in input order (text) or as they finish (JSON Lines, --output, --sidecar),
 * a progress line, a summary, and an exit code that tells what went wrong first.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  APIError,
  DescribeImageError,
  ExitCode,
  InterruptedError,
  exitCodeFor,
} from '../errors.js';
import { isQuotaError } from '../api/errors.js';
import { OUTPUT_CLOSED } from '../deps.js';
import type { ExpandedInput, InputPlan } from '../input/expand.js';
import { failureRecord, jsonLine, successRecord, type ResultRecord } from '../render/json.js';
import { emptyStats, formatSummary } from '../render/summary.js';
import { sanitizeForTerminal } from '../render/sanitize.js';
import { formatAnswer, header } from '../render/text.js';
import { JsonlFile, readFinished } from '../output/jsonl-file.js';
import { sidecarPath, writeSidecar, sidecarExists } from '../output/sidecar.js';
import { isCI } from '../ui/colors.js';
import { Progress } from '../ui/progress.js';
import { OrderedEmitter, Turnstile } from '../util/ordered.js';
import { runPool } from '../util/pool.js';
import { costOf } from '../pricing.js';
import { RateGate } from '../util/rate-gate.js';
import { Semaphore } from '../util/semaphore.js';
import {
  askModel,
  buildPayload,
  completionWarnings,
  createClient,
  forImage,
  imageReport,
  modelOf,
  prepareImage,
  type Answer,
  type Job,
  type RunContext,
} from './job.js';

/** How long in-flight requests may finish after the first Ctrl-C. */
const GRACE_MS = 2000;
/** Pause before an image that failed for a transient reason gets its second round. */
const SECOND_ROUND_DELAY_MS = 2000;
/** Images read and prepared at the same time. */
const PREPARE_AT_ONCE = 4;
/** 429s an image may meet without using its --retries (the gate slows the pool instead). */
const RATE_LIMIT_RETRIES = 20;

export async function runBatch(job: Job, ctx: RunContext, plan: InputPlan): Promise<number> {
  const { deps, reporter } = ctx;
  const started = deps.now();
  const stats = emptyStats();
  let firstFailure: { index: number; code: number } | undefined;
  // Mutated from callbacks: kept in one object so the checks below see the live values.
  const state = { stopping: false, interrupted: false, lastSuccessAt: -Infinity };
  const isStopping = (): boolean => state.stopping;

  // Where results go.
  const textOut = !job.json && !job.output;
  const jsonOut = job.json && !job.output;
  const file = job.output ? JsonlFile.open(job.output, deps.cwd, ctx.redactor) : undefined;
  const finished = job.output && job.resume ? await readFinished(job.output, deps.cwd) : undefined;
  if (job.resume && finished)
    reporter.debug(`--resume: ${finished.size} image(s) already described in ${job.output}`);
  const sanitize = Boolean(deps.stdout.isTTY);
  const progress = new Progress(reporter, {
    enabled: Boolean(deps.stderr.isTTY) && !job.quiet && !isCI(deps.env),
    now: () => deps.now(),
  });
  // Only the progress line needs the total: counted beside the batch, which starts at once.
  if (progress.enabled) void plan.count().then((total) => progress.setTotal(total));
  // stdout may be the terminal the progress line is on: move it out of the way first.
  const print = (text: string): void => progress.above(() => deps.stdout.write(text));
  let printed = 0;
  // Results are separated by a blank line, as `tail` separates files.
  const ordered = new OrderedEmitter<string>(
    (text) => print(printed++ > 0 ? `\n${text}` : text),
    Math.max(2, job.concurrency * 2),
  );

  const gate = new RateGate({ max: job.concurrency, rpm: job.rpm });
  const client = createClient(job, ctx, {
    gate,
    connections: job.concurrency,
    rateLimitRetries: RATE_LIMIT_RETRIES,
  });
  // Images are read and prepared a few at a time, in input order: sharp and the file system
  // share libuv's four threads, and a first request should not wait behind a hundred images.
  const preparing = new Semaphore(PREPARE_AT_ONCE);
  const turnstile = new Turnstile();
  const inflight = new AbortController();
  // Every request in flight listens to this one signal.
  setMaxListeners(0, inflight.signal);
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onInterrupt = (): void => {
    if (state.interrupted) return;
    state.interrupted = true;
    state.stopping = true;
    progress.clear();
    if (deps.interrupt.reason === OUTPUT_CLOSED) {
      // Nothing more can be printed: stop at once (what went to --output is complete).
      stats.stopReason = 'standard output was closed';
      inflight.abort(new InterruptedError());
      return;
    }
    stats.stopReason = 'interrupted';
    reporter.line(
      reporter.chalk.yellow(
        `interrupted: letting requests in flight finish for ${GRACE_MS / 1000} s (Ctrl-C again to quit now)`,
      ),
    );
    graceTimer = setTimeout(() => inflight.abort(new InterruptedError()), GRACE_MS);
  };
  if (deps.interrupt.aborted) onInterrupt();
  else deps.interrupt.addEventListener('abort', onInterrupt, { once: true });

  const record = (index: number, rec: ResultRecord, text: string | undefined): void => {
    if (file) file.append(jsonLine(rec));
    if (jsonOut) print(jsonLine(rec));
    if (textOut) {
      ordered.settle(
        index,
        text === undefined
          ? undefined
          : `${header(sanitize ? sanitizeForTerminal(rec.image) : rec.image)}\n${text}`,
      );
    }
  };

  const fail = (input: ExpandedInput, index: number, error: unknown, ms: number): void => {
    const code = exitCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    stats.failed++;
    stats.failures.push({ name: input.name, message });
    if (!firstFailure || index < firstFailure.index) firstFailure = { index, code };
    reporter.error(message);
    if (job.debug && error instanceof Error && error.stack) reporter.debug(error.stack);
    const status = error instanceof APIError ? error.status : undefined;
    record(index, failureRecord(input.name, index, { code, message, status }, ms), undefined);
    if (stopsTheBatch(error) && !state.stopping) {
      state.stopping = true;
      stats.stopReason = code === ExitCode.AUTH ? 'authentication failed' : 'out of quota';
    }
  };

  const describeOne = async (input: ExpandedInput, index: number): Promise<void> => {
    try {
      await describeInTurn(input, index);
    } finally {
      // Whatever happened to it, later images need not wait for this one any more.
      turnstile.pass(index);
    }
  };

  const describeInTurn = async (input: ExpandedInput, index: number): Promise<void> => {
    if (textOut) await ordered.waitForRoom(index);
    if (
      finished?.has(input.key) ||
      (job.sidecar &&
        job.skipExisting &&
        input.arg.kind === 'file' &&
        (await sidecarExists(input.arg.path, deps.cwd, job.json)))
    ) {
      stats.skipped++;
      if (textOut) ordered.settle(index, undefined);
      progress.update(stats);
      return;
    }
    if (state.stopping) {
      // Pulled just before the stop: count it with the rest.
      notAttempted(input);
      if (textOut) ordered.settle(index, undefined);
      return;
    }
    const t0 = deps.now();
    try {
      const image = await preparing.run(() => prepareImage(input.arg, job, ctx, client));
      reporter.debug(imageReport(job, image));
      if (isStopping()) {
        // Prepared ahead, but the batch stopped meanwhile: it was never sent.
        notAttempted(input);
        if (textOut) ordered.settle(index, undefined);
        return;
      }
      const payload = buildPayload(job, [image.source]);
      const ask = (): Promise<Answer> =>
        askModel(job, ctx, client, payload, input.name, { signal: inflight.signal });
      let answer: Answer;
      try {
        // Queue for the server in input order, whichever image finished preparing first.
        await turnstile.wait(index);
        const asking = ask();
        turnstile.pass(index);
        answer = await asking;
      } catch (error) {
        // A transient failure while others succeed is bad luck, not a dead server: one more round.
        if (!isTransient(error) || job.retries === 0 || isStopping() || state.lastSuccessAt < t0)
          throw error;
        reporter.debug(`${input.name}: second round after: ${(error as Error).message}`);
        await sleep(SECOND_ROUND_DELAY_MS, undefined, { signal: inflight.signal }).catch(() => {
          throw new InterruptedError();
        });
        answer = await ask();
      }
      const model = answer.completion.model ?? modelOf(job);
      const cost = answer.usage ? costOf(answer.usage, model, job.prices) : undefined;
      const rec = successRecord(
        input.name,
        index,
        { ...answer, cost: cost?.usd },
        modelOf(job),
        deps.now() - t0,
      );
      // Counted once the sidecar (if any) is written: an answer that could not be saved failed.
      if (job.sidecar) await writeSidecarFor(input, rec, answer.text);
      state.lastSuccessAt = deps.now();
      stats.succeeded++;
      if (answer.usage) {
        stats.promptTokens += answer.usage.prompt_tokens;
        stats.completionTokens += answer.usage.completion_tokens;
        if (cost) stats.cost += cost.usd;
        else stats.costKnown = false;
      }
      record(index, rec, formatAnswer(answer.text, sanitize));
      for (const warning of completionWarnings(job, input.name, answer.completion))
        reporter.warn(warning);
    } catch (error) {
      if (error instanceof InterruptedError && error.notSent) {
        // Prepared, but stopped (Ctrl-C, or a rejected key) before it was sent.
        notAttempted(input);
        if (textOut) ordered.settle(index, undefined);
      } else if (
        error instanceof InterruptedError ||
        (state.interrupted && inflight.signal.aborted)
      ) {
        stats.interrupted++;
        if (textOut) ordered.settle(index, undefined);
      } else {
        fail(input, index, forImage(input.name, error), deps.now() - t0);
      }
    }
    progress.update(stats);
  };

  const writeSidecarFor = async (
    input: ExpandedInput,
    rec: ResultRecord,
    text: string,
  ): Promise<void> => {
    if (input.arg.kind !== 'file') {
      reporter.debug(`${input.name}: no sidecar for an image that is not a local file`);
      return;
    }
    const target = sidecarPath(input.arg.path, job.json);
    await writeSidecar(
      target,
      deps.cwd,
      job.json ? jsonLine(rec) : formatAnswer(text, false),
      ctx.redactor,
    );
  };

  const notAttempted = (input: ExpandedInput): void => {
    stats.notAttempted++;
    if (stats.notAttemptedNames.length < 20) stats.notAttemptedNames.push(input.name);
  };

  const iterator = plan.inputs[Symbol.asyncIterator]();
  try {
    // Twice as many workers as requests in flight: while one request waits on the server, the
    // next image is read and prepared, so a finished request's slot is refilled at once
    // instead of after a burst of preparation. The gate still allows -c requests at a time.
    const result = await runPool(
      iterator,
      { concurrency: job.concurrency * 2, shouldStop: () => state.stopping },
      async (input, index) => {
        stats.total = Math.max(stats.total, index + 1);
        await describeOne(input, index);
      },
    );
    if (!result.exhausted) {
      // Stopped early: count (and name a few of) the images left.
      for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
        stats.total++;
        notAttempted(step.value);
      }
    }
  } finally {
    deps.interrupt.removeEventListener('abort', onInterrupt);
    if (graceTimer) clearTimeout(graceTimer);
    ordered.drain();
    progress.stop();
    await client.close();
    file?.close();
  }

  stats.elapsedMs = deps.now() - started;
  if (stats.total === 0) {
    reporter.warn('no images to describe');
  }
  for (const line of formatSummary(stats, reporter.chalk)) {
    if (line.important) reporter.line(line.text);
    else reporter.info(line.text);
  }
  if (gate.rateLimitedCount > 0)
    reporter.debug(
      `rate limited ${gate.rateLimitedCount} time(s); concurrency ended at ${gate.limit}`,
    );

  if (state.interrupted) return ExitCode.INTERRUPTED;
  return firstFailure?.code ?? ExitCode.OK;
}

function isTransient(error: unknown): boolean {
  if (!(error instanceof DescribeImageError)) return false;
  if (error instanceof APIError && isQuotaError(error.status, error.info)) return false;
  return error.exitCode === ExitCode.SERVER || error.exitCode === ExitCode.RATE_LIMIT;
}

function stopsTheBatch(error: unknown): boolean {
  if (!(error instanceof DescribeImageError)) return false;
  if (error.exitCode === ExitCode.AUTH) return true;
  return error instanceof APIError && isQuotaError(error.status, error.info);
}
