/**
 * `--cache-stats`, `--cache-prune AGE`, `--cache-clear`: what the answer cache holds, and
 * removing old or all answers. stdout gets the result (JSON with --json); a missing cache is
 * an empty one, and nothing is created to say so.
 */
import { ExitCode } from '../errors.js';
import { safeJson } from '../output/guard.js';
import { formatCount } from '../render/text.js';
import type { RunContext } from './job.js';

export interface CacheCommand {
  cacheStats?: boolean | undefined;
  cachePrune?: number | undefined;
  cacheClear?: boolean | undefined;
  json?: boolean | undefined;
}

export async function cacheCommand(
  dir: string,
  opts: CacheCommand,
  ctx: RunContext,
): Promise<number> {
  const { deps, reporter } = ctx;
  const { openAnswerCache } = await import('../cache/store.js');
  const cache = await openAnswerCache(dir, {
    warn: (message) => reporter.warn(message),
    create: false,
    now: () => deps.now(),
  });
  try {
    const result: { dir: string; removed?: number; entries: number; bytes: number } = {
      dir,
      entries: 0,
      bytes: 0,
    };
    if (opts.cacheClear) result.removed = cache.clear();
    else if (opts.cachePrune !== undefined)
      result.removed = cache.prune(opts.cachePrune, deps.now());
    Object.assign(result, cache.stats());
    if (opts.json) {
      deps.stdout.write(`${safeJson(result)}\n`);
    } else {
      if (result.removed !== undefined)
        deps.stdout.write(
          `removed ${formatCount(result.removed)} answer${result.removed === 1 ? '' : 's'}\n`,
        );
      deps.stdout.write(
        `${dir}: ${formatCount(result.entries)} answer${result.entries === 1 ? '' : 's'}, ${formatBytes(result.bytes)} on disk\n`,
      );
    }
    return ExitCode.OK;
  } finally {
    await cache.close();
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
