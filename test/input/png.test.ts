/**
 * The plain-JavaScript PNG checker (src/input/png.ts), on PNGs sharp writes and on broken
 * ones made from them. Its one promise: a file it vouches for is one sharp decodes too.
 */
import { randomBytes } from 'node:crypto';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { pngPixelsWhole, readPngLayout, scanlines, type PngLayout } from '../../src/input/png.js';
import { noise } from '../helpers/pixels.js';

interface Chunk {
  type: string;
  data: Buffer;
}

function chunksOf(png: Buffer): Chunk[] {
  const chunks: Chunk[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    chunks.push({
      type: png.toString('latin1', at + 4, at + 8),
      data: png.subarray(at + 8, at + 8 + length),
    });
    at += 12 + length;
  }
  return chunks;
}

/** A PNG from chunks, each with its correct CRC. */
function pngOf(chunks: Chunk[]): Buffer {
  const parts = [png8()];
  for (const { type, data } of chunks) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
    parts.push(head, data, crc);
  }
  return Buffer.concat(parts);
}

function png8(): Buffer {
  return Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
}

/** The same PNG with its image data replaced by `raw`, deflated, in one IDAT. */
function withImageData(png: Buffer, raw: Buffer): Buffer {
  const chunks = chunksOf(png).filter((c) => c.type !== 'IDAT');
  const iend = chunks.findIndex((c) => c.type === 'IEND');
  chunks.splice(iend, 0, { type: 'IDAT', data: deflateSync(raw) });
  return pngOf(chunks);
}

function inflated(png: Buffer): Buffer {
  return inflateSync(
    Buffer.concat(
      chunksOf(png)
        .filter((c) => c.type === 'IDAT')
        .map((c) => c.data),
    ),
  );
}

function insertBefore(png: Buffer, before: string, chunk: Chunk): Buffer {
  const chunks = chunksOf(png);
  chunks.splice(
    chunks.findIndex((c) => c.type === before),
    0,
    chunk,
  );
  return pngOf(chunks);
}

async function vouched(png: Buffer): Promise<PngLayout | undefined> {
  const layout = readPngLayout(png);
  return layout && (await pngPixelsWhole(layout)) ? layout : undefined;
}

