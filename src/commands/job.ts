/**
 * What a run has to do, fully resolved by `cli.ts`, and the steps that the single-request
 * path (`describe.ts`) and the batch path (`batch.ts`) share: turning an image argument into
 * an `ImageSource`, building the payload, making the client.
 */
import type { ApiClient, CompleteOptions, Gate } from '../api/client.js';
import { buildChatRequest, type ChatRequestPayload, type ImageSource } from '../api/request.js';
import type { Completion, ImageDetail, Usage } from '../api/types.js';
import type { Price } from '../config.js';
import { formatCostLine, type Cost } from '../pricing.js';
import { formatUsage } from '../render/text.js';
import type { Deps } from '../deps.js';
import { DescribeImageError, InputError, SchemaMismatchError, UsageError } from '../errors.js';
import { planInputs, type InputPlan } from '../input/expand.js';
import { checkImageBytes, readImage, type ImageArg, type ImageBytes } from '../input/images.js';
import { prepareBytes, type PreparedBytes } from '../input/prepare.js';
import { MIME_BY_FORMAT } from '../input/sniff.js';
import type { Source } from '../metadata/content.js';
import type { SidecarStyle } from '../metadata/formats.js';
import type { FileStamp } from '../metadata/stamp.js';
import { estimateImageTokens } from '../input/tokens.js';
import { formatImageReport } from '../render/image-report.js';
import type { Provider } from '../providers.js';
import type { Redactor } from '../output/guard.js';
import type { Reporter } from '../ui/reporter.js';
import { VERSION } from '../version.js';
import {
  checkAnswer,
  mismatch,
  presentAnswer,
  responseFormat,
  type StructuredSpec,
} from './structured.js';

export interface Job {
  /** The image arguments as given (already split from the prompt). */
  inputs: string[];
  prompt: string;
  system: string | undefined;
  /** Undefined until asked of the server (local providers with no --model). */
  model: string | undefined;
  detail: ImageDetail | undefined;
  maxTokens: number | undefined;
  maxCompletionTokens: number | undefined;
  temperature: number | undefined;
  /** Stream the answer (false under --no-stream and --json). */
  stream: boolean;
  json: boolean;
  quiet: boolean;
  debug: boolean;
  together: boolean;
  timeoutMs: number;
  retries: number;
  /**
   * `--max-wait`: the longest wait a server may ask for (Retry-After) that is waited out;
   * undefined: 60 s for one image, 600 s for a batch (set by describe()).
   */
  maxWaitMs: number | undefined;
  concurrency: number;
  /** Requests per minute, if capped. */
  rpm: number | undefined;
  /** `--files-from`: a list of images, one per line (`-` for stdin). */
  filesFrom: string | undefined;
  /** `--output`: JSON Lines file to append to. */
  output: string | undefined;
  resume: boolean;
  sidecar: boolean;
  skipExisting: boolean;
  /** `--max-size`: long-edge limit instead of the detail-based one. */
  maxSize: number | undefined;
  keepMetadata: boolean;
  original: boolean;
  /** Fetch image URLs and send their bytes (--download, or the provider's need). */
  download: boolean;
  dryRun: boolean;
  /** `--write-metadata` / `--xmp-sidecar`: each answer written into its photo or a sidecar. */
  writeBack: WriteBack | undefined;
  /** `--schema` or `--preset`. */
  structured: StructuredSpec | undefined;
  /**
   * The answer cache: `use` (look up, store), `off` (--no-cache, or `"cache": false`),
   * `refresh` (ask again, replace), `only` (--cache-only: never ask).
   */
  cache: 'use' | 'off' | 'refresh' | 'only';
  /** Where the cache lives (--cache-dir, or $XDG_CACHE_HOME/describe-image). */
  cacheDir: string;
  /** Config prices over the built-in ones. */
  prices: Record<string, Price>;
  provider: Provider;
  api: {
    baseUrl: string;
    apiKey: string | undefined;
    /** Azure's `api-version`. */
    query: Record<string, string>;
  };
}

