/**
 * Everything the tool says on stderr besides the spinner and progress line: errors, warnings,
 * notices, usage and debug lines. Every line passes through `redact()`, so the API key cannot
 * reach the terminal or a log even if a server echoes it back.
 */
import type { ChalkInstance } from 'chalk';
import type { OutStream } from '../deps.js';

export const PROGRAM = 'describe-image';

export interface ReporterOptions {
  chalk: ChalkInstance;
  quiet: boolean;
  debug: boolean;
  /** Strings that must never be printed (the API key). */
  secrets?: readonly string[];
}

export class Reporter {
  private readonly secrets: string[];
  /** Called before a line is written (to clear a progress line or pause a spinner). */
  beforeWrite: (() => void) | undefined;
  afterWrite: (() => void) | undefined;

  constructor(
    readonly stream: OutStream,
    private readonly opts: ReporterOptions,
  ) {
    this.secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
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
    if (secret && secret.length >= 4 && !this.secrets.includes(secret)) this.secrets.push(secret);
  }

  /** Replaces every secret in `text` with `***`. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }

  /** `describe-image: error: …` (always shown). */
  error(message: string): void {
    this.line(`${PROGRAM}: ${this.chalk.red.bold('error:')} ${message}`);
  }

  /** `describe-image: warning: …` (shown under --quiet too: it changes what the output means). */
  warn(message: string): void {
    this.line(`${PROGRAM}: ${this.chalk.yellow('warning:')} ${message}`);
  }

  /** Informational line, hidden by --quiet. */
  notice(message: string): void {
    if (!this.opts.quiet) this.line(this.chalk.dim(message));
  }

  /** Only with --debug. */
  debug(message: string): void {
    if (this.opts.debug) this.line(this.chalk.dim(`${PROGRAM}: debug: ${message}`));
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
