/**
 * Pure settings resolution. Precedence: flags, then the environment, then the chosen profile,
 * then the config file's top level, then the provider's defaults. Each value keeps where it
 * came from, for `--print-config`, `--debug` and error messages.
 *
 * A config layer's connection settings (base URL, key, model, API version) belong to its
 * provider: they are not carried over to another provider, so a key never follows a
 * `--provider` switch to a different host. A key variable named after a vendor goes only to
 * that vendor (`keyRefusal()` in providers.ts decides); the tool's own key sources go to the
 * configured base URL.
 */
import type { ImageDetail } from './api/types.js';
import { displayUrl, urlSecrets } from './output/guard.js';
import {
  azureBaseUrl,
  azureDeployment,
  isProviderName,
  KEY_VARIABLES,
  keyRefusal,
  PROVIDER_NAMES,
  PROVIDERS,
  type Provider,
  type ProviderName,
} from './providers.js';

export const DEFAULT_PROVIDER: ProviderName = 'maxtoken';
export const DEFAULT_BASE_URL = PROVIDERS.maxtoken.baseUrl;
export const DEFAULT_MODEL = PROVIDERS.maxtoken.defaultModel ?? 'gpt-4o-2024-08-06';
export const DEFAULT_PROMPT = 'What is in this image?';
export const DEFAULT_TIMEOUT_S = 120;
export const DEFAULT_RETRIES = 2;

export interface Sourced<T> {
  value: T;
  /** e.g. `--model`, `$DESCRIBE_IMAGE_MODEL`, `profile work`, `config file`, `default`. */
  source: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Price of a model in USD per million tokens. */
export interface Price {
  input: number;
  output: number;
}

/** The settings a config file (top level or a profile) may hold. */
export interface FileSettings {
  provider?: ProviderName;
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  apiKeyEnv?: string;
  apiVersion?: string;
  detail?: ImageDetail;
  maxTokens?: number;
  prices?: Record<string, Price>;
  /** The answer cache; `false` asks afresh every time. */
  cache?: boolean;
}

export interface FileConfig extends FileSettings {
  profiles?: Record<string, FileSettings>;
}

/** The first of `names` that is set and not empty. */
export function fromEnv(env: Env, names: readonly string[]): Sourced<string> | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '')
      return { value: value.trim(), source: `$${name}` };
  }
  return undefined;
}

export interface SettingFlags {
  provider?: string | undefined;
  profile?: string | undefined;
  baseUrl?: string | undefined;
  model?: string | undefined;
  /** Contents of `--api-key-file`, already read. */
  apiKeyFromFile?: { value: string; path: string } | undefined;
  apiVersion?: string | undefined;
  detail?: ImageDetail | undefined;
  maxTokens?: number | undefined;
  /** `false` for `--no-cache`; undefined when the flag was not given. */
  cache?: boolean | undefined;
}

export interface Settings {
  provider: Sourced<ProviderName>;
  profile: Sourced<string> | undefined;
  baseUrl: Sourced<string>;
  /** Undefined: ask the server which model it serves. */
  model: Sourced<string> | undefined;
  apiKey: Sourced<string> | undefined;
  /**
   * Why key variables that are set are not sent to this base URL, one clause each:
   * `$MAXTOKEN_API_KEY is only sent to api.maxtoken.io`.
   */
  keysNotSent: string[];
  /** Azure's `api-version`. */
  apiVersion: Sourced<string> | undefined;
  detail: Sourced<ImageDetail> | undefined;
  maxTokens: Sourced<number> | undefined;
  /** Config prices over the built-in ones (profile over top level). */
  prices: Record<string, Price>;
  /** Lines to say once on stderr (the provider chosen for the user, say). */
  notices: string[];
  /** Whether the answer cache is used; undefined: not set anywhere (it is on by default). */
  cache: Sourced<boolean> | undefined;
}

/** Thrown for settings that cannot work; cli.ts turns it into a usage error. */
export class SettingsError extends Error {}

interface Layer {
  settings: FileSettings;
  /** The provider this layer's connection settings belong to. */
  provider: ProviderName;
  source: string;
}

function flag<T>(value: T | undefined, name: string): Sourced<T> | undefined {
  return value === undefined || value === '' ? undefined : { value, source: name };
}

function first<T>(...candidates: (Sourced<T> | undefined)[]): Sourced<T> | undefined {
  return candidates.find((c) => c !== undefined);
}

