/**
 * Everything the tool says on stderr besides the spinner: errors, warnings, notices, usage,
 * debug lines and the progress line. It is the one writer of stderr, and it cannot be made to
 * pass a control sequence through: every piece of text it is given (a file name, a server's
 * message, a URL) is neutralised (`neutralize()`: control characters become visible escapes),
 * and colour is added afterwards, by the reporter alone, from style names. The stream it writes
 * to is guarded too (`guardStream()`): no line can carry a secret.
 */
import type { OutStream } from '../deps.js';
import { neutralize, Redactor } from '../output/guard.js';
import type { Painter, Style } from './colors.js';

export const PROGRAM = 'describe-image';

/** A piece of a line: text (always neutralised) and its style. */
export interface Segment {
  text: string;
  style?: Style | undefined;
}

/** A line: plain text, or styled pieces. */
export type Line = string | readonly Segment[];

export interface ReporterOptions {
  /** Colours the styled pieces (see ui/colors.ts). */
  painter: Painter;
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

  get quiet(): boolean {
    return this.opts.quiet;
  }

  get debugging(): boolean {
    return this.opts.debug;
  }

  /** The colour level of the stream (0: none), for what draws on it besides the reporter. */
  get colorLevel(): 0 | 1 | 2 | 3 {
    return this.opts.painter.level;
  }

  addSecret(secret: string | undefined): void {
    this.redactor.add(secret);
  }

  /** `describe-image: error: …` (always shown). */
  error(message: string): void {
    this.line([
      { text: `${PROGRAM}: ` },
      { text: 'error:', style: 'bold-red' },
      { text: ` ${message}` },
    ]);
  }

  /** `describe-image: warning: …` (shown under --quiet too: it changes what the output means). */
  warn(message: string): void {
    this.line([
      { text: `${PROGRAM}: ` },
      { text: 'warning:', style: 'yellow' },
      { text: ` ${message}` },
    ]);
  }

  /** Informational line, dimmed, hidden by --quiet. */
  notice(message: string): void {
    if (!this.opts.quiet) this.line([{ text: message, style: 'dim' }]);
  }

  /** Only with --debug. */
  debug(message: string): void {
    if (this.opts.debug) this.line([{ text: `${PROGRAM}: debug: ${message}`, style: 'dim' }]);
  }

  /** A line hidden by --quiet. */
  info(line: Line): void {
    if (!this.opts.quiet) this.line(line);
  }

  /** Writes a line, whatever --quiet says. */
  line(line: Line): void {
    this.beforeWrite?.();
    this.stream.write(`${this.render(line)}\n`);
    this.afterWrite?.();
  }

  /** A line as it is written: each piece neutralised, then styled. */
  render(line: Line): string {
    const segments = typeof line === 'string' ? [{ text: line }] : line;
    return segments.map((s) => this.styled(neutralize(s.text), s.style)).join('');
  }

  /** Draws a one-line status (the progress line) over the current line, without a newline. */
  status(line: Line): void {
    this.stream.write(`\r${this.render(line)}\x1b[K`);
  }

  /** Removes the status line. */
  clearStatus(): void {
    this.stream.write('\r\x1b[K');
  }

  private styled(text: string, style: Style | undefined): string {
    return this.opts.painter.paint(text, style);
  }
}
