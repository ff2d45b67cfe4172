/**
 * `--alt-fill`: describes each image of Markdown, MDX and HTML documents that has no alt text
 * and writes the texts in place, changing nothing else. The documents' side (plan, fixes,
 * atomic writes per document) is `src/docs/run.ts`'s `fillDocuments`; this module gives it
 * the model's side and the run's output:
 *
 * - each image is described once through the shared `Asker` (concurrency, rate limits,
 *   retries, `--download`), with a prompt of its own (the context where it is used);
 * - every place an alt text goes is an outcome of the run (`Outcomes`: the record, the
 *   summary, the exit code), as each image of a batch is; its name is `FILE:LINE:COL`;
 * - `--dry-run` asks nothing: each document's diff, with a stand-in where each text would go.
 *
 * Stopping: Ctrl-C aborts the requests in flight, and no request or write starts after it, so
 * every document is either written whole or untouched. A failure every request would meet (a
 * rejected key, an exhausted quota, a wait longer than --max-wait, rate limits that keep
 * failing) stops the requests not yet sent, as in a batch; the documents are still written
 * with the texts that came.
 */
import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { OUTPUT_CLOSED } from '../deps.js';
import { needsModel } from '../docs/find.js';
import type { DocumentFill } from '../docs/plan.js';
import type { DescribeImage, DocsEvents, FillRunOptions, FillSummary } from '../docs/run.js';
import { resolveSource, type FindingProblem, type ResolvedSource } from '../docs/sources.js';
import type { ImageFinding } from '../docs/types.js';
import {
  DescribeImageError,
  ExitCode,
  InterruptedError,
  UsageError,
  exitCodeFor,
} from '../errors.js';
import type { ExpandedInput } from '../input/expand.js';
import { classifyImageArg, type ImageArg } from '../input/images.js';
import { neutralize } from '../output/guard.js';
import type { ResultRecord } from '../render/json.js';
import { formatCount } from '../render/text.js';
import { isCI } from '../ui/colors.js';
import { Progress } from '../ui/progress.js';
import { Semaphore } from '../util/semaphore.js';
import { loadDocs, messageOf, plural, shownSource } from './alt.js';
import { Asker, StopRules } from './asker.js';
import { CacheSession } from './cached.js';
import { askServerForModel } from './describe.js';
import type { Answer, Job, RunContext } from './job.js';
import { Outcomes, type AnswerOrigin } from './outcomes.js';

export interface AltFillOptions {
  documents: readonly string[];
  /** `--root`: where root-relative sources (`/img/x.png`) are found. */
  root: string | undefined;
  placeholders: boolean;
  /** The user's own words (`-p`), added to every image's prompt. */
  prompt: string | undefined;
}

/** `--alt-fill`: describes the images without alt text and writes the texts in place. */
export async function runAltFill(job: Job, ctx: RunContext, opts: AltFillOptions): Promise<number> {
  const { deps, reporter } = ctx;
  const [docs, files, report] = await loadDocs();
  const paths = await files.expandDocuments(opts.documents, deps.cwd);
  if (opts.root !== undefined) await checkRoot(opts.root, deps.cwd);
  const failures = new FirstFailure(paths);
  const documentError = (file: string, error: unknown): void => {
    reporter.error(messageOf(error));
    failures.add(file, -1, exitCodeFor(error));
  };
  const loaded = await docs.loadDocuments(paths, deps.cwd, { documentError });
  const options: FillRunOptions = {
    cwd: deps.cwd,
    root: opts.root,
    placeholders: opts.placeholders,
    redactor: ctx.redactor,
    signal: deps.interrupt,
    terminal: Boolean(deps.stdout.isTTY),
  };

  if (job.dryRun) {
    const summary = await docs.fillDocuments(
      loaded,
      {
        ...options,
        dryRun: true,
        standIn: (group) => `[alt text for ${standInName(group.source)}]`,
      },
      () => Promise.reject(new Error('a dry run asks no model')),
      {
        documentError,
        problem: (problem) => {
          reporter.error(report.formatProblem(problem));
          failures.add(problem.finding.file, problem.finding.offset, ExitCode.INPUT);
        },
        diff: (_doc, text) => deps.stdout.write(text),
        filled: () => undefined,
      },
    );
    reporter.notice(
      `dry run: ${plural(summary.described, 'image')} to describe, for ${plural(summary.images, 'place')} in ${plural(summary.documents, 'document')}; nothing sent, nothing written`,
    );
    return deps.interrupt.aborted ? ExitCode.INTERRUPTED : failures.code;
  }

  const scope = { placeholders: opts.placeholders };
  if (job.model === undefined && loaded.some((d) => d.images.some((i) => needsModel(i, scope))))
    job = { ...job, model: await askServerForModel(job, ctx) };
  const run = await FillRun.start(job, ctx, opts, loaded, failures, report.formatProblem);
  let summary;
  try {
    summary = await docs.fillDocuments(loaded, options, run.describe, run.events);
  } finally {
    await run.close();
  }
  run.report(summary);
  if (run.interrupted) return ExitCode.INTERRUPTED;
  return failures.code;
}

