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

/** Shortest "sentence before" kept alone: a shorter one ("Then") gets the one before it. */
const SHORT_SENTENCE = 40;

let segmenter: Intl.Segmenter | undefined;

/** The sentences of a text, squashed. */
export function sentences(text: string): string[] {
  const flat = squash(text);
  if (flat === '') return [];
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  return [...segmenter.segment(flat)].map((s) => s.segment.trim()).filter(Boolean);
}

/**
 * The document's visible text so far, block by block (a paragraph, heading, list item or table
 * cell is a block: a sentence never runs across two).
 */
export class TextTrail {
  private blocks: string[] = [''];

  /** Adds inline text to the current block. */
  add(text: string): void {
    let current = (this.blocks.pop() ?? '') + text;
    if (current.length > 4 * MAX_CONTEXT) current = current.slice(-2 * MAX_CONTEXT);
    this.blocks.push(current);
  }

  /** Ends the current block. */
  block(): void {
    if (squash(this.blocks.at(-1) ?? '') === '') return;
    this.blocks.push('');
    if (this.blocks.length > 4) this.blocks.shift();
  }

  /**
   * The last sentence before this point, with the one before it when it is only a few words
   * (the start of the sentence an image sits in often is), clipped.
   */
  sentence(): string {
    const pool = this.blocks.flatMap(sentences);
    let out = pool.at(-1) ?? '';
    if (out.length < SHORT_SENTENCE && pool.length > 1) out = `${pool.at(-2) ?? ''} ${out}`;
    return clip(out);
  }
}
