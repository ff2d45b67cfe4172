/**
 * Pure: the answer cache's key. It is the SHA-256 of everything that decides an answer and of
 * nothing else, serialised as RFC 8785 canonical JSON (sorted keys, one spelling per value), so
 * the order options were given in, the file's name and the output options never change it.
 *
 * What decides an answer: the images (each image's own bytes plus the settings that prepare
 * them, or the URL the server fetches), the prompt and system message as sent, the structured
 * spec, the model, the endpoint, `detail`, the token limit and the sampling options.
 */
import { createHash, hash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ImageDetail } from '../api/types.js';
import { SENDABLE_FORMATS } from '../input/sniff.js';

/**
 * Bump when image preparation (input/prepare.ts, input/tokens.ts' scaling, the JPEG quality,
 * metadata handling…) changes what is sent for the same file and settings: every entry made
 * from a prepared file then misses, and is asked again.
 */
export const PREPARATION_VERSION = 1;

/** Bump when the key's own layout changes (it invalidates every entry). */
export const KEY_FORMAT = 1;

/** The settings that turn a file's bytes into what is sent (see `PrepareOptions`). */
export interface PreparationIdentity {
  /** `PREPARATION_VERSION` when the key is made (a parameter so that a test can bump it). */
  version: number;
  detail: ImageDetail | undefined;
  /** `--max-size`. */
  maxSize: number | undefined;
  keepMetadata: boolean;
  original: boolean;
  /** The formats the provider takes as they are (order does not matter). */
  sendable: readonly string[];
  /**
   * The rule the model's images are scaled by, when it differs by model ('tiles' for
   * OpenAI's 512-px tiles today); undefined when there is one rule for all.
   */
  scaling?: string | undefined;
}

/** One image of a request: its bytes' hash and how they are prepared, or a URL passed through. */
export type ImageIdentity = { sha256: string; preparation: PreparationIdentity } | { url: string };

/** `--schema` or `--preset`: what is sent, and what the answer is checked against. */
export interface StructuredIdentity {
  /** `json_schema.name`. */
  name: string;
  schema: Record<string, unknown>;
  localSchema: Record<string, unknown>;
  /** The preset's name, when it is one. */
  preset: string | undefined;
}

