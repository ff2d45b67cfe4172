/**
 * Where the key goes (resolveSettings with keyRefusal from providers.ts): a vendor's variable
 * only to that vendor, the tool's own sources to the configured base URL; OpenAI when its key
 * is the only one and nothing chose a provider; the message when no key may go; every secret
 * the run knows; Azure's deployment from a deployment URL.
 */
import { describe, expect, it } from 'vitest';
import {
  knownSecrets,
  missingKeyMessage,
  resolveSettings,
  SettingsError,
  type Env,
  type FileConfig,
  type SettingFlags,
} from '../src/config.js';

const MAXTOKEN = 'sk-maxtoken-0123456789';
const OPENAI = 'sk-openai-0123456789';
const NOT_MAXTOKEN = '$MAXTOKEN_API_KEY is only sent to api.maxtoken.io';
const NOT_OPENAI =
  '$OPENAI_API_KEY is only sent to api.openai.com or the base URL in $OPENAI_BASE_URL';

function resolve(flags: SettingFlags, env: Env, file?: FileConfig) {
  return resolveSettings(flags, env, file);
}

describe('a vendor’s key variable goes only to that vendor', () => {
  it('MAXTOKEN_API_KEY is not sent to a base URL elsewhere, loopback included', () => {
    for (const flags of [
      { baseUrl: 'https://proxy.example.com/v1' },
      { baseUrl: 'http://127.0.0.1:8000/v1' },
    ]) {
      const s = resolve(flags, { MAXTOKEN_API_KEY: MAXTOKEN });
      expect(s.apiKey, flags.baseUrl).toBeUndefined();
      expect(s.keysNotSent).toEqual([NOT_MAXTOKEN]);
    }
    const env = { DESCRIBE_IMAGE_BASE_URL: 'https://proxy.example.com/v1', MAXTOKEN_API_KEY: 'k1' };
    expect(resolve({}, env).apiKey).toBeUndefined();
    expect(resolve({}, { MAXTOKEN_API_KEY: MAXTOKEN }).apiKey).toEqual({
      value: MAXTOKEN,
      source: '$MAXTOKEN_API_KEY',
    });
  });

  it('a key withheld gives way to the next source that may go there', () => {
    const file: FileConfig = { baseUrl: 'https://proxy.example.com/v1', apiKey: 'sk-file-key' };
    const s = resolve({}, { MAXTOKEN_API_KEY: MAXTOKEN }, file);
    expect(s.apiKey).toEqual({ value: 'sk-file-key', source: 'config file' });
    expect(s.keysNotSent).toEqual([NOT_MAXTOKEN]);
  });

  it("the tool's own sources go to the configured base URL, wherever it is", () => {
    const baseUrl = 'https://proxy.example.com/v1';
    expect(resolve({ baseUrl }, { DESCRIBE_IMAGE_API_KEY: 'sk-di' }).apiKey?.value).toBe('sk-di');
    expect(
      resolve({ baseUrl, apiKeyFromFile: { value: 'sk-f', path: 'k.txt' } }, {}).apiKey?.value,
    ).toBe('sk-f');
    expect(resolve({ baseUrl }, {}, { apiKey: 'sk-cfg' }).apiKey?.value).toBe('sk-cfg');
    expect(
      resolve({}, { MY_KEY: 'sk-mine' }, { baseUrl, apiKeyEnv: 'MY_KEY' }).apiKey?.source,
    ).toBe('$MY_KEY');
    // apiKeyEnv may name a vendor's variable: the config file says where it goes.
    const named = resolve({}, { OPENAI_API_KEY: OPENAI }, { baseUrl, apiKeyEnv: 'OPENAI_API_KEY' });
    expect(named.apiKey).toEqual({ value: OPENAI, source: '$OPENAI_API_KEY' });
    expect(named.keysNotSent).toEqual([]);
  });

  it("a vendor's variable is used wherever the base URL is that vendor's", () => {
    expect(
      resolve({ baseUrl: 'https://api.openai.com/v1' }, { OPENAI_API_KEY: OPENAI }).apiKey,
    ).toEqual({ value: OPENAI, source: '$OPENAI_API_KEY' });
    expect(
      resolve({ baseUrl: 'https://openrouter.ai/api/v1' }, { OPENROUTER_API_KEY: 'sk-or-1' }).apiKey
        ?.value,
    ).toBe('sk-or-1');
  });

  it('a provider pointed elsewhere does not get its vendor variable', () => {
    const gemini = resolve(
      { provider: 'gemini', baseUrl: 'http://127.0.0.1:9/v1' },
      { GEMINI_API_KEY: 'g-key-123' },
    );
    expect(gemini.apiKey).toBeUndefined();
    expect(gemini.keysNotSent).toEqual([
      '$GEMINI_API_KEY is only sent to generativelanguage.googleapis.com',
    ]);
    const azure = resolve(
      { provider: 'azure', model: 'd', baseUrl: 'https://gateway.example.com' },
      { AZURE_OPENAI_API_KEY: 'az-key-123' },
    );
    expect(azure.apiKey).toBeUndefined();
  });

  it("Azure's key goes to the host of AZURE_OPENAI_ENDPOINT", () => {
    const s = resolve(
      { provider: 'azure', model: 'd' },
      { AZURE_OPENAI_ENDPOINT: 'https://gateway.example.com', AZURE_OPENAI_API_KEY: 'az-key' },
    );
    expect(s.apiKey).toEqual({ value: 'az-key', source: '$AZURE_OPENAI_API_KEY' });
  });

  it("a local server's variable goes to that provider's base URL, wherever it is", () => {
    const s = resolve(
      { provider: 'vllm', baseUrl: 'https://gpu-box.example.com/v1' },
      { VLLM_API_KEY: 'vllm-token' },
    );
    expect(s.apiKey).toEqual({ value: 'vllm-token', source: '$VLLM_API_KEY' });
    expect(resolve({ provider: 'ollama' }, { VLLM_API_KEY: 'vllm-token' }).keysNotSent).toEqual([
      '$VLLM_API_KEY is only sent with --provider vllm',
    ]);
  });
});

