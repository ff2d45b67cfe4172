/**
 * Images, one request each: a bounded pool over a lazily expanded list, asked through one
 * `Asker` (shared client and rate gate), each outcome given to `Outcomes` (saves, records, the
 * summary and the exit code), with a progress line.
 *
 * One image with an output option (`--json`, `-o`, `--sidecar`) comes here too: a batch of one
 * writes exactly what a batch of many writes, without the `==> NAME <==` header.
 *
 * Stopping: from the first Ctrl-C nothing new starts (no request, retry, download or wait at
 * the gate); requests in flight get up to 2 s, or less once none is left; then everything
 * finished is written and the summary printed. The batch also stops on a failure every other
 * request would meet (a rejected key, an exhausted quota), on a server that asks for a wait
 * longer than --max-wait, and on rate limits that keep failing images.
 */
import { setMaxListeners } from 'node:events';
import { OUTPUT_CLOSED } from '../deps.js';
import { ExitCode, InterruptedError } from '../errors.js';
import type { ExpandedInput, InputPlan } from '../input/expand.js';
import { isCI } from '../ui/colors.js';
import { Progress } from '../ui/progress.js';
import { Turnstile } from '../util/ordered.js';
import { runPool } from '../util/pool.js';
import { Asker, StopRules } from './asker.js';
import { CacheSession } from './cached.js';
import { forImage, type Job, type RunContext } from './job.js';
import { Outcomes, type Save } from './outcomes.js';

/** How long in-flight requests may finish after the first Ctrl-C. */
const GRACE_MS = 2000;

export async function runBatch(
  job: Job,
  ctx: RunContext,
  plan: InputPlan,
  saves: readonly Save[] = [],
): Promise<number> {
  const { deps, reporter } = ctx;
  const started = deps.now();
  // Mutated from callbacks: kept in one object so the checks below see the live values.
  const state = { interrupted: false };
  // Once aborted, nothing new starts; `inflight` aborts the requests still running.
  const stopping = new AbortController();
  const inflight = new AbortController();
  setMaxListeners(0, stopping.signal);
  setMaxListeners(0, inflight.signal);
  const isStopping = (): boolean => stopping.signal.aborted;

  const outcomes = await Outcomes.open(job, ctx, {
    multiple: plan.multiple,
    window: job.concurrency * 2,
    // stdout may be the terminal the progress line is on: move it out of the way first.
    print: (text) => progress.above(() => deps.stdout.write(text)),
    saves,
  });
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const endGrace = (): void => {
    if (graceTimer) clearTimeout(graceTimer);
    graceTimer = undefined;
    inflight.abort(new InterruptedError());
  };
  const cache = await CacheSession.open(job, ctx);
  const asker: Asker = new Asker(job, ctx, {
    cache,
    stop: stopping.signal,
    inflight: inflight.signal,
    onPause: () => progress.tick(),
    // Once interrupted and nothing is in flight, there is nothing to wait for.
    afterRequest: () => {
      if (state.interrupted && asker.active === 0) endGrace();
    },
  });
  const progress = new Progress(reporter, {
    enabled: Boolean(deps.stderr.isTTY) && !job.quiet && !isCI(deps.env) && plan.multiple,
    now: () => deps.now(),
    pauseEndsAt: () => asker.gate.pauseEndsAt,
  });
  // Only the progress line needs the total: counted beside the batch, which starts at once.
  if (progress.enabled) void plan.count().then((total) => progress.setTotal(total));
  const stats = outcomes.stats;
  const stop = (reason: string): void => {
    if (isStopping()) return;
    stats.stopReason = reason;
    stopping.abort();
  };

  const turnstile = new Turnstile();

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
    if (asker.active === 0) {
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

  const rules = new StopRules(job.concurrency, stop);

  const describeOne = async (input: ExpandedInput, index: number): Promise<void> => {
    try {
      await describeInTurn(input, index);
    } finally {
      // Whatever happened to it, later images need not wait for this one any more.
      turnstile.pass(index);
    }
    progress.update(stats);
  };

  const describeInTurn = async (input: ExpandedInput, index: number): Promise<void> => {
    await outcomes.waitForRoom(index);
    if (await outcomes.skip(input, index)) return;
    if (isStopping()) {
      // Pulled just before the stop: count it with the rest.
      outcomes.notSent(input, index, rules.stoppedByRateLimit);
      return;
    }
    const t0 = deps.now();
    try {
      const { answer, origin } = await asker.answer(input, {
        since: t0,
        // Queue for the server in input order, whichever image finished preparing first.
        ready: () => turnstile.wait(index),
        started: () => turnstile.pass(index),
      });
      if (!origin.cached) rules.answered();
      await outcomes.succeed(input, index, answer, deps.now() - t0, origin);
    } catch (error) {
      if (error instanceof InterruptedError && error.notSent) {
        // Stopped (Ctrl-C, a rejected key, a rate limit) before it was sent.
        outcomes.notSent(input, index, rules.stoppedByRateLimit);
      } else if (
        error instanceof InterruptedError ||
        (state.interrupted && inflight.signal.aborted)
      ) {
        outcomes.interrupted(index);
      } else {
        outcomes.fail(input, index, forImage(input.name, error), deps.now() - t0);
        rules.failed(error);
      }
    }
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
        outcomes.notAttempted(step.value.name);
      }
    }
  } finally {
    deps.interrupt.removeEventListener('abort', onInterrupt);
    if (graceTimer) clearTimeout(graceTimer);
    outcomes.close();
    progress.stop();
    await asker.close();
    await cache.close();
  }

  outcomes.report(deps.now() - started);
  if (asker.gate.rateLimitedCount > 0)
    reporter.debug(
      `rate limited ${asker.gate.rateLimitedCount} time(s); concurrency ended at ${asker.gate.limit}`,
    );
  if (state.interrupted) return ExitCode.INTERRUPTED;
  return outcomes.exitCode;
}
