/**
 * Pure: the text around an image that the prompt may use. Finders walk a document in order,
 * feeding its visible text to a `TextTrail`; at each image they ask for the last sentence.
 */

/** Longest piece of context kept, in characters (whole words, ending in `…` when cut). */
export const MAX_CONTEXT = 200;

/** Whitespace runs (line breaks included) as one space, trimmed. */
export function squash(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** `text` squashed and cut to at most `max` characters at a word boundary. */
export function clip(text: string, max = MAX_CONTEXT): string {
  const flat = squash(text);
  if (flat.length <= max) return flat;
  // The end of the text matters most for "the sentence before": keep the tail.
  const tail = flat.slice(flat.length - max + 1);
  const space = tail.indexOf(' ');
  return `…${space > 0 && space < 40 ? tail.slice(space + 1) : tail}`;
}

let segmenter: Intl.Segmenter | undefined;

/** Shortest "sentence before" kept alone: a shorter one ("Then") gets the one before it. */
const SHORT_SENTENCE = 40;

/**
 * The last sentence of `text` (with the one before it when it is only a few words, as the
 * start of the sentence an image sits in often is), clipped.
 */
export function lastSentence(text: string): string {
  const flat = squash(text);
  if (flat === '') return '';
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const sentences = [...segmenter.segment(flat)].map((s) => s.segment.trim()).filter(Boolean);
  let out = sentences.at(-1) ?? '';
  if (out.length < SHORT_SENTENCE && sentences.length > 1) out = `${sentences.at(-2) ?? ''} ${out}`;
  return clip(out);
}

/** The document's visible text so far; block boundaries end a sentence. */
export class TextTrail {
  private text = '';

  /** Adds inline text. */
  add(text: string): void {
    this.text += text;
    if (this.text.length > 4 * MAX_CONTEXT) this.text = this.text.slice(-2 * MAX_CONTEXT);
  }

  /** Ends a block (paragraph, heading, list item, cell): what follows is a new sentence. */
  block(): void {
    const trimmed = this.text.trimEnd();
    if (trimmed !== '' && !/[.!?:;…。！？]$/.test(trimmed)) this.text = `${trimmed}. `;
    else if (trimmed !== '') this.text = `${trimmed} `;
  }

  /** The last sentence before this point. */
  sentence(): string {
    return lastSentence(this.text);
  }
}