describe('only OPENAI_API_KEY, and no provider chosen: OpenAI', () => {
  it('uses OpenAI, its base URL and the key together, and says so once', () => {
    const s = resolve({}, { OPENAI_API_KEY: OPENAI });
    expect(s.provider).toEqual({
      value: 'openai',
      source: '$OPENAI_API_KEY, no maxtoken.io key',
    });
    expect(s.baseUrl).toEqual({ value: 'https://api.openai.com/v1', source: 'default for openai' });
    expect(s.apiKey).toEqual({ value: OPENAI, source: '$OPENAI_API_KEY' });
    expect(s.model).toEqual({ value: 'gpt-4o-2024-08-06', source: 'default for openai' });
    expect(s.notices).toEqual([
      'using OpenAI (https://api.openai.com/v1): $OPENAI_API_KEY is set and no maxtoken.io key is; ' +
        'to use maxtoken.io set MAXTOKEN_API_KEY or DESCRIBE_IMAGE_API_KEY, or choose a provider with --provider',
    ]);
  });

  it('with OPENAI_BASE_URL, there (shown without its secrets)', () => {
    const s = resolve(
      {},
      { OPENAI_API_KEY: OPENAI, OPENAI_BASE_URL: 'https://gw.example.com/v1?token=s3cr3t-t0k' },
    );
    expect(s.provider.value).toBe('openai');
    expect(s.baseUrl).toEqual({
      value: 'https://gw.example.com/v1?token=s3cr3t-t0k',
      source: '$OPENAI_BASE_URL',
    });
    expect(s.apiKey?.value).toBe(OPENAI);
    expect(s.notices).toHaveLength(1);
    expect(s.notices[0]).toContain('using OpenAI (https://gw.example.com/v1?token=***)');
    expect(s.notices[0]).not.toContain('s3cr3t');
  });

  it("the config file's settings without a provider apply to OpenAI", () => {
    const s = resolve({}, { OPENAI_API_KEY: OPENAI }, { model: 'gpt-4.1-mini', detail: 'low' });
    expect(s.provider.value).toBe('openai');
    expect(s.model).toEqual({ value: 'gpt-4.1-mini', source: 'config file' });
  });

  it.each<[string, SettingFlags, Env, FileConfig | undefined]>([
    ['MAXTOKEN_API_KEY is set', {}, { MAXTOKEN_API_KEY: MAXTOKEN }, undefined],
    ['DESCRIBE_IMAGE_API_KEY is set', {}, { DESCRIBE_IMAGE_API_KEY: 'sk-di' }, undefined],
    ['--api-key-file', { apiKeyFromFile: { value: 'sk-f', path: 'k' } }, {}, undefined],
    ['the config file has a key', {}, {}, { apiKey: 'sk-cfg' }],
    ['--provider maxtoken', { provider: 'maxtoken' }, {}, undefined],
    ['$DESCRIBE_IMAGE_PROVIDER', {}, { DESCRIBE_IMAGE_PROVIDER: 'maxtoken' }, undefined],
    ['the config file chooses maxtoken', {}, {}, { provider: 'maxtoken' }],
    ['--base-url', { baseUrl: 'https://proxy.example.com/v1' }, {}, undefined],
    [
      '$DESCRIBE_IMAGE_BASE_URL',
      {},
      { DESCRIBE_IMAGE_BASE_URL: 'https://p.example/v1' },
      undefined,
    ],
    ['the config file has a base URL', {}, {}, { baseUrl: 'https://p.example/v1' }],
  ])('not when %s', (_name, flags, env, file) => {
    const s = resolve(flags, { OPENAI_API_KEY: OPENAI, ...env }, file);
    expect(s.provider.value).toBe('maxtoken');
    expect(s.notices).toEqual([]);
    expect(s.apiKey?.value).not.toBe(OPENAI);
  });

  it('a base URL chosen elsewhere does not get the OpenAI key, and says why', () => {
    const s = resolve({ baseUrl: 'https://proxy.example.com/v1' }, { OPENAI_API_KEY: OPENAI });
    expect(s.apiKey).toBeUndefined();
    expect(s.keysNotSent).toEqual([NOT_OPENAI]);
  });
});

