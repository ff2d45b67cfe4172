/**
 * Where each image's outcome goes, the same whoever produced it: the synchronous batch
 * (`batch.ts`), an answer found in the cache, or the results of a provider's batch engine.
 *
 * - A success is saved first (sidecar, and any other `Save` such as write-back into the photo):
 *   a save that fails turns the image into a failure, so "succeeded" means "answered and saved".
 * - Then it is recorded: `-o` (append, one whole line), `--json` on stdout as it finishes, or
 *   text on stdout in input order (`==> NAME <==` when there are several images).
 * - Counters for the summary and the exit code (the first failure in input order).
 */
import { APIError, ExitCode, exitCodeFor } from '../errors.js';
import type { ExpandedInput } from '../input/expand.js';
import { neutralize } from '../output/guard.js';
import { JsonlFile, readFinished } from '../output/jsonl-file.js';
import { sidecarExists, sidecarPath, writeSidecar } from '../output/sidecar.js';
import { atPriceFactor, costOf, type Cost } from '../pricing.js';
import { failureRecord, jsonLine, successRecord, type ResultRecord } from '../render/json.js';
import { emptyStats, formatSummary, type BatchStats } from '../render/summary.js';
import { formatAnswer, header } from '../render/text.js';
import { OrderedEmitter } from '../util/ordered.js';
import {
  completionWarnings,
  modelOf,
  reportUsage,
  type Answer,
  type Job,
  type RunContext,
} from './job.js';

/** Something else done with each answer before it counts (write-back into the photo, say). */
export interface Save {
  /** Whether the image needs no answer (already saved: `--skip-existing`, `--resume`). */
  done?(input: ExpandedInput): Promise<boolean>;
  /** Saves the answer; throws (one line, naming the image) when it cannot. */
  save(input: ExpandedInput, answer: Answer, record: ResultRecord): Promise<void>;
}

/** How an answer came, beyond the request itself. */
export interface AnswerOrigin {
  /** Found in the answer cache: no request was made. */
  cached?: boolean | undefined;
  /** When the cached answer was asked (ms since the epoch). */
  askedAt?: number | undefined;
  /** The provider's batch that answered it (`--batch-api`). */
  batchId?: string | undefined;
  /** The share of the list price it cost (a batch engine's discount: 0.5). */
  priceFactor?: number | undefined;
}

export interface OutcomeOptions {
  /** More than one image may come: text answers get `==> NAME <==` headers. */
  multiple: boolean;
  /** Results held back at most to keep text in input order. */
  window: number;
  /** Writes to stdout (the progress line may need to move out of the way first). */
  print: (text: string) => void;
  /** What else each answer goes to. */
  saves?: readonly Save[];
  /** Fields added to (or replacing) each record's: where an alt text went, say. */
  recordFields?: ((input: ExpandedInput, index: number) => Partial<ResultRecord>) | undefined;
}

export class Outcomes {
  readonly stats: BatchStats = emptyStats();
  private firstFailure: { index: number; code: number } | undefined;
  private readonly textOut: boolean;
  private readonly jsonOut: boolean;
  private readonly ordered: OrderedEmitter<string>;
  private readonly sanitize: boolean;
  private readonly saves: readonly Save[];
  private printed = 0;

  private constructor(
    private readonly job: Job,
    private readonly ctx: RunContext,
    private readonly opts: OutcomeOptions,
    private readonly file: JsonlFile | undefined,
    private readonly isDone: (input: ExpandedInput) => Promise<boolean>,
  ) {
    this.textOut = !job.json && !job.output;
    this.jsonOut = job.json && !job.output;
    this.sanitize = Boolean(ctx.deps.stdout.isTTY);
    this.ordered = new OrderedEmitter<string>(
      // Results are separated by a blank line, as `tail` separates files.
      (text) => opts.print(this.printed++ > 0 ? `\n${text}` : text),
      Math.max(2, opts.window),
    );
    this.saves = withSidecar(job, ctx, opts.saves ?? []);
  }

  /** Opens `-o` (creating it) and reads what `--resume` skips. */
  static async open(job: Job, ctx: RunContext, opts: OutcomeOptions): Promise<Outcomes> {
    const file = job.output ? JsonlFile.open(job.output, ctx.deps.cwd, ctx.redactor) : undefined;
    return new Outcomes(job, ctx, opts, file, await doneCheck(job, ctx, opts.saves ?? []));
  }

