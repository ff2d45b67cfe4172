/**
 * Pure: what each known OpenAI-compatible provider needs — base URL, where its key comes
 * from and how it is sent, a default model, and the quirks the rest of the tool adapts to.
 * Sources: each provider's documentation, and the recorded behaviour in test/fixtures.
 */
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
  /** Variables that may hold the key, after DESCRIBE_IMAGE_API_KEY, in order. */
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

export const PROVIDERS: Record<ProviderName, Provider> = {
  maxtoken: {
    name: 'maxtoken',
    label: 'maxtoken.io',
    baseUrl: 'https://api.maxtoken.io/v1',
    keyVariables: ['MAXTOKEN_API_KEY', 'OPENAI_API_KEY'],
    baseUrlVariables: ['OPENAI_BASE_URL'],
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
    keyVariables: ['OPENAI_API_KEY'],
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
    keyVariables: ['OPENROUTER_API_KEY'],
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
    keyVariables: ['AZURE_OPENAI_API_KEY'],
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
    keyVariables: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
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
    keyVariables: ['OLLAMA_API_KEY'],
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
    keyVariables: ['LMSTUDIO_API_KEY'],
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
    keyVariables: ['VLLM_API_KEY'],
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
    keyVariables: ['LLAMA_API_KEY'],
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

/**
 * Azure's base URL: a deployment URL is used as it is; a resource endpoint
 * (https://RESOURCE.openai.azure.com) gets `/openai/deployments/DEPLOYMENT` added.
 */
export function azureBaseUrl(endpoint: string, deployment: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  if (/\/openai\/(deployments\/[^/]+|v1)$/.test(trimmed)) return trimmed;
  return `${trimmed}/openai/deployments/${encodeURIComponent(deployment)}`;
}
