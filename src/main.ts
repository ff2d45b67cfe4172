/**
 * The process boundary: the only module that touches `process`. It answers `--version` and
 * `--help` at once, and otherwise builds the real `Deps`, turns Ctrl-C into an abort signal
 * (a second Ctrl-C quits at once), runs the CLI and sets `process.exitCode` so piped output
 * is flushed before Node exits.
 *
 * This module imports no other module of the project at load time: everything shared would
 * be one more file to load before `--version` can answer.
 */
import { readFileSync } from 'node:fs';
import type { Deps } from './deps.js';

declare const __VERSION__: string;

/** `--help` as the build rendered it (dist/help.txt), if it is there. */
function prerenderedHelp(): string | undefined {
  try {
    return readFileSync(new URL('help.txt', import.meta.url), 'utf8');
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<void> {
  // lmdb (the answer cache) decodes with msgpackr, which loads a native helper at start-up
  // unless told not to. The cache stores strings, which msgpackr never decodes: ~5 ms saved.
  process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
  // Everything a run needs, the CLI included, is fetched at once rather than one after another.
  const [{ ExitCode }, { OUTPUT_CLOSED }, os, v8, metadata, libc, cli] = await Promise.all([
    import('./errors.js'),
    import('./deps.js'),
    import('node:os'),
    import('node:v8'),
    // The open write-back writers (tiny; loads nothing): their ExifTool must end with us.
    import('./metadata/registry.js'),
    // A dynamic import: a second module in this file's chunk would make --version load
    // esbuild's runtime chunk too.
    import('./cache/libc.js'),
    import('./cli.js'),
  ]);
  // lmdb's binary loader asks detect-libc which C library Linux runs unless LIBC says; loading
  // detect-libc costs ~10 ms of every run that opens the cache. LIBC is set only when the
  // binary's own ELF header tells (detect-libc's first method); child processes (ExifTool's
  // Perl) inherit a variable they do not read.
  if (process.env.LIBC === undefined && process.platform === 'linux') {
    const running = libc.libcOfBinary('/proc/self/exe');
    if (running) process.env.LIBC = running;
  }
  // undici's HTTP parser (llhttp) and heic-decode's libheif are WebAssembly. V8 compiles them
  // twice, the second time with its optimising compiler in the background, and Node waits
  // for that at exit: ~80 ms on every run. The baseline compiler is fast enough for both.
  v8.setFlagsFromString('--liftoff-only');
  // A batch makes many short-lived objects: a smaller young generation is collected more
  // often and keeps a 10,000-image batch's peak memory ~20 MB lower, at no cost in speed.
  v8.setFlagsFromString('--max-semi-space-size=4');

  const interrupt = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      interrupt.abort();
      return;
    }
    // Second Ctrl-C: quit now. Finished results are already written (line by line, renames).
    if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n');
    process.exit(ExitCode.INTERRUPTED);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // A closed terminal stops the run like SIGTERM (unhandled, Node would die at once and leave
  // a write-back's ExifTool behind).
  process.on('SIGHUP', onSigint);
  // Every way out (a return, the second Ctrl-C's process.exit(), an uncaught exception): a
  // write-back's ExifTool (Perl) gets SIGINT, which it traps: it removes its temporary file
  // and ends, so the photo it was writing is left whole, old or new, and no Perl outlives us.
  // (batch-cluster's own exit hook sends SIGKILL, which leaves the temporary file: it is off.)
  process.on('exit', () => {
    for (const pid of metadata.metadataProcessIds()) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // Already gone.
      }
    }
  });

  // A reader that goes away (`describe-image x.png | head -1`) is not an error worth a trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') {
      interrupt.abort(OUTPUT_CLOSED);
      process.exitCode = ExitCode.INTERRUPTED;
      return;
    }
    throw error;
  });
  process.stderr.on('error', () => undefined);

  const deps: Deps = {
    stdout: process.stdout,
    stderr: process.stderr,
    // Lazy: touching process.stdin opens it, which a run without "-" never needs.
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    cwd: process.cwd(),
    homedir: os.homedir(),
    interrupt: interrupt.signal,
    now: () => Date.now(),
  };

  try {
    const code = await cli.run(argv, deps);
    if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = code;
  } catch (error) {
    // run() reports every error itself; this is a last resort.
    process.stderr.write(`describe-image: error: unexpected internal error: ${String(error)}\n`);
    process.exitCode = ExitCode.INTERNAL;
  } finally {
    // A backstop: each command closes its own writer (writes in progress finish, ExifTool ends).
    await metadata.closeMetadataWriters();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    process.off('SIGHUP', onSigint);
  }
}

const argv = process.argv.slice(2);
const only = argv.length === 1 ? argv[0] : undefined;
// `--version` and `--help` alone need none of the option parser: answer before loading it.
const help = only === '--help' || only === '-h' ? prerenderedHelp() : undefined;
if (only === '--version' || only === '-V' || help !== undefined) {
  // `describe-image --help | head -3` closes the pipe early: not an error.
  process.stdout.on('error', () => undefined);
  process.stdout.write(help ?? `${__VERSION__}\n`);
} else {
  await main(argv);
}
