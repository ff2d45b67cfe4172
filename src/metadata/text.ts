/**
 * Pure: the model's text made fit for a photo's metadata. It is written as the model gave it,
 * except that it must be valid Unicode (a lone surrogate, or the replacement character that a
 * decoder puts where the bytes were not UTF-8, means the answer was damaged on the way) and
 * that control characters are removed: XMP (XML) cannot hold most of them, and in a caption
 * they are never meant.
 */

// C0 but tab and newline, DEL, C1, and the XML non-characters U+FFFE and U+FFFF.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffe\uffff]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a text cannot be written, or undefined when it can. */
export function invalidText(text: string): string | undefined {
  if (LONE_SURROGATE.test(text)) return 'it is not valid UTF-8 (a lone surrogate)';
  if (text.includes('\ufffd'))
    return 'it is not valid UTF-8 (it holds U+FFFD, put where bytes could not be decoded)';
  return undefined;
}

/**
 * A description or alt text as it is written: line ends made `\n`, control characters (but
 * tab and newline) removed, and the whitespace around it trimmed. Check `invalidText()` first.
 */
export function cleanText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(CONTROL, '').trim();
}

/** A keyword as it is written: one line, runs of whitespace made one space, trimmed. */
export function cleanKeyword(text: string): string {
  return text.replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
}

/** Length in characters (code points), as the IPTC alt-text guidance counts them. */
export function characters(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Length in UTF-8 bytes, as IPTC-IIM limits count them. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
