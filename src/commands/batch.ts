/**
 * Images, one request each: a bounded pool over a lazily expanded list, a shared rate gate,
 * results in input order (text) or as they finish (JSON Lines, --output, --sidecar), a progress
 * line, a summary, and an exit code that tells what went wrong first.
 *
 * One image with an output option (`--json`, `-o`, `--sidecar`) comes here too: a batch of one
 * writes exactly what a batch of many writes, without the `==> NAME <==` header.
 *
 * Stopping: from the first Ctrl-C nothing new starts (no request, retry, download or wait at
 * the gate); requests in flight get up to 2 s, or less once none is left; then everything
 * finished is written and the summary printed. The retry policy is api/retry.ts's.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  classifyFailure,
  deservesSecondRound,
  formatWait,
  isTooLongToWait,
  poolPauseMs,
  stopsEveryRequest,
} from '../api/retry.js';
import { OUTPUT_CLOSED } from '../deps.js';
import { APIError, ExitCode, InterruptedError, exitCodeFor } from '../errors.js';
import type { ExpandedInput, InputPlan } from '../input/expand.js';
import { JsonlFile, readFinished } from '../output/jsonl-file.js';
import { sidecarExists, sidecarPath, writeSidecar } from '../output/sidecar.js';
import { costOf } from '../pricing.js';
import { failureRecord, jsonLine, successRecord, type ResultRecord } from '../render/json.js';
import { emptyStats, formatSummary } from '../render/summary.js';
import { formatAnswer, header } from '../render/text.js';
import { isCI } from '../ui/colors.js';
import { Progress } from '../ui/progress.js';
import { OrderedEmitter, Turnstile } from '../util/ordered.js';
import { runPool } from '../util/pool.js';
import { RateGate } from '../util/rate-gate.js';
import { Semaphore } from '../util/semaphore.js';
import { neutralize } from '../output/guard.js';
import {
  askModel,
  buildPayload,
  completionWarnings,
  createClient,
  forImage,
  imageReport,
  modelOf,
  prepareImage,
  reportUsage,
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

export async function runBatch(job: Job, ctx: RunContext, plan: InputPlan): Promise<number> {
  const { deps, reporter } = ctx;
  const started = deps.now();
  const stats = emptyStats();
  let firstFailure: { index: number; code: number } | undefined;
  // Mutated from callbacks: kept in one object so the checks below see the live values.
  const state = {
    interrupted: false,
    lastSuccessAt: -Infinity,
    /** Images that failed on a rate limit since the last success. */
    rateLimitedInARow: 0,
    /** The batch stopped because of a rate limit: images it did not send are rate-limited. */
    stoppedByRateLimit: false,
  };
  // Once aborted, nothing new starts; `inflight` aborts the requests still running.
  const stopping = new AbortController();
  const inflight = new AbortController();
  // Every request listens to these two signals.
  setMaxListeners(0, stopping.signal);
  setMaxListeners(0, inflight.signal);
  const isStopping = (): boolean => stopping.signal.aborted;
  const stop = (reason: string): void => {
    if (isStopping()) return;
    stats.stopReason = reason;
    stopping.abort();
  };

  // Where results go.
  const textOut = !job.json && !job.output;
  const jsonOut = job.json && !job.output;
  const headers = plan.multiple;
  const file = job.output ? JsonlFile.open(job.output, deps.cwd, ctx.redactor) : undefined;
  const finished = job.output && job.resume ? await readFinished(job.output, deps.cwd) : undefined;
  if (job.resume && finished)
    reporter.debug(`--resume: ${finished.size} image(s) already described in ${job.output}`);
  const sanitize = Boolean(deps.stdout.isTTY);

  const gate = new RateGate({
    max: job.concurrency,
    rpm: job.rpm,
    pauseMs: (n) => poolPauseMs(n),
    onPause: (ms) => {
      reporter.notice(`rate limited: pausing every request for ${formatWait(ms)}`);
      progress.tick();
    },
  });
  const progress = new Progress(reporter, {
    enabled: Boolean(deps.stderr.isTTY) && !job.quiet && !isCI(deps.env) && plan.multiple,
    now: () => deps.now(),
    pauseEndsAt: () => gate.pauseEndsAt,
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

  const client = createClient(job, ctx, { gate, connections: job.concurrency });
  // Images are read and prepared a few at a time, in input order: sharp and the file system
  // share libuv's four threads, and a first request should not wait behind a hundred images.
  const preparing = new Semaphore(PREPARE_AT_ONCE);
  const turnstile = new Turnstile();

  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const endGrace = (): void => {
    if (graceTimer) clearTimeout(graceTimer);
    graceTimer = undefined;
    inflight.abort(new InterruptedError());
  };
  const onInterrupt = (): void => {
    if (state.interrupted) return;
    state.interrupted = true;
    progress.clear();
    if (deps.interrupt.reason === OUTPUT_CLOSED) {
      // Nothing more can be printed: stop at once (what went to --output is complete).
      stop('standard output was closed');
      endGrace();
      return;
    }
    stop('interrupted');
    if (gate.active === 0) {
      endGrace();
      return;
    }
    reporter.line([
      {
        text: `interrupted: letting requests in flight finish for ${GRACE_MS / 1000} s (Ctrl-C again to quit now)`,
        style: 'yellow',
      },
    ]);
    graceTimer = setTimeout(endGrace, GRACE_MS);
  };
  if (deps.interrupt.aborted) onInterrupt();
  else deps.interrupt.addEventListener('abort', onInterrupt, { once: true });
  /** After each request: once interrupted and nothing is in flight, there is nothing to wait for. */
  const afterRequest = (): void => {
    if (state.interrupted && gate.active === 0) endGrace();
  };

  const record = (index: number, rec: ResultRecord, text: string | undefined): void => {
    if (file) file.append(jsonLine(rec));
    if (jsonOut) print(jsonLine(rec));
    if (textOut) {
      ordered.settle(
        index,
        text === undefined
          ? undefined
          : headers
            ? `${header(neutralize(rec.image))}\n${text}`
            : text,
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
    const failure = classifyFailure(error);
    if (isTooLongToWait(error)) {
      state.stoppedByRateLimit = true;
      stop('the server asks for a longer wait than --max-wait');
    } else if (stopsEveryRequest(failure)) {
      stop(failure.kind === 'auth' ? 'authentication failed' : 'out of quota');
    } else if (failure.kind === 'rate-limit') {
      // Images keep failing on rate limits with nothing getting through: stop, resume later.
      state.rateLimitedInARow++;
      if (state.rateLimitedInARow >= Math.max(2, job.concurrency)) {
        state.stoppedByRateLimit = true;
        stop(
          `rate limited on ${state.rateLimitedInARow} images in a row; run again later with --resume`,
        );
      }
    }
  };

  /** An image that was never sent: rate-limited when a rate limit stopped the batch. */
  const notSent = (input: ExpandedInput, index: number): void => {
    if (state.stoppedByRateLimit) {
      stats.rateLimited++;
      record(
        index,
        failureRecord(
          input.name,
          index,
          {
            code: ExitCode.RATE_LIMIT,
            message: `${input.name}: not sent: the batch stopped on a rate limit`,
          },
          0,
        ),
        undefined,
      );
      return;
    }
    stats.notAttempted++;
    if (stats.notAttemptedNames.length < 20) stats.notAttemptedNames.push(input.name);
    if (textOut) ordered.settle(index, undefined);
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
    if (isStopping()) {
      // Pulled just before the stop: count it with the rest.
      notSent(input, index);
      return;
    }
    const t0 = deps.now();
    try {
      const image = await preparing.run(() => prepareImage(input.arg, job, ctx, client));
      reporter.debug(imageReport(job, image));
      if (isStopping()) {
        // Prepared ahead, but the batch stopped meanwhile: it was never sent.
        notSent(input, index);
        return;
      }
      const payload = buildPayload(job, [image.source]);
      const ask = async (): Promise<Answer> => {
        try {
          return await askModel(job, ctx, client, payload, input.name, {
            signal: inflight.signal,
            stop: stopping.signal,
          });
        } finally {
          afterRequest();
        }
      };
      let answer: Answer;
      try {
        // Queue for the server in input order, whichever image finished preparing first.
        await turnstile.wait(index);
        const asking = ask();
        turnstile.pass(index);
        answer = await asking;
      } catch (error) {
        // A transient failure while others succeed is bad luck, not a dead server: one more round.
        if (
          !deservesSecondRound(classifyFailure(error), job.retries) ||
          isStopping() ||
          state.lastSuccessAt < t0
        )
          throw error;
        reporter.debug(`${input.name}: second round after: ${(error as Error).message}`);
        await sleep(SECOND_ROUND_DELAY_MS, undefined, { signal: stopping.signal }).catch(() => {
          throw error;
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
      state.rateLimitedInARow = 0;
      stats.succeeded++;
      if (answer.usage) {
        stats.promptTokens += answer.usage.prompt_tokens;
        stats.completionTokens += answer.usage.completion_tokens;
        if (cost) stats.cost += cost.usd;
        else stats.costKnown = false;
      }
      stats.lastAnswer = { usage: answer.usage, cost };
      record(index, rec, formatAnswer(answer.text, sanitize));
      for (const warning of completionWarnings(job, input.name, answer.completion))
        reporter.warn(warning);
    } catch (error) {
      if (error instanceof InterruptedError && error.notSent) {
        // Prepared, but stopped (Ctrl-C, a rejected key, a rate limit) before it was sent.
        notSent(input, index);
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

  const iterator = plan.inputs[Symbol.asyncIterator]();
  try {
    // Twice as many workers as requests in flight: while one request waits on the server, the
    // next image is read and prepared, so a finished request's slot is refilled at once
    // instead of after a burst of preparation. The gate still allows -c requests at a time.
    const result = await runPool(
      iterator,
      { concurrency: job.concurrency * 2, shouldStop: isStopping },
      async (input, index) => {
        stats.total = Math.max(stats.total, index + 1);
        await describeOne(input, index);
      },
    );
    if (!result.exhausted) {
      // Stopped early: count (and name a few of) the images left.
      for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
        stats.total++;
        stats.notAttempted++;
        if (stats.notAttemptedNames.length < 20) stats.notAttemptedNames.push(step.value.name);
      }
    }
  } finally {
    deps.interrupt.removeEventListener('abort', onInterrupt);
    if (graceTimer) clearTimeout(graceTimer);
    gate.close();
    ordered.drain();
    progress.stop();
    await client.close();
    file?.close();
  }

  stats.elapsedMs = deps.now() - started;
  if (stats.total === 0) reporter.warn('no images to describe');
  if (!plan.multiple && stats.lastAnswer) {
    // One image: its usage and cost, as a single run shows them.
    reportUsage(reporter, stats.lastAnswer.usage, stats.lastAnswer.cost);
  } else if (plan.multiple || stats.stopReason) {
    for (const line of formatSummary(stats)) {
      if (line.important) reporter.line(line.text);
      else reporter.info(line.text);
    }
  }
  if (gate.rateLimitedCount > 0)
    reporter.debug(
      `rate limited ${gate.rateLimitedCount} time(s); concurrency ended at ${gate.limit}`,
    );

  if (state.interrupted) return ExitCode.INTERRUPTED;
  return firstFailure?.code ?? ExitCode.OK;
}