describe('missingKeyMessage', () => {
  it('says what to set and why the key that is there was not used', () => {
    const env = { MAXTOKEN_API_KEY: MAXTOKEN };
    const s = resolve({ baseUrl: 'https://proxy.example.com/v1' }, env);
    expect(missingKeyMessage(s, env)).toBe(
      'no API key for https://proxy.example.com/v1: set DESCRIBE_IMAGE_API_KEY, use --api-key-file, ' +
        'or store one with --save-key (a local server such as Ollama needs none); ' +
        NOT_MAXTOKEN,
    );
  });

  it("names the provider's variables that may go there first", () => {
    const env = { OPENAI_API_KEY: OPENAI };
    const s = resolve({ provider: 'openrouter' }, env);
    const message = missingKeyMessage(s, env);
    expect(message).toContain(
      'no API key for https://openrouter.ai/api/v1: set OPENROUTER_API_KEY or DESCRIBE_IMAGE_API_KEY,',
    );
    expect(message).toContain(NOT_OPENAI);
    const none = resolve({}, {});
    expect(missingKeyMessage(none, {})).toMatch(
      /^no API key for https:\/\/api\.maxtoken\.io\/v1: set MAXTOKEN_API_KEY or DESCRIBE_IMAGE_API_KEY,/,
    );
  });

  it('shows the base URL without its secrets', () => {
    const s = resolve({ baseUrl: 'https://proxy.example.com/v1?key=s3cr3t-k3y' }, {});
    const message = missingKeyMessage(s, {});
    expect(message).toContain('https://proxy.example.com/v1?key=***');
    expect(message).not.toContain('s3cr3t');
  });
});

