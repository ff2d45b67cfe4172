/**
 * Answers one image at a time for a run of many: reads it, looks its answer up in the cache
 * (`cached.ts`: a hit needs no decoding, no client and no request), else prepares it (a few at
 * a time, in input order), asks the model through one shared client and rate gate (identical
 * images once), stores a whole answer, and gives an image that failed for a passing reason,
 * while others succeed, one more round. The synchronous batch uses it for every image; alt-fill
 * for every image a document names, each with its own prompt.
 *
 * Stopping: `stop` ends everything not yet sent (an `InterruptedError` with `notSent`);
 * `inflight` aborts requests already sent.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from '../api/client.js';
import {
  classifyFailure,
  deservesSecondRound,
  formatWait,
  isTooLongToWait,
  poolPauseMs,
  stopsEveryRequest,
} from '../api/retry.js';
import { InterruptedError } from '../errors.js';
import type { ExpandedInput } from '../input/expand.js';
import { RateGate } from '../util/rate-gate.js';
import { Semaphore } from '../util/semaphore.js';
import type { CacheSession } from './cached.js';
import {
  askModel,
  buildPayload,
  createClient,
  imageReport,
  loadImage,
  prepareLoaded,
  type Answer,
  type Job,
  type RunContext,
} from './job.js';
import type { AnswerOrigin } from './outcomes.js';

/** Pause before an image that failed for a passing reason gets its second round. */
const SECOND_ROUND_DELAY_MS = 2000;
/** Images read and prepared at the same time. */
const PREPARE_AT_ONCE = 4;

export interface AskerOptions {
  /** The run's answer cache. */
  cache: CacheSession;
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

/** An answer, and how it came (from the cache, or another image's identical request). */
export interface Answered {
  answer: Answer;
  origin: AnswerOrigin;
}

export class Asker {
  readonly gate: RateGate;
  /** Made on first need (a download, or a miss): a run answered from the cache makes none. */
  private client: Promise<ApiClient> | undefined;
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
  }

  private clientNow(): Promise<ApiClient> {
    this.client ??= createClient(this.job, this.ctx, {
      gate: this.gate,
      connections: this.job.concurrency,
    });
    return this.client;
  }

  /** Whether the run stopped (a call, read anew each time: it changes while this awaits). */
  private isStopped(): boolean {
    return this.opts.stop.aborted;
  }

  /** Requests admitted and not finished. */
  get active(): number {
    return this.gate.active;
  }

  /** Reads, looks up, prepares and asks for one image; throws what stopped it. */
  async answer(input: ExpandedInput, opts: AskOptions): Promise<Answered> {
    const { job, ctx } = this;
    const stopped = (): InterruptedError =>
      new InterruptedError('stopped before the request was sent', { notSent: true });
    if (this.isStopped()) throw stopped();
    const downloads = input.arg.kind === 'url' && job.download;
    const loaded = await this.preparing.run(async () =>
      loadImage(input.arg, job, ctx, downloads ? await this.clientNow() : undefined),
    );
    const cache = this.opts.cache;
    const key = cache.keyFor([loaded], opts.prompt);
    // Write-back checks the file is still the one the answer is about.
    const stamped = (answer: Answer): Answer => {
      const stamp = loaded.bytes?.stamp;
      return stamp ? { ...answer, stamp } : answer;
    };
    const hit = cache.lookup(key, input.name);
    if (hit) {
      opts.started?.();
      return { answer: stamped(hit.answer), origin: { cached: true, askedAt: hit.askedAt } };
    }
    const { answer, shared } = await cache.once(
      key,
      async () => {
        const image = await this.preparing.run(() => prepareLoaded(loaded, job, ctx));
        ctx.reporter.debug(imageReport(job, image));
        // Prepared ahead, but the run stopped meanwhile: it was never sent.
        if (this.isStopped()) throw stopped();
        const payload = buildPayload(
          opts.prompt === undefined ? job : { ...job, prompt: opts.prompt },
          [image.source],
        );
        return this.ask(input, payload, opts);
      },
      opts.started,
    );
    return { answer: stamped(answer), origin: shared ? { cached: true } : {} };
  }

  private async ask(
    input: ExpandedInput,
    payload: ReturnType<typeof buildPayload>,
    opts: AskOptions,
  ): Promise<Answer> {
    const { job, ctx } = this;
    const client = await this.clientNow();
    const ask = async (): Promise<Answer> => {
      try {
        return await askModel(job, ctx, client, payload, input.name, {
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
    return answer;
  }

  /** Stops the gate (and its timer) and closes the connections. */
  async close(): Promise<void> {
    this.gate.close();
    await (await this.client?.catch(() => undefined))?.close();
  }
}

/**
 * When a run of many images stops asking, whoever runs it (a batch, alt-fill): on a failure every
 * other request would meet too (a rejected key, an exhausted quota), on a server that asks for
 * a longer wait than --max-wait, and on rate limits that keep failing images with nothing
 * getting through (as many in a row as requests in flight, at least 2).
 */
export class StopRules {
  private rateLimitedInARow = 0;
  /** A rate limit stopped the run: images it did not send are rate-limited, not "not attempted". */
  stoppedByRateLimit = false;

  constructor(
    private readonly concurrency: number,
    private readonly stop: (reason: string) => void,
    /** What to tell the user to do later ("run again later with --resume"). */
    private readonly later = 'run again later with --resume',
  ) {}

  /** An image was answered by the server. */
  answered(): void {
    this.rateLimitedInARow = 0;
  }

  /** An image failed with `error`: stops the run when the rules say so. */
  failed(error: unknown): void {
    const failure = classifyFailure(error);
    if (isTooLongToWait(error)) {
      this.stoppedByRateLimit = true;
      this.stop('the server asks for a longer wait than --max-wait');
    } else if (stopsEveryRequest(failure)) {
      this.stop(failure.kind === 'auth' ? 'authentication failed' : 'out of quota');
    } else if (failure.kind === 'rate-limit') {
      this.rateLimitedInARow++;
      if (this.rateLimitedInARow >= Math.max(2, this.concurrency)) {
        this.stoppedByRateLimit = true;
        this.stop(`rate limited on ${this.rateLimitedInARow} images in a row; ${this.later}`);
      }
    }
  }
}
