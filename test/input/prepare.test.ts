/**
 * Image preparation (src/input/prepare.ts) on real bytes: sharp makes the common formats, the
 * fixtures hold HEIC and BMP. Every output is decoded again with sharp to check its format,
 * size, pixels and metadata; nothing is mocked.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkRequestSize, MAX_REQUEST_IMAGE_BYTES } from '../../src/commands/job.js';
import type { PreparedImage } from '../../src/commands/job.js';
import { InputError } from '../../src/errors.js';
import type { ImageBytes } from '../../src/input/images.js';
import { MAX_IMAGE_BYTES, prepareBytes } from '../../src/input/prepare.js';
import type { PrepareOptions, PreparedBytes } from '../../src/input/prepare.js';
import { MIME_BY_FORMAT, sniffFormat } from '../../src/input/sniff.js';
import { ROOT } from '../helpers/cli.js';
import {
  BLUE,
  decode,
  expectColour,
  expectNoMetadata,
  expectSplit,
  expectTurnedClockwise,
  GREEN,
  hasGpsLatitude,
  noise,
  phoneJpeg,
  RED,
  splitRaw,
  type Rgb,
} from '../helpers/pixels.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/images');

function fixture(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, name));
}

function bytesOf(name: string, data: Buffer): ImageBytes {
  const format = sniffFormat(data);
  if (!format) throw new Error(`${name}: not an image`);
  return { name, data, format, mime: MIME_BY_FORMAT[format] };
}

function prepare(name: string, data: Buffer, opts: PrepareOptions = {}): Promise<PreparedBytes> {
  return prepareBytes(bytesOf(name, data), opts);
}

let jpeg: Buffer;
let png: Buffer;
let pngAlpha: Buffer;
let webp: Buffer;
let gif: Buffer;
let tiff: Buffer;
let avif: Buffer;
let avifAlpha: Buffer;
let animatedGif: Buffer;
let photo: Buffer;

beforeAll(async () => {
  jpeg = await splitRaw(96, 64).jpeg().toBuffer();
  png = await splitRaw(96, 64).png().toBuffer();
  pngAlpha = await splitRaw(96, 64, { alphaBottom: true }).png().toBuffer();
  webp = await splitRaw(96, 64).webp({ lossless: true }).toBuffer();
  gif = await splitRaw(96, 64).gif().toBuffer();
  tiff = await splitRaw(96, 64).tiff().toBuffer();
  avif = await splitRaw(96, 64).avif().toBuffer();
  avifAlpha = await splitRaw(96, 64, { alphaBottom: true }).avif().toBuffer();
  // Three 40×30 frames, red, green, blue, stacked and cut with pageHeight.
  const frame = (c: Rgb) => Buffer.alloc(40 * 30 * 3).map((_, i) => c[i % 3]!);
  animatedGif = await sharp(Buffer.concat([frame(RED), frame(GREEN), frame(BLUE)]), {
    raw: { width: 40, height: 90, channels: 3, pageHeight: 30 },
  })
    .gif({ loop: 0, delay: [100, 100, 100] })
    .toBuffer();
  photo = await phoneJpeg(4032, 3024, 6);
});

describe('the generated inputs are what the tests think', () => {
  it('formats, alpha, animation and metadata', async () => {
    expect(sniffFormat(jpeg)).toBe('jpeg');
    expect(sniffFormat(tiff)).toBe('tiff');
    expect(sniffFormat(avif)).toBe('avif');
    expect(sniffFormat(fixture('split.heic'))).toBe('heic');
    expect(sniffFormat(fixture('split-alpha.bmp'))).toBe('bmp');
    expect((await sharp(png).metadata()).hasAlpha).toBe(false);
    expect((await sharp(avif).metadata()).hasAlpha).toBe(false);
    expect((await sharp(avifAlpha).metadata()).hasAlpha).toBe(true);
    expect((await sharp(animatedGif).metadata()).pages).toBe(3);
    const meta = await sharp(photo).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([4032, 3024, 6]);
    expect(meta.exif).toBeDefined();
    expect(photo.includes('AcmePhone')).toBe(true);
    expect(hasGpsLatitude(photo)).toBe(true);
  });
});

describe('formats', () => {
  it.each([
    ['JPEG', () => jpeg, 'jpeg'],
    ['PNG', () => png, 'png'],
    ['PNG with alpha', () => pngAlpha, 'png'],
    ['WebP', () => webp, 'webp'],
    ['static GIF', () => gif, 'gif'],
  ] as const)('%s is sent in its own format, byte for byte', async (_name, input, format) => {
    const data = input();
    const r = await prepare(`x.${format}`, data);
    expect(r.mime).toBe(`image/${format}`);
    expect(Buffer.from(r.data).equals(data)).toBe(true);
    expect(r.sent).toEqual({ format, width: 96, height: 64, bytes: data.length });
    expect(r.original).toEqual(r.sent);
    expect(r.notes).toEqual([]);
  });

  it('HEIC → JPEG, 96×64, left red and right blue', async () => {
    const data = fixture('split.heic');
    const r = await prepare('split.heic', data);
    expect(r.mime).toBe('image/jpeg');
    expect((await sharp(r.data).metadata()).format).toBe('jpeg');
    expect(r.original).toEqual({ format: 'heic', width: 96, height: 64, bytes: data.length });
    expect(r.sent).toEqual({ format: 'jpeg', width: 96, height: 64, bytes: r.data.length });
    await expectSplit(r.data);
  });

  it('HEIC with alpha → PNG with alpha (bottom half transparent)', async () => {
    const r = await prepare('split-alpha.heic', fixture('split-alpha.heic'));
    expect(r.mime).toBe('image/png');
    const meta = await sharp(r.data).metadata();
    expect([meta.format, meta.hasAlpha]).toEqual(['png', true]);
    expect(r.sent.format).toBe('png');
    await expectSplit(r.data, { alphaBottom: true });
  });

  it('24-bit BMP → JPEG, the right way up and in RGB order', async () => {
    const data = fixture('split.bmp');
    const r = await prepare('split.bmp', data);
    expect(r.mime).toBe('image/jpeg');
    expect((await sharp(r.data).metadata()).format).toBe('jpeg');
    expect(r.original).toEqual({ format: 'bmp', width: 96, height: 64, bytes: data.length });
    expect(r.sent).toMatchObject({ format: 'jpeg', width: 96, height: 64 });
    await expectSplit(r.data);
  });

  it('32-bit BMP with alpha → PNG with alpha (transparent half at the bottom, not flipped)', async () => {
    const r = await prepare('split-alpha.bmp', fixture('split-alpha.bmp'));
    expect(r.mime).toBe('image/png');
    const meta = await sharp(r.data).metadata();
    expect([meta.format, meta.hasAlpha]).toEqual(['png', true]);
    await expectSplit(r.data, { alphaBottom: true });
  });

  it('AVIF → JPEG', async () => {
    const r = await prepare('x.avif', avif);
    expect(r.mime).toBe('image/jpeg');
    expect((await sharp(r.data).metadata()).format).toBe('jpeg');
    expect(r.original).toMatchObject({ format: 'avif', width: 96, height: 64 });
    expect(r.sent).toMatchObject({ format: 'jpeg', width: 96, height: 64 });
    await expectSplit(r.data);
  });

  it('AVIF with transparency → PNG with alpha', async () => {
    const r = await prepare('x.avif', avifAlpha);
    expect(r.mime).toBe('image/png');
    expect((await sharp(r.data).metadata()).hasAlpha).toBe(true);
    await expectSplit(r.data, { alphaBottom: true });
  });

  it('AVIF with an alpha channel that is fully opaque has no transparency → JPEG', async () => {
    // README: "converted to JPEG, or to PNG when the image has transparency" (as HEIC and BMP
    // are: their alpha is checked pixel by pixel).
    const opaqueAlpha = await splitRaw(96, 64).ensureAlpha().avif().toBuffer();
    expect((await sharp(opaqueAlpha).metadata()).hasAlpha).toBe(true);
    const r = await prepare('opaque-alpha.avif', opaqueAlpha);
    expect(r.mime).toBe('image/jpeg');
    expect(r.sent.format).toBe('jpeg');
    await expectSplit(r.data);
  });

  it('TIFF → JPEG', async () => {
    const r = await prepare('x.tiff', tiff);
    expect(r.mime).toBe('image/jpeg');
    expect((await sharp(r.data).metadata()).format).toBe('jpeg');
    expect(r.original).toMatchObject({ format: 'tiff', width: 96, height: 64 });
    await expectSplit(r.data);
  });

  it('animated GIF → its first frame only, as PNG or JPEG, with a notice naming the frames', async () => {
    const r = await prepare('spin.gif', animatedGif);
    expect(['image/png', 'image/jpeg']).toContain(r.mime);
    const meta = await sharp(r.data).metadata();
    expect(meta.format).toBe(r.mime === 'image/png' ? 'png' : 'jpeg');
    expect(meta.pages ?? 1).toBe(1);
    expect([meta.width, meta.height]).toEqual([40, 30]);
    expect(r.original).toMatchObject({ format: 'gif', width: 40, height: 30 });
    expect(r.sent).toMatchObject({ width: 40, height: 30 });
    const d = await decode(r.data);
    expectColour(d.at(20, 15), RED, 255, 50);
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(/^spin\.gif: .*animated.*\b3 frames\b/i);
  });

  it('animated WebP → its first frame, still WebP, with a notice', async () => {
    const frames = await sharp(animatedGif, { pages: -1 }).webp({ lossless: true }).toBuffer();
    expect((await sharp(frames).metadata()).pages).toBe(3);
    const r = await prepare('spin.webp', frames);
    expect(r.mime).toBe('image/webp');
    const meta = await sharp(r.data).metadata();
    expect([meta.format, meta.pages ?? 1, meta.width, meta.height]).toEqual(['webp', 1, 40, 30]);
    expectColour((await decode(r.data)).at(20, 15), RED, 255, 50);
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(/^spin\.webp: .*animated.*\b3 frames\b/i);
  });

  it('a multi-page TIFF → its first page as JPEG, with a notice', async () => {
    const pages = await sharp(animatedGif, { pages: -1 }).removeAlpha().tiff().toBuffer();
    expect((await sharp(pages).metadata()).pages).toBe(3);
    const r = await prepare('scan.tiff', pages);
    expect(r.mime).toBe('image/jpeg');
    const meta = await sharp(r.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 40, 30]);
    expect(r.original).toMatchObject({ format: 'tiff', width: 40, height: 30 });
    expectColour((await decode(r.data)).at(20, 15), RED, 255, 50);
    expect(r.notes).toEqual([expect.stringMatching(/^scan\.tiff: 3 pages/)]);
  });

  it('a data URL or stdin name is used in notes and errors ("standard input" for "-")', async () => {
    await expect(prepareBytes(bytesOf('-', jpeg.subarray(0, 200)), {})).rejects.toThrow(
      /^standard input: /,
    );
    const r = await prepareBytes(bytesOf('-', animatedGif), {});
    expect(r.notes[0]).toMatch(/^standard input: animated/);
  });
});

describe('orientation and metadata', () => {
  it('a 4032×3024 photo with orientation 6 and GPS arrives upright, 768×1024, with no metadata at all', async () => {
    const r = await prepare('IMG_0001.jpg', photo);
    expect(r.mime).toBe('image/jpeg');
    const meta = await sharp(r.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 768, 1024]);
    expect(r.original).toEqual({
      format: 'jpeg',
      width: 3024,
      height: 4032,
      bytes: photo.length,
    });
    expect(r.sent).toEqual({ format: 'jpeg', width: 768, height: 1024, bytes: r.data.length });
    await expectNoMetadata(r.data);
    expectTurnedClockwise(await decode(r.data));
  });

  it('a landscape 1024×768 with orientation 6 is turned to 768×1024 (no resize needed)', async () => {
    const data = await phoneJpeg(1024, 768, 6);
    const r = await prepare('turned.jpg', data);
    expect(r.original).toMatchObject({ width: 768, height: 1024 });
    expect(r.sent).toMatchObject({ format: 'jpeg', width: 768, height: 1024 });
    await expectNoMetadata(r.data);
    expectTurnedClockwise(await decode(r.data));
  });

  it('turning and scaling are one step: --max-size 300 and detail low on the rotated photo', async () => {
    const small = await prepare('IMG_0001.jpg', photo, { maxSize: 300 });
    expect(small.sent).toMatchObject({ width: 225, height: 300 });
    expectTurnedClockwise(await decode(small.data));
    const low = await prepare('IMG_0001.jpg', photo, { detail: 'low' });
    expect(low.sent).toMatchObject({ width: 384, height: 512 });
    await expectNoMetadata(low.data);
    expectTurnedClockwise(await decode(low.data));
  });

  it('keepMetadata keeps EXIF and GPS, and still turns the picture upright', async () => {
    const r = await prepare('IMG_0001.jpg', photo, { keepMetadata: true });
    const meta = await sharp(r.data).metadata();
    expect([meta.width, meta.height]).toEqual([768, 1024]);
    expect(meta.exif).toBeDefined();
    expect(meta.orientation ?? 1).toBe(1);
    expect(Buffer.from(r.data).includes('AcmePhone')).toBe(true);
    expect(hasGpsLatitude(r.data)).toBe(true);
    expectTurnedClockwise(await decode(r.data));
  });

  it('an image of the right size with metadata is re-encoded without it', async () => {
    const data = await phoneJpeg(200, 150, 1);
    expect((await sharp(data).metadata()).exif).toBeDefined();
    const r = await prepare('exif.jpg', data);
    expect(Buffer.from(r.data).equals(data)).toBe(false);
    expect(r.sent).toMatchObject({ format: 'jpeg', width: 200, height: 150 });
    await expectNoMetadata(r.data);
  });

  it('with keepMetadata, that same image needs no change: sent byte for byte', async () => {
    const data = await phoneJpeg(200, 150, 1);
    const r = await prepare('exif.jpg', data, { keepMetadata: true });
    expect(Buffer.from(r.data).equals(data)).toBe(true);
    expect(r.sent).toBe(r.original);
  });

  it('a PNG whose EXIF says to turn it is turned, with --keep-metadata too', async () => {
    const turned = await splitRaw(60, 40).png().withMetadata({ orientation: 6 }).toBuffer();
    for (const keepMetadata of [false, true]) {
      const r = await prepare('turned.png', turned, { keepMetadata });
      expect(r.sent, String(keepMetadata)).toMatchObject({ format: 'png', width: 40, height: 60 });
      expect((await sharp(r.data).metadata()).orientation ?? 1).toBe(1);
    }
  });

  it('XMP is removed from a PNG of the right size', async () => {
    const xmp =
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
      '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>SecretAuthor</dc:creator>' +
      '</rdf:Description></rdf:RDF></x:xmpmeta>';
    const data = await splitRaw(96, 64).png().withXmp(xmp).toBuffer();
    expect((await sharp(data).metadata()).xmp).toBeDefined();
    const r = await prepare('xmp.png', data);
    expect(r.mime).toBe('image/png');
    expect(r.sent).toMatchObject({ format: 'png', width: 96, height: 64 });
    expect((await sharp(r.data).metadata()).xmp).toBeUndefined();
    expect(Buffer.from(r.data).includes('SecretAuthor')).toBe(false);
    await expectSplit(r.data);
  });
});

describe('size', () => {
  let wide: Buffer;
  beforeAll(async () => {
    wide = await splitRaw(4000, 1000).jpeg().toBuffer();
  });

  it.each(['high', 'auto', undefined] as const)(
    'detail %s: 4000×1000 → 2048×512 (fit 2048, short side already ≤ 768)',
    async (detail) => {
      const r = await prepare('wide.jpg', wide, { detail });
      const meta = await sharp(r.data).metadata();
      expect([meta.width, meta.height]).toEqual([2048, 512]);
      expect(r.sent).toMatchObject({ format: 'jpeg', width: 2048, height: 512 });
      expect(r.original).toEqual({ format: 'jpeg', width: 4000, height: 1000, bytes: wide.length });
    },
  );

  it('detail high: 4032×3024 → 1024×768 (short side 768)', async () => {
    const data = await splitRaw(4032, 3024).jpeg().toBuffer();
    const r = await prepare('big.jpg', data, { detail: 'high' });
    expect(r.sent).toMatchObject({ width: 1024, height: 768 });
  });

  it('detail low: fit in 512×512', async () => {
    const r = await prepare('wide.jpg', wide, { detail: 'low' });
    const meta = await sharp(r.data).metadata();
    expect([meta.width, meta.height]).toEqual([512, 128]);
    expect(r.sent).toMatchObject({ width: 512, height: 128 });
  });

  it('detail low never scales up: a 100×80 image is sent byte for byte', async () => {
    const small = await splitRaw(100, 80).png().toBuffer();
    const r = await prepare('small.png', small, { detail: 'low' });
    expect(Buffer.from(r.data).equals(small)).toBe(true);
    expect(r.sent).toEqual({ format: 'png', width: 100, height: 80, bytes: small.length });
  });

  it('--max-size 300 makes the long edge 300 and replaces the detail rule', async () => {
    for (const detail of [undefined, 'low', 'high'] as const) {
      const r = await prepare('wide.jpg', wide, { detail, maxSize: 300 });
      const meta = await sharp(r.data).metadata();
      expect([meta.width, meta.height], String(detail)).toEqual([300, 75]);
    }
    const tall = await splitRaw(1000, 4000).jpeg().toBuffer();
    const r = await prepare('tall.jpg', tall, { maxSize: 300 });
    expect(r.sent).toMatchObject({ width: 75, height: 300 });
  });

  it('--max-size larger than the detail rule allows is what counts', async () => {
    const r = await prepare('wide.jpg', wide, { maxSize: 3000 });
    expect(r.sent).toMatchObject({ width: 3000, height: 750 });
  });

  it('--max-size never scales up: a small image with no metadata is sent byte for byte', async () => {
    const r = await prepare('x.png', png, { maxSize: 300 });
    expect(Buffer.from(r.data).equals(png)).toBe(true);
  });

  it('the 768-px short side is exact: 769×769 → 768×768; 768×768 is sent byte for byte', async () => {
    const over = await splitRaw(769, 769).png().toBuffer();
    const r = await prepare('over.png', over);
    expect(r.sent).toMatchObject({ format: 'png', width: 768, height: 768 });
    const at = await splitRaw(768, 768).png().toBuffer();
    const same = await prepare('at.png', at);
    expect(Buffer.from(same.data).equals(at)).toBe(true);
    expect(same.sent).toBe(same.original);
  });

  describe('a model that counts 32-px patches gets the size it uses, not the 768-px rule', () => {
    it('gpt-4.1-mini: a 4032×3024 photo → 1408×1056 (1,452 patches), gpt-4o → 1024×768', async () => {
      const data = await splitRaw(4032, 3024).jpeg().toBuffer();
      const mini = await prepare('big.jpg', data, { model: 'gpt-4.1-mini' });
      expect(mini.sent).toMatchObject({ format: 'jpeg', width: 1408, height: 1056 });
      const meta = await sharp(mini.data).metadata();
      expect([meta.width, meta.height]).toEqual([1408, 1056]);
      const d = await decode(mini.data);
      expectColour(d.at(100, 500), RED);
      expectColour(d.at(1300, 500), BLUE);
      const tiles = await prepare('big.jpg', data, { model: 'gpt-4o' });
      expect(tiles.sent).toMatchObject({ width: 1024, height: 768 });
    });

    it('the rotated phone photo is upright at 1056×1408 for o4-mini', async () => {
      const r = await prepare('IMG_0001.jpg', photo, { model: 'o4-mini' });
      expect(r.sent).toMatchObject({ format: 'jpeg', width: 1056, height: 1408 });
      await expectNoMetadata(r.data);
      expectTurnedClockwise(await decode(r.data));
    });

    it('a 1024×1024 PNG within the patch cap is sent byte for byte (the PNG fast path)', async () => {
      const square = await splitRaw(1024, 1024).png().toBuffer();
      for (const model of ['gpt-4.1-mini', 'gpt-4.1-nano', 'o4-mini', 'gpt-5-mini', 'gpt-5-nano']) {
        const r = await prepare('square.png', square, { model, detail: 'high' });
        expect(Buffer.from(r.data).equals(square), model).toBe(true);
        expect(r.sent, model).toEqual({
          format: 'png',
          width: 1024,
          height: 1024,
          bytes: square.length,
        });
      }
      const tiles = await prepare('square.png', square, { model: 'gpt-4.1', detail: 'high' });
      expect(tiles.sent).toMatchObject({ format: 'png', width: 768, height: 768 });
    });

    it('a PNG one patch over the cap is scaled (53 × 29 patches → 1663×896)', async () => {
      const over = await splitRaw(1665, 897).png().toBuffer();
      const r = await prepare('over.png', over, { model: 'gpt-5-mini' });
      expect(r.sent).toMatchObject({ format: 'png', width: 1663, height: 896 });
    });

    it('detail low and --max-size still rule', async () => {
      const data = await splitRaw(4032, 3024).jpeg().toBuffer();
      const low = await prepare('big.jpg', data, { model: 'gpt-4.1-mini', detail: 'low' });
      expect(low.sent).toMatchObject({ width: 512, height: 384 });
      const max = await prepare('big.jpg', data, { model: 'gpt-4.1-mini', maxSize: 300 });
      expect(max.sent).toMatchObject({ width: 300, height: 225 });
    });
  });

  it('a converted image is scaled in the same step', async () => {
    const big = await splitRaw(3000, 2000).tiff().toBuffer();
    const r = await prepare('big.tiff', big, { detail: 'low' });
    expect(r.mime).toBe('image/jpeg');
    expect(r.sent).toMatchObject({ format: 'jpeg', width: 512, height: 341 });
    const d = await decode(r.data);
    expect([d.width, d.height]).toEqual([512, 341]);
    expectColour(d.at(50, 170), RED);
    expectColour(d.at(460, 170), BLUE);
  });

  it('takes the time from the clock it is given', async () => {
    const times = [1000, 1042];
    const r = await prepareBytes(bytesOf('x.png', png), {}, () => times.shift() ?? 9999);
    expect(r.ms).toBe(42);
  });
});

describe('broken files are input errors naming the file', () => {
  let real: Buffer;
  beforeAll(async () => {
    real = await noise(300, 200).jpeg({ quality: 90 }).toBuffer();
    expect(real.length).toBeGreaterThan(20_000);
  });

  async function expectInputError(promise: Promise<unknown>, name: string): Promise<InputError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    const e = error as InputError;
    expect(e.exitCode).toBe(3);
    expect(e.message.startsWith(`${name}: `), e.message).toBe(true);
    expect(e.message).not.toContain('\n');
    return e;
  }

  it('a truncated JPEG (its first 3000 bytes) that would be sent as it is', async () => {
    const e = await expectInputError(prepare('cut.jpg', real.subarray(0, 3000)), 'cut.jpg');
    expect(e.message).toMatch(/truncated or corrupt/);
  });

  it('a truncated JPEG that would be resized', async () => {
    const big = await noise(2400, 1600).jpeg().toBuffer();
    const e = await expectInputError(prepare('cut.jpg', big.subarray(0, 3000)), 'cut.jpg');
    expect(e.message).toMatch(/truncated or corrupt/);
  });

  it('a JPEG cut anywhere in its image data, sent as it is or resized', async () => {
    const big = await noise(2400, 1600).jpeg().toBuffer();
    for (const [what, whole] of [
      ['small', real],
      ['big', big],
    ] as const) {
      for (const share of [0.5, 0.9]) {
        const cut = whole.subarray(0, Math.floor(whole.length * share));
        const e = await expectInputError(prepare('cut.jpg', cut), 'cut.jpg');
        expect(e.message, `${what} at ${share}`).toMatch(/truncated or corrupt/);
      }
    }
  });

  it('a JPEG signature followed by garbage', async () => {
    const bad = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(2000)]);
    const e = await expectInputError(prepare('bad.jpg', bad), 'bad.jpg');
    expect(e.message).toMatch(/corrupt/);
  });

  it('a JPEG whose frame header says 0×0 or whose Huffman table is wiped', async () => {
    const sof = real.indexOf(Buffer.from([0xff, 0xc0]));
    const noSize = Buffer.from(real).fill(0, sof + 5, sof + 9);
    await expectInputError(prepare('nosize.jpg', noSize), 'nosize.jpg');
    const dht = real.indexOf(Buffer.from([0xff, 0xc4]));
    const noTable = Buffer.from(real).fill(0, dht + 4, dht + 40);
    await expectInputError(prepare('notable.jpg', noTable), 'notable.jpg');
  });

  it('a PNG whose image data is damaged (CRC mismatch)', async () => {
    const good = await noise(300, 200).png().toBuffer();
    const bad = Buffer.from(good);
    const idat = bad.indexOf('IDAT');
    for (let i = idat + 100; i < idat + 3000; i++) bad[i]! ^= 0x55;
    await expectInputError(prepare('bad.png', bad), 'bad.png');
  });

  it('a PNG of the right size whose CRCs are right but whose pixels are not', async () => {
    // The plain-JavaScript check (png.ts) refuses these, and sharp has the last word.
    const good = await noise(30, 20).png({ compressionLevel: 0 }).toBuffer();
    const idat = good.indexOf('IDAT');
    const length = good.readUInt32BE(idat - 4);
    const data = inflateSync(good.subarray(idat + 4, idat + 4 + length));
    const rowBytes = 1 + 30 * 3;
    const withData = (raw: Buffer): Buffer => {
      const z = deflateSync(raw);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(z.length, 0);
      head.write('IDAT', 4, 'latin1');
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(z, crc32(head.subarray(4))), 0);
      return Buffer.concat([
        good.subarray(0, idat - 4),
        head,
        z,
        crc,
        good.subarray(idat + 8 + length),
      ]);
    };
    expect(
      Buffer.from((await prepare('same.png', withData(data))).data).equals(withData(data)),
    ).toBe(true);
    await expectInputError(
      prepare('short.png', withData(data.subarray(0, 10 * rowBytes))),
      'short.png',
    );
    await expectInputError(
      prepare('filter.png', withData(Buffer.from(data).fill(9, 3 * rowBytes, 3 * rowBytes + 1))),
      'filter.png',
    );
  });

  it('a PNG signature followed by garbage', async () => {
    const bad = Buffer.concat([png.subarray(0, 8), randomBytes(500)]);
    await expectInputError(prepare('bad.png', bad), 'bad.png');
  });

  it('a truncated PNG', async () => {
    const big = await noise(300, 200).png().toBuffer();
    await expectInputError(prepare('cut.png', big.subarray(0, 3000)), 'cut.png');
  });

  it('a truncated HEIC and a truncated BMP', async () => {
    const heic = fixture('split.heic');
    await expectInputError(prepare('cut.heic', heic.subarray(0, 200)), 'cut.heic');
    const bmp = fixture('split.bmp');
    await expectInputError(prepare('cut.bmp', bmp.subarray(0, 3000)), 'cut.bmp');
  });

  it('a truncated GIF, WebP and AVIF', async () => {
    const cases = [
      ['cut.gif', await noise(200, 200).gif().toBuffer()],
      ['cut.webp', await noise(300, 200).webp().toBuffer()],
      ['cut.avif', await noise(96, 64).avif({ effort: 0 }).toBuffer()],
    ] as const;
    for (const [name, whole] of cases) {
      expect(whole.length, name).toBeGreaterThan(3000);
      await expectInputError(prepare(name, whole.subarray(0, whole.length >> 1)), name);
    }
  });
});

describe('--original', () => {
  it('sends the exact bytes of a large, rotated JPEG with GPS', async () => {
    const r = await prepare('IMG_0001.jpg', photo, { original: true });
    expect(Buffer.from(r.data).equals(photo)).toBe(true);
    expect(r.mime).toBe('image/jpeg');
    expect(r.sent).toBe(r.original);
    expect(r.sent).toMatchObject({ format: 'jpeg', bytes: photo.length });
  });

  it('sends the exact bytes of an animated GIF', async () => {
    const r = await prepare('spin.gif', animatedGif, { original: true });
    expect(Buffer.from(r.data).equals(animatedGif)).toBe(true);
    expect(r.mime).toBe('image/gif');
  });

  it.each([
    ['split.heic', () => fixture('split.heic'), 'HEIC'],
    ['split.bmp', () => fixture('split.bmp'), 'BMP'],
    ['x.tiff', () => tiff, 'TIFF'],
    ['x.avif', () => avif, 'AVIF'],
  ] as const)('is an input error for %s', async (name, input, label) => {
    const error = await prepare(name, input(), { original: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(3);
    expect((error as InputError).message).toMatch(new RegExp(`^${name}: .*--original.*${label}`));
  });

  it('still checks that the file decodes', async () => {
    const real = await noise(300, 200).jpeg().toBuffer();
    await expect(prepare('cut.jpg', real.subarray(0, 3000), { original: true })).rejects.toThrow(
      /^cut\.jpg: .*truncated or corrupt/,
    );
  });
});

describe('limits', () => {
  let huge: Buffer;
  beforeAll(async () => {
    // 2700×2700 RGB noise, stored: about 21.9 MB, over the 20 MB (20 MiB) limit.
    huge = await noise(2700, 2700).png({ compressionLevel: 0 }).toBuffer();
    expect(huge.length).toBeGreaterThan(MAX_IMAGE_BYTES);
  });

  it('the limits are OpenAI’s: 20 MB an image, 50 MB a request', () => {
    expect(MAX_IMAGE_BYTES).toBe(20 * 1024 * 1024);
    expect(MAX_REQUEST_IMAGE_BYTES).toBe(50 * 1024 * 1024);
  });

  it('an image still over 20 MB after preparation is an input error (--original)', async () => {
    const error = await prepare('noise.png', huge, { original: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/^noise\.png: 2\d\.\d MB .*20 MB/);
    // --max-size is refused with --original: the hint is to let it be scaled.
    expect((error as InputError).message).toMatch(
      /; leave out --original so that it is scaled down/,
    );
    expect((error as InputError).message).not.toContain('--max-size');
  });

  it('an image still over 20 MB when no change is needed (--max-size above its size)', async () => {
    await expect(prepare('noise.png', huge, { maxSize: 4000 })).rejects.toThrow(
      /^noise\.png: .*over the 20 MB limit of vision APIs; use --max-size or a smaller image$/,
    );
  });

  it('the same image scaled to the detail rule is well under the limit', async () => {
    const r = await prepare('noise.png', huge);
    expect(r.sent).toMatchObject({ format: 'png', width: 768, height: 768 });
    expect(r.data.length).toBeLessThan(MAX_IMAGE_BYTES);
  });

  function image(bytes: number): PreparedImage {
    return {
      name: `${bytes}.png`,
      source: { mime: 'image/png', data: new Uint8Array(bytes) },
      prepared: undefined,
    };
  }

  it('checkRequestSize: images totalling over 50 MB in one request are an input error', () => {
    const mb = 1024 * 1024;
    expect(() =>
      checkRequestSize([image(18 * mb), image(18 * mb), image(14 * mb)], false),
    ).not.toThrow();
    const over = [image(18 * mb), image(18 * mb), image(14 * mb + 1)];
    const errorOf = (original: boolean): InputError => {
      try {
        checkRequestSize(over, original);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return e as InputError;
      }
      throw new Error('no error');
    };
    const error = errorOf(false);
    expect(error.exitCode).toBe(3);
    expect(error.message).toMatch(/50\.0 MB.*50 MB.*--together, or with a smaller --max-size$/);
    // --max-size is refused with --original: the hint is to let them be scaled.
    const original = errorOf(true);
    expect(original.message).toMatch(
      /--together, or leave out --original so that they are scaled down$/,
    );
    expect(original.message).not.toContain('--max-size');
  });

  it('checkRequestSize: URLs passed through count for nothing', () => {
    const url: PreparedImage = {
      name: 'https://example.com/a.png',
      source: { url: 'https://example.com/a.png' },
      prepared: undefined,
    };
    expect(() => checkRequestSize([image(40 * 1024 * 1024), url, url], false)).not.toThrow();
  });
});