async function sharpDecodes(png: Buffer): Promise<boolean> {
  try {
    await sharp(png, { failOn: 'error' }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

const rgb = (w: number, h: number) => noise(w, h);
/** Grey (1 channel) or grey and alpha (2): sharp keeps raw channels as they are. */
const grey = (w: number, h: number, channels: 1 | 2) =>
  sharp(randomBytes(w * h * channels), { raw: { width: w, height: h, channels } }).toColourspace(
    'b-w',
  );

describe('PNGs sharp writes are read right and vouched for', () => {
  const cases: [string, () => Promise<Buffer>, Partial<PngLayout>][] = [
    [
      'RGB 8-bit',
      () => rgb(33, 17).png().toBuffer(),
      { width: 33, height: 17, colorType: 2, bitDepth: 8, channels: 3 },
    ],
    [
      'RGBA 8-bit',
      () => rgb(20, 10).ensureAlpha(0.5).png().toBuffer(),
      { colorType: 6, bitDepth: 8, channels: 4 },
    ],
    [
      'grey 8-bit',
      () => grey(9, 31, 1).png().toBuffer(),
      { colorType: 0, bitDepth: 8, channels: 1 },
    ],
    ['grey + alpha', () => grey(9, 31, 2).png().toBuffer(), { colorType: 4, channels: 2 }],
    [
      'RGB 16-bit',
      () => rgb(15, 7).toColourspace('rgb16').png().toBuffer(),
      { colorType: 2, bitDepth: 16 },
    ],
    [
      'palette, 2 colours (1 bit a pixel)',
      () => rgb(13, 5).png({ palette: true, colours: 2, dither: 0 }).toBuffer(),
      { colorType: 3, bitDepth: 1, channels: 1 },
    ],
    [
      'palette, 16 colours (4 bits a pixel)',
      () => rgb(13, 5).png({ palette: true, colours: 16 }).toBuffer(),
      { colorType: 3, bitDepth: 4 },
    ],
    [
      'interlaced RGB',
      () => rgb(37, 23).png({ progressive: true }).toBuffer(),
      { width: 37, height: 23, interlaced: true },
    ],
    [
      'interlaced 1×1',
      () => rgb(1, 1).png({ progressive: true }).toBuffer(),
      { width: 1, height: 1, interlaced: true },
    ],
    [
      'interlaced 5×3 palette, 2 bits a pixel',
      () => rgb(5, 3).png({ progressive: true, palette: true, colours: 4 }).toBuffer(),
      { interlaced: true, colorType: 3, bitDepth: 2 },
    ],
    [
      'image data split over many IDAT chunks',
      async () => {
        const one = await rgb(64, 64).png().toBuffer();
        const chunks = chunksOf(one);
        const data = Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data));
        const split: Chunk[] = [];
        for (let at = 0; at < data.length; at += 1000)
          split.push({ type: 'IDAT', data: data.subarray(at, at + 1000) });
        const rest = chunks.filter((c) => c.type !== 'IDAT');
        return pngOf([...rest.slice(0, -1), ...split, ...rest.slice(-1)]);
      },
      { width: 64, height: 64 },
    ],
  ];

  for (const [name, make, expected] of cases) {
    it(name, async () => {
      const png = await make();
      const layout = await vouched(png);
      expect(layout).toMatchObject({ ...expected, metadata: false, animated: false });
      // The scanlines add up to what the image data inflates to.
      const rows = scanlines(layout as PngLayout);
      expect(rows.reduce((sum, p) => sum + p.rows * p.rowBytes, 0)).toBe(inflated(png).length);
      expect(await sharpDecodes(png)).toBe(true);
    });
  }

  it('the seven Adam7 passes of an 8×8 image are 1, 1, 2, 4, 8, 16 and 32 pixels', async () => {
    const layout = readPngLayout(await rgb(8, 8).png({ progressive: true }).toBuffer());
    expect(layout).toBeDefined();
    expect(scanlines(layout as PngLayout)).toEqual([
      { rows: 1, rowBytes: 1 + 3 },
      { rows: 1, rowBytes: 1 + 3 },
      { rows: 1, rowBytes: 1 + 6 },
      { rows: 2, rowBytes: 1 + 6 },
      { rows: 2, rowBytes: 1 + 12 },
      { rows: 4, rowBytes: 1 + 12 },
      { rows: 4, rowBytes: 1 + 24 },
    ]);
  });
});

describe('what it leaves to sharp', () => {
  it('metadata: EXIF, text chunks', async () => {
    const exif = await rgb(8, 8)
      .png()
      .withExif({ IFD0: { Copyright: 'me' } })
      .toBuffer();
    expect(chunksOf(exif).map((c) => c.type)).toContain('eXIf');
    expect(readPngLayout(exif)).toMatchObject({ metadata: true });
    const plain = await rgb(8, 8).png().toBuffer();
    for (const type of ['tEXt', 'zTXt', 'iTXt']) {
      const text = insertBefore(plain, 'IDAT', { type, data: Buffer.from('Comment\0hello') });
      expect(readPngLayout(text), type).toMatchObject({ metadata: true });
    }
  });

  it('animation: an acTL chunk', async () => {
    const plain = await rgb(8, 8).png().toBuffer();
    const apng = insertBefore(plain, 'IDAT', { type: 'acTL', data: Buffer.alloc(8) });
    expect(readPngLayout(apng)).toMatchObject({ animated: true });
  });

  it('an unknown critical chunk is refused; an unknown ancillary one is skipped', async () => {
    const plain = await rgb(8, 8).png().toBuffer();
    expect(
      readPngLayout(insertBefore(plain, 'IEND', { type: 'ABCD', data: Buffer.alloc(3) })),
    ).toBeUndefined();
    expect(
      await vouched(insertBefore(plain, 'IEND', { type: 'abCd', data: Buffer.alloc(3) })),
    ).toBeDefined();
  });
});

describe('broken files are never vouched for', () => {
  it('cut short anywhere: no IEND, no layout', async () => {
    const png = await rgb(40, 30).png().toBuffer();
    for (let end = 0; end < png.length; end++) {
      expect(readPngLayout(png.subarray(0, end)), `cut at ${end}`).toBeUndefined();
    }
  });

  it('a wrong CRC in any chunk', async () => {
    const png = await rgb(40, 30).png().toBuffer();
    for (const type of ['IHDR', 'IDAT', 'IEND']) {
      const bad = Buffer.from(png);
      const at = bad.indexOf(type, 8, 'latin1');
      const length = bad.readUInt32BE(at - 4);
      bad[at + 4 + length]! ^= 0x01;
      expect(readPngLayout(bad), type).toBeUndefined();
    }
  });

  it('image data with a row too few or a byte too many, or an unknown filter', async () => {
    const png = await rgb(12, 10).png().toBuffer();
    const raw = inflated(png);
    const rowBytes = 1 + 12 * 3;
    const broken = [
      withImageData(png, raw.subarray(0, raw.length - rowBytes)),
      withImageData(png, raw.subarray(0, raw.length - 1)),
      withImageData(png, Buffer.concat([raw, Buffer.alloc(1)])),
      withImageData(png, Buffer.from(raw).fill(5, 4 * rowBytes, 4 * rowBytes + 1)),
      withImageData(png, Buffer.from('not deflate data')),
    ];
    for (const [i, bad] of broken.entries()) {
      // Every CRC is right: only the pixels tell.
      const layout = readPngLayout(bad);
      expect(layout, `case ${i}`).toBeDefined();
      expect(await pngPixelsWhole(layout as PngLayout), `case ${i}`).toBe(false);
    }
    // The untouched data, put back the same way, passes.
    expect(await vouched(withImageData(png, raw))).toBeDefined();
  });

  it('a bad header: zero width, a bit depth its colour type does not allow, IHDR not first', async () => {
    const png = await rgb(8, 8).png().toBuffer();
    const chunks = chunksOf(png);
    const ihdr = chunks[0] as Chunk;
    const zeroWidth = Buffer.from(ihdr.data).fill(0, 0, 4);
    const rgb4 = Buffer.from(ihdr.data).fill(4, 8, 9);
    const rest = chunks.slice(1);
    expect(readPngLayout(pngOf([{ type: 'IHDR', data: zeroWidth }, ...rest]))).toBeUndefined();
    expect(readPngLayout(pngOf([{ type: 'IHDR', data: rgb4 }, ...rest]))).toBeUndefined();
    expect(readPngLayout(pngOf([...rest.slice(0, 1), ihdr, ...rest.slice(1)]))).toBeUndefined();
  });

  it('a palette image without its palette; image data in two runs', async () => {
    const pal = await rgb(8, 8).png({ palette: true, colours: 4 }).toBuffer();
    expect(readPngLayout(pngOf(chunksOf(pal).filter((c) => c.type !== 'PLTE')))).toBeUndefined();
    const png = await rgb(8, 8).png().toBuffer();
    const split = chunksOf(png).flatMap((c) =>
      c.type === 'IDAT'
        ? [
            { type: 'IDAT', data: c.data.subarray(0, 10) },
            { type: 'tIME', data: Buffer.alloc(7) },
            { type: 'IDAT', data: c.data.subarray(10) },
          ]
        : [c],
    );
    expect(readPngLayout(pngOf(split))).toBeUndefined();
  });

  it('whatever it vouches for, sharp decodes: damage at every 7th byte of a PNG', async () => {
    const png = await rgb(24, 16).png({ compressionLevel: 0 }).toBuffer();
    const idat = png.indexOf('IDAT', 8, 'latin1');
    const idatEnd = idat + 8 + png.readUInt32BE(idat - 4);
    let vouchedCount = 0;
    for (let at = 8; at < png.length; at += 7) {
      // Damage the byte, then make every CRC right again, so only the content can tell.
      const bad = pngOf(
        chunksOf(Buffer.from(png).fill(png[at]! ^ 0xa5, at, at + 1)).filter(
          (c) => /^[A-Za-z]{4}$/.test(c.type) && c.data.length < png.length,
        ),
      );
      if (await vouched(bad)) {
        vouchedCount++;
        expect(await sharpDecodes(bad), `damage at ${at}`).toBe(true);
        // Damaged image data never passes: zlib's own checksum (Adler-32) catches it even
        // when the chunk's CRC has been made right again.
        expect(at < idat - 4 || at >= idatEnd, `damage at ${at}, in the image data`).toBe(true);
      }
    }
    // Damage to the header's padding-free fields or to ancillary chunks may leave a valid file.
    expect(vouchedCount).toBeGreaterThan(0);
  });
});
