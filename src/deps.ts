/**
 * The outside world, injected: everything the program reads or writes besides files goes
 * through a `Deps`, so tests can run `run(argv, deps)` in-process with fake streams.
 * Only `src/main.ts` builds the real one.
 */

/** A writable text stream: process.stdout or stderr, or a test's collector. */
export interface OutStream {
  write(chunk: string): unknown;
  /** True only for a terminal. */
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** The readable side: process.stdin or a test's stream. */
export interface InStream extends AsyncIterable<Uint8Array | string> {
  readonly isTTY?: boolean | undefined;
  /** Set raw mode on a terminal (for reading a key without echo). */
  setRawMode?: ((mode: boolean) => unknown) | undefined;
}

/** The `interrupt` signal's reason when standard output was closed by its reader. */
export const OUTPUT_CLOSED = 'output closed';

export interface Deps {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  homedir: string;
  /** Aborted on the first Ctrl-C, or with OUTPUT_CLOSED when stdout's reader went away. */
  interrupt: AbortSignal;
  now(): number;
}
