/**
 * Runs the CLI in-process (`run(argv, deps)`) with fake streams that say they are a terminal or
 * not, for what a spawned process cannot show: what reaches a terminal.
 */
import { run } from '../../src/cli.js';
import type { Deps } from '../../src/deps.js';
import { isolatedHomes } from './cli.js';
import { collector } from './streams.js';

export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runInProcess(
  argv: string[],
  opts: { cwd: string; env: Record<string, string>; terminal: boolean; columns?: number },
): Promise<InProcessResult> {
  const stdout = collector({ isTTY: opts.terminal, columns: opts.columns ?? 200 });
  const stderr = collector({ isTTY: opts.terminal, columns: opts.columns ?? 200 });
  const deps: Deps = {
    stdout,
    stderr,
    stdin: (async function* () {})(),
    // Never the real cache or state folders (see baseEnv()).
    env: { ...isolatedHomes(), ...opts.env },
    cwd: opts.cwd,
    homedir: opts.cwd,
    interrupt: new AbortController().signal,
    now: () => Date.now(),
  };
  const code = await run(argv, deps);
  return { code, stdout: stdout.text, stderr: stderr.text };
}
