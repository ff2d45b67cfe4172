import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BASE_URL,
  DEFAULT_MODEL,
  fromEnv,
  isLoopback,
  parseBaseUrl,
  resolveSettings,
} from '../src/config.js';

describe('resolveSettings: API key', () => {
  const ALL_KEYS = {
    DESCRIBE_IMAGE_API_KEY: 'sk-describe',
    MAXTOKEN_API_KEY: 'sk-maxtoken',
    OPENAI_API_KEY: 'sk-openai',
  };

  it('--api-key-file beats every variable', () => {
    const c = resolveSettings(
      { apiKeyFromFile: { value: 'sk-file', path: '/run/secrets/key' } },
      ALL_KEYS,
    );
    expect(c.apiKey).toEqual({ value: 'sk-file', source: '--api-key-file /run/secrets/key' });
  });

  it('DESCRIBE_IMAGE_API_KEY beats MAXTOKEN_API_KEY and OPENAI_API_KEY', () => {
    expect(resolveSettings({}, ALL_KEYS).apiKey).toEqual({
      value: 'sk-describe',
      source: '$DESCRIBE_IMAGE_API_KEY',
    });
  });

  it('MAXTOKEN_API_KEY beats OPENAI_API_KEY', () => {
    const env = { MAXTOKEN_API_KEY: 'sk-maxtoken', OPENAI_API_KEY: 'sk-openai' };
    expect(resolveSettings({}, env).apiKey).toEqual({
      value: 'sk-maxtoken',
      source: '$MAXTOKEN_API_KEY',
    });
  });

  it('OPENAI_API_KEY is the last resort (and then OpenAI is used: test/config-keys.test.ts)', () => {
    expect(resolveSettings({}, { OPENAI_API_KEY: 'sk-openai' }).apiKey).toEqual({
      value: 'sk-openai',
      source: '$OPENAI_API_KEY',
    });
  });

  it('no key anywhere gives undefined', () => {
    expect(resolveSettings({}, {}).apiKey).toBeUndefined();
    expect(resolveSettings({}, { HOME: '/root', ANTHROPIC_API_KEY: 'x' }).apiKey).toBeUndefined();
  });

  it('empty and whitespace-only variables count as unset', () => {
    const env = {
      DESCRIBE_IMAGE_API_KEY: '',
      MAXTOKEN_API_KEY: '   \t',
      OPENAI_API_KEY: 'sk-openai',
    };
    expect(resolveSettings({}, env).apiKey).toEqual({
      value: 'sk-openai',
      source: '$OPENAI_API_KEY',
    });
    expect(
      resolveSettings({}, { DESCRIBE_IMAGE_API_KEY: ' ', OPENAI_API_KEY: '\n' }).apiKey,
    ).toBeUndefined();
  });

  it('a key with surrounding whitespace (a pasted newline) is trimmed', () => {
    expect(resolveSettings({}, { DESCRIBE_IMAGE_API_KEY: ' sk-abc\n' }).apiKey?.value).toBe(
      'sk-abc',
    );
  });
});

describe('resolveSettings: base URL', () => {
  it('--base-url beats the variables', () => {
    const c = resolveSettings(
      { baseUrl: 'http://localhost:11434/v1' },
      { DESCRIBE_IMAGE_BASE_URL: 'https://a.example/v1', OPENAI_BASE_URL: 'https://b.example/v1' },
    );
    expect(c.baseUrl).toEqual({ value: 'http://localhost:11434/v1', source: '--base-url' });
  });

  it('DESCRIBE_IMAGE_BASE_URL beats OPENAI_BASE_URL', () => {
    const c = resolveSettings(
      {},
      { DESCRIBE_IMAGE_BASE_URL: 'https://a.example/v1', OPENAI_BASE_URL: 'https://b.example/v1' },
    );
    expect(c.baseUrl).toEqual({
      value: 'https://a.example/v1',
      source: '$DESCRIBE_IMAGE_BASE_URL',
    });
  });

  it('OPENAI_BASE_URL is used by the openai provider when DESCRIBE_IMAGE_BASE_URL is unset or blank', () => {
    for (const env of [
      { OPENAI_BASE_URL: 'https://b.example/v1' },
      { DESCRIBE_IMAGE_BASE_URL: ' ', OPENAI_BASE_URL: 'https://b.example/v1' },
    ]) {
      expect(resolveSettings({ provider: 'openai' }, env).baseUrl).toEqual({
        value: 'https://b.example/v1',
        source: '$OPENAI_BASE_URL',
      });
    }
  });

  it('OPENAI_BASE_URL is not the default provider’s (maxtoken)', () => {
    expect(resolveSettings({}, { OPENAI_BASE_URL: 'https://b.example/v1' }).baseUrl).toEqual({
      value: 'https://api.maxtoken.io/v1',
      source: 'default',
    });
  });

  it('defaults to https://api.maxtoken.io/v1', () => {
    expect(DEFAULT_BASE_URL).toBe('https://api.maxtoken.io/v1');
    expect(resolveSettings({}, {}).baseUrl).toEqual({
      value: 'https://api.maxtoken.io/v1',
      source: 'default',
    });
    expect(
      resolveSettings({}, { DESCRIBE_IMAGE_BASE_URL: '', OPENAI_BASE_URL: '  ' }).baseUrl.source,
    ).toBe('default');
  });
});