/**
 * The settings in effect, each with where it came from. Pure; throws SettingsError for
 * settings that cannot work.
 *
 * When nothing chose the provider or the base URL, no key for maxtoken.io is there and
 * `OPENAI_API_KEY` is, the user is an OpenAI user: OpenAI is used (its base URL, or
 * `OPENAI_BASE_URL`, with that key), and a notice says so.
 */
export function resolveSettings(flags: SettingFlags, env: Env, file?: FileConfig): Settings {
  const settings = resolveFor(flags, env, file, DEFAULT_PROVIDER);
  const openaiKey = fromEnv(env, ['OPENAI_API_KEY']);
  if (
    settings.provider.source !== 'default' ||
    settings.baseUrl.source !== 'default' ||
    settings.apiKey ||
    !openaiKey
  ) {
    return settings;
  }
  const openai = resolveFor(flags, env, file, 'openai', `${openaiKey.source}, no maxtoken.io key`);
  openai.notices.push(
    `using OpenAI (${displayUrl(openai.baseUrl.value)}): $OPENAI_API_KEY is set and no maxtoken.io key is; ` +
      'to use maxtoken.io set MAXTOKEN_API_KEY or DESCRIBE_IMAGE_API_KEY, or choose a provider with --provider',
  );
  return openai;
}

/** The settings with `fallback` as the provider when nothing chooses one. */
function resolveFor(
  flags: SettingFlags,
  env: Env,
  file: FileConfig | undefined,
  fallback: ProviderName,
  fallbackSource = 'default',
): Settings {
  const profile = first(flag(flags.profile, '--profile'), fromEnv(env, ['DESCRIBE_IMAGE_PROFILE']));
  let profileSettings: FileSettings | undefined;
  if (profile) {
    const profiles = file?.profiles ?? {};
    profileSettings = Object.hasOwn(profiles, profile.value) ? profiles[profile.value] : undefined;
    if (!profileSettings) {
      const known = Object.keys(file?.profiles ?? {});
      throw new SettingsError(
        `no profile "${profile.value}" in the config file (from ${profile.source}); ` +
          (known.length > 0 ? `known profiles: ${known.join(', ')}` : 'it defines no profiles'),
      );
    }
  }

  const top: Layer | undefined = file
    ? { settings: file, provider: file.provider ?? fallback, source: 'config file' }
    : undefined;
  const prof: Layer | undefined =
    profileSettings && profile
      ? {
          settings: profileSettings,
          provider: profileSettings.provider ?? top?.provider ?? fallback,
          source: `profile ${profile.value}`,
        }
      : undefined;
  const layers = [prof, top].filter((l): l is Layer => l !== undefined);

  const providerText = first<string>(
    flag(flags.provider, '--provider'),
    fromEnv(env, ['DESCRIBE_IMAGE_PROVIDER']),
    ...layers.map((l) => flag(l.settings.provider, l.source)),
  );
  if (providerText && !isProviderName(providerText.value)) {
    throw new SettingsError(
      `unknown provider "${providerText.value}" (from ${providerText.source}); known: ${PROVIDER_NAMES.join(', ')}`,
    );
  }
  const provider: Sourced<ProviderName> = providerText
    ? { value: providerText.value as ProviderName, source: providerText.source }
    : { value: fallback, source: fallbackSource };
  const p: Provider = PROVIDERS[provider.value];

  // Layers whose connection settings belong to the provider in use.
  const own = layers.filter((l) => l.provider === p.name);
  const fromLayers = <K extends keyof FileSettings>(
    key: K,
    all = own,
  ): Sourced<NonNullable<FileSettings[K]>> | undefined =>
    first(
      ...all.map(
        (l) =>
          flag(l.settings[key] ?? undefined, l.source) as
            Sourced<NonNullable<FileSettings[K]>> | undefined,
      ),
    );

  let model =
    first(
      flag(flags.model, '--model'),
      fromEnv(env, ['DESCRIBE_IMAGE_MODEL']),
      fromLayers('model'),
    ) ??
    (p.defaultModel
      ? {
          value: p.defaultModel,
          source: provider.source === 'default' ? 'default' : `default for ${p.name}`,
        }
      : undefined);

  let baseUrl = first(
    flag(flags.baseUrl, '--base-url'),
    fromEnv(env, ['DESCRIBE_IMAGE_BASE_URL', ...p.baseUrlVariables]),
    fromLayers('baseUrl'),
  );
  if (!baseUrl) {
    if (!p.baseUrl) {
      throw new SettingsError(
        `${p.label} needs its endpoint: set AZURE_OPENAI_ENDPOINT (https://RESOURCE.openai.azure.com) or --base-url`,
      );
    }
    baseUrl = {
      value: p.baseUrl,
      source: provider.source === 'default' ? 'default' : `default for ${p.name}`,
    };
  }
  if (p.name === 'azure') {
    // A deployment URL names the deployment: that is the model.
    const deployment = azureDeployment(baseUrl.value);
    if (!model && deployment !== undefined)
      model = { value: deployment, source: `the deployment in ${baseUrl.source}` };
    if (!model) {
      throw new SettingsError(
        'Azure OpenAI needs the deployment name: give it with --model, or give the deployment URL (…/openai/deployments/NAME) as --base-url',
      );
    }
    baseUrl = { value: azureBaseUrl(baseUrl.value, model.value), source: baseUrl.source };
  }

  // The key: the tool's own sources go to the configured base URL; a vendor's variable only
  // where keyRefusal() lets it (the provider's own variables first, then the others').
  const keyEnv = fromLayers('apiKeyEnv');
  const variables = [
    ...p.keyVariables,
    ...KEY_VARIABLES.map((k) => k.name).filter((name) => !p.keyVariables.includes(name)),
  ].filter((name) => name !== keyEnv?.value);
  const candidates: { key: Sourced<string> | undefined; variable?: string }[] = [
    {
      key: flags.apiKeyFromFile && {
        value: flags.apiKeyFromFile.value,
        source: `--api-key-file ${flags.apiKeyFromFile.path}`,
      },
    },
    { key: fromEnv(env, ['DESCRIBE_IMAGE_API_KEY']) },
    { key: keyEnv ? fromEnv(env, [keyEnv.value]) : undefined },
    ...variables.map((variable) => ({ key: fromEnv(env, [variable]), variable })),
    { key: fromLayers('apiKey') },
  ];
  let apiKey: Sourced<string> | undefined;
  const keysNotSent: string[] = [];
  for (const { key, variable } of candidates) {
    if (!key) continue;
    const refusal =
      variable === undefined ? undefined : keyRefusal(variable, baseUrl.value, p.name, env);
    if (refusal) keysNotSent.push(refusal);
    else apiKey ??= key;
  }

  const apiVersion = p.apiVersion
    ? (first(
        flag(flags.apiVersion, '--api-version'),
        fromEnv(env, p.apiVersion.variables),
        fromLayers('apiVersion'),
      ) ?? {
        value: p.apiVersion.default,
        source: 'default',
      })
    : undefined;

  // Request defaults apply whatever the provider.
  const detail = first(flag(flags.detail, '--detail'), fromLayers('detail', layers));
  const maxTokens = first(flag(flags.maxTokens, '--max-tokens'), fromLayers('maxTokens', layers));
  const prices: Record<string, Price> = { ...top?.settings.prices, ...prof?.settings.prices };
  const cache = first(
    flag(flags.cache, flags.cache ? '--cache' : '--no-cache'),
    fromLayers('cache', layers),
  );

  return {
    provider,
    profile,
    baseUrl,
    model,
    apiKey,
    keysNotSent,
    apiVersion,
    detail,
    maxTokens,
    prices,
    notices: [],
    cache,
  };
}

