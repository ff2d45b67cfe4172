import { describe, expect, it } from 'vitest';
import {
  CONVERTIBLE_FORMATS,
  describeNonImage,
  MIME_BY_FORMAT,
  SENDABLE_FORMATS,
  sniffFormat,
} from '../../src/input/sniff.js';
import { makeImage } from '../helpers/images.js';
import type { Format } from '../helpers/images.js';

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);
const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** A minimal BMP: 14-byte BITMAPFILEHEADER, a DIB header (40 bytes by default), one 24-bit pixel. */
function minimalBmp(dibSize = 40): Uint8Array {
  const pixels = 4; // one BGR pixel padded to 4 bytes
  const buf = Buffer.alloc(14 + dibSize + pixels);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2); // file size
  buf.writeUInt32LE(0, 6); // reserved
  buf.writeUInt32LE(14 + dibSize, 10); // pixel data offset
  buf.writeUInt32LE(dibSize, 14); // DIB header size
  if (dibSize === 12) {
    // BITMAPCOREHEADER (OS/2): 16-bit width and height.
    buf.writeUInt16LE(1, 18);
    buf.writeUInt16LE(1, 20);
    buf.writeUInt16LE(1, 22);
    buf.writeUInt16LE(24, 24);
  } else {
    buf.writeInt32LE(1, 18); // width
    buf.writeInt32LE(1, 22); // height
    buf.writeUInt16LE(1, 26); // planes
    buf.writeUInt16LE(24, 28); // bits per pixel
    buf.writeUInt32LE(0, 30); // BI_RGB
    buf.writeUInt32LE(pixels, 34); // image size
  }
  buf.writeUInt8(0xff, 14 + dibSize + 2); // a red pixel
  return new Uint8Array(buf);
}

describe('sniffFormat: images generated with sharp', () => {
  const cases: [Format, string][] = [
    ['png', 'png'],
    ['jpeg', 'jpeg'],
    ['webp', 'webp'],
    ['gif', 'gif'],
    ['tiff', 'tiff'],
    ['avif', 'avif'],
  ];

  it.each(cases)('%s', async (format, expected) => {
    const bytes = await makeImage(format);
    expect(sniffFormat(bytes)).toBe(expected);
    const withAlpha = await makeImage(format, { alpha: true, width: 7, height: 3 });
    expect(sniffFormat(withAlpha)).toBe(expected);
  });

  it('each sniffed format has a MIME type', async () => {
    const png = sniffFormat(await makeImage('png'))!;
    expect(MIME_BY_FORMAT[png]).toBe('image/png');
    const jpeg = sniffFormat(await makeImage('jpeg'))!;
    expect(MIME_BY_FORMAT[jpeg]).toBe('image/jpeg');
    const avif = sniffFormat(await makeImage('avif'))!;
    expect(MIME_BY_FORMAT[avif]).toBe('image/avif');
  });

  it('the sendable and convertible lists', () => {
    expect([...SENDABLE_FORMATS].sort()).toEqual(['gif', 'jpeg', 'png', 'webp']);
    expect([...CONVERTIBLE_FORMATS].sort()).toEqual(['avif', 'bmp', 'heic', 'tiff']);
  });

  it('a file cut to its first bytes is still recognised from its signature', async () => {
    const png = await makeImage('png');
    expect(sniffFormat(png.subarray(0, 8))).toBe('png');
    expect(sniffFormat(png.subarray(0, 7))).toBeUndefined();
    const jpeg = await makeImage('jpeg');
    expect(sniffFormat(jpeg.subarray(0, 3))).toBe('jpeg');
    expect(sniffFormat(jpeg.subarray(0, 2))).toBeUndefined();
  });
});

