/**
 * Runs the built CLI (bin/describe-image.js → dist/) as a child process, as a user would.
 * The environment is clean: no proxy, no key, no CI, unless the test passes them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The CLI under test: this checkout's build, or another one named by `DESCRIBE_IMAGE_TEST_BIN`
 * (to show once, by hand, that a new test fails on the code before a fix).
 */
export const BIN =
  process.env.DESCRIBE_IMAGE_TEST_BIN ??
  fileURLToPath(new URL('../../bin/describe-image.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: string | Buffer;
  cwd?: string;
  /**
   * Its own process group (id = its pid), so that a test can signal it as a terminal's Ctrl-C
   * does (`process.kill(-pid, 'SIGINT')`: every process in the group) and find what it left.
   */
  detached?: boolean;
  /** Called once the process is spawned (to send it signals). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
  /** Called with stderr text as it arrives. */
  onStderr?: (text: string) => void;
  onStdout?: (text: string) => void;
  timeoutMs?: number;
}

/**
 * The environment every spawned CLI starts from. Its answer cache and state (batch jobs) are
 * fresh folders on every call, unless a test sets `XDG_CACHE_HOME`, `XDG_STATE_HOME` or
 * `--cache-dir`: never the real `~/.cache`, and no run's answers are another run's hits.
 */
export function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    LANG: 'C.UTF-8',
    ...isolatedHomes(),
  };
}

/** Fresh, empty cache and state folders (`XDG_CACHE_HOME`, `XDG_STATE_HOME`). */
export function isolatedHomes(): { XDG_CACHE_HOME: string; XDG_STATE_HOME: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'describe-image-home-'));
  return { XDG_CACHE_HOME: path.join(dir, 'cache'), XDG_STATE_HOME: path.join(dir, 'state') };
}

/** The CLI in `cwd` with `config` as its config file: never a real one read or written. */
export function runCliWithConfig(
  args: string[],
  cwd: string,
  config: string,
  opts: CliOptions = {},
): Promise<CliResult> {
  return runCli(args, { cwd, ...opts, env: { DESCRIBE_IMAGE_CONFIG: config, ...opts.env } });
}

/** One `--json` batch line (README, "JSON fields"). */
export interface JsonRecord {
  image: string;
  index: number;
  text: string | null;
  error?: { code: number; message: string; status?: number };
}

/** The JSON Lines of `text` (stdout or an -o file), which must end with a newline. */
export function jsonLines<T = JsonRecord>(text: string): T[] {
  expect(text === '' || text.endsWith('\n'), 'output ends with a newline').toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { ...baseEnv() };
    for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(d);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI timed out: ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
    child.stdin.on('error', () => undefined);
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    else child.stdin.end();
  });
}
