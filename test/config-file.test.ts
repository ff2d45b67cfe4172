/**
 * The config file on disk: where it is, reading it (with its warnings), and storing a key in
 * it (mode 0600, atomically, keeping everything else). Real files in a temp directory.
 */
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SettingsError } from '../src/config.js';
import { configPath, loadConfig, saveKey } from '../src/config-file.js';
import { tempDir } from './helpers/images.js';

const KEY = 'sk-test-config-file-0123456789-WXYZ';

let root: string;
let n = 0;
/** A fresh directory for one test. */
async function fresh(): Promise<string> {
  const dir = path.join(root, `t${++n}`);
  await mkdir(dir);
  return dir;
}

async function write(file: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  await chmod(file, mode);
}

async function readJson(file: string): Promise<any> {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

beforeAll(async () => {
  root = await tempDir('describe-image-config-file-');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('configPath', () => {
  it('$DESCRIBE_IMAGE_CONFIG wins, trimmed and made absolute', () => {
    expect(configPath({ DESCRIBE_IMAGE_CONFIG: '/etc/di.json', XDG_CONFIG_HOME: '/x' }, '/h')).toBe(
      '/etc/di.json',
    );
    expect(configPath({ DESCRIBE_IMAGE_CONFIG: '  /etc/di.json \n' }, '/h')).toBe('/etc/di.json');
    expect(configPath({ DESCRIBE_IMAGE_CONFIG: 'rel/c.json' }, '/h')).toBe(
      path.resolve('rel/c.json'),
    );
  });

  it('$XDG_CONFIG_HOME/describe-image/config.json next', () => {
    expect(configPath({ XDG_CONFIG_HOME: '/xdg' }, '/home/me')).toBe(
      '/xdg/describe-image/config.json',
    );
  });

  it('~/.config/describe-image/config.json by default', () => {
    expect(configPath({}, '/home/me')).toBe('/home/me/.config/describe-image/config.json');
  });

  it('blank variables and a relative XDG_CONFIG_HOME (invalid per the spec) are ignored', () => {
    expect(configPath({ DESCRIBE_IMAGE_CONFIG: '  ', XDG_CONFIG_HOME: '' }, '/home/me')).toBe(
      '/home/me/.config/describe-image/config.json',
    );
    expect(configPath({ XDG_CONFIG_HOME: 'relative/dir' }, '/home/me')).toBe(
      '/home/me/.config/describe-image/config.json',
    );
  });
});

describe('loadConfig', () => {
  it('a missing file is fine: not found, no settings, no warnings', async () => {
    const file = path.join(await fresh(), 'nope', 'config.json');
    expect(await loadConfig(file)).toEqual({
      path: file,
      exists: false,
      config: undefined,
      warnings: [],
    });
  });

  it('a path through a regular file (ENOTDIR) counts as missing', async () => {
    const dir = await fresh();
    await writeFile(path.join(dir, 'file'), 'x');
    const loaded = await loadConfig(path.join(dir, 'file', 'config.json'));
    expect(loaded.exists).toBe(false);
  });

  it('reads the settings and profiles', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, {
      provider: 'openai',
      model: 'gpt-4o',
      detail: 'high',
      maxTokens: 300,
      prices: { llava: { input: 0, output: 0 } },
      profiles: { local: { provider: 'ollama', model: 'llava' } },
    });
    const loaded = await loadConfig(file);
    expect(loaded.exists).toBe(true);
    expect(loaded.warnings).toEqual([]);
    expect(loaded.config).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      detail: 'high',
      maxTokens: 300,
      prices: { llava: { input: 0, output: 0 } },
      profiles: { local: { provider: 'ollama', model: 'llava' } },
    });
  });

  it('invalid JSON is an error naming the file', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, '{"model": "gpt-4o",}');
    const error = await loadConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/not valid JSON/);
  });

  it('an empty file is invalid JSON too', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, '');
    await expect(loadConfig(file)).rejects.toThrow(/not valid JSON/);
  });

  it('a value of the wrong type is an error naming the file and the key', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { maxTokens: '300' });
    const error = await loadConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('"maxTokens"');
  });

  it('JSON that is not an object is an error', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, '["model"]');
    await expect(loadConfig(file)).rejects.toThrow(/expected a JSON object/);
  });

  it('a directory where the file should be is an error naming it', async () => {
    const dir = await fresh();
    const file = path.join(dir, 'config.json');
    await mkdir(file);
    const error = await loadConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toContain(file);
  });

  it('unknown keys are warnings, not errors', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { modle: 'gpt-4o', $schema: 'https://example.com/s.json' });
    const loaded = await loadConfig(file);
    expect(loaded.config).toEqual({});
    expect(loaded.warnings).toHaveLength(1);
    expect(loaded.warnings[0]).toContain('"modle"');
    expect(loaded.warnings[0]).toContain(file);
  });

  it.each([
    ['644', 0o644],
    ['640', 0o640],
    ['604', 0o604],
    ['660', 0o660],
  ])('a file holding a key with mode %s warns, naming chmod 600 and the file', async (_, mode) => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { apiKey: KEY }, mode);
    const loaded = await loadConfig(file);
    expect(loaded.config?.apiKey).toBe(KEY);
    expect(loaded.warnings).toHaveLength(1);
    expect(loaded.warnings[0]).toContain(`chmod 600 '${file}'`);
    expect(loaded.warnings[0]).toContain(mode.toString(8));
    expect(loaded.warnings[0]).not.toContain(KEY);
  });

  it('a key in a profile counts too', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { profiles: { work: { apiKey: KEY } } }, 0o644);
    expect((await loadConfig(file)).warnings.join('\n')).toContain('chmod 600');
  });

  it('no warning for mode 0600 (or 0400), nor for a readable file without a key', async () => {
    const dir = await fresh();
    const a = path.join(dir, 'a.json');
    await write(a, { apiKey: KEY }, 0o600);
    expect((await loadConfig(a)).warnings).toEqual([]);
    const b = path.join(dir, 'b.json');
    await write(b, { apiKey: KEY }, 0o400);
    expect((await loadConfig(b)).warnings).toEqual([]);
    const c = path.join(dir, 'c.json');
    await write(c, { model: 'gpt-4o', apiKeyEnv: 'MY_KEY' }, 0o644);
    expect((await loadConfig(c)).warnings).toEqual([]);
  });
});

