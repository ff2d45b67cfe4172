/**
 * Pure: the decide step. An alt text becomes fixes (offset, length, text) at the exact spans
 * the finders recorded, escaped for where it goes; fixes are applied from the end of the text
 * backwards so earlier offsets stay valid. Nothing but the alt text changes: the rest of the
 * document is never re-serialised.
 */
import type { AttributeValueSpan, Fix, ImageFinding } from './types.js';

/** The text on one line: line breaks and whitespace runs as one space, trimmed. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

// Brackets end the description; `\` escapes; `*`, `_`, `` ` ``, `~` format (and vanish from
// the alt); `<` and `&` open HTML and entities; `|` ends a GFM table cell. MDX adds `{`, `}`.
const MARKDOWN_SPECIAL = /[\\[\]*_`~<>&|]/g;
const MDX_SPECIAL = /[\\[\]*_`~<>&|{}]/g;

/**
 * Text for a Markdown image description (`![HERE](…)`), so that the rendered alt is exactly
 * `text` on one line: every character Markdown (or MDX) would read as syntax is
 * backslash-escaped.
 */
export function escapeMarkdownDescription(text: string, mdx = false): string {
  return oneLine(text).replace(mdx ? MDX_SPECIAL : MARKDOWN_SPECIAL, (c) => `\\${c}`);
}

/**
 * Text for an attribute value between `quote`s in HTML (or MDX JSX, which decodes character
 * references the same way): `&` and the quote as references; `|` too inside Markdown, where a
 * GFM table row would end a cell at it.
 */
export function escapeAttribute(text: string, quote: '"' | "'" = '"', inMarkdown = false): string {
  let out = oneLine(text).replace(/&/g, '&amp;');
  out = quote === '"' ? out.replace(/"/g, '&quot;') : out.replace(/'/g, '&#39;');
  return inMarkdown ? out.replace(/\|/g, '&#124;') : out;
}

/** The fix that sets an attribute value in place (keeping its quotes), or adds `="…"`. */
function valueFix(value: AttributeValueSpan, alt: string, inMarkdown: boolean): Fix {
  if (value.quote === 'none')
    return { offset: value.start, length: 0, text: `="${escapeAttribute(alt, '"', inMarkdown)}"` };
  const quote = value.quote === '' ? '"' : value.quote;
  return {
    offset: value.start,
    length: value.end - value.start,
    text: `${quote}${escapeAttribute(alt, quote, inMarkdown)}${quote}`,
  };
}

/**
 * The fixes that give `image` the alt text `alt`. A collapsed or shortcut Markdown reference
 * (`![logo][]`, `![logo]`) becomes a full one (`![ALT][logo]`) so that its link still resolves.
 * An empty `alt` is only for HTML and JSX (`alt=""`); a Markdown description cannot say it.
 */
export function altFixes(image: ImageFinding, alt: string): Fix[] {
  const target = image.target;
  if (target.kind === 'markdown') {
    const text = escapeMarkdownDescription(alt, target.mdx);
    if (text === '') throw new Error('an empty Markdown image description is not a fix');
    const reference = target.reference;
    if (!reference) return [{ offset: target.start, length: target.end - target.start, text }];
    // The old description stays, as the label: `![logo]` → `![ALT][logo]`.
    const fixes: Fix[] = [{ offset: target.start, length: 0, text: `${text}][` }];
    if (reference.type === 'collapsed')
      fixes.push({ offset: reference.end - 2, length: 2, text: '' });
    return fixes;
  }
  const inMarkdown = target.kind === 'html' && target.inMarkdown;
  if (target.value) return [valueFix(target.value, alt, inMarkdown)];
  return [
    { offset: target.insertAt, length: 0, text: ` alt="${escapeAttribute(alt, '"', inMarkdown)}"` },
  ];
}

/** `text` with `fixes` applied, from the last backwards. Overlapping fixes are a bug: thrown. */
export function applyFixes(text: string, fixes: readonly Fix[]): string {
  const sorted = [...fixes].sort((a, b) => b.offset - a.offset || b.length - a.length);
  let out = text;
  let limit = Infinity;
  for (const fix of sorted) {
    if (fix.offset < 0 || fix.offset + fix.length > Math.min(limit, text.length))
      throw new Error(`overlapping or out-of-range fix at offset ${fix.offset}`);
    out = out.slice(0, fix.offset) + fix.text + out.slice(fix.offset + fix.length);
    limit = fix.offset;
  }
  return out;
}

/** An image and the alt text to give it. */
export interface AltChoice {
  image: ImageFinding;
  alt: string;
}

/** Every fix for a document's chosen alt texts, in document order. */
export function documentFixes(choices: readonly AltChoice[]): Fix[] {
  return choices
    .flatMap(({ image, alt }) => altFixes(image, alt))
    .sort((a, b) => a.offset - b.offset);
}
