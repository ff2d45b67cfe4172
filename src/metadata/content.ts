/**
 * Pure: which answers can go into a photo's metadata, and what each becomes.
 *
 * - a plain prompt, `--preset caption` and `--preset ocr`: the description;
 * - `--preset alt-text`: the alt text (and the description, when the photo has none);
 * - `--preset tags`: keywords, merged with those already there;
 * - `--preset objects`: the object names as keywords (the counts are not written: no field
 *   holds them);
 * - a custom `--schema`: refused before any request, since nothing tells which of its
 *   properties is a caption.
 */
import { cleanKeyword, cleanText, invalidText } from './text.js';

/** What produced the answer: a preset's name, or `prompt` for a plain prompt. */
export type Source = 'caption' | 'ocr' | 'prompt' | 'alt-text' | 'tags' | 'objects';

export const SOURCES: readonly Source[] = [
  'caption',
  'ocr',
  'prompt',
  'alt-text',
  'tags',
  'objects',
];

/** The sources whose answer is the description: the latest one written owns it. */
export const DESCRIPTION_SOURCES: readonly Source[] = ['caption', 'ocr', 'prompt'];

export type Content =
  | { kind: 'description'; source: Source; text: string }
  | { kind: 'alt-text'; source: Source; text: string }
  | { kind: 'keywords'; source: Source; keywords: string[] }
  /** Nothing to write: an empty OCR, a decorative image's empty alt text, no tags. */
  | { kind: 'none'; source: Source; reason: string };

/**
 * The source of a run's answers, or the reason they cannot be written (one line, for a usage
 * error before any request is sent).
 */
export function writeBackSource(opts: {
  preset: string | undefined;
  schema: boolean;
}): { ok: true; source: Source } | { ok: false; problem: string } {
  if (opts.preset !== undefined) {
    const source = SOURCES.find((s) => s === opts.preset && s !== 'prompt');
    if (source) return { ok: true, source };
    return { ok: false, problem: `--write-metadata cannot write --preset ${opts.preset}` };
  }
  if (opts.schema) {
    return {
      ok: false,
      problem:
        '--write-metadata cannot write a custom --schema answer (nothing says which property is a ' +
        'caption); use --preset caption, alt-text, tags, ocr or objects, or a plain prompt',
    };
  }
  return { ok: true, source: 'prompt' };
}

/** An answer that cannot be written at all (damaged text, or not the shape the source gives). */
export class UnwritableAnswer extends Error {}

/**
 * What an answer becomes. `answer` is the answer's natural value, as `--json` shows it in
 * `text`: a string for a plain prompt, caption, ocr and alt-text, a list of strings for tags,
 * a list of `{name, count}` for objects. Throws `UnwritableAnswer` for text that is not valid
 * UTF-8 or an answer of the wrong shape.
 */
export function contentOf(source: Source, answer: unknown): Content {
  switch (source) {
    case 'caption':
    case 'ocr':
    case 'prompt':
    case 'alt-text': {
      if (typeof answer !== 'string') throw new UnwritableAnswer('the answer is not text');
      const problem = invalidText(answer);
      if (problem) throw new UnwritableAnswer(`the answer cannot be written: ${problem}`);
      const text = cleanText(answer);
      if (text === '') {
        const reason =
          source === 'alt-text'
            ? 'the alt text is empty (a decorative image)'
            : source === 'ocr'
              ? 'the image holds no text'
              : 'the answer is empty';
        return { kind: 'none', source, reason };
      }
      return { kind: source === 'alt-text' ? 'alt-text' : 'description', source, text };
    }
    case 'tags':
    case 'objects': {
      if (!Array.isArray(answer)) throw new UnwritableAnswer('the answer is not a list');
      const names = answer.map((item: unknown) =>
        source === 'objects' && typeof item === 'object' && item !== null
          ? (item as { name?: unknown }).name
          : item,
      );
      const keywords: string[] = [];
      for (const name of names) {
        if (typeof name !== 'string') throw new UnwritableAnswer('a keyword is not text');
        const problem = invalidText(name);
        if (problem) throw new UnwritableAnswer(`a keyword cannot be written: ${problem}`);
        keywords.push(cleanKeyword(name));
      }
      const merged = mergeKeywords([], keywords).added;
      if (merged.length === 0) return { kind: 'none', source, reason: 'there are no keywords' };
      return { kind: 'keywords', source, keywords: merged };
    }
  }
}

/**
 * Keywords added to a list: those already there are kept as they are (order, spelling and
 * all), and each new one is appended unless the list holds it already, compared without
 * regard to case. Empty keywords are dropped.
 */
export function mergeKeywords(
  existing: readonly string[],
  incoming: readonly string[],
): { merged: string[]; added: string[] } {
  const seen = new Set(existing.map(foldCase));
  const added: string[] = [];
  for (const keyword of incoming) {
    const key = foldCase(keyword);
    if (keyword === '' || seen.has(key)) continue;
    seen.add(key);
    added.push(keyword);
  }
  return { merged: [...existing, ...added], added };
}

function foldCase(text: string): string {
  return text.normalize('NFC').toLowerCase();
}
