/**
 * Pure: removes terminal control sequences from model text before it reaches a terminal.
 * A model can be talked into emitting ESC sequences that rewrite the screen, set the window
 * title, write to the clipboard (OSC 52) or hide text. Kept: printable text, newline, tab.
 *
 * Streaming-safe: a sequence split across two chunks is held back until it is complete.
 */

const ESC = 0x1b;
const BEL = 0x07;
/** Longest unterminated sequence we wait for before dropping it. */
const MAX_PENDING = 4096;

export class TerminalSanitizer {
  private pending = '';

  /** Returns the printable part of `pending + text`, holding back an unfinished sequence. */
  push(text: string): string {
    const input = this.pending + text;
    this.pending = '';
    let out = '';
    let i = 0;
    while (i < input.length) {
      const c = input.charCodeAt(i);
      const end = sequenceStartingAt(input, i, c);
      if (end !== undefined) {
        if (end === -1) {
          // Incomplete: wait for more text, unless it is absurdly long.
          const rest = input.slice(i);
          if (rest.length <= MAX_PENDING) this.pending = rest;
          return out;
        }
        i = end;
        continue;
      }
      if (isStrippedControl(c)) {
        i++;
        continue;
      }
      out += input.charAt(i);
      i++;
    }
    return out;
  }

  /** Ends the text: an unfinished sequence is dropped. */
  flush(): string {
    this.pending = '';
    return '';
  }
}

/** Strips a whole string at once. */
export function sanitizeForTerminal(text: string): string {
  return new TerminalSanitizer().push(text);
}

/**
 * For an ESC or an 8-bit CSI/OSC/DCS/SOS/PM/APC at `i`: the index just past its sequence, or -1
 * while it is incomplete. Undefined when no sequence starts there.
 */
function sequenceStartingAt(s: string, i: number, c: number): number | undefined {
  if (c === ESC) return sequenceEnd(s, i);
  if (c === 0x9b) return csiEnd(s, i + 1);
  if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f)
    return stringEnd(s, i + 1);
  return undefined;
}

function isStrippedControl(c: number): boolean {
  if (c === 0x0a || c === 0x09) return false;
  return c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f);
}

/** Index just past the escape sequence starting at `start` (an ESC), or -1 if incomplete. */
function sequenceEnd(s: string, start: number): number {
  if (start + 1 >= s.length) return -1;
  const next = s[start + 1] as string;
  switch (next) {
    case '[':
      return csiEnd(s, start + 2);
    case ']':
    case 'P':
    case 'X':
    case '^':
    case '_':
      return stringEnd(s, start + 2);
    default: {
      // ESC, intermediates (0x20–0x2F)*, one final byte (0x30–0x7E).
      let i = start + 1;
      while (i < s.length && s.charCodeAt(i) >= 0x20 && s.charCodeAt(i) <= 0x2f) i++;
      if (i >= s.length) return -1;
      return i + 1;
    }
  }
}

/** CSI: parameter and intermediate bytes, then a final byte 0x40–0x7E. */
function csiEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x40 && c <= 0x7e) return i + 1;
    if (c < 0x20 || c > 0x3f) {
      // Not a valid CSI byte: drop what we have so far, keep going from here.
      return i;
    }
  }
  return -1;
}

/** OSC/DCS/SOS/PM/APC: up to BEL, ST (ESC \) or the 8-bit ST (0x9C). */
function stringEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BEL || c === 0x9c) return i + 1;
    if (c === ESC) {
      if (i + 1 >= s.length) return -1;
      return s[i + 1] === '\\' ? i + 2 : i;
    }
  }
  return -1;
}
