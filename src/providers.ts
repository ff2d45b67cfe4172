/**
 * Pure: what each known OpenAI-compatible provider needs — base URL, where its key comes
 * from and how it is sent, a default model, and the quirks the rest of the tool adapts to —
 * and where each vendor's key variable may be sent (`KEY_VARIABLES`, `keyRefusal()`).
 * Sources: each provider's documentation, and the recorded behaviour in test/fixtures.
 */
import type { Env } from './config.js';
import type { ImageFormat } from './input/sniff.js';

export type ProviderName =
  | 'maxtoken'
  | 'openai'
  | 'openrouter'
  | 'azure'
  | 'gemini'
  | 'ollama'
  | 'lmstudio'
  | 'vllm'
  | 'llamacpp';

export interface Provider {
  name: ProviderName;
  label: string;
  /** Default base URL (Azure builds it from the resource endpoint and the deployment). */
  baseUrl: string;
  /** Variables that may hold the key, after DESCRIBE_IMAGE_API_KEY, in order (from KEY_VARIABLES). */
  keyVariables: readonly string[];
  /** Variables that may hold the base URL, after DESCRIBE_IMAGE_BASE_URL. */
  baseUrlVariables: readonly string[];
  /** `bearer`: `Authorization: Bearer KEY`; `api-key`: Azure's `api-key: KEY` header. */
  keyHeader: 'bearer' | 'api-key';
  /** A key is needed even on loopback (false for local servers). */
  needsKey: boolean;
  /** Model when none is given; undefined: ask the server (GET /models). */
  defaultModel: string | undefined;
  /** Formats sent as they are (others are converted); Ollama takes no GIF. */
  sendable?: readonly ImageFormat[];
  /** The server cannot fetch image URLs: download them unless --no-download. */
  downloadUrls?: boolean;
  /** Send `stream_options` (vLLM only with stream; Gemini rejects unknown fields). */
  streamOptions: boolean;
  /** Send `image_url.detail`. */
  detail: boolean;
  /** Azure: the `api-version` query parameter. */
  apiVersion?: { default: string; variables: readonly string[] };
}

/** Azure OpenAI's current GA data-plane API version. */
export const AZURE_API_VERSION = '2024-10-21';

/**
 * A key variable named after a vendor, and where its value may be sent. The tool's own
 * sources (`DESCRIBE_IMAGE_API_KEY`, `--api-key-file`, the config file's `apiKey` and
 * `apiKeyEnv`) are not here: they go to the configured base URL, wherever it is.
 */
export interface KeyVariable {
  name: string;
  /** The provider it belongs to (its key, in this order, after DESCRIBE_IMAGE_API_KEY). */
  provider: ProviderName;
  /**
   * Hosts the key may be sent to, with any provider: `api.openai.com`, or `*.openai.azure.com`
   * for any host under that domain. Empty: a local server's key, sent to that provider's
   * configured base URL, wherever it points, and to nothing else.
   */
  hosts: readonly string[];
  /**
   * One more place, named by a variable, as the vendor's own SDKs allow: `url`, the base URL
   * in use is exactly the variable's URL (OPENAI_BASE_URL); `host`, it is on the variable's
   * host (AZURE_OPENAI_ENDPOINT).
   */
  also?: { variable: string; match: 'url' | 'host' };
}

