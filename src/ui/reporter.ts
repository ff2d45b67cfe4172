/**
 * Everything the tool says on stderr besides the spinner and progress line: errors, warnings,
 * notices, usage and debug lines. Every line passes through `redact()`, so the API key cannot
 * reach the terminal or a log even if a server echoes it back. The message of an error,
 * warning, notice or debug line is plain text that may hold a file name or a server's words:
 * it goes through `neutralize()`, so a control sequence in it is shown, not obeyed.
 */
import type { ChalkInstance } from 'chalk';
import type { OutStream } from '../deps.js';
import { neutralize, Redactor } from '../output/guard.js';

export const PROGRAM = 'describe-image';

export interface ReporterOptions {
  chalk: ChalkInstance;
  quiet: boolean;
  debug: boolean;
  /** The run's redactor (see output/guard.ts); a new one when not given. */
  redactor?: Redactor;
}

export class Reporter {
  readonly redactor: Redactor;
  /** Called before a line is written (to clear a progress line or pause a spinner). */
  beforeWrite: (() => void) | undefined;
  afterWrite: (() => void) | undefined;

  constructor(
    readonly stream: OutStream,
    private readonly opts: ReporterOptions,
  ) {
    this.redactor = opts.redactor ?? new Redactor();
  }

  get chalk(): ChalkInstance {
    return this.opts.chalk;
  }

  get quiet(): boolean {
    return this.opts.quiet;
  }

  get debugging(): boolean {
    return this.opts.debug;
  }

  addSecret(secret: string | undefined): void {
    this.redactor.add(secret);
  }

  /** Replaces every secret in `text` with `***`. */
  redact(text: string): string {
    return this.redactor.redact(text);
  }

  /** `describe-image: error: …` (always shown). */
  error(message: string): void {
    this.line(`${PROGRAM}: ${this.chalk.red.bold('error:')} ${neutralize(message)}`);
  }

  /** `describe-image: warning: …` (shown under --quiet too: it changes what the output means). */
  warn(message: string): void {
    this.line(`${PROGRAM}: ${this.chalk.yellow('warning:')} ${neutralize(message)}`);
  }

  /** Informational line, hidden by --quiet. */
  notice(message: string): void {
    if (!this.opts.quiet) this.line(this.chalk.dim(neutralize(message)));
  }

  /** Only with --debug. */
  debug(message: string): void {
    if (this.opts.debug) this.line(this.chalk.dim(`${PROGRAM}: debug: ${neutralize(message)}`));
  }

  /** A plain line (already formatted), hidden by --quiet. */
  info(message: string): void {
    if (!this.opts.quiet) this.line(message);
  }

  /** Writes a line, whatever --quiet says. */
  line(text: string): void {
    this.beforeWrite?.();
    this.stream.write(`${this.redact(text)}\n`);
    this.afterWrite?.();
  }

  /** Writes raw text (progress redraws), redacted. */
  raw(text: string): void {
    this.stream.write(this.redact(text));
  }
}