/**
 * One `--alt-fill` with the model: the `describe` function and the events `fillDocuments`
 * calls, and every place an alt text goes as an outcome (index: its order in the documents).
 */
class FillRun {
  interrupted = false;
  private readonly started: number;
  private readonly places: ImageFinding[];
  private readonly indexOf: Map<ImageFinding, number>;
  private readonly settled = new Set<number>();
  /** Places after the first of an image described once. */
  private readonly shared = new Set<number>();
  private readonly groupOf = new Map<ImageFinding, string>();
  private readonly answers = new Map<
    string,
    { answer: Answer; origin: AnswerOrigin; ms: number }
  >();
  private readonly errors = new Map<string, unknown>();
  private readonly recorded = new Set<string>();
  private readonly succeeding: Promise<void>[] = [];
  private readonly slots: Semaphore;
  private readonly stopping = new AbortController();
  private readonly inflight = new AbortController();
  private readonly asker: Asker;
  private readonly progress: Progress;
  /** When the requests not yet sent stop (as a batch decides). */
  private readonly rules: StopRules;
  /** HTML images hidden from assistive technology that got `alt=""`, no model needed. */
  private hidden = 0;

  /** Records, counters, summary (set by `start`, which opens it). */
  private outcomes!: Outcomes;

  private constructor(
    private readonly job: Job,
    private readonly ctx: RunContext,
    private readonly opts: AltFillOptions,
    private readonly documents: readonly DocumentFill[],
    private readonly failures: FirstFailure,
    private readonly formatProblem: (problem: FindingProblem) => string,
    private readonly cache: CacheSession,
  ) {
    const { deps, reporter } = ctx;
    this.started = deps.now();
    const scope = { placeholders: opts.placeholders };
    this.places = documents.flatMap((d) => d.images.filter((i) => needsModel(i, scope)));
    this.indexOf = new Map(this.places.map((place, i) => [place, i]));
    setMaxListeners(0, this.stopping.signal);
    setMaxListeners(0, this.inflight.signal);
    // As many images in hand as a batch's pool has: twice the requests in flight.
    this.slots = new Semaphore(job.concurrency * 2);
    this.rules = new StopRules(job.concurrency, (reason) => this.stop(reason), 'run again later');
    this.asker = new Asker(job, ctx, {
      cache,
      stop: this.stopping.signal,
      inflight: this.inflight.signal,
      onPause: () => this.progress.tick(),
    });
    this.progress = new Progress(reporter, {
      enabled: Boolean(deps.stderr.isTTY) && !job.quiet && !isCI(deps.env),
      now: () => deps.now(),
      total: this.places.length,
      pauseEndsAt: () => this.asker.gate.pauseEndsAt,
    });
  }

  static async start(
    job: Job,
    ctx: RunContext,
    opts: AltFillOptions,
    documents: readonly DocumentFill[],
    failures: FirstFailure,
    formatProblem: (problem: FindingProblem) => string,
  ): Promise<FillRun> {
    // The cache's key holds each image's own prompt, and with it the document's context.
    const cache = await CacheSession.open(job, ctx);
    const run = new FillRun(job, ctx, opts, documents, failures, formatProblem, cache);
    run.outcomes = await Outcomes.open(job, ctx, {
      multiple: true,
      // Text answers wait only for the places before them, however many.
      window: Number.MAX_SAFE_INTEGER,
      print: (text) => run.progress.above(() => ctx.deps.stdout.write(text)),
      recordFields: (_input, index) => run.fields(index),
    });
    run.outcomes.stats.total = run.places.length;
    const { interrupt } = ctx.deps;
    if (interrupt.aborted) run.onInterrupt();
    else interrupt.addEventListener('abort', run.onInterrupt, { once: true });
    return run;
  }

