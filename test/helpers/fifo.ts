/**
 * FIFOs for tests. node:fs cannot make one; `mkfifo` (coreutils) can. Whether a process holds
 * a file open is read from /proc (Linux), so a test can wait until a reader is really waiting.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { readdir, readlink, realpath } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether this system shows a process's open files under /proc. */
export const HAS_PROC_FD = existsSync('/proc/self/fd');

export function mkfifo(file: string): void {
  const made = spawnSync('mkfifo', [file], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`mkfifo ${file} failed: ${made.stderr}`);
}

/** Whether process `pid` has `file` open (from /proc/PID/fd). */
export async function holdsOpen(pid: number | 'self', file: string): Promise<boolean> {
  const real = await realpath(file);
  const dir = `/proc/${String(pid)}/fd`;
  let fds: string[];
  try {
    fds = await readdir(dir);
  } catch {
    return false;
  }
  for (const fd of fds) {
    const target = await readlink(`${dir}/${fd}`).catch(() => '');
    if (target === real) return true;
  }
  return false;
}

/** Waits until process `pid` has `file` open; false if it has not after `timeoutMs`. */
export async function waitUntilOpen(
  pid: number | 'self',
  file: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await holdsOpen(pid, file)) return true;
    await sleep(20);
  }
  return false;
}

/**
 * Whether any process has the FIFO open for reading: a non-blocking open for writing fails
 * with ENXIO when none has. The writer is closed at once, so a reader sees the end of input.
 */
export function hasReader(fifo: string): boolean {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') return false;
    throw error;
  }
}
