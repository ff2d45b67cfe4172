/**
 * Answers one image at a time for a run of many: reads and prepares it (a few at a time, in
 * input order), asks the model through one shared client and rate gate, and gives an image that
 * failed for a passing reason, while others succeed, one more round. The synchronous batch uses
 * it for every image; alt-fill for every image a document names, each with its own prompt.
 *
 * Stopping: `stop` ends everything not yet sent (an `InterruptedError` with `notSent`);
 * `inflight` aborts requests already sent.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from '../api/client.js';
import { classifyFailure, deservesSecondRound, poolPauseMs, formatWait } from '../api/retry.js';
import { InterruptedError } from '../errors.js';
import type { ExpandedInput } from '../input/expand.js';
import { RateGate } from '../util/rate-gate.js';
import { Semaphore } from '../util/semaphore.js';
import {
  askModel,
  buildPayload,
  createClient,
  imageReport,
  prepareImage,
  type Answer,
  type Job,
  type RunContext,
} from './job.js';

/** Pause before an image that failed for a passing reason gets its second round. */
const SECOND_ROUND_DELAY_MS = 2000;
/** Images read and prepared at the same time. */
const PREPARE_AT_ONCE = 4;

export interface AskerOptions {
  /** Once aborted, nothing new is read, prepared or sent. */
  stop: AbortSignal;
  /** Aborts the requests in flight. */
  inflight: AbortSignal;
  /** Told when a rate limit pauses every request (ms). */
  onPause?: ((ms: number) => void) | undefined;
  /** Told after each request, whatever its end. */
  afterRequest?: (() => void) | undefined;
}

export interface AskOptions {
  /** The prompt for this image, when it is not the run's. */
  prompt?: string | undefined;
  /** Called once the image is ready, before its request may start (to queue in input order). */
  ready?: (() => Promise<void>) | undefined;
  /** Called as soon as the request has started. */
  started?: (() => void) | undefined;
  /** When the image's work began (for the second round: did anything succeed since?). */
  since: number;
}

export class Asker {
  readonly gate: RateGate;
  private readonly client: ApiClient;
  private readonly preparing = new Semaphore(PREPARE_AT_ONCE);
  private lastSuccessAt = -Infinity;

  constructor(
    private readonly job: Job,
    private readonly ctx: RunContext,
    private readonly opts: AskerOptions,
  ) {
    this.gate = new RateGate({
      max: job.concurrency,
      rpm: job.rpm,
      pauseMs: (n) => poolPauseMs(n),
      onPause: (ms) => {
        ctx.reporter.notice(`rate limited: pausing every request for ${formatWait(ms)}`);
        opts.onPause?.(ms);
      },
    });
    this.client = createClient(job, ctx, { gate: this.gate, connections: job.concurrency });
  }

  /** Whether the run stopped (a call, read anew each time: it changes while this awaits). */
  private isStopped(): boolean {
    return this.opts.stop.aborted;
  }

  /** Requests admitted and not finished. */
  get active(): number {
    return this.gate.active;
  }

  /** Reads, prepares and asks for one image; throws what stopped it. */
  async answer(input: ExpandedInput, opts: AskOptions): Promise<Answer> {
    const { job, ctx } = this;
    const stopped = (): InterruptedError =>
      new InterruptedError('stopped before the request was sent', { notSent: true });
    if (this.isStopped()) throw stopped();
    const image = await this.preparing.run(() => prepareImage(input.arg, job, ctx, this.client));
    ctx.reporter.debug(imageReport(job, image));
    // Prepared ahead, but the run stopped meanwhile: it was never sent.
    if (this.isStopped()) throw stopped();
    const payload = buildPayload(
      opts.prompt === undefined ? job : { ...job, prompt: opts.prompt },
      [image.source],
    );
    const ask = async (): Promise<Answer> => {
      try {
        return await askModel(job, ctx, this.client, payload, input.name, {
          signal: this.opts.inflight,
          stop: this.opts.stop,
        });
      } finally {
        this.opts.afterRequest?.();
      }
    };
    let answer: Answer;
    try {
      await opts.ready?.();
      const asking = ask();
      opts.started?.();
      answer = await asking;
    } catch (error) {
      // A passing failure while others succeed is bad luck, not a dead server: one more round.
      if (
        !deservesSecondRound(classifyFailure(error), job.retries) ||
        this.isStopped() ||
        this.lastSuccessAt < opts.since
      )
        throw error;
      ctx.reporter.debug(`${input.name}: second round after: ${(error as Error).message}`);
      await sleep(SECOND_ROUND_DELAY_MS, undefined, { signal: this.opts.stop }).catch(() => {
        throw error;
      });
      answer = await ask();
    }
    this.lastSuccessAt = ctx.deps.now();
    // Write-back checks the file is still the one the model saw.
    return image.stamp ? { ...answer, stamp: image.stamp } : answer;
  }

  /** Stops the gate (and its timer) and closes the connections. */
  async close(): Promise<void> {
    this.gate.close();
    await this.client.close();
  }
}