  private readonly onInterrupt = (): void => {
    this.interrupted = true;
    this.progress.clear();
    const closed = this.ctx.deps.interrupt.reason === OUTPUT_CLOSED;
    this.stop(closed ? 'standard output was closed' : 'interrupted');
    this.inflight.abort(new InterruptedError());
    if (!closed)
      this.ctx.reporter.line([
        {
          text: 'interrupted: no request or write starts now; the documents written so far stay written, the others are untouched',
          style: 'yellow',
        },
      ]);
  };

  private stop(reason: string): void {
    if (this.stopping.signal.aborted) return;
    this.outcomes.stats.stopReason = reason;
    this.stopping.abort();
  }

  /** The model's side of the fill: one image's alt text (its raw answer). */
  readonly describe: DescribeImage = (group, prompt) =>
    this.slots.run(async () => {
      for (const finding of group.findings) this.groupOf.set(finding, group.key);
      const t0 = this.ctx.deps.now();
      const user = this.opts.prompt;
      try {
        const { answer, origin } = await this.asker.answer(
          imageInput(group.source, group.key, this.ctx),
          { prompt: user === undefined ? prompt : `${prompt}\n\n${user}`, since: t0 },
        );
        if (!origin.cached) this.rules.answered();
        this.answers.set(group.key, { answer, origin, ms: this.ctx.deps.now() - t0 });
        return answer.text;
      } catch (error) {
        this.errors.set(group.key, error);
        this.rules.failed(error);
        throw error;
      }
    });

  readonly events: DocsEvents = {
    documentError: (file, error) => this.documentFailed(file, error),
    problem: (problem) => this.placeFailed(problem),
    filled: (_doc, choices) => {
      for (const { image, alt } of choices) this.placeFilled(image, alt);
    },
  };

  private placeFilled(image: ImageFinding, alt: string): void {
    const index = this.indexOf.get(image);
    if (index === undefined) {
      // `alt=""` for an image hidden from assistive technology: no model, no record.
      this.hidden++;
      return;
    }
    const key = this.groupOf.get(image);
    const got = key === undefined ? undefined : this.answers.get(key);
    // (A place is filled only with its image's answer.)
    if (key === undefined || !got) return;
    // An image described once: its usage and cost are counted at its first place only.
    const first = !this.recorded.has(key);
    this.recorded.add(key);
    if (!first) this.shared.add(index);
    this.settled.add(index);
    const answer: Answer = {
      ...got.answer,
      json: alt,
      text: alt,
      usage: first ? got.answer.usage : undefined,
    };
    this.succeeding.push(
      this.outcomes.succeed(
        this.placeInput(index),
        index,
        answer,
        got.ms,
        first ? got.origin : { cached: true },
      ),
    );
    this.progress.update(this.outcomes.stats);
  }

  private placeFailed(problem: FindingProblem): void {
    const index = this.indexOf.get(problem.finding);
    const message = this.formatProblem(problem);
    if (index === undefined) {
      this.ctx.reporter.error(message);
      return;
    }
    this.settled.add(index);
    const key = this.groupOf.get(problem.finding);
    const error = key === undefined ? undefined : this.errors.get(key);
    if (error instanceof InterruptedError && error.notSent) {
      this.outcomes.notSent(this.placeInput(index), index, this.rules.stoppedByRateLimit);
      return;
    }
    // No error of a request: the source cannot be had (3), or the answer was no alt text (6).
    const code =
      error !== undefined
        ? exitCodeFor(error)
        : key !== undefined && this.answers.has(key)
          ? ExitCode.REJECTED
          : ExitCode.INPUT;
    this.fail(index, error, message, code);
  }

  /** A document that could not be written: each of its places fails with it. */
  private documentFailed(file: string, error: unknown): void {
    const fill = this.documents.find((d) => d.doc.path === file);
    const reason = messageOf(error).replace(`${neutralize(file)}: `, '');
    let told = false;
    for (const image of fill?.images ?? []) {
      const index = this.indexOf.get(image);
      if (index === undefined || this.settled.has(index)) continue;
      this.settled.add(index);
      const problem = { finding: image, reason };
      this.fail(index, error, this.formatProblem(problem), exitCodeFor(error));
      told = true;
    }
    if (!told) {
      this.ctx.reporter.error(messageOf(error));
      this.failures.add(file, -1, exitCodeFor(error));
    }
  }

  private fail(index: number, error: unknown, message: string, code: number): void {
    const place = this.places[index] as ImageFinding;
    this.failures.add(place.file, place.offset, code);
    this.outcomes.fail(this.placeInput(index), index, retold(error, message, code), 0);
    this.progress.update(this.outcomes.stats);
  }

