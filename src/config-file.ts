/**
 * The config file: `$DESCRIBE_IMAGE_CONFIG`, else `$XDG_CONFIG_HOME/describe-image/config.json`,
 * else `~/.config/describe-image/config.json`. Reading it (with a warning when a file holding
 * a key is readable by others) and storing a key in it (mode 0600, written atomically).
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SettingsError, validateConfig, type Env, type FileConfig } from './config.js';

export function configPath(env: Env, homedir: string): string {
  const explicit = env.DESCRIBE_IMAGE_CONFIG?.trim();
  if (explicit) return path.resolve(explicit);
  const xdg = env.XDG_CONFIG_HOME?.trim();
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir, '.config');
  return path.join(base, 'describe-image', 'config.json');
}

export interface LoadedConfig {
  path: string;
  exists: boolean;
  config: FileConfig | undefined;
  warnings: string[];
}

function holdsKey(config: FileConfig): boolean {
  return (
    Boolean(config.apiKey) || Object.values(config.profiles ?? {}).some((p) => Boolean(p.apiKey))
  );
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { path: file, exists: false, config: undefined, warnings: [] };
    throw new SettingsError(`cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SettingsError(
      `the config file ${file} is not valid JSON: ${(error as Error).message}`,
    );
  }
  const { config, warnings } = validateConfig(value, file);
  if (holdsKey(config)) {
    const mode = (await stat(file)).mode;
    if ((mode & 0o077) !== 0) {
      warnings.push(
        `${file} holds an API key and can be read by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 '${file}'`,
      );
    }
  }
  return { path: file, exists: true, config, warnings };
}

/**
 * Stores `key` in the config file, at the top level or in `profile`, keeping everything
 * else. The file is created with mode 0600 (its folder 0700) and replaced atomically.
 */
export async function saveKey(
  file: string,
  key: string,
  profile: string | undefined,
): Promise<void> {
  let data: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      data = parsed as Record<string, unknown>;
    else
      throw new SettingsError(
        `the config file ${file} is not a JSON object; fix or remove it first`,
      );
  } catch (error) {
    if (error instanceof SettingsError) throw error;
    const code = (error as { code?: string }).code;
    if (code !== 'ENOENT') {
      throw new SettingsError(
        `cannot update the config file ${file}: ${(error as Error).message}; fix or remove it first`,
      );
    }
  }
  if (profile) {
    const existing = data.profiles;
    if (
      existing !== undefined &&
      (typeof existing !== 'object' || existing === null || Array.isArray(existing))
    ) {
      throw new SettingsError(`"profiles" in ${file} is not an object of profiles; fix it first`);
    }
    const profiles = (existing ?? {}) as Record<string, Record<string, unknown>>;
    const current = Object.hasOwn(profiles, profile) ? profiles[profile] : undefined;
    profiles[profile] = { ...current, apiKey: key };
    data.profiles = profiles;
  } else {
    data.apiKey = key;
  }
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.config.json.${randomUUID().slice(0, 8)}.tmp`);
  try {
    await writeFile(temp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(temp, 0o600);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw new SettingsError(`cannot write the config file ${file}: ${(error as Error).message}`);
  }
}
