/**
 * What a run has to do, fully resolved by `cli.ts`, and the steps that the single-request
 * path (`describe.ts`) and the batch path (`batch.ts`) share: turning an image argument into
 * an `ImageSource`, building the payload, making the client.
 */
import { ApiClient, type Gate } from '../api/client.js';
import { buildChatRequest, type ChatRequestPayload, type ImageSource } from '../api/request.js';
import type { ImageDetail } from '../api/types.js';
import type { Deps } from '../deps.js';
import { DescribeImageError, InputError } from '../errors.js';
import { checkImageBytes, readImage, type ImageArg, type ImageBytes } from '../input/images.js';
import { prepareBytes, type PreparedBytes } from '../input/prepare.js';
import { MIME_BY_FORMAT } from '../input/sniff.js';
import { estimateImageTokens } from '../input/tokens.js';
import { formatImageReport } from '../render/image-report.js';
import type { Reporter } from '../ui/reporter.js';

declare const __VERSION__: string;
export const VERSION: string = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';

export interface Job {
  /** The image arguments as given (already split from the prompt). */
  inputs: string[];
  prompt: string;
  system: string | undefined;
  model: string;
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
  /** `--download`: fetch image URLs and send their bytes. */
  download: boolean;
  dryRun: boolean;
  api: {
    baseUrl: string;
    apiKey: string | undefined;
  };
}

/** Progress and interruption wiring shared by every command. */
export interface RunContext {
  deps: Deps;
  reporter: Reporter;
}

export function createClient(
  job: Job,
  ctx: RunContext,
  extra: { gate?: Gate; connections?: number; rateLimitRetries?: number } = {},
): ApiClient {
  const env = ctx.deps.env;
  const proxy = {
    http: env.HTTP_PROXY ?? env.http_proxy ?? '',
    https: env.HTTPS_PROXY ?? env.https_proxy ?? '',
    noProxy: env.NO_PROXY ?? env.no_proxy ?? '',
  };
  return new ApiClient({
    baseUrl: job.api.baseUrl,
    apiKey: job.api.apiKey,
    userAgent: `describe-image/${VERSION}`,
    timeoutMs: job.timeoutMs,
    maxRetries: job.retries,
    connections: extra.connections ?? Math.max(1, job.concurrency),
    proxy: proxy.http || proxy.https ? proxy : undefined,
    gate: extra.gate,
    rateLimitRetries: extra.rateLimitRetries,
    log: job.debug ? (line) => ctx.reporter.debug(line) : undefined,
  });
}

/** An image ready to go into a request. */
export interface PreparedImage {
  name: string;
  source: ImageSource;
  /** What preparation did (undefined for a URL passed through). */
  prepared: PreparedBytes | undefined;
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
  let bytes: ImageBytes;
  if (arg.kind === 'url') {
    if (!job.download || !client)
      return { name: arg.name, source: { url: arg.url }, prepared: undefined };
    const data = await client.download(arg.url, {
      signal: ctx.deps.interrupt,
      maxBytes: MAX_DOWNLOAD_BYTES,
    });
    const format = await checkImageBytes(arg.name, data, { path: new URL(arg.url).pathname });
    bytes = { name: arg.name, data, format, mime: MIME_BY_FORMAT[format] };
  } else {
    bytes = await readImage(arg, ctx.deps.cwd, ctx.deps.stdin);
  }
  const prepared = await prepareBytes(
    bytes,
    {
      detail: job.detail,
      maxSize: job.maxSize,
      keepMetadata: job.keepMetadata,
      original: job.original,
    },
    () => ctx.deps.now(),
  );
  for (const note of prepared.notes) ctx.reporter.notice(note);
  return { name: arg.name, source: { mime: prepared.mime, data: prepared.data }, prepared };
}

/** Most bytes of images in one request (OpenAI: 50 MB). */
export const MAX_REQUEST_IMAGE_BYTES = 50 * 1024 * 1024;

/** Several images in one request (--together) must stay under the per-request limit. */
export function checkRequestSize(images: readonly PreparedImage[]): void {
  const total = images.reduce((sum, i) => sum + ('data' in i.source ? i.source.data.length : 0), 0);
  if (total > MAX_REQUEST_IMAGE_BYTES) {
    throw new InputError(
      `the images total ${(total / 1048576).toFixed(1)} MB, over the 50 MB a request may carry; send them without --together, or with a smaller --max-size`,
    );
  }
}

/** The `--debug` / `--dry-run` line for one image. */
export function imageReport(job: Job, image: PreparedImage): string {
  const tokens = image.prepared
    ? estimateImageTokens(job.model, image.prepared.sent, job.detail)
    : undefined;
  return formatImageReport(image.name, image.prepared, tokens, job.detail);
}

export function buildPayload(
  job: Job,
  sources: readonly ImageSource[],
  includeUsage: boolean,
): ChatRequestPayload {
  return buildChatRequest({
    model: job.model,
    prompt: job.prompt,
    images: sources,
    system: job.system,
    detail: job.detail,
    maxTokens: job.maxTokens,
    maxCompletionTokens: job.maxCompletionTokens,
    temperature: job.temperature,
    stream: job.stream,
    includeUsage,
  });
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
