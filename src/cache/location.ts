/**
 * Pure: where the answer cache lives. `--cache-dir`, else `$XDG_CACHE_HOME/describe-image`,
 * else `~/.cache/describe-image` (the XDG Base Directory default).
 */
import path from 'node:path';
import type { Env, Sourced } from '../config.js';

export const CACHE_DIR_NAME = 'describe-image';

/**
 * The cache directory and where it came from (for `--print-config`). A relative `--cache-dir`
 * is taken from `cwd`; a relative `$XDG_CACHE_HOME` is ignored, as the XDG spec says.
 */
export function cacheDirOf(
  flag: string | undefined,
  env: Env,
  homedir: string,
  cwd: string,
): Sourced<string> {
  if (flag !== undefined && flag.trim() !== '')
    return { value: path.resolve(cwd, flag), source: '--cache-dir' };
  const xdg = env.XDG_CACHE_HOME?.trim();
  if (xdg && path.isAbsolute(xdg))
    return { value: path.join(xdg, CACHE_DIR_NAME), source: '$XDG_CACHE_HOME' };
  return { value: path.join(homedir, '.cache', CACHE_DIR_NAME), source: 'default' };
}
