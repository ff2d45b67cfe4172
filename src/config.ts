/**
 * Pure settings resolution: flags, then the environment, then defaults. Each value keeps
 * where it came from, for `--debug` and error messages.
 */

export const DEFAULT_BASE_URL = 'https://api.maxtoken.io/v1';
export const DEFAULT_MODEL = 'gpt-4o-2024-08-06';
export const DEFAULT_PROMPT = 'What is in this image?';
export const DEFAULT_TIMEOUT_S = 120;
export const DEFAULT_RETRIES = 2;

/** Variables that may hold the API key, in order of precedence. */
export const KEY_VARIABLES = [
  'DESCRIBE_IMAGE_API_KEY',
  'MAXTOKEN_API_KEY',
  'OPENAI_API_KEY',
] as const;
/** Variables that may hold the base URL, in order of precedence. */
export const BASE_URL_VARIABLES = ['DESCRIBE_IMAGE_BASE_URL', 'OPENAI_BASE_URL'] as const;

export interface Sourced<T> {
  value: T;
  /** e.g. `--model`, `$DESCRIBE_IMAGE_MODEL`, `default`. */
  source: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The first of `names` that is set and not empty. */
export function fromEnv(env: Env, names: readonly string[]): Sourced<string> | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '')
      return { value: value.trim(), source: `$${name}` };
  }
  return undefined;
}

export interface ConnectionFlags {
  baseUrl?: string | undefined;
  model?: string | undefined;
  /** Contents of `--api-key-file`, already read. */
  apiKeyFromFile?: { value: string; path: string } | undefined;
}

export interface Connection {
  baseUrl: Sourced<string>;
  model: Sourced<string>;
  apiKey: Sourced<string> | undefined;
}

export function resolveConnection(flags: ConnectionFlags, env: Env): Connection {
  const baseUrl: Sourced<string> = (flags.baseUrl
    ? { value: flags.baseUrl, source: '--base-url' }
    : undefined) ??
    fromEnv(env, BASE_URL_VARIABLES) ?? { value: DEFAULT_BASE_URL, source: 'default' };
  const model: Sourced<string> = (flags.model
    ? { value: flags.model, source: '--model' }
    : undefined) ??
    fromEnv(env, ['DESCRIBE_IMAGE_MODEL']) ?? { value: DEFAULT_MODEL, source: 'default' };
  const apiKey: Sourced<string> | undefined = flags.apiKeyFromFile
    ? { value: flags.apiKeyFromFile.value, source: `--api-key-file ${flags.apiKeyFromFile.path}` }
    : fromEnv(env, KEY_VARIABLES);
  return { baseUrl, model, apiKey };
}

/** Whether a URL's host is this machine (no key needed, plain http is fine). */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    host === '0.0.0.0' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    // IPv4-mapped 127.x.x.x, as the URL parser writes it: [::ffff:7f00:1]
    /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host)
  );
}

/** Checks a base URL; returns the parsed URL or a message saying what is wrong. */
export function parseBaseUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `invalid base URL ${JSON.stringify(text)}: expected something like https://api.example.com/v1`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `invalid base URL ${JSON.stringify(text)}: only http and https are supported`;
  }
  if (url.username || url.password) {
    return 'the base URL must not contain a user name or password: pass the key with DESCRIBE_IMAGE_API_KEY or --api-key-file';
  }
  return url;
}

/** Removes any user:password from a URL before it is shown. */
export function displayUrl(url: URL): string {
  const copy = new URL(url.toString());
  copy.username = '';
  copy.password = '';
  return copy.toString().replace(/\/$/, '');
}