export const KEY_VARIABLES: readonly KeyVariable[] = [
  { name: 'MAXTOKEN_API_KEY', provider: 'maxtoken', hosts: ['api.maxtoken.io'] },
  {
    name: 'OPENAI_API_KEY',
    provider: 'openai',
    hosts: ['api.openai.com'],
    also: { variable: 'OPENAI_BASE_URL', match: 'url' },
  },
  { name: 'OPENROUTER_API_KEY', provider: 'openrouter', hosts: ['openrouter.ai'] },
  {
    name: 'AZURE_OPENAI_API_KEY',
    provider: 'azure',
    hosts: ['*.openai.azure.com', '*.cognitiveservices.azure.com', '*.services.ai.azure.com'],
    also: { variable: 'AZURE_OPENAI_ENDPOINT', match: 'host' },
  },
  { name: 'GEMINI_API_KEY', provider: 'gemini', hosts: ['generativelanguage.googleapis.com'] },
  { name: 'GOOGLE_API_KEY', provider: 'gemini', hosts: ['generativelanguage.googleapis.com'] },
  { name: 'OLLAMA_API_KEY', provider: 'ollama', hosts: [] },
  { name: 'LMSTUDIO_API_KEY', provider: 'lmstudio', hosts: [] },
  { name: 'VLLM_API_KEY', provider: 'vllm', hosts: [] },
  { name: 'LLAMA_API_KEY', provider: 'llamacpp', hosts: [] },
];

function keyVariablesOf(provider: ProviderName): string[] {
  return KEY_VARIABLES.filter((k) => k.provider === provider).map((k) => k.name);
}

