/**
 * Text output: the answer on stdout as it streams (one trailing newline, control sequences
 * stripped on a terminal), and the one-line usage summary for stderr.
 */
import type { Usage } from '../api/types.js';
import type { OutStream } from '../deps.js';
import { TerminalSanitizer } from './sanitize.js';

/**
 * Writes answer text as it arrives. Trailing newlines are held back until more text comes,
 * so the output always ends in exactly one newline, however the model ended its answer.
 */
export class AnswerWriter {
  private held = '';
  private wrote = false;
  private readonly sanitizer: TerminalSanitizer | undefined;

  constructor(
    private readonly out: OutStream,
    sanitize: boolean,
  ) {
    this.sanitizer = sanitize ? new TerminalSanitizer() : undefined;
  }

  write(text: string): void {
    const clean = this.sanitizer ? this.sanitizer.push(text) : text;
    if (clean === '') return;
    const body = (this.held + clean).replace(/^\n+/, this.wrote ? '$&' : '');
    const trimmed = body.replace(/\s+$/, '');
    this.held = body.slice(trimmed.length);
    if (trimmed !== '') {
      this.out.write(trimmed);
      this.wrote = true;
    }
  }

  /** Whether any text has been written. */
  get started(): boolean {
    return this.wrote;
  }

  /** Ends the answer with one newline (nothing at all if no text was written). */
  end(): void {
    this.sanitizer?.flush();
    this.held = '';
    if (this.wrote) this.out.write('\n');
  }
}

/** A whole answer as it goes to stdout: trimmed, one newline, sanitised when asked. */
export function formatAnswer(text: string, sanitize: boolean): string {
  let out = '';
  const writer = new AnswerWriter({ write: (s: string) => (out += s) }, sanitize);
  writer.write(text);
  writer.end();
  return out;
}

// Made on first use: the first Intl.NumberFormat costs ~15 ms (ICU), which an answer printed
// from the cache, with no usage line, need not pay.
let number: Intl.NumberFormat | undefined;

/** `tokens: 1,250 in · 89 out · 1,339 total` */
export function formatUsage(usage: Usage): string {
  // Some servers (older llama.cpp) leave total_tokens out.
  const total =
    (usage.total_tokens as number | undefined) ?? usage.prompt_tokens + usage.completion_tokens;
  return `tokens: ${numberFormat().format(usage.prompt_tokens)} in · ${numberFormat().format(usage.completion_tokens)} out · ${numberFormat().format(total)} total`;
}

function numberFormat(): Intl.NumberFormat {
  number ??= new Intl.NumberFormat('en-US');
  return number;
}

export function formatCount(n: number): string {
  return numberFormat().format(n);
}

/** `==> NAME <==`, as head and tail head each file. */
export function header(name: string): string {
  return `==> ${name} <==`;
}