/**
 * The one line for a run that needs a key and has none that may go to its base URL: what to
 * set, and why each key variable that is set was not used.
 */
export function missingKeyMessage(settings: Settings, env: Env): string {
  const p = PROVIDERS[settings.provider.value];
  const base = settings.baseUrl.value;
  const usable = p.keyVariables.filter((v) => keyRefusal(v, base, p.name, env) === undefined);
  const set = [...usable, 'DESCRIBE_IMAGE_API_KEY'].join(' or ');
  const why = settings.keysNotSent.length > 0 ? `; ${settings.keysNotSent.join('; ')}` : '';
  return (
    `no API key for ${displayUrl(base)}: set ${set}, use --api-key-file, or store one with --save-key ` +
    `(a local server such as Ollama needs none)${why}`
  );
}

/**
 * Every secret the run knows, for the run's Redactor: the key in use, the value of every key
 * variable any provider knows (DESCRIBE_IMAGE_API_KEY and the variables the config file names
 * in `apiKeyEnv` too), the config file's keys (top level and every profile), and the secrets
 * inside the base URL and every base URL the environment or the file holds.
 */
export function knownSecrets(settings: Settings, env: Env, file: FileConfig | undefined): string[] {
  const layers: FileSettings[] = file ? [file, ...Object.values(file.profiles ?? {})] : [];
  const keyVariables = [
    'DESCRIBE_IMAGE_API_KEY',
    ...KEY_VARIABLES.map((k) => k.name),
    ...layers.flatMap((l) => (l.apiKeyEnv ? [l.apiKeyEnv] : [])),
  ];
  const urlVariables = [
    'DESCRIBE_IMAGE_BASE_URL',
    ...PROVIDER_NAMES.flatMap((name) => PROVIDERS[name].baseUrlVariables),
  ];
  const urls = [
    settings.baseUrl.value,
    ...urlVariables.map((v) => env[v]),
    ...layers.map((l) => l.baseUrl),
  ];
  const values = [
    settings.apiKey?.value,
    ...keyVariables.map((v) => env[v]),
    ...layers.map((l) => l.apiKey),
    ...urls.flatMap((url) => urlSecrets(url)),
  ];
  const secrets = values.map((v) => v?.trim() ?? '').filter((v) => v !== '');
  return [...new Set(secrets)];
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

/** A key shown as its last four characters only. */
export function redactKey(key: string): string {
  return key.length <= 8 ? '…' : `…${key.slice(-4)}`;
}

const SETTING_KEYS = new Set([
  'provider',
  'baseUrl',
  'model',
  'apiKey',
  'apiKeyEnv',
  'apiVersion',
  'detail',
  'maxTokens',
  'prices',
  'cache',
]);

/**
 * Checks a parsed config file's shape. Returns the config and warnings (unknown keys);
 * throws SettingsError naming the first bad value.
 */
export function validateConfig(
  value: unknown,
  where: string,
): { config: FileConfig; warnings: string[] } {
  const warnings: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SettingsError(`${where}: expected a JSON object`);
  }
  const config = checkSettings(value as Record<string, unknown>, where, warnings, true);
  return { config, warnings };
}