  /** Waits until image `index` may start without holding back too much text output. */
  async waitForRoom(index: number): Promise<void> {
    if (this.textOut) await this.ordered.waitForRoom(index);
  }

  /**
   * Whether the image is already done (in the `-o` file with `--resume`, or every save that
   * can tell says so with `--resume` or `--skip-existing`); counted as skipped.
   */
  async skip(input: ExpandedInput, index: number): Promise<boolean> {
    if (!(await this.isDone(input))) return false;
    this.skipped(index);
    return true;
  }

  /** Counts image `index` as skipped: done before (a batch job leaves out what was done). */
  skipped(index: number): void {
    this.stats.skipped++;
    this.settle(index, undefined);
  }

  /**
   * An answer: saved (sidecar, write-back…), then recorded and counted. A save that fails makes
   * the image a failure instead.
   */
  async succeed(
    input: ExpandedInput,
    index: number,
    answer: Answer,
    ms: number,
    origin: AnswerOrigin = {},
  ): Promise<void> {
    const model = answer.completion.model ?? modelOf(this.job);
    // A cached answer cost nothing this time; what it saved is counted apart.
    const price = answer.usage
      ? atPriceFactor(costOf(answer.usage, model, this.job.prices), origin.priceFactor)
      : undefined;
    const cost = origin.cached ? undefined : price;
    const rec = successRecord(
      input.name,
      index,
      { ...answer, cost: origin.cached ? 0 : cost?.usd },
      modelOf(this.job),
      ms,
    );
    if (origin.cached) rec.cached = true;
    if (origin.batchId) rec.batch_id = origin.batchId;
    this.addFields(rec, input, index);
    try {
      for (const save of this.saves) await save.save(input, answer, rec);
    } catch (error) {
      this.fail(input, index, error, ms);
      return;
    }
    const stats = this.stats;
    stats.succeeded++;
    if (origin.cached) {
      stats.cached++;
      if (price) stats.saved += price.usd;
    } else if (answer.usage) {
      stats.promptTokens += answer.usage.prompt_tokens;
      stats.completionTokens += answer.usage.completion_tokens;
      if (cost) stats.cost += cost.usd;
      else stats.costKnown = false;
    }
    stats.lastAnswer = { usage: origin.cached ? undefined : answer.usage, cost, cached: origin };
    this.record(index, rec, formatAnswer(answer.text, this.sanitize), input.name);
    for (const warning of completionWarnings(this.job, input.name, answer.completion))
      this.ctx.reporter.warn(warning);
  }

  /**
   * A failure: reported at once (unless `reported`: already shown when it happened, as a batch
   * job shows an image it could not prepare), recorded, counted.
   */
  fail(input: ExpandedInput, index: number, error: unknown, ms: number, reported = false): void {
    const code = exitCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    this.stats.failed++;
    this.stats.failures.push({ name: input.name, message });
    if (!this.firstFailure || index < this.firstFailure.index) this.firstFailure = { index, code };
    if (!reported) this.ctx.reporter.error(message);
    if (this.job.debug && error instanceof Error && error.stack)
      this.ctx.reporter.debug(error.stack);
    const status = error instanceof APIError ? error.status : undefined;
    const rec = failureRecord(input.name, index, { code, message, status }, ms);
    this.record(index, this.addFields(rec, input, index), undefined);
  }

  /** Never sent: rate-limited when a rate limit stopped the batch, else not attempted. */
  notSent(input: ExpandedInput, index: number, rateLimited: boolean): void {
    if (rateLimited) {
      this.stats.rateLimited++;
      const message = `${input.name}: not sent: the batch stopped on a rate limit`;
      const rec = failureRecord(input.name, index, { code: ExitCode.RATE_LIMIT, message }, 0);
      this.record(index, this.addFields(rec, input, index), undefined);
      return;
    }
    this.notAttempted(input.name);
    this.settle(index, undefined);
  }

  /** Counts (and names a few of) the images never started. */
  notAttempted(name: string): void {
    this.stats.notAttempted++;
    if (this.stats.notAttemptedNames.length < 20) this.stats.notAttemptedNames.push(name);
  }

  /** In flight when the run was stopped: neither answered nor failed. */
  interrupted(index: number): void {
    this.stats.interrupted++;
    this.settle(index, undefined);
  }

  /** 0 when every image succeeded, else the code of the first failed image in input order. */
  get exitCode(): number {
    return this.firstFailure?.code ?? ExitCode.OK;
  }