/** Where and how answers are written into photos (see src/metadata/writer.ts). */
export interface WriteBack {
  /** Into the photo itself, or into an XMP sidecar beside it (`--xmp-sidecar`). */
  target: 'embed' | 'sidecar';
  /** `append`: `photo.jpg.xmp`; `replace`: `photo.xmp` (`--xmp-name`). */
  sidecarStyle: SidecarStyle;
  /** Photos keep their modification time (unless `--update-mtime`). */
  keepMtime: boolean;
  /** `--backup`: ExifTool's `photo.jpg_original` is left beside each photo written. */
  backup: boolean;
  /** What the answers are (a preset, or a plain prompt): which fields they go to. */
  source: Source;
}

/** The model, once it is known (describe() asks the server when none was set). */
export function modelOf(job: Job): string {
  return job.model ?? 'unknown';
}

/** Progress and interruption wiring shared by every command. */
export interface RunContext {
  deps: Deps;
  reporter: Reporter;
  /** Every file the run writes passes its text through this (see output/guard.ts). */
  redactor: Redactor;
}

/** `--max-wait`'s default for one image: the official SDK's own limit. */
export const SINGLE_MAX_WAIT_MS = 60_000;
/** `--max-wait`'s default for a batch, whose whole pool waits out a rate limit. */
export const BATCH_MAX_WAIT_MS = 600_000;

export async function createClient(
  job: Job,
  ctx: RunContext,
  extra: { gate?: Gate; connections?: number } = {},
): Promise<ApiClient> {
  // Loaded when a request is to be made: a run answered from the cache never loads undici.
  const { ApiClient } = await import('../api/client.js');
  const env = ctx.deps.env;
  const proxy = {
    http: env.HTTP_PROXY ?? env.http_proxy ?? '',
    https: env.HTTPS_PROXY ?? env.https_proxy ?? '',
    noProxy: env.NO_PROXY ?? env.no_proxy ?? '',
  };
  return new ApiClient({
    baseUrl: job.api.baseUrl,
    apiKey: job.api.apiKey,
    keyHeader: job.provider.keyHeader,
    query: job.api.query,
    userAgent: `describe-image/${VERSION}`,
    timeoutMs: job.timeoutMs,
    retry: {
      retries: job.retries,
      maxWaitMs: job.maxWaitMs ?? (extra.gate ? BATCH_MAX_WAIT_MS : SINGLE_MAX_WAIT_MS),
    },
    connections: extra.connections ?? Math.max(1, job.concurrency),
    proxy: proxy.http || proxy.https ? proxy : undefined,
    gate: extra.gate,
    log: job.debug ? (line) => ctx.reporter.debug(line) : undefined,
  });
}

/** An image ready to go into a request. */
export interface PreparedImage {
  name: string;
  source: ImageSource;
  /** What preparation did (undefined for a URL passed through). */
  prepared: PreparedBytes | undefined;
  /** A local file as it was read (write-back refuses a file that changed since). */
  stamp?: FileStamp | undefined;
}

/** Most images in one request (OpenAI's limit). */
const MAX_IMAGES_PER_REQUEST = 500;

/** Every input of the run, for one request (one image, or --together): at most 500, at least 1. */
export async function oneRequestInputs(plan: InputPlan): Promise<ImageArg[]> {
  const args: ImageArg[] = [];
  for await (const input of plan.inputs) {
    args.push(input.arg);
    if (args.length > MAX_IMAGES_PER_REQUEST) {
      throw new UsageError(
        `--together sends at most ${MAX_IMAGES_PER_REQUEST} images in one request`,
      );
    }
  }
  if (args.length === 0) throw new UsageError('no image given');
  return args;
}

/** Largest image `--download` fetches. */
export const MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024;

/**
 * Reads, checks and prepares a local image (see `input/prepare.ts`); passes a URL through,
 * or downloads it first with --download.
 */
export async function prepareImage(
  arg: ImageArg,
  job: Job,
  ctx: RunContext,
  client: ApiClient | undefined,
): Promise<PreparedImage> {
  return prepareLoaded(await loadImage(arg, job, ctx, client), job, ctx);
}

/**
 * An image argument with its bytes read (a file, standard input, a data URL, or a URL fetched
 * with --download), not yet prepared; or a URL passed through as it is.
 */