  /** What a place's record adds: the document, the place and the source. */
  private fields(index: number): Partial<ResultRecord> {
    const place = this.places[index];
    if (!place) return {};
    const fields: Partial<ResultRecord> = {
      image: this.imageName(place),
      file: place.file,
      line: place.line,
      column: place.column,
      source: shownSource(place.src),
    };
    if (this.shared.has(index)) fields.shared = true;
    return fields;
  }

  private imageName(place: ImageFinding): string {
    const source = resolveSource(place.src, place.file, {
      cwd: this.ctx.deps.cwd,
      root: this.opts.root,
    });
    return 'kind' in source ? imageArg(source, this.ctx.deps.cwd).name : shownSource(place.src);
  }

  /** A place as an input of the run: named `FILE:LINE:COL` (text output's header, messages). */
  private placeInput(index: number): ExpandedInput {
    const place = this.places[index] as ImageFinding;
    const name = `${place.file}:${place.line}:${place.column}`;
    const source = resolveSource(place.src, place.file, {
      cwd: this.ctx.deps.cwd,
      root: this.opts.root,
    });
    const arg: ImageArg =
      'kind' in source
        ? imageArg(source, this.ctx.deps.cwd)
        : { kind: 'file', path: place.src, name: place.src };
    return { arg, name, key: name };
  }

  async close(): Promise<void> {
    this.ctx.deps.interrupt.removeEventListener('abort', this.onInterrupt);
    await Promise.all(this.succeeding);
    // What was never settled: stopped before its document could be written.
    this.places.forEach((_place, index) => {
      if (!this.settled.has(index)) this.outcomes.notSent(this.placeInput(index), index, false);
    });
    this.outcomes.close();
    this.progress.stop();
    await this.asker.close();
    await this.cache.close();
  }

  report(summary: FillSummary): void {
    const { reporter, deps } = this.ctx;
    if (this.places.length > 0) this.outcomes.report(deps.now() - this.started);
    const parts = [
      `alt text: ${plural(summary.images, 'image')} to fill in ${plural(summary.documents, 'document')}`,
      `${plural(summary.described, 'image')} described`,
      `${plural(summary.written, 'document')} written`,
    ];
    if (this.hidden > 0) parts.push(`${formatCount(this.hidden)} hidden marked alt=""`);
    reporter.notice(parts.join(' · '));
  }
}

/** The first failure in document order: its exit code is the run's. */
class FirstFailure {
  private first: { doc: number; offset: number; code: number } | undefined;
  private readonly position: Map<string, number>;

  constructor(paths: readonly string[]) {
    this.position = new Map(paths.map((p, i) => [p, i]));
  }

  /** A failure in `file` at `offset` (-1: the document itself). */
  add(file: string, offset: number, code: number): void {
    const doc = this.position.get(file) ?? this.position.size;
    const f = this.first;
    if (!f || doc < f.doc || (doc === f.doc && offset < f.offset))
      this.first = { doc, offset, code };
  }

  get code(): number {
    return this.first?.code ?? ExitCode.OK;
  }
}

/** The image a resolved source names, as an input: a file's name is relative to the cwd. */
function imageArg(source: ResolvedSource, cwd: string): ImageArg {
  if (source.kind !== 'file') return classifyImageArg(source.url);
  const relative = path.relative(cwd, source.path);
  // (Windows: another drive has no relative path.)
  return {
    kind: 'file',
    path: source.path,
    name: path.isAbsolute(relative) ? source.path : relative,
  };
}

function imageInput(source: ResolvedSource, key: string, ctx: RunContext): ExpandedInput {
  const arg = imageArg(source, ctx.deps.cwd);
  return { arg, name: arg.name, key };
}

/** The short name a `--dry-run` stand-in text gives an image. */
function standInName(source: ResolvedSource): string {
  if (source.kind === 'data') return 'a data: URL';
  const pathname = source.kind === 'url' ? new URL(source.url).pathname : source.path;
  return path.posix.basename(pathname.split(path.sep).join('/')) || source.key;
}

/**
 * The same error, told with another message (the place it happened): a copy, because an image
 * used in several places shares one error, and of the same class, so that its exit code and
 * HTTP status stay with it.
 */
function retold(error: unknown, message: string, code: number): Error {
  if (!(error instanceof Error)) return new DescribeImageError(message, code as ExitCode);
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error) as object) as Error, error);
  copy.message = message;
  return copy;
}

async function checkRoot(root: string, cwd: string): Promise<void> {
  const info = await stat(path.resolve(cwd, root)).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`--root ${neutralize(root)}: no such directory`);
}
