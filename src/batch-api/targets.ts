/**
 * Pure: where a provider's batch engine is and what it accepts. OpenAI, Azure OpenAI (v1
 * paths, no api-version), Groq and any server with OpenAI's `/files` and `/batches` are
 * driven alike; OpenRouter and Gemini cannot take local images in a batch and are refused
 * up front. Facts from shared/reference/batch-api.md §1, §2, §7.
 */
import { UsageError } from '../errors.js';
import type { Provider } from '../providers.js';
import type { ShardLimits } from './shards.js';

export interface BatchTarget {
  /** Base URL of `/files` and `/batches` (`…/v1`, Azure `…/openai/v1`). */
  baseUrl: string;
  /** Query parameters for those calls (none: the v1 paths take no api-version). */
  query: Record<string, string>;
  /** Every input line's `url`. */
  lineUrl: string;
  /** `endpoint` of `POST /batches`. */
  endpoint: string;
  limits: ShardLimits;
  /** Shortest wait between two polls of one batch. */
  minPollMs: number;
  /** What the limits are named after, for messages (`OpenAI`, `Azure OpenAI`, `Groq`). */
  label: string;
  /**
   * The batch price as a share of the synchronous price, for estimates: OpenAI and Azure 0.5
   * (reference §6, §7). Groq's docs disagree (one version says 25 % off); 0.5 is assumed.
   */
  priceFactor: number;
}

/** OpenAI: 200 MB and 50,000 requests per input file. */
export const OPENAI_LIMITS: ShardLimits = { maxBytes: 200_000_000, maxRequests: 50_000 };
/** Azure OpenAI global batch: 200 MB and 100,000 requests per file. */
export const AZURE_LIMITS: ShardLimits = { maxBytes: 200_000_000, maxRequests: 100_000 };
/** Groq: 100 MB per file (its request cap is OpenAI's). */
export const GROQ_LIMITS: ShardLimits = { maxBytes: 100_000_000, maxRequests: 50_000 };

const POLL_MS = 3_000;
/** Azure asks for at least 60 s between two status calls. */
const AZURE_POLL_MS = 60_000;

const CHAT = '/v1/chat/completions';

/**
 * The batch engine for `provider` at `baseUrl` (the chat base URL in use). Throws a
 * `UsageError` for a provider that cannot take this tool's batches.
 */
export function batchTarget(provider: Provider, baseUrl: string): BatchTarget {
  const base = baseUrl.replace(/\/+$/, '');
  switch (provider.name) {
    case 'openrouter':
      throw new UsageError(
        "OpenRouter's batches take only public image URLs, not local images: write the requests with --batch-file, or run without --batch-api",
      );
    case 'gemini':
      throw new UsageError(
        "Gemini's OpenAI-compatible API cannot upload batch files: write the requests with --batch-file, or run without --batch-api",
      );
    case 'azure':
      return {
        baseUrl: azureBatchBase(base),
        query: {},
        // The v1 guide's input lines carry /v1/chat/completions and its create call sends
        // /chat/completions (MicrosoftDocs/azure-ai-docs, includes/batch/batch-rest.md).
        lineUrl: CHAT,
        endpoint: '/chat/completions',
        limits: AZURE_LIMITS,
        minPollMs: AZURE_POLL_MS,
        label: 'Azure OpenAI',
        priceFactor: 0.5,
      };
    default: {
      const groq = isHost(base, 'api.groq.com');
      return {
        baseUrl: base,
        query: {},
        lineUrl: CHAT,
        endpoint: CHAT,
        limits: groq ? GROQ_LIMITS : OPENAI_LIMITS,
        minPollMs: POLL_MS,
        label: groq ? 'Groq' : provider.name === 'openai' ? 'OpenAI' : provider.label,
        priceFactor: 0.5,
      };
    }
  }
}

/**
 * `https://RES.openai.azure.com/openai/deployments/DEP` (or the bare resource, or `…/openai`,
 * or `…/openai/v1`) → `https://RES.openai.azure.com/openai/v1`.
 */
export function azureBatchBase(baseUrl: string): string {
  const url = new URL(baseUrl);
  const prefix = url.pathname.replace(/\/openai(\/.*)?$/, '').replace(/\/+$/, '');
  return `${url.origin}${prefix}/openai/v1`;
}

/** `limits` with the user's `--batch-max-bytes` / `--batch-max-requests` over them. */
export function withOverrides(
  limits: ShardLimits,
  overrides: { maxBytes?: number | undefined; maxRequests?: number | undefined },
): ShardLimits {
  return {
    maxBytes: overrides.maxBytes ?? limits.maxBytes,
    maxRequests: overrides.maxRequests ?? limits.maxRequests,
  };
}

function isHost(url: string, host: string): boolean {
  try {
    return new URL(url).hostname === host;
  } catch {
    return false;
  }
}
