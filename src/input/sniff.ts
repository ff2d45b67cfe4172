/**
 * Pure: what kind of image a byte buffer holds, from its magic numbers. Extensions lie
 * (a `.png` that is a JPEG, a text file named `.png`); the first bytes do not.
 */

export type ImageFormat =
  | 'jpeg'
  | 'png'
  | 'gif'
  | 'webp'
  | 'bmp'
  | 'tiff'
  | 'heic'
  | 'avif'
  | 'ico'
  | 'svg'
  | 'jxl'
  | 'psd';

export const MIME_BY_FORMAT: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  tiff: 'image/tiff',
  heic: 'image/heic',
  avif: 'image/avif',
  ico: 'image/x-icon',
  svg: 'image/svg+xml',
  jxl: 'image/jxl',
  psd: 'image/vnd.adobe.photoshop',
};

/** Formats every OpenAI-compatible vision API accepts as they are. */
export const SENDABLE_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'gif', 'webp'];

/** Formats this tool can decode and convert (see `prepare.ts`). */
export const CONVERTIBLE_FORMATS: readonly ImageFormat[] = ['heic', 'avif', 'tiff', 'bmp'];

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((b, i) => bytes[offset + i] === b);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

const HEIF_BRANDS = new Set([
  'heic',
  'heix',
  'heim',
  'heis',
  'hevc',
  'hevx',
  'mif1',
  'msf1',
  'mif2',
]);
const AVIF_BRANDS = new Set(['avif', 'avis']);

/** The image format of `bytes`, or undefined when they are not an image this tool knows. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39))
    return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (startsWith(bytes, [0x42, 0x4d]) && bytes.length >= 26 && isBmpHeader(bytes)) return 'bmp';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp') {
    // ISO-BMFF: the major brand, then compatible brands, say what is inside.
    const boxSize =
      ((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
    const end = Math.min(bytes.length, Math.max(16, boxSize));
    const brands = [ascii(bytes, 8, 12)];
    for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(bytes, at, at + 4));
    if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
    if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heic';
    return undefined;
  }
  if (
    startsWith(bytes, [0x00, 0x00, 0x01, 0x00]) &&
    bytes.length >= 6 &&
    (bytes[4] ?? 0) + (bytes[5] ?? 0) > 0
  )
    return 'ico';
  if (
    startsWith(bytes, [0xff, 0x0a]) ||
    startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])
  )
    return 'jxl';
  if (ascii(bytes, 0, 4) === '8BPS') return 'psd';
  if (looksLikeSvg(bytes)) return 'svg';
  return undefined;
}

function isBmpHeader(bytes: Uint8Array): boolean {
  // BITMAPFILEHEADER, then a DIB header whose size is one of the known ones.
  const dib =
    (bytes[14] ?? 0) |
    ((bytes[15] ?? 0) << 8) |
    ((bytes[16] ?? 0) << 16) |
    ((bytes[17] ?? 0) << 24);
  return [12, 40, 52, 56, 64, 108, 124].includes(dib);
}

function looksLikeSvg(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false })
    .decode(bytes.subarray(0, 1024))
    .trimStart();
  return /^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(head);
}

/** A few words on what non-image bytes look like, for the error message. */
export function describeNonImage(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'it is empty';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'it is a PDF document';
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return 'it is a ZIP archive';
  if (startsWith(bytes, [0x1f, 0x8b])) return 'it is gzip-compressed';
  const sample = bytes.subarray(0, 512);
  let printable = 0;
  for (const b of sample)
    if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128) printable++;
  if (printable === sample.length) {
    const text = new TextDecoder().decode(sample).trimStart();
    if (/^<(!doctype html|html)/i.test(text)) return 'it is an HTML page';
    return 'it looks like text';
  }
  return 'its bytes match no known image format';
}