/** Everything of a request that decides its answer, apart from the images. */
export interface RequestIdentity {
  /** The base URL the request goes to (reduced to its endpoint: see `endpointOf`). */
  baseUrl: string;
  model: string;
  /** The prompt as sent (a preset's prompt included). */
  prompt: string;
  system: string | undefined;
  structured: StructuredIdentity | undefined;
  detail: ImageDetail | undefined;
  maxTokens: number | undefined;
  maxCompletionTokens: number | undefined;
  temperature: number | undefined;
  /** Any other sampling option sent in the body (`top_p`, `seed`…), by its wire name. */
  sampling?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The run settings the key is made from, by the names `Job` (commands/job.ts) gives them. A
 * `Job` is one; its other fields (output, concurrency, file names…) never reach the key.
 */
export interface KeySettings {
  api: { baseUrl: string };
  prompt: string;
  system: string | undefined;
  structured:
    | {
        name: string;
        schema: Record<string, unknown>;
        localSchema: Record<string, unknown>;
        preset: { name: string } | undefined;
      }
    | undefined;
  detail: ImageDetail | undefined;
  maxTokens: number | undefined;
  maxCompletionTokens: number | undefined;
  temperature: number | undefined;
  maxSize: number | undefined;
  keepMetadata: boolean;
  original: boolean;
  provider: { sendable?: readonly string[] | undefined };
}

/** The request part of the key for a run, with its model resolved (`modelOf(job)`). */
export function requestIdentityOf(settings: KeySettings, model: string): RequestIdentity {
  const s = settings.structured;
  return {
    baseUrl: settings.api.baseUrl,
    model,
    prompt: settings.prompt,
    system: settings.system,
    structured: s && {
      name: s.name,
      schema: s.schema,
      localSchema: s.localSchema,
      preset: s.preset?.name,
    },
    detail: settings.detail,
    maxTokens: settings.maxTokens,
    maxCompletionTokens: settings.maxCompletionTokens,
    temperature: settings.temperature,
  };
}

/** How a run prepares its local images, for `{ sha256, preparation }`. */
export function preparationOf(settings: KeySettings): PreparationIdentity {
  return {
    version: PREPARATION_VERSION,
    detail: settings.detail,
    maxSize: settings.maxSize,
    keepMetadata: settings.keepMetadata,
    original: settings.original,
    sendable: settings.provider.sendable ?? SENDABLE_FORMATS,
  };
}

/** A function from a request's images to its key; undefined when the request has no key. */
export type Keyer = (images: readonly ImageIdentity[]) => string | undefined;

/** SHA-256 of an image's bytes, as lowercase hex. */
export function hashBytes(data: Uint8Array): string {
  // The one-shot form: a batch hashes every image, and a Hash object costs more than the hash.
  return hash('sha256', data, 'hex');
}

/**
 * The endpoint a base URL names: host (with a port other than the scheme's) and path, without
 * scheme, credentials, query or trailing slashes. The path is kept because one host can serve
 * several backends under different paths (a gateway's `/openai/v1` and `/groq/v1`, Azure's
 * `/openai/deployments/NAME`); http and https to the same host and path are one server.
 */
export function endpointOf(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return baseUrl.trim().replace(/\/+$/, '');
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.host.toLowerCase()}${path}`;
}

/**
 * Makes the key function for one kind of request. The request's part is serialised once, so a
 * batch pays only for its images' part per image. Undefined for a request that cannot be
 * serialised (a lone UTF-16 surrogate in a schema): such a request is never cached.
 */
export function createKeyer(request: RequestIdentity): Keyer | undefined {
  const head = serialise({
    format: KEY_FORMAT,
    endpoint: endpointOf(request.baseUrl),
    model: request.model,
    prompt: request.prompt,
    // buildChatRequest sends no system message for an empty one.
    system: request.system === '' ? undefined : request.system,
    structured: request.structured,
    detail: request.detail,
    max_tokens: request.maxTokens,
    max_completion_tokens: request.maxCompletionTokens,
    temperature: request.temperature,
    sampling: request.sampling,
  });
  if (head === undefined) return undefined;
  return (images) => {
    const tail = serialiseImages(images);
    return tail === undefined
      ? undefined
      : createHash('sha256').update(head).update('\n').update(tail).digest('hex');
  };
}

/** The key of one request: `createKeyer(request)?.(images)`. */
export function answerKey(
  request: RequestIdentity,
  images: readonly ImageIdentity[],
): string | undefined {
  return createKeyer(request)?.(images);
}

/**
 * `canonicalize(images.map(imagePart))`, built without serialising the same preparation settings
 * again for every image of a batch: an image's part is `{"preparation":…,"sha256":"…"}` (keys
 * in RFC 8785 order), and the preparation's canonical form is made once per settings object.
 */
function serialiseImages(images: readonly ImageIdentity[]): string | undefined {
  const parts: string[] = [];
  for (const image of images) {
    if ('url' in image) {
      const part = serialise({ url: image.url });
      if (part === undefined) return undefined;
      parts.push(part);
      continue;
    }
    let preparation = PREPARATION_JSON.get(image.preparation);
    if (preparation === undefined) {
      preparation = serialise(preparationPart(image.preparation));
      if (preparation === undefined) return undefined;
      PREPARATION_JSON.set(image.preparation, preparation);
    }
    const sha256 = serialise(image.sha256);
    if (sha256 === undefined) return undefined;
    parts.push(`{"preparation":${preparation},"sha256":${sha256}}`);
  }
  return `[${parts.join(',')}]`;
}

const PREPARATION_JSON = new WeakMap<PreparationIdentity, string>();

function preparationPart(p: PreparationIdentity): unknown {
  return {
    version: p.version,
    detail: p.detail,
    maxSize: p.maxSize,
    keepMetadata: p.keepMetadata,
    original: p.original,
    sendable: [...p.sendable].sort(),
    scaling: p.scaling,
  };
}

function serialise(value: unknown): string | undefined {
  try {
    return canonicalize(value);
  } catch {
    return undefined;
  }
}
