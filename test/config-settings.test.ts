/**
 * resolveSettings with a config file and providers (flags, then the environment, then the
 * profile, then the top level, then the provider's defaults; a layer's connection settings
 * stay with its provider), and validateConfig. The environment-only cases are in
 * test/config.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  resolveSettings,
  SettingsError,
  validateConfig,
  type FileConfig,
  type SettingFlags,
} from '../src/config.js';

const FILE: FileConfig = {
  model: 'top-model',
  baseUrl: 'https://top.example.com/v1',
  apiKey: 'sk-top-level-key',
  detail: 'low',
  maxTokens: 100,
  profiles: {
    work: {
      model: 'profile-model',
      baseUrl: 'https://profile.example.com/v1',
      apiKey: 'sk-profile-key',
      detail: 'high',
      maxTokens: 200,
    },
    empty: {},
  },
};

function resolve(flags: SettingFlags, env: Record<string, string> = {}, file = FILE) {
  return resolveSettings(flags, env, file);
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('precedence: flag, environment, profile, top level, default', () => {
  it('model', () => {
    const env = { DESCRIBE_IMAGE_MODEL: 'env-model' };
    expect(resolve({ model: 'flag-model', profile: 'work' }, env).model).toEqual({
      value: 'flag-model',
      source: '--model',
    });
    expect(resolve({ profile: 'work' }, env).model).toEqual({
      value: 'env-model',
      source: '$DESCRIBE_IMAGE_MODEL',
    });
    expect(resolve({ profile: 'work' }).model).toEqual({
      value: 'profile-model',
      source: 'profile work',
    });
    expect(resolve({ profile: 'empty' }).model).toEqual({
      value: 'top-model',
      source: 'config file',
    });
    expect(resolve({}, {}, {}).model).toEqual({ value: 'gpt-4o-2024-08-06', source: 'default' });
  });

  it('base URL, with the provider variables between DESCRIBE_IMAGE_BASE_URL and the file', () => {
    const env = {
      DESCRIBE_IMAGE_BASE_URL: 'https://env.example.com/v1',
      OPENAI_BASE_URL: 'https://openai-env.example.com/v1',
    };
    expect(
      resolve({ baseUrl: 'https://flag.example.com/v1', profile: 'work' }, env).baseUrl,
    ).toEqual({ value: 'https://flag.example.com/v1', source: '--base-url' });
    expect(resolve({ profile: 'work' }, env).baseUrl.source).toBe('$DESCRIBE_IMAGE_BASE_URL');
    // OPENAI_BASE_URL belongs to the openai provider: maxtoken (this file's) does not read it.
    expect(
      resolve({ profile: 'work' }, { OPENAI_BASE_URL: 'https://o.example.com' }).baseUrl,
    ).toEqual({ value: 'https://profile.example.com/v1', source: 'profile work' });
    const openaiFile: FileConfig = { provider: 'openai', baseUrl: 'https://file.example.com/v1' };
    expect(
      resolveSettings({}, { OPENAI_BASE_URL: 'https://o.example.com' }, openaiFile).baseUrl,
    ).toEqual({ value: 'https://o.example.com', source: '$OPENAI_BASE_URL' });
    expect(resolve({ profile: 'work' }).baseUrl).toEqual({
      value: 'https://profile.example.com/v1',
      source: 'profile work',
    });
    expect(resolve({ profile: 'empty' }).baseUrl.source).toBe('config file');
    expect(resolve({}, {}, {}).baseUrl).toEqual({
      value: 'https://api.maxtoken.io/v1',
      source: 'default',
    });
  });

  it('API key: file, DESCRIBE_IMAGE_API_KEY, apiKeyEnv, provider variables, profile, top level', () => {
    const file: FileConfig = {
      apiKey: 'sk-top',
      profiles: { work: { apiKey: 'sk-profile', apiKeyEnv: 'WORK_KEY' } },
    };
    const env = {
      DESCRIBE_IMAGE_API_KEY: 'sk-describe',
      WORK_KEY: 'sk-work-env',
      MAXTOKEN_API_KEY: 'sk-maxtoken',
      OPENAI_API_KEY: 'sk-openai',
    };
    const key = (flags: SettingFlags, e: Record<string, string>) =>
      resolveSettings(flags, e, file).apiKey;
    const fromFile = { apiKeyFromFile: { value: 'sk-file', path: 'key.txt' }, profile: 'work' };
    expect(key(fromFile, env)).toEqual({ value: 'sk-file', source: '--api-key-file key.txt' });
    expect(key({ profile: 'work' }, env)).toEqual({
      value: 'sk-describe',
      source: '$DESCRIBE_IMAGE_API_KEY',
    });
    const { DESCRIBE_IMAGE_API_KEY: _a, ...noDescribe } = env;
    expect(key({ profile: 'work' }, noDescribe)).toEqual({
      value: 'sk-work-env',
      source: '$WORK_KEY',
    });
    const { WORK_KEY: _b, ...noWork } = noDescribe;
    expect(key({ profile: 'work' }, noWork)).toEqual({
      value: 'sk-maxtoken',
      source: '$MAXTOKEN_API_KEY',
    });
    expect(key({ profile: 'work' }, {})).toEqual({ value: 'sk-profile', source: 'profile work' });
    expect(key({}, {})).toEqual({ value: 'sk-top', source: 'config file' });
    expect(resolveSettings({}, {}, {}).apiKey).toBeUndefined();
  });

  it('apiKeyEnv naming an unset or blank variable falls through to the next source', () => {
    const file: FileConfig = { apiKey: 'sk-top', apiKeyEnv: 'MISSING_KEY' };
    expect(resolveSettings({}, {}, file).apiKey?.value).toBe('sk-top');
    expect(resolveSettings({}, { MISSING_KEY: '  ' }, file).apiKey?.value).toBe('sk-top');
    expect(resolveSettings({}, { MISSING_KEY: ' sk-x \n' }, file).apiKey).toEqual({
      value: 'sk-x',
      source: '$MISSING_KEY',
    });
  });

  it('detail and maxTokens: flag, profile, top level, none', () => {
    expect(resolve({ detail: 'auto', maxTokens: 50, profile: 'work' })).toMatchObject({
      detail: { value: 'auto', source: '--detail' },
      maxTokens: { value: 50, source: '--max-tokens' },
    });
    expect(resolve({ profile: 'work' })).toMatchObject({
      detail: { value: 'high', source: 'profile work' },
      maxTokens: { value: 200, source: 'profile work' },
    });
    expect(resolve({ profile: 'empty' })).toMatchObject({
      detail: { value: 'low', source: 'config file' },
      maxTokens: { value: 100, source: 'config file' },
    });
    const none = resolve({}, {}, {});
    expect(none.detail).toBeUndefined();
    expect(none.maxTokens).toBeUndefined();
  });

  it('provider: flag, DESCRIBE_IMAGE_PROVIDER, profile, top level, default', () => {
    const file: FileConfig = {
      provider: 'openai',
      profiles: { local: { provider: 'ollama' } },
    };
    const env = { DESCRIBE_IMAGE_PROVIDER: 'vllm' };
    const provider = (flags: SettingFlags, e: Record<string, string> = {}) =>
      resolveSettings(flags, e, file).provider;
    expect(provider({ provider: 'gemini', profile: 'local' }, env)).toEqual({
      value: 'gemini',
      source: '--provider',
    });
    expect(provider({ profile: 'local' }, env)).toEqual({
      value: 'vllm',
      source: '$DESCRIBE_IMAGE_PROVIDER',
    });
    expect(provider({ profile: 'local' })).toEqual({ value: 'ollama', source: 'profile local' });
    expect(provider({})).toEqual({ value: 'openai', source: 'config file' });
    expect(resolveSettings({}, {}).provider).toEqual({ value: 'maxtoken', source: 'default' });
  });

  it('an unknown provider is an error naming where it came from and the known ones', () => {
    const e1 = thrown(() => resolveSettings({ provider: 'anthropic' }, {}));
    expect(e1).toBeInstanceOf(SettingsError);
    expect(e1.message).toContain('"anthropic"');
    expect(e1.message).toContain('--provider');
    expect(e1.message).toContain('openrouter');
    const e2 = thrown(() => resolveSettings({}, { DESCRIBE_IMAGE_PROVIDER: 'bogus' }));
    expect(e2.message).toContain('$DESCRIBE_IMAGE_PROVIDER');
  });

  it('prices: a profile adds to and overrides the top level', () => {
    const file: FileConfig = {
      prices: { a: { input: 1, output: 1 }, b: { input: 2, output: 2 } },
      profiles: { p: { prices: { b: { input: 3, output: 3 }, c: { input: 4, output: 4 } } } },
    };
    expect(resolveSettings({ profile: 'p' }, {}, file).prices).toEqual({
      a: { input: 1, output: 1 },
      b: { input: 3, output: 3 },
      c: { input: 4, output: 4 },
    });
    expect(resolveSettings({}, {}, file).prices).toEqual(file.prices);
    expect(resolveSettings({}, {}).prices).toEqual({});
  });
});

describe('profiles', () => {
  it('DESCRIBE_IMAGE_PROFILE selects one; --profile beats it', () => {
    expect(resolve({}, { DESCRIBE_IMAGE_PROFILE: 'work' }).profile).toEqual({
      value: 'work',
      source: '$DESCRIBE_IMAGE_PROFILE',
    });
    expect(resolve({}, { DESCRIBE_IMAGE_PROFILE: 'work' }).model?.value).toBe('profile-model');
    expect(resolve({ profile: 'empty' }, { DESCRIBE_IMAGE_PROFILE: 'work' }).profile).toEqual({
      value: 'empty',
      source: '--profile',
    });
    expect(resolve({}).profile).toBeUndefined();
  });

  it('an unknown profile is an error listing the known ones', () => {
    const error = thrown(() => resolve({ profile: 'nope' }));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain('"nope"');
    expect(error.message).toContain('known profiles: work, empty');
    const fromEnv = thrown(() => resolve({}, { DESCRIBE_IMAGE_PROFILE: 'nope' }));
    expect(fromEnv.message).toContain('$DESCRIBE_IMAGE_PROFILE');
  });

  it('a profile asked for without a config file, or one without profiles, is an error', () => {
    expect(thrown(() => resolveSettings({ profile: 'x' }, {})).message).toContain(
      'it defines no profiles',
    );
    expect(thrown(() => resolveSettings({ profile: 'x' }, {}, { model: 'm' })).message).toContain(
      'it defines no profiles',
    );
  });

  it('a profile name from Object.prototype is not a profile', () => {
    expect(() => resolve({ profile: 'constructor' })).toThrow(SettingsError);
    expect(() => resolve({ profile: 'toString' })).toThrow(SettingsError);
  });

  it('a profile with the same provider (or none) inherits the top level', () => {
    const file: FileConfig = {
      provider: 'openrouter',
      apiKey: 'sk-or-top',
      model: 'google/gemini-2.0-flash-001',
      profiles: { cheap: { model: 'openai/gpt-4o-mini' }, same: { provider: 'openrouter' } },
    };
    const cheap = resolveSettings({ profile: 'cheap' }, {}, file);
    expect(cheap.provider.value).toBe('openrouter');
    expect(cheap.apiKey).toEqual({ value: 'sk-or-top', source: 'config file' });
    expect(cheap.model).toEqual({ value: 'openai/gpt-4o-mini', source: 'profile cheap' });
    const same = resolveSettings({ profile: 'same' }, {}, file);
    expect(same.model?.value).toBe('google/gemini-2.0-flash-001');
    expect(same.apiKey?.value).toBe('sk-or-top');
  });

  it("a profile with another provider does not inherit the top level's connection settings", () => {
    const file: FileConfig = {
      baseUrl: 'https://top.example.com/v1',
      apiKey: 'sk-top-secret',
      apiKeyEnv: 'TOP_KEY',
      model: 'top-model',
      detail: 'low',
      maxTokens: 77,
      profiles: { local: { provider: 'ollama' } },
    };
    const s = resolveSettings({ profile: 'local' }, { TOP_KEY: 'sk-from-top-env' }, file);
    expect(s.provider).toEqual({ value: 'ollama', source: 'profile local' });
    expect(s.baseUrl).toEqual({ value: 'http://localhost:11434/v1', source: 'default for ollama' });
    expect(s.apiKey).toBeUndefined();
    expect(s.model).toBeUndefined();
    // Request defaults are not connection settings: they apply whatever the provider.
    expect(s.detail).toEqual({ value: 'low', source: 'config file' });
    expect(s.maxTokens).toEqual({ value: 77, source: 'config file' });
  });

  it('a profile for another provider does not inherit the top level apiVersion either', () => {
    const file: FileConfig = {
      provider: 'openai',
      apiVersion: '2023-05-15',
      profiles: {
        az: { provider: 'azure', baseUrl: 'https://c.openai.azure.com', model: 'dep' },
      },
    };
    expect(resolveSettings({ profile: 'az' }, {}, file).apiVersion).toEqual({
      value: '2024-10-21',
      source: 'default',
    });
  });
});

describe('switching provider', () => {
  it('--provider leaves the top level of a file written for another provider behind', () => {
    const file: FileConfig = {
      baseUrl: 'https://api.maxtoken.io/v1',
      apiKey: 'sk-maxtoken-in-file',
      model: 'gpt-4o-2024-08-06',
    };
    const s = resolveSettings({ provider: 'openrouter' }, {}, file);
    expect(s.baseUrl).toEqual({
      value: 'https://openrouter.ai/api/v1',
      source: 'default for openrouter',
    });
    expect(s.apiKey).toBeUndefined();
    expect(s.model).toEqual({
      value: 'openai/gpt-4o-2024-08-06',
      source: 'default for openrouter',
    });
  });

  it('the default provider’s variables are never used for another provider', () => {
    const env = {
      MAXTOKEN_API_KEY: 'sk-maxtoken',
      OPENAI_API_KEY: 'sk-openai',
      OPENAI_BASE_URL: 'https://proxy.example.com/v1',
    };
    for (const provider of ['openrouter', 'gemini', 'ollama', 'vllm', 'llamacpp', 'lmstudio']) {
      const s = resolveSettings({ provider }, env);
      expect(s.apiKey, provider).toBeUndefined();
      expect(s.baseUrl.value, provider).not.toBe('https://proxy.example.com/v1');
    }
    const openai = resolveSettings({ provider: 'openai' }, env);
    expect(openai.apiKey).toEqual({ value: 'sk-openai', source: '$OPENAI_API_KEY' });
    expect(openai.baseUrl.source).toBe('$OPENAI_BASE_URL');
  });

  it("each provider's own key variables, in order; DESCRIBE_IMAGE_API_KEY for all", () => {
    expect(
      resolveSettings({ provider: 'gemini' }, { GOOGLE_API_KEY: 'g2', GEMINI_API_KEY: 'g1' })
        .apiKey,
    ).toEqual({ value: 'g1', source: '$GEMINI_API_KEY' });
    expect(resolveSettings({ provider: 'gemini' }, { GOOGLE_API_KEY: 'g2' }).apiKey?.value).toBe(
      'g2',
    );
    expect(
      resolveSettings({ provider: 'openrouter' }, { OPENROUTER_API_KEY: 'or' }).apiKey?.source,
    ).toBe('$OPENROUTER_API_KEY');
    expect(
      resolveSettings(
        { provider: 'openrouter' },
        { OPENROUTER_API_KEY: 'or', DESCRIBE_IMAGE_API_KEY: 'di' },
      ).apiKey?.value,
    ).toBe('di');
    expect(resolveSettings({}, { OPENROUTER_API_KEY: 'or' }).apiKey).toBeUndefined();
  });

  it('local providers ask the server for the model unless one is set', () => {
    for (const provider of ['ollama', 'vllm', 'llamacpp', 'lmstudio']) {
      expect(resolveSettings({ provider }, {}).model, provider).toBeUndefined();
      expect(resolveSettings({ provider, model: 'm' }, {}).model?.value).toBe('m');
    }
  });

  it('no api-version outside Azure', () => {
    expect(resolveSettings({ provider: 'openai', apiVersion: '2024-10-21' }, {}).apiVersion).toBe(
      undefined,
    );
  });
});

describe('Azure', () => {
  const env = { AZURE_OPENAI_ENDPOINT: 'https://contoso.openai.azure.com/' };

  it('builds the deployment URL from the endpoint and --model', () => {
    const s = resolveSettings({ provider: 'azure', model: 'gpt-4o-prod' }, env);
    expect(s.baseUrl).toEqual({
      value: 'https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod',
      source: '$AZURE_OPENAI_ENDPOINT',
    });
    expect(s.apiVersion).toEqual({ value: '2024-10-21', source: 'default' });
  });

  it('uses a deployment URL given as --base-url as it is', () => {
    const s = resolveSettings(
      {
        provider: 'azure',
        model: 'ignored',
        baseUrl: 'https://x.openai.azure.com/openai/deployments/real',
      },
      env,
    );
    expect(s.baseUrl.value).toBe('https://x.openai.azure.com/openai/deployments/real');
  });

  it('api-version: flag, AZURE_OPENAI_API_VERSION, OPENAI_API_VERSION, file, default', () => {
    const file: FileConfig = { provider: 'azure', apiVersion: '2024-06-01' };
    const version = (flags: SettingFlags, e: Record<string, string>) =>
      resolveSettings({ model: 'd', ...flags }, { ...env, ...e }, file).apiVersion;
    const all = { AZURE_OPENAI_API_VERSION: '2025-01-01', OPENAI_API_VERSION: '2024-02-01' };
    expect(version({ apiVersion: '2025-04-01-preview' }, all)).toEqual({
      value: '2025-04-01-preview',
      source: '--api-version',
    });
    expect(version({}, all)).toEqual({ value: '2025-01-01', source: '$AZURE_OPENAI_API_VERSION' });
    expect(version({}, { OPENAI_API_VERSION: '2024-02-01' })).toEqual({
      value: '2024-02-01',
      source: '$OPENAI_API_VERSION',
    });
    expect(version({}, {})).toEqual({ value: '2024-06-01', source: 'config file' });
  });

  it('the key comes from AZURE_OPENAI_API_KEY, never OPENAI_API_KEY', () => {
    const s = resolveSettings(
      { provider: 'azure', model: 'd' },
      { ...env, OPENAI_API_KEY: 'sk-openai', AZURE_OPENAI_API_KEY: 'az-key' },
    );
    expect(s.apiKey).toEqual({ value: 'az-key', source: '$AZURE_OPENAI_API_KEY' });
    expect(
      resolveSettings({ provider: 'azure', model: 'd' }, { ...env, OPENAI_API_KEY: 'sk-openai' })
        .apiKey,
    ).toBeUndefined();
  });

  it('without an endpoint: an error naming AZURE_OPENAI_ENDPOINT', () => {
    const error = thrown(() => resolveSettings({ provider: 'azure', model: 'd' }, {}));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain('AZURE_OPENAI_ENDPOINT');
  });

  it('without a deployment: an error asking for --model', () => {
    const error = thrown(() => resolveSettings({ provider: 'azure' }, env));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain('--model');
  });

  it('the endpoint and deployment may come from a profile', () => {
    const file: FileConfig = {
      profiles: {
        prod: {
          provider: 'azure',
          baseUrl: 'https://contoso.openai.azure.com',
          model: 'gpt-4o-prod',
          apiKey: 'az-profile-key',
        },
      },
    };
    const s = resolveSettings({ profile: 'prod' }, {}, file);
    expect(s.baseUrl).toEqual({
      value: 'https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod',
      source: 'profile prod',
    });
    expect(s.apiKey?.value).toBe('az-profile-key');
  });
});

describe('validateConfig', () => {
  it('accepts every documented key, trimming strings', () => {
    const { config, warnings } = validateConfig(
      {
        provider: 'openrouter',
        baseUrl: ' https://openrouter.ai/api/v1 ',
        model: 'x/y',
        apiKey: 'sk-or\n',
        apiKeyEnv: 'MY_KEY',
        apiVersion: '2024-10-21',
        detail: 'auto',
        maxTokens: 1,
        prices: { 'x/y': { input: 0, output: 0.5 } },
        profiles: { a: { detail: 'low' } },
      },
      'cfg.json',
    );
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      provider: 'openrouter',
      baseUrl: 'https://openrouter.ai/api/v1',
      model: 'x/y',
      apiKey: 'sk-or',
      apiKeyEnv: 'MY_KEY',
      apiVersion: '2024-10-21',
      detail: 'auto',
      maxTokens: 1,
      prices: { 'x/y': { input: 0, output: 0.5 } },
      profiles: { a: { detail: 'low' } },
    });
  });

  it.each([null, [], 'text', 42, true])('%j at the root is an error', (value) => {
    const error = thrown(() => validateConfig(value, 'cfg.json'));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toBe('cfg.json: expected a JSON object');
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['provider not known', { provider: 'anthropic' }, '"provider"'],
    ['provider not a string', { provider: 1 }, '"provider"'],
    ['detail ultra', { detail: 'ultra' }, '"detail"'],
    ['maxTokens 0', { maxTokens: 0 }, '"maxTokens"'],
    ['maxTokens 1.5', { maxTokens: 1.5 }, '"maxTokens"'],
    ['maxTokens as a string', { maxTokens: '300' }, '"maxTokens"'],
    ['model empty', { model: '  ' }, '"model"'],
    ['model a number', { model: 4 }, '"model"'],
    ['apiKey null', { apiKey: null }, '"apiKey"'],
    ['baseUrl an object', { baseUrl: {} }, '"baseUrl"'],
    ['prices an array', { prices: [] }, '"prices"'],
    ['a price missing output', { prices: { m: { input: 1 } } }, '"m"'],
    ['a negative price', { prices: { m: { input: -1, output: 1 } } }, '"m"'],
    ['a price as a string', { prices: { m: { input: '1', output: 1 } } }, '"m"'],
    ['profiles an array', { profiles: [] }, '"profiles"'],
    ['a profile that is a string', { profiles: { p: 'x' } }, 'profile "p"'],
    ['a bad value inside a profile', { profiles: { p: { detail: 'x' } } }, 'profile "p"'],
  ];
  it.each(bad)('%s is an error naming the file and the key', (_name, value, names) => {
    const error = thrown(() => validateConfig(value, '/home/me/cfg.json'));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain('/home/me/cfg.json');
    expect(error.message).toContain(names);
  });

  it('unknown keys are warnings naming them; $schema and $comment are fine', () => {
    const { config, warnings } = validateConfig(
      {
        $schema: 'x',
        $comment: 'y',
        modle: 'typo',
        profiles: { p: { api_key: 'z', profiles: {} } },
      },
      'cfg.json',
    );
    expect(config).toEqual({ profiles: { p: {} } });
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain('"modle"');
    expect(warnings.join('\n')).toContain('profile "p": "api_key"');
    // Profiles do not nest.
    expect(warnings.join('\n')).toContain('profile "p": "profiles"');
    for (const w of warnings) expect(w).toContain('cfg.json');
  });

  it('a validated config resolves as expected', () => {
    const { config } = validateConfig(
      { model: 'm1', profiles: { p: { model: 'm2' } } },
      'cfg.json',
    );
    expect(resolveSettings({ profile: 'p' }, {}, config).model?.value).toBe('m2');
  });
});
