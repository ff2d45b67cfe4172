/**
 * The `cache` setting (src/config.ts): a boolean in the config file's top level and in a
 * profile, validated, with `--no-cache` over both and a profile over the top level.
 */
import { describe, expect, it } from 'vitest';
import { resolveSettings, SettingsError, validateConfig } from '../../src/config.js';

describe('the cache setting', () => {
  it('is unset when nothing sets it (the cache is on by default)', () => {
    expect(resolveSettings({}, {}, {}).cache).toBeUndefined();
    expect(resolveSettings({}, {}).cache).toBeUndefined();
  });

  it('comes from the top level, a profile over it, and --no-cache over both', () => {
    const file = validateConfig(
      { cache: false, profiles: { fresh: { cache: false }, cached: { cache: true }, none: {} } },
      'config.json',
    ).config;
    expect(resolveSettings({}, {}, file).cache).toEqual({ value: false, source: 'config file' });
    expect(resolveSettings({ profile: 'cached' }, {}, file).cache).toEqual({
      value: true,
      source: 'profile cached',
    });
    expect(resolveSettings({ profile: 'none' }, {}, file).cache).toEqual({
      value: false,
      source: 'config file',
    });
    expect(resolveSettings({ profile: 'fresh' }, {}, { cache: true, ...file }).cache).toEqual({
      value: false,
      source: 'profile fresh',
    });
    expect(resolveSettings({ cache: false, profile: 'cached' }, {}, file).cache).toEqual({
      value: false,
      source: '--no-cache',
    });
  });

  it('belongs to no provider: a profile with another provider still reads the top level', () => {
    const file = validateConfig(
      { cache: false, profiles: { local: { provider: 'ollama' } } },
      'config.json',
    ).config;
    expect(resolveSettings({ profile: 'local' }, {}, file).cache?.value).toBe(false);
  });

  it.each([['no'], [0], [null], ['false']])('rejects "cache": %j', (value) => {
    expect(() => validateConfig({ cache: value }, 'config.json')).toThrow(SettingsError);
    expect(() => validateConfig({ cache: value }, 'config.json')).toThrow(
      'config.json: "cache" must be true or false',
    );
    expect(() => validateConfig({ profiles: { p: { cache: value } } }, 'config.json')).toThrow(
      'config.json: profile "p": "cache" must be true or false',
    );
  });

  it('is a known key: no "not a setting" warning', () => {
    expect(validateConfig({ cache: true }, 'config.json').warnings).toEqual([]);
  });
});