describe('saveKey', () => {
  it('creates the file (mode 0600) and its folders', async () => {
    const dir = await fresh();
    const file = path.join(dir, 'a', 'b', 'config.json');
    await saveKey(file, KEY, undefined);
    expect(await readJson(file)).toEqual({ apiKey: KEY });
    expect(await modeOf(file)).toBe(0o600);
    expect((await modeOf(path.join(dir, 'a', 'b'))) & 0o077).toBe(0);
    expect((await modeOf(path.join(dir, 'a'))) & 0o077).toBe(0);
  });

  it('keeps every other setting, and replaces an older key', async () => {
    const file = path.join(await fresh(), 'config.json');
    const before = {
      $comment: 'mine',
      provider: 'openai',
      apiKey: 'sk-old-key-000000',
      model: 'gpt-4o',
      unknownThing: [1, 2],
      profiles: { local: { provider: 'ollama' } },
    };
    await write(file, before, 0o600);
    await saveKey(file, KEY, undefined);
    expect(await readJson(file)).toEqual({ ...before, apiKey: KEY });
  });

  it('with a profile, stores it in profiles.NAME.apiKey, keeping the profile and the rest', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, {
      apiKey: 'sk-top-level-key-1111',
      profiles: { work: { provider: 'openrouter', model: 'x/y' }, other: { detail: 'low' } },
    });
    await saveKey(file, KEY, 'work');
    expect(await readJson(file)).toEqual({
      apiKey: 'sk-top-level-key-1111',
      profiles: {
        work: { provider: 'openrouter', model: 'x/y', apiKey: KEY },
        other: { detail: 'low' },
      },
    });
  });

  it('with a profile that does not exist yet, creates it (and profiles)', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { model: 'gpt-4o' });
    await saveKey(file, KEY, 'new');
    expect(await readJson(file)).toEqual({ model: 'gpt-4o', profiles: { new: { apiKey: KEY } } });
  });

  it('makes a file that was readable by others 0600', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, { model: 'gpt-4o' }, 0o644);
    await saveKey(file, KEY, undefined);
    expect(await modeOf(file)).toBe(0o600);
    expect((await loadConfig(file)).warnings).toEqual([]);
  });

  it('leaves no temporary file behind', async () => {
    const dir = await fresh();
    const file = path.join(dir, 'config.json');
    await saveKey(file, KEY, undefined);
    await saveKey(file, `${KEY}2`, 'p');
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('refuses to overwrite a file that is not valid JSON, and leaves it as it was', async () => {
    const file = path.join(await fresh(), 'config.json');
    const text = '{"model": "gpt-4o", oops}';
    await write(file, text, 0o644);
    const error = await saveKey(file, KEY, undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).not.toContain(KEY);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('refuses a file holding JSON that is not an object', async () => {
    const file = path.join(await fresh(), 'config.json');
    await write(file, '[1, 2]');
    await expect(saveKey(file, KEY, undefined)).rejects.toThrow(/not a JSON object/);
    expect(await readFile(file, 'utf8')).toBe('[1, 2]');
  });

  // `profiles` of the wrong type: the key must not be silently dropped while the user is told
  // it was saved.
  it.each([
    ['an array', []],
    ['a string', 'text'],
    ['a number', 42],
  ])(
    'a key saved under a profile is really there afterwards, or the save fails (profiles is %s)',
    async (_, profiles) => {
      const file = path.join(await fresh(), 'config.json');
      await write(file, { profiles });
      const outcome = await saveKey(file, KEY, 'work').then(
        () => 'saved',
        (error: unknown) => error,
      );
      if (outcome === 'saved') {
        expect((await readJson(file)).profiles?.work?.apiKey).toBe(KEY);
      } else {
        expect(outcome).toBeInstanceOf(SettingsError);
      }
    },
  );

  it('what it writes loads back', async () => {
    const file = path.join(await fresh(), 'config.json');
    await saveKey(file, KEY, undefined);
    await saveKey(file, `${KEY}-work`, 'work');
    const loaded = await loadConfig(file);
    expect(loaded.config).toEqual({ apiKey: KEY, profiles: { work: { apiKey: `${KEY}-work` } } });
    expect(loaded.warnings).toEqual([]);
  });
});