export const PROVIDERS: Record<ProviderName, Provider> = {
  maxtoken: {
    name: 'maxtoken',
    label: 'maxtoken.io',
    baseUrl: 'https://api.maxtoken.io/v1',
    keyVariables: keyVariablesOf('maxtoken'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: true,
    defaultModel: 'gpt-4o-2024-08-06',
    streamOptions: true,
    detail: true,
  },
  openai: {
    name: 'openai',
    label: 'OpenAI',
    baseUrl: 'https://api.openai.com/v1',
    keyVariables: keyVariablesOf('openai'),
    baseUrlVariables: ['OPENAI_BASE_URL'],
    keyHeader: 'bearer',
    needsKey: true,
    defaultModel: 'gpt-4o-2024-08-06',
    streamOptions: true,
    detail: true,
  },
  openrouter: {
    name: 'openrouter',
    label: 'OpenRouter',
    baseUrl: 'https://openrouter.ai/api/v1',
    keyVariables: keyVariablesOf('openrouter'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: true,
    defaultModel: 'openai/gpt-4o-2024-08-06',
    streamOptions: true,
    detail: true,
  },
  azure: {
    name: 'azure',
    label: 'Azure OpenAI',
    // https://RESOURCE.openai.azure.com, from AZURE_OPENAI_ENDPOINT; see azureBaseUrl().
    baseUrl: '',
    keyVariables: keyVariablesOf('azure'),
    baseUrlVariables: ['AZURE_OPENAI_ENDPOINT'],
    keyHeader: 'api-key',
    needsKey: true,
    defaultModel: undefined,
    streamOptions: true,
    detail: true,
    apiVersion: {
      default: AZURE_API_VERSION,
      variables: ['AZURE_OPENAI_API_VERSION', 'OPENAI_API_VERSION'],
    },
  },
  gemini: {
    name: 'gemini',
    label: 'Google Gemini (OpenAI-compatible endpoint)',
    baseUrl: 'https://generativelanguage.googleapis.com/v1beta/openai',
    keyVariables: keyVariablesOf('gemini'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: true,
    defaultModel: 'gemini-2.0-flash',
    // It rejects fields it does not know: send only the core ones.
    streamOptions: false,
    detail: false,
  },
  ollama: {
    name: 'ollama',
    label: 'Ollama',
    baseUrl: 'http://localhost:11434/v1',
    keyVariables: keyVariablesOf('ollama'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: false,
    defaultModel: undefined,
    // "image URLs are not currently supported"; data URLs only as JPEG, PNG or WebP.
    sendable: ['jpeg', 'png', 'webp'],
    downloadUrls: true,
    streamOptions: true,
    detail: true,
  },
  lmstudio: {
    name: 'lmstudio',
    label: 'LM Studio',
    baseUrl: 'http://localhost:1234/v1',
    keyVariables: keyVariablesOf('lmstudio'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: false,
    defaultModel: undefined,
    downloadUrls: true,
    streamOptions: true,
    detail: true,
  },
  vllm: {
    name: 'vllm',
    label: 'vLLM',
    baseUrl: 'http://localhost:8000/v1',
    keyVariables: keyVariablesOf('vllm'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: false,
    defaultModel: undefined,
    streamOptions: true,
    detail: true,
  },
  llamacpp: {
    name: 'llamacpp',
    label: "llama.cpp's server",
    baseUrl: 'http://localhost:8080/v1',
    keyVariables: keyVariablesOf('llamacpp'),
    baseUrlVariables: [],
    keyHeader: 'bearer',
    needsKey: false,
    defaultModel: undefined,
    downloadUrls: true,
    streamOptions: true,
    detail: true,
  },
};

export const PROVIDER_NAMES = Object.keys(PROVIDERS) as ProviderName[];

export function isProviderName(name: string): name is ProviderName {
  return (PROVIDER_NAMES as string[]).includes(name);
}

// A deployment URL (…/openai/deployments/NAME) or the v1 API URL (…/openai/v1), trimmed.
const AZURE_URL = /\/openai\/(?:deployments\/([^/?#]+)|v1)$/;

/**
 * Azure's base URL: a deployment URL is used as it is; a resource endpoint
 * (https://RESOURCE.openai.azure.com) gets `/openai/deployments/DEPLOYMENT` added.
 */
export function azureBaseUrl(endpoint: string, deployment: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  if (AZURE_URL.test(trimmed)) return trimmed;
  return `${trimmed}/openai/deployments/${encodeURIComponent(deployment)}`;
}

/** The deployment a deployment URL (…/openai/deployments/NAME) names, else undefined. */
export function azureDeployment(url: string): string | undefined {
  const name = AZURE_URL.exec(url.replace(/\/+$/, ''))?.[1];
  if (name === undefined) return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

function parseUrl(text: string | undefined): URL | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  try {
    return new URL(text.trim());
  } catch {
    return undefined;
  }
}

function hostMatches(pattern: string, hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern;
}

/** A base URL compared as the SDKs would use it: no trailing slash, default port dropped. */
function sameBaseUrl(a: URL, b: URL): boolean {
  const key = (u: URL): string =>
    `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}${u.search}`;
  return key(a) === key(b);
}

function mayGo(rule: KeyVariable, url: URL, env: Env): boolean {
  if (rule.hosts.some((pattern) => hostMatches(pattern, url.hostname))) return true;
  const also = rule.also && parseUrl(env[rule.also.variable]);
  if (!rule.also || !also) return false;
  return rule.also.match === 'url' ? sameBaseUrl(url, also) : url.host === also.host;
}

/** "a", "a or b", "a, b or c". */
function orList(items: readonly string[]): string {
  return items.length <= 1
    ? items.join('')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1] ?? ''}`;
}

/** Where a key variable may go, in words: `api.openai.com or the base URL in $OPENAI_BASE_URL`. */
function keyScope(rule: KeyVariable): string {
  const also = rule.also
    ? [`the ${rule.also.match === 'url' ? 'base URL' : 'host'} in $${rule.also.variable}`]
    : [];
  return orList([...rule.hosts, ...also]);
}

/**
 * The one rule of where a key goes: whether the value of the key variable `name` may be sent
 * to `baseUrl` when `provider` is in use. Undefined: it may (a name not in KEY_VARIABLES, such
 * as DESCRIBE_IMAGE_API_KEY, always may). Otherwise why not, as a clause fit for a message:
 * `$MAXTOKEN_API_KEY is only sent to api.maxtoken.io`.
 */
export function keyRefusal(
  name: string,
  baseUrl: string,
  provider: ProviderName,
  env: Env,
): string | undefined {
  const rule = KEY_VARIABLES.find((k) => k.name === name);
  if (!rule) return undefined;
  if (rule.hosts.length === 0) {
    return rule.provider === provider
      ? undefined
      : `$${name} is only sent with --provider ${rule.provider}`;
  }
  const url = parseUrl(baseUrl);
  if (url && mayGo(rule, url, env)) return undefined;
  return `$${name} is only sent to ${keyScope(rule)}`;
}