function checkSettings(
  record: Record<string, unknown>,
  where: string,
  warnings: string[],
  top: boolean,
): FileSettings & { profiles?: Record<string, FileSettings> } {
  const out: FileConfig = {};
  for (const [key, value] of Object.entries(record)) {
    const at = `${where}: "${key}"`;
    if (key === 'profiles' && top) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SettingsError(`${at} must be an object of profiles`);
      }
      out.profiles = {};
      for (const [name, profile] of Object.entries(value as Record<string, unknown>)) {
        if (typeof profile !== 'object' || profile === null || Array.isArray(profile)) {
          throw new SettingsError(`${where}: profile "${name}" must be an object`);
        }
        out.profiles[name] = checkSettings(
          profile as Record<string, unknown>,
          `${where}: profile "${name}"`,
          warnings,
          false,
        );
      }
      continue;
    }
    if (!SETTING_KEYS.has(key)) {
      if (key !== '$schema' && key !== '$comment')
        warnings.push(`${at} is not a setting this tool knows; ignored`);
      continue;
    }
    switch (key) {
      case 'provider':
        if (typeof value !== 'string' || !isProviderName(value)) {
          throw new SettingsError(`${at} must be one of ${PROVIDER_NAMES.join(', ')}`);
        }
        out.provider = value;
        break;
      case 'detail':
        if (value !== 'auto' && value !== 'low' && value !== 'high')
          throw new SettingsError(`${at} must be auto, low or high`);
        out.detail = value;
        break;
      case 'maxTokens':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
          throw new SettingsError(`${at} must be a whole number of at least 1`);
        }
        out.maxTokens = value;
        break;
      case 'prices':
        out.prices = checkPrices(value, at);
        break;
      case 'cache':
        if (typeof value !== 'boolean') throw new SettingsError(`${at} must be true or false`);
        out.cache = value;
        break;
      default:
        if (typeof value !== 'string' || value.trim() === '')
          throw new SettingsError(`${at} must be a non-empty string`);
        (out as Record<string, string>)[key] = value.trim();
    }
  }
  return out;
}

function checkPrices(value: unknown, at: string): Record<string, Price> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SettingsError(
      `${at} must map model names to {"input": USD, "output": USD} per million tokens`,
    );
  }
  const out: Record<string, Price> = {};
  for (const [model, price] of Object.entries(value as Record<string, unknown>)) {
    const p = price as { input?: unknown; output?: unknown } | null;
    if (
      typeof p?.input !== 'number' ||
      typeof p.output !== 'number' ||
      p.input < 0 ||
      p.output < 0
    ) {
      throw new SettingsError(
        `${at}: "${model}" must be {"input": USD, "output": USD} per million tokens`,
      );
    }
    out[model] = { input: p.input, output: p.output };
  }
  return out;
}