  /** Emits what is still held (on a stop) and closes `-o`. */
  close(): void {
    this.ordered.drain();
    this.file?.close();
  }

  /** The end of a run on stderr: a single image's usage, or a batch's summary. */
  report(elapsedMs: number): void {
    const { reporter } = this.ctx;
    const stats = this.stats;
    stats.elapsedMs = elapsedMs;
    if (stats.total === 0) reporter.warn('no images to describe');
    if (!this.opts.multiple && stats.lastAnswer) {
      // One image: as a single run shows it.
      const last = stats.lastAnswer;
      if (!last.cached.cached) reportUsage(reporter, last.usage, last.cost);
      else if (this.ctx.deps.stderr.isTTY) reporter.notice(cachedNotice(last.cached.askedAt));
    } else if (this.opts.multiple || stats.stopReason) {
      for (const line of formatSummary(stats)) {
        if (line.important) reporter.line(line.text);
        else reporter.info(line.text);
      }
    }
  }

  private addFields(rec: ResultRecord, input: ExpandedInput, index: number): ResultRecord {
    return Object.assign(rec, this.opts.recordFields?.(input, index));
  }

  /** `name` heads a text answer (the input's name, which the record's `image` may not be). */
  private record(
    index: number,
    rec: ResultRecord,
    text: string | undefined,
    name: string = rec.image,
  ): void {
    if (this.file) this.file.append(jsonLine(rec));
    if (this.jsonOut) this.opts.print(jsonLine(rec));
    if (this.textOut) {
      this.ordered.settle(
        index,
        text === undefined
          ? undefined
          : this.opts.multiple
            ? `${header(neutralize(name))}\n${text}`
            : text,
      );
    }
  }

  private settle(index: number, text: string | undefined): void {
    if (this.textOut) this.ordered.settle(index, text);
  }
}

/** The line a terminal gets for an answer from the cache (no usage line: nothing was used). */
export function cachedNotice(askedAt: number | undefined): string {
  const when =
    askedAt === undefined ? '' : ` (asked ${new Date(askedAt).toISOString().slice(0, 10)})`;
  return `answer from the cache${when}: no request made; --refresh asks again`;
}

/**
 * Whether an image is already done, for a run and for a batch job's submission alike: in the
 * `-o` file with `--resume`, or every save that can tell (the sidecar with `--skip-existing`,
 * write-back) says so, with `--resume` or `--skip-existing`. `saves` are the run's own, less
 * the sidecar, which comes from the job.
 */
export async function doneCheck(
  job: Job,
  ctx: RunContext,
  saves: readonly Save[],
): Promise<(input: ExpandedInput) => Promise<boolean>> {
  const finished =
    job.output && job.resume ? await readFinished(job.output, ctx.deps.cwd) : undefined;
  if (finished)
    ctx.reporter.debug(`--resume: ${finished.size} image(s) already described in ${job.output}`);
  const checks =
    job.skipExisting || job.resume
      ? withSidecar(job, ctx, saves).filter((s) => s.done !== undefined)
      : [];
  return async (input) => {
    if (finished?.has(input.key)) return true;
    if (checks.length === 0) return false;
    for (const check of checks) if (!(await check.done?.(input))) return false;
    return true;
  };
}

/** The run's saves, with `--sidecar`'s first. */
function withSidecar(job: Job, ctx: RunContext, saves: readonly Save[]): readonly Save[] {
  return job.sidecar ? [sidecarSave(job, ctx), ...saves] : saves;
}

/**
 * `--sidecar`: `NAME.txt` (or `NAME.json`) next to each local image. An existing one means
 * done under `--skip-existing` only (`--resume` goes by the `-o` file).
 */
function sidecarSave(job: Job, ctx: RunContext): Save {
  const done = async (input: ExpandedInput): Promise<boolean> =>
    input.arg.kind === 'file' && (await sidecarExists(input.arg.path, ctx.deps.cwd, job.json));
  return {
    ...(job.skipExisting ? { done } : {}),
    save: async (input, answer, rec) => {
      if (input.arg.kind !== 'file') {
        ctx.reporter.debug(`${input.name}: no sidecar for an image that is not a local file`);
        return;
      }
      await writeSidecar(
        sidecarPath(input.arg.path, job.json),
        ctx.deps.cwd,
        job.json ? jsonLine(rec) : formatAnswer(answer.text, false),
        ctx.redactor,
      );
    },
  };
}

export type { Cost };