export type LoadedImage =
  | { name: string; url: string; bytes?: undefined }
  | { name: string; bytes: ImageBytes; url?: undefined };

/** Reads an image's bytes (or downloads them with --download), checked to be an image. */
export async function loadImage(
  arg: ImageArg,
  job: Job,
  ctx: RunContext,
  client: ApiClient | undefined,
): Promise<LoadedImage> {
  if (arg.kind === 'url') {
    if (!job.download || !client) return { name: arg.name, url: arg.url };
    const data = await client.download(arg.url, {
      signal: ctx.deps.interrupt,
      maxBytes: MAX_DOWNLOAD_BYTES,
    });
    const format = await checkImageBytes(arg.name, data, { path: new URL(arg.url).pathname });
    return {
      name: arg.name,
      bytes: { name: arg.name, data, format, mime: MIME_BY_FORMAT[format] },
    };
  }
  return {
    name: arg.name,
    bytes: await readImage(arg, ctx.deps.cwd, ctx.deps.stdin, ctx.deps.interrupt),
  };
}

/** Prepares loaded bytes for sending (see `input/prepare.ts`); a URL passes through. */
export async function prepareLoaded(
  image: LoadedImage,
  job: Job,
  ctx: RunContext,
): Promise<PreparedImage> {
  if (image.bytes === undefined) {
    return { name: image.name, source: { url: image.url }, prepared: undefined };
  }
  const prepared = await prepareBytes(
    image.bytes,
    {
      detail: job.detail,
      model: modelOf(job),
      maxSize: job.maxSize,
      keepMetadata: job.keepMetadata,
      original: job.original,
      sendable: job.provider.sendable,
    },
    () => ctx.deps.now(),
  );
  for (const note of prepared.notes) ctx.reporter.notice(note);
  return {
    name: image.name,
    source: { mime: prepared.mime, data: prepared.data },
    prepared,
    stamp: image.bytes.stamp,
  };
}

/** Most bytes of images in one request (OpenAI: 50 MB). */
export const MAX_REQUEST_IMAGE_BYTES = 50 * 1024 * 1024;

/**
 * Several images in one request (--together) must stay under the per-request limit. With
 * `original` (--original, which refuses --max-size), the hint is to let them be scaled down.
 */
export function checkRequestSize(images: readonly PreparedImage[], original: boolean): void {
  const total = images.reduce((sum, i) => sum + ('data' in i.source ? i.source.data.length : 0), 0);
  if (total > MAX_REQUEST_IMAGE_BYTES) {
    const smaller = original
      ? 'leave out --original so that they are scaled down'
      : 'with a smaller --max-size';
    throw new InputError(
      `the images total ${(total / 1048576).toFixed(1)} MB, over the 50 MB a request may carry; send them without --together, or ${smaller}`,
    );
  }
}

/** The `--debug` / `--dry-run` line for one image. */
export function imageReport(job: Job, image: PreparedImage): string {
  const tokens = image.prepared
    ? estimateImageTokens(modelOf(job), image.prepared.sent, job.detail)
    : undefined;
  return formatImageReport(image.name, image.prepared, tokens, job.detail);
}

export function buildPayload(job: Job, sources: readonly ImageSource[]): ChatRequestPayload {
  return buildChatRequest({
    model: modelOf(job),
    prompt: job.prompt,
    images: sources,
    system: job.system,
    detail: job.provider.detail ? job.detail : undefined,
    maxTokens: job.maxTokens,
    maxCompletionTokens: job.maxCompletionTokens,
    temperature: job.temperature,
    stream: job.stream,
    includeUsage: job.provider.streamOptions,
    responseFormat: job.structured ? responseFormat(job.structured) : undefined,
  });
}

/** A finished answer: the completion, and the answer as `--json` and stdout show it. */
export interface Answer {
  completion: Completion;
  /** `text` in JSON output: the string, or the parsed value of a structured answer. */
  json: unknown;
  /** What stdout shows. */
  text: string;
  /** Token usage of every request the answer took (a structured answer may take two). */
  usage: Usage | undefined;
  /** A structured answer's value as it passed its schema (what the cache stores). */
  value?: unknown;
  /** The local file the answer is about, as it was read (for write-back's "changed since"). */
  stamp?: FileStamp | undefined;
}