describe('sniffFormat: hand-built headers', () => {
  it('a minimal BMP (file header + 40-byte DIB header)', () => {
    const bmp = minimalBmp();
    expect(bmp.length).toBe(58);
    expect(sniffFormat(bmp)).toBe('bmp');
  });

  it.each([12, 40, 52, 56, 64, 108, 124])('a BMP with a %i-byte DIB header', (size) => {
    expect(sniffFormat(minimalBmp(size))).toBe('bmp');
  });

  it('"BM" followed by anything else is not a BMP', () => {
    expect(
      sniffFormat(bytesOf('BMW is a car maker, not a bitmap. And this is text.')),
    ).toBeUndefined();
    expect(sniffFormat(minimalBmp(41))).toBeUndefined();
    expect(sniffFormat(minimalBmp().subarray(0, 20))).toBeUndefined();
  });

  it('HEIC: ftyp box with brand heic', () => {
    const heic = latin1('\0\0\0\x18ftypheic\0\0\0\0mif1heic');
    expect(heic.length).toBe(24);
    expect(sniffFormat(heic)).toBe('heic');
  });

  it('HEIF: major brand mif1, compatible heic', () => {
    expect(sniffFormat(latin1('\0\0\0\x18ftypmif1\0\0\0\0mif1heic'))).toBe('heic');
  });

  it('an AVIF brand among the compatible ones makes it AVIF', () => {
    expect(sniffFormat(latin1('\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf'))).toBe('avif');
    expect(sniffFormat(latin1('\0\0\0\x18ftypavis\0\0\0\0avismsf1'))).toBe('avif');
  });

  it('an ISO-BMFF file that is a video is not an image', () => {
    expect(sniffFormat(latin1('\0\0\0\x18ftypisom\0\0\0\x01isomiso2'))).toBeUndefined();
    expect(sniffFormat(latin1('\0\0\0\x14ftypqt  \0\0\0\0qt  '))).toBeUndefined();
  });

  it('brands past the end of the ftyp box are not read', () => {
    // Box size 16: no compatible brands; the "heic" after it belongs to the next box.
    expect(sniffFormat(latin1('\0\0\0\x10ftypisom\0\0\0\0heic'))).toBeUndefined();
  });

  it('ICO, JPEG XL and PSD signatures', () => {
    expect(sniffFormat(latin1('\0\0\x01\0\x01\0\x10\x10'))).toBe('ico');
    expect(sniffFormat(latin1('\0\0\x01\0\0\0'))).toBeUndefined();
    expect(sniffFormat(latin1('\xff\x0a\xfa\x7f'))).toBe('jxl');
    expect(sniffFormat(latin1('\0\0\0\x0cJXL \x0d\x0a\x87\x0a'))).toBe('jxl');
    expect(sniffFormat(latin1('8BPS\0\x01\0\0\0\0\0\0'))).toBe('psd');
  });

  it('GIF87a and GIF89a, but not GIF8x', () => {
    expect(sniffFormat(latin1('GIF87a\x01\0\x01\0'))).toBe('gif');
    expect(sniffFormat(latin1('GIF89a\x01\0\x01\0'))).toBe('gif');
    expect(sniffFormat(latin1('GIF8xa\x01\0\x01\0'))).toBeUndefined();
  });

  it('TIFF in both byte orders', () => {
    expect(sniffFormat(latin1('II*\0\x08\0\0\0'))).toBe('tiff');
    expect(sniffFormat(latin1('MM\0*\0\0\0\x08'))).toBe('tiff');
  });

  it('RIFF that is not WebP (a WAV file) is not an image', () => {
    expect(sniffFormat(latin1('RIFF\x24\0\0\0WAVEfmt '))).toBeUndefined();
  });
});

describe('sniffFormat: SVG', () => {
  it.each([
    ['bare', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'],
    [
      'with an XML declaration',
      '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    ],
    [
      'with a comment and a doctype',
      '<?xml version="1.0"?>\n<!-- Generator: Inkscape -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg>\n</svg>',
    ],
    ['leading whitespace, upper case', '\n\n   <SVG>\n</SVG>'],
  ])('%s', (_name, text) => {
    expect(sniffFormat(bytesOf(text))).toBe('svg');
  });

  it('an HTML page or an XML document that is not SVG is not an image', () => {
    expect(
      sniffFormat(bytesOf('<!DOCTYPE html><html><body><svg></svg></body></html>')),
    ).toBeUndefined();
    expect(sniffFormat(bytesOf('<?xml version="1.0"?><rss version="2.0"></rss>'))).toBeUndefined();
    expect(sniffFormat(bytesOf('<svgfoo/>'))).toBeUndefined();
  });
});

describe('non-images', () => {
  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'it is empty'],
    ['a PDF', latin1('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n'), 'it is a PDF document'],
    ['a ZIP archive', latin1('PK\x03\x04\x14\0\0\0\x08\0'), 'it is a ZIP archive'],
    ['gzip', latin1('\x1f\x8b\x08\0\0\0\0\0\0\x03'), 'it is gzip-compressed'],
    [
      'plain text',
      bytesOf('Hello, this is a README.\nIt is not an image.\n'),
      'it looks like text',
    ],
    ['UTF-8 text', bytesOf('Ceci n’est pas une pipe. 这不是烟斗。'), 'it looks like text'],
    [
      'an HTML page',
      bytesOf('<!DOCTYPE html>\n<html><head><title>404</title></head></html>'),
      'it is an HTML page',
    ],
    [
      'an HTML page without a doctype',
      bytesOf('  <html lang="en"><body>hi</body></html>'),
      'it is an HTML page',
    ],
    [
      'random binary',
      latin1('\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10'),
      'its bytes match no known image format',
    ],
  ];

  it.each(cases)('%s is not an image, and is described', (_name, bytes, words) => {
    expect(sniffFormat(bytes)).toBeUndefined();
    expect(describeNonImage(bytes)).toBe(words);
  });
});