describe('resolveSettings: model', () => {
  it('--model beats DESCRIBE_IMAGE_MODEL', () => {
    expect(resolveSettings({ model: 'llava' }, { DESCRIBE_IMAGE_MODEL: 'gpt-4.1' }).model).toEqual({
      value: 'llava',
      source: '--model',
    });
  });

  it('DESCRIBE_IMAGE_MODEL beats the default', () => {
    expect(resolveSettings({}, { DESCRIBE_IMAGE_MODEL: 'gpt-4.1' }).model).toEqual({
      value: 'gpt-4.1',
      source: '$DESCRIBE_IMAGE_MODEL',
    });
  });

  it('defaults to the default model; a blank variable counts as unset', () => {
    expect(resolveSettings({}, {}).model).toEqual({ value: DEFAULT_MODEL, source: 'default' });
    expect(resolveSettings({}, { DESCRIBE_IMAGE_MODEL: '  ' }).model).toEqual({
      value: DEFAULT_MODEL,
      source: 'default',
    });
  });

  it('each value reports its own source', () => {
    const c = resolveSettings(
      { model: 'm', provider: 'openai' },
      { OPENAI_BASE_URL: 'https://b.example/v1', OPENAI_API_KEY: 'k' },
    );
    expect([c.model?.source, c.baseUrl.source, c.apiKey?.source]).toEqual([
      '--model',
      '$OPENAI_BASE_URL',
      '$OPENAI_API_KEY',
    ]);
  });
});

describe('fromEnv', () => {
  it('returns the first set variable, trimmed, with its name', () => {
    expect(fromEnv({ B: ' two ', C: 'three' }, ['A', 'B', 'C'])).toEqual({
      value: 'two',
      source: '$B',
    });
    expect(fromEnv({}, ['A'])).toBeUndefined();
  });
});

describe('isLoopback', () => {
  it.each([
    'http://localhost:11434/v1',
    'http://LOCALHOST/v1',
    'http://127.0.0.1:8000/v1',
    'http://127.1.2.3/v1',
    'http://127.255.255.255/',
    'http://[::1]:8080/v1',
    'http://foo.localhost/v1',
    'http://api.dev.localhost:3000/',
    'http://127.1/',
  ])('%s is loopback', (url) => {
    expect(isLoopback(new URL(url))).toBe(true);
  });

  it('an IPv4-mapped IPv6 loopback address is loopback', () => {
    // The URL parser normalises [::ffff:127.0.0.1] to [::ffff:7f00:1].
    expect(isLoopback(new URL('http://[::ffff:127.0.0.1]:8000/v1'))).toBe(true);
  });

  it.each([
    'http://10.0.0.1/v1',
    'http://192.168.1.10:11434/v1',
    'https://example.com/v1',
    'http://128.0.0.1/',
    'http://126.0.0.1/',
    'http://localhost.example.com/',
    'http://127.0.0.1.nip.io/',
    'http://notlocalhost/',
    'http://[::2]/',
    'https://api.maxtoken.io/v1',
  ])('%s is not loopback', (url) => {
    expect(isLoopback(new URL(url))).toBe(false);
  });
});

describe('parseBaseUrl', () => {
  it('accepts http and https URLs', () => {
    for (const text of [
      'https://api.example.com/v1',
      'http://localhost:11434/v1',
      'http://127.0.0.1:8000',
    ]) {
      const url = parseBaseUrl(text);
      expect(url).toBeInstanceOf(URL);
      expect((url as URL).href.startsWith(text)).toBe(true);
    }
  });

  it('rejects other protocols', () => {
    for (const text of [
      'ftp://files.example.com/v1',
      'file:///etc/passwd',
      'ws://localhost:8080',
    ]) {
      const result = parseBaseUrl(text);
      expect(typeof result).toBe('string');
      expect(result as string).toMatch(/only http and https/);
      expect(result as string).toContain(text);
    }
  });

  it('rejects garbage', () => {
    for (const text of ['not a url', '', 'api.example.com/v1', '://x']) {
      const result = parseBaseUrl(text);
      expect(typeof result, JSON.stringify(text)).toBe('string');
      expect(result as string).toMatch(/invalid base URL/);
    }
  });

  it('rejects a user name or password, without repeating the secret', () => {
    for (const text of [
      'https://user:s3cr3t-p4ss@api.example.com/v1',
      'https://sk-s3cr3t-p4ss@api.example.com/v1',
    ]) {
      const result = parseBaseUrl(text);
      expect(typeof result).toBe('string');
      expect(result as string).toMatch(/user name or password/);
      expect(result as string).not.toContain('s3cr3t-p4ss');
    }
  });
});