/**
 * Sends the request. A structured answer is checked against its schema and asked for once
 * more when it does not match; it is never streamed to stdout before it is checked.
 */
export async function askModel(
  job: Job,
  ctx: RunContext,
  client: ApiClient,
  payload: ChatRequestPayload,
  name: string,
  options: CompleteOptions,
): Promise<Answer> {
  const spec = job.structured;
  if (!spec) {
    const completion = await client.complete(payload, options);
    return { completion, json: completion.text, text: completion.text, usage: completion.usage };
  }
  let usage: Usage | undefined;
  for (let attempt = 1; ; attempt++) {
    const completion = await client.complete(payload, { ...options, onText: undefined });
    usage = addUsage(usage, completion.usage);
    if (completion.refusal)
      throw new SchemaMismatchError(`${name}: the model refused to answer: ${completion.text}`);
    const checked = await checkAnswer(spec, completion.text);
    if (checked.ok) {
      const shown = presentAnswer(spec, checked.value, Boolean(ctx.deps.stdout.isTTY));
      return { completion, json: shown.json, text: shown.text, usage, value: checked.value };
    }
    if (attempt >= 2) throw mismatch(name, checked.problem);
    ctx.reporter.notice(`${name}: ${checked.problem}; asking once more`);
  }
}

function addUsage(a: Usage | undefined, b: Usage | undefined): Usage | undefined {
  if (!a) return b;
  if (!b) return a;
  const sum: Usage = {
    prompt_tokens: a.prompt_tokens + b.prompt_tokens,
    completion_tokens: a.completion_tokens + b.completion_tokens,
    total_tokens:
      ((a.total_tokens as number | undefined) ?? 0) + ((b.total_tokens as number | undefined) ?? 0),
  };
  if (typeof a.cost === 'number' || typeof b.cost === 'number')
    sum.cost = (a.cost ?? 0) + (b.cost ?? 0);
  return sum;
}

/** The token and cost lines after an answer (hidden by --quiet). */
export function reportUsage(
  reporter: Reporter,
  usage: Usage | undefined,
  cost: Cost | undefined,
): void {
  if (!usage) {
    reporter.debug('the server reported no token usage');
    return;
  }
  reporter.info([{ text: formatUsage(usage), style: 'dim' }]);
  if (cost) reporter.info([{ text: formatCostLine(cost), style: 'dim' }]);
}

/** Prefixes a request failure with the image it was for (input errors already name it). */
export function forImage(name: string, error: unknown): unknown {
  if (
    error instanceof DescribeImageError &&
    !(error instanceof InputError) &&
    !error.message.startsWith(`${name}: `)
  ) {
    error.message = `${name}: ${error.message}`;
  }
  return error;
}

/** Warnings a finished answer deserves: cut off, filtered, refused, empty. */
export function completionWarnings(job: Job, name: string, completion: Completion): string[] {
  const warnings: string[] = [];
  if (completion.refusal) warnings.push(`${name}: the model refused to answer`);
  if (completion.finishReason === 'length') {
    const option =
      job.maxCompletionTokens !== undefined ? '--max-completion-tokens' : '--max-tokens';
    warnings.push(
      `${name}: the answer was cut off at the token limit; raise ${option} for a longer one`,
    );
  } else if (completion.finishReason === 'content_filter') {
    warnings.push(`${name}: the answer was cut off by the content filter`);
  }
  if (completion.text === '' && !completion.refusal)
    warnings.push(`${name}: the model returned an empty answer`);
  return warnings;
}

/** The run's input planned as a synchronous run plans it. */
export function planRun(job: Job, ctx: RunContext): Promise<InputPlan> {
  return planInputs(job.inputs, {
    cwd: ctx.deps.cwd,
    stdin: ctx.deps.stdin,
    signal: ctx.deps.interrupt,
    filesFrom: job.filesFrom,
    onSkip: (name, why) => ctx.reporter.debug(`skipped ${name}: ${why}`),
  });
}
