/**
 * Pure: the request for an image's alt text, and the check every answer passes before it is
 * written. The rules are WCAG 2.2 SC 1.1.1 and the W3C WAI images tutorial: the purpose over
 * the pixels, concise, no "image of", the text itself when the image is text, the action or
 * destination when the image is a link or a button.
 */
import type { ImageGroup } from './sources.js';
import type { ImageContext, ImageFinding } from './types.js';

/** Longest alt text written (IPTC's alt text field; WCAG sets no number). */
export const MAX_ALT = 250;
/** What the prompt asks for: short enough that the hard limit is rarely reached. */
export const TARGET_ALT = 150;
/** Places of one image whose context goes into its prompt. */
const MAX_PLACES = 3;

const RULES = [
  `Write the alt text for this image, as it will appear in the page's HTML alt attribute. Answer with the alt text only: one line, no quotes, at most ${TARGET_ALT} characters.`,
  'Say what the image is for on this page, not every detail: the information it gives or the job it does.',
  'If the image is a link or a button, say where it goes or what it does ("Download the report", "Home").',
  'If the image is mainly text (a logo, a heading, a screenshot of a message), give that text; for a logo, the name alone.',
  'For a chart or diagram, give its main point in one sentence.',
  'Do not start with "image of", "picture of", "photo of" or "graphic of": screen readers already say it is an image.',
  'Put the most important words first. Do not repeat the text that is already next to the image.',
].join('\n');

/** The context lines for one place the image is used. */
function placeLines(context: ImageContext): string[] {
  const lines: string[] = [];
  if (context.heading) lines.push(`Section heading: ${context.heading}`);
  let before = context.before ?? '';
  // The heading is given on its own line: not twice.
  if (context.heading && before.startsWith(context.heading))
    before = before.slice(context.heading.length).trim();
  if (before) lines.push(`Text just before the image: ${before}`);
  if (context.caption) lines.push(`Caption below the image (do not repeat it): ${context.caption}`);
  if (context.title) lines.push(`Title (tooltip) of the image: ${context.title}`);
  if (context.role === 'button') lines.push('The image is a submit button of a form.');
  if (context.role === 'map area')
    lines.push(`This is one clickable area of an image map, linking to: ${context.link ?? ''}`);
  else if (context.link) lines.push(`The image is a link to: ${context.link}`);
  return lines;
}

/** The prompt for one image, with the context of (up to three of) the places it is used. */
export function altPrompt(group: Pick<ImageGroup, 'findings'>): string {
  const places = group.findings.slice(0, MAX_PLACES).map((f: ImageFinding) => ({
    where: `${f.file}:${f.line}`,
    lines: placeLines(f.context),
  }));
  const withContext = places.filter((p) => p.lines.length > 0);
  if (withContext.length === 0) return RULES;
  const parts = [RULES, ''];
  parts.push(
    withContext.length === 1
      ? 'Where the image is used:'
      : `The same image is used in ${group.findings.length} places; one alt text must fit them all:`,
  );
  for (const place of withContext) {
    if (withContext.length > 1) parts.push(`- ${place.where}`);
    parts.push(...place.lines.map((l) => (withContext.length > 1 ? `  ${l}` : l)));
  }
  return parts.join('\n');
}

/** A checked alt text, or why an answer cannot be one. */
export type FinalAlt =
  { ok: true; text: string; shortened: boolean } | { ok: false; reason: string };

const LABEL = /^(?:alt(?:[ -]?text)?|description)\s*:\s*/i;
const REDUNDANT =
  /^(?:an?\s+|the\s+)?(?:image|picture|photo(?:graph)?|graphic|illustration|icon)\s+(?:of|showing|depicting)\s+/i;
const QUOTES: Record<string, string> = {
  '"': '"',
  "'": "'",
  '“': '”',
  '‘': '’',
  '«': '»',
  '`': '`',
};

/**
 * The final check on a model's answer: whitespace squashed to one line; a leading
 * "Alt text:" label, wrapping quotes and a leading "Image of" removed; at most 250 characters,
 * cut after the last whole sentence that fits, else at the last word with "…". An empty answer
 * is refused: whether an image is decorative is the author's call, not the model's.
 */
export function finalizeAlt(answer: string): FinalAlt {
  let text = answer.replace(/\s+/g, ' ').trim();
  text = text.replace(LABEL, '');
  for (;;) {
    const close = QUOTES[text[0] ?? ''];
    if (close === undefined || text.length < 2 || !text.endsWith(close)) break;
    text = text.slice(1, -1).trim();
  }
  const redundant = REDUNDANT.exec(text);
  if (redundant) {
    const rest = text.slice(redundant[0].length);
    text = rest.charAt(0).toUpperCase() + rest.slice(1);
  }
  if (text === '' || /^(?:""|''|none|n\/a|decorative)\.?$/i.test(text))
    return { ok: false, reason: 'the model gave no alt text' };
  if (text.length <= MAX_ALT) return { ok: true, text, shortened: false };
  // The lookahead may see the character just past the limit: a sentence ending at 250 fits.
  const sentence = /^.*[.!?](?=\s)/s.exec(text.slice(0, MAX_ALT + 1))?.[0] ?? '';
  if (sentence.length >= 40) return { ok: true, text: sentence, shortened: true };
  const word = text.slice(0, MAX_ALT).replace(/\s+\S*$/, '');
  return { ok: true, text: `${word.replace(/[\s,;:–—-]+$/, '')}…`, shortened: true };
}
