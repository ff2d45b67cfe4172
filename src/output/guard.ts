/**
 * The one output layer. Every byte the tool writes (standard output, standard error, and every
 * file it creates) passes through here, so that a call site cannot forget:
 *
 * - `Redactor` replaces secrets with `***`: the API key in use, the value of every other key
 *   variable, and the secrets inside a base URL (a password, and query parameters such as
 *   `key`, `api-key`, `token`, `sig`). Streamed text is redacted too, even when a secret is
 *   split across two writes.
 * - `neutralize()` makes control characters visible (`\x1b` as the four characters `\x1b`) in
 *   text that did not come from the model's answer: file names, server messages, URLs.
 * - `safeJson()` is JSON with C1 controls and U+2028/U+2029 escaped as well as C0.
 *
 * `guardStream()` wraps a stream in redaction; `cli.ts` wraps standard output and standard
 * error before anything else sees them. File writers take the run's `Redactor` as a required
 * argument (see `atomic.ts`, `jsonl-file.ts`).
 */
import type { OutStream } from '../deps.js';

/** Query parameters whose values are secrets, wherever they appear in a URL. */
const SECRET_PARAMS =
  /^(?:key|api[-_]?key|apikey|access[-_]?key|token|access[-_]?token|auth|authorization|sig|signature|secret|client[-_]?secret|password|pass|pwd|x-amz-signature|x-goog-signature|x-amz-credential|x-amz-security-token)$/i;

/** Shortest string treated as a secret: shorter ones would redact ordinary text. */
const MIN_SECRET = 4;

export const REDACTED = '***';

/** Whether a query parameter's value is a secret (`key`, `api-key`, `token`, `sig`…). */
export function isSecretParam(name: string): boolean {
  return SECRET_PARAMS.test(name);
}

export class Redactor {
  /** Longest first, so a secret that contains another is replaced whole. */
  private secrets: string[] = [];

  /** Adds a secret (ignored when empty or too short to be one). */
  add(secret: string | undefined): void {
    if (secret === undefined) return;
    const value = secret.trim();
    if (value.length < MIN_SECRET || this.secrets.includes(value)) return;
    this.secrets.push(value);
    // Its URL-encoded form can appear too (a key inside a query string, say).
    const encoded = encodeURIComponent(value);
    if (encoded !== value && !this.secrets.includes(encoded)) this.secrets.push(encoded);
    this.secrets.sort((a, b) => b.length - a.length);
  }

  /** Adds the secrets of a URL: its password, and secret query parameters. */
  addUrl(text: string | undefined): void {
    for (const secret of urlSecrets(text)) this.add(secret);
  }

  /** Whether any secret is known. */
  get size(): number {
    return this.secrets.length;
  }

  /** `text` with every occurrence of every secret replaced by `***`. */
  redact(text: string): string {
    if (this.secrets.length === 0) return text;
    let out = text;
    for (const secret of this.secrets)
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /**
   * A redactor for text that arrives in pieces: a secret split across two pieces is still
   * caught. `push()` returns what can be written now; the held-back tail (a possible start of
   * a secret) comes out with the next piece or `flush()`.
   */
  stream(): StreamRedactor {
    let held = '';
    return {
      push: (text: string): string => {
        if (this.secrets.length === 0 && held === '') return text;
        const whole = this.redact(held + text);
        const keep = this.heldTail(whole);
        held = whole.slice(whole.length - keep);
        return whole.slice(0, whole.length - keep);
      },
      flush: (): string => {
        const rest = held;
        held = '';
        return rest;
      },
    };
  }

  /** Length of the longest tail of `text` that is the start of a secret. */
  private heldTail(text: string): number {
    let longest = 0;
    for (const secret of this.secrets) {
      const max = Math.min(secret.length - 1, text.length);
      for (let n = max; n > longest; n--) {
        if (text.endsWith(secret.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}

export interface StreamRedactor {
  push(text: string): string;
  flush(): string;
}

/** The secrets a URL holds: its password, and the values of secret query parameters. */
export function urlSecrets(text: string | undefined): string[] {
  if (!text) return [];
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [];
  }
  // The password; a user name is shown as *** by displayUrl() but is no secret (redacting
  // "alice" everywhere would mangle paths such as /home/alice).
  const out: string[] = [];
  if (url.password) out.push(url.password, safeDecode(url.password));
  for (const [name, value] of url.searchParams) if (isSecretParam(name) && value) out.push(value);
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A URL fit to show: user name, password and secret query parameters replaced by `***`,
 * a trailing slash removed. Text that is not a URL is returned as it is.
 */
export function displayUrl(text: string | URL): string {
  let url: URL;
  try {
    url = new URL(text.toString());
  } catch {
    return text.toString();
  }
  if (url.username) url.username = REDACTED;
  if (url.password) url.password = REDACTED;
  for (const name of [...url.searchParams.keys()]) {
    if (isSecretParam(name)) url.searchParams.set(name, REDACTED);
  }
  return url
    .toString()
    .replace(/%2A%2A%2A/g, REDACTED)
    .replace(/\/$/, '');
}

// C0 but tab and newline, DEL, C1, the Unicode line and paragraph separators, and the
// bidirectional overrides and isolates that can make text read differently from what it is
// (Trojan Source).
const CONTROL =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text that did not come from the model (a file name, a server's message, a URL) made safe
 * for a terminal and a log: each control character is written as a visible escape (`\x1b`,
 * `\u202e`), so nothing is hidden and nothing is interpreted. Tab and newline are kept.
 */
export function neutralize(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

/**
 * `JSON.stringify`, with DEL, the C1 controls and U+2028/U+2029 escaped as well as C0: the
 * output is pure printable text whatever the strings hold, and valid JavaScript too.
 */
export function safeJson(value: unknown, space?: number): string {
  const json = JSON.stringify(value, undefined, space);
  return json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A stream whose every write is redacted; `flush()` writes what was held back. */
export interface GuardedStream extends OutStream {
  flush(): void;
}

/** Wraps `stream` so that nothing written to it can carry a secret. */
export function guardStream(stream: OutStream, redactor: Redactor): GuardedStream {
  const filter = redactor.stream();
  return {
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
    write(chunk: string) {
      const text = filter.push(chunk);
      return text === '' ? true : stream.write(text);
    },
    flush() {
      const rest = filter.flush();
      if (rest !== '') stream.write(rest);
    },
  };
}