describe('knownSecrets', () => {
  it('every key variable, the config file’s keys and apiKeyEnv variables, and URL secrets', () => {
    const env = {
      DESCRIBE_IMAGE_API_KEY: 'sk-describe',
      MAXTOKEN_API_KEY: ' sk-maxtoken\n',
      OPENAI_API_KEY: 'sk-openai',
      OPENROUTER_API_KEY: 'sk-or',
      AZURE_OPENAI_API_KEY: 'az-key',
      GEMINI_API_KEY: 'gem-key',
      GOOGLE_API_KEY: 'goog-key',
      OLLAMA_API_KEY: 'oll-key',
      LMSTUDIO_API_KEY: 'lms-key',
      VLLM_API_KEY: 'vllm-key',
      LLAMA_API_KEY: 'llama-key',
      TOP_KEY: 'top-env-key',
      WORK_KEY: 'work-env-key',
      OPENAI_BASE_URL: 'https://gw.example.com/v1?api-key=gw-secret',
      HOME: '/home/me',
      UNRELATED_API_KEY: 'not-ours',
    };
    const file: FileConfig = {
      apiKey: 'cfg-top-key',
      apiKeyEnv: 'TOP_KEY',
      baseUrl: 'https://file.example.com/v1?sig=file-sig',
      profiles: {
        work: { apiKey: 'cfg-work-key', apiKeyEnv: 'WORK_KEY' },
        other: { apiKey: 'cfg-other-key' },
      },
    };
    const s = resolve(
      { baseUrl: 'https://u:hunter22@proxy.example.com/v1?key=url-key' },
      env,
      file,
    );
    expect(knownSecrets(s, env, file).sort()).toEqual(
      [
        'sk-describe',
        'sk-maxtoken',
        'sk-openai',
        'sk-or',
        'az-key',
        'gem-key',
        'goog-key',
        'oll-key',
        'lms-key',
        'vllm-key',
        'llama-key',
        'top-env-key',
        'work-env-key',
        'cfg-top-key',
        'cfg-work-key',
        'cfg-other-key',
        // The password, not the user name: a user name is no secret (see urlSecrets()).
        'hunter22',
        'url-key',
        'gw-secret',
        'file-sig',
      ].sort(),
    );
  });

  it('the key in use, with nothing else set', () => {
    const s = resolve({ apiKeyFromFile: { value: 'sk-from-file', path: 'k' } }, {});
    expect(knownSecrets(s, {}, undefined)).toEqual(['sk-from-file']);
  });
});

describe('Azure: a deployment URL names the deployment', () => {
  const env = { AZURE_OPENAI_API_KEY: 'az-key' };

  it('no --model needed: the deployment in the URL is the model', () => {
    const s = resolve(
      { provider: 'azure', baseUrl: 'https://r.openai.azure.com/openai/deployments/dep1' },
      env,
    );
    expect(s.model).toEqual({ value: 'dep1', source: 'the deployment in --base-url' });
    expect(s.baseUrl.value).toBe('https://r.openai.azure.com/openai/deployments/dep1');
    expect(s.apiKey?.value).toBe('az-key');
    const fromEnv = resolve(
      { provider: 'azure' },
      { AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com/openai/deployments/dep2/' },
    );
    expect(fromEnv.model).toEqual({
      value: 'dep2',
      source: 'the deployment in $AZURE_OPENAI_ENDPOINT',
    });
  });

  it('--model still wins for the request body', () => {
    const s = resolve(
      {
        provider: 'azure',
        model: 'mine',
        baseUrl: 'https://r.openai.azure.com/openai/deployments/dep1',
      },
      env,
    );
    expect(s.model).toEqual({ value: 'mine', source: '--model' });
  });

  it('a resource endpoint without --model is still an error naming both ways', () => {
    expect(() =>
      resolve({ provider: 'azure', baseUrl: 'https://r.openai.azure.com' }, env),
    ).toThrow(SettingsError);
    expect(() =>
      resolve({ provider: 'azure', baseUrl: 'https://r.openai.azure.com' }, env),
    ).toThrow(/--model, or give the deployment URL/);
  });
});
