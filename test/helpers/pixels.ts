/**
 * Test pictures and the checks on them: a left-red / right-blue picture (with a green marker
 * to tell rotations apart, or a transparent bottom half), incompressible noise, a phone-like
 * JPEG with an EXIF orientation and GPS tags, and assertions on decoded pixels and metadata.
 */
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { expect } from 'vitest';

export type Rgb = readonly [number, number, number];
export const RED: Rgb = [220, 30, 20];
export const BLUE: Rgb = [20, 30, 220];
export const GREEN: Rgb = [30, 200, 40];

/**
 * Raw pixels: left half red, right half blue; with `marker`, the top-left quarter block is
 * green (so a rotation and a mirror image can be told apart); with `alphaBottom`, the bottom
 * half is fully transparent.
 */
export function splitRaw(
  width: number,
  height: number,
  opts: { alphaBottom?: boolean; marker?: boolean } = {},
): Sharp {
  const channels = opts.alphaBottom ? 4 : 3;
  const row = (y: number): Buffer => {
    const out = Buffer.alloc(width * channels);
    for (let x = 0; x < width; x++) {
      const colour =
        opts.marker && x < width / 4 && y < height / 4 ? GREEN : x < width / 2 ? RED : BLUE;
      out.set(colour, x * channels);
      if (channels === 4) out[x * channels + 3] = y >= height / 2 ? 0 : 255;
    }
    return out;
  };
  const rows: Buffer[] = [];
  let previousKind = '';
  let previous: Buffer = Buffer.alloc(0);
  for (let y = 0; y < height; y++) {
    const kind = `${opts.marker && y < height / 4}${opts.alphaBottom && y >= height / 2}`;
    if (kind !== previousKind) {
      previous = row(y);
      previousKind = kind;
    }
    rows.push(previous);
  }
  return sharp(Buffer.concat(rows), { raw: { width, height, channels } });
}

/** Random pixels (incompressible), as a sharp input. */
export function noise(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  return sharp(randomBytes(width * height * channels), { raw: { width, height, channels } });
}

export interface Decoded {
  width: number;
  height: number;
  /** RGBA of one pixel. */
  at(x: number, y: number): number[];
}

export async function decode(data: Uint8Array): Promise<Decoded> {
  const { data: px, info } = await sharp(data)
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    at: (x, y) => Array.from(px.subarray((y * info.width + x) * 4, (y * info.width + x) * 4 + 4)),
  };
}

/** Within `tolerance` of the colour on every channel, and opaque unless told otherwise. */
export function expectColour(pixel: number[], colour: Rgb, alpha = 255, tolerance = 40): void {
  const [r, g, b, a] = pixel as [number, number, number, number];
  const off = Math.max(
    Math.abs(r - colour[0]),
    Math.abs(g - colour[1]),
    Math.abs(b - colour[2]),
    Math.abs(a - alpha),
  );
  expect(
    off,
    `pixel ${JSON.stringify(pixel)} vs ${JSON.stringify(colour)} a=${alpha}`,
  ).toBeLessThanOrEqual(tolerance);
}

/** The 96×64 split picture: left red, right blue (in the top half when the bottom is clear). */
export async function expectSplit(
  data: Uint8Array,
  opts: { alphaBottom?: boolean } = {},
): Promise<void> {
  const d = await decode(data);
  expect([d.width, d.height]).toEqual([96, 64]);
  expectColour(d.at(10, 10), RED);
  expectColour(d.at(85, 10), BLUE);
  if (opts.alphaBottom) {
    expect(d.at(10, 55)[3]).toBe(0);
    expect(d.at(85, 55)[3]).toBe(0);
  } else {
    expectColour(d.at(10, 55), RED);
    expectColour(d.at(85, 55), BLUE);
  }
}

/** GPSLatitude 48/1 51/1 2400/100 as six 32-bit rationals, in either byte order. */
export function hasGpsLatitude(bytes: Uint8Array): boolean {
  const values = [48, 1, 51, 1, 2400, 100];
  const be = Buffer.alloc(24);
  const le = Buffer.alloc(24);
  values.forEach((v, i) => {
    be.writeUInt32BE(v, i * 4);
    le.writeUInt32LE(v, i * 4);
  });
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return buf.includes(be) || buf.includes(le);
}

export const EXIF = {
  IFD0: { Make: 'AcmePhone', Model: 'Acme 12 Pro', Copyright: 'Jane Doe' },
  IFD3: {
    GPSLatitudeRef: 'N',
    GPSLatitude: '48/1 51/1 2400/100',
    GPSLongitudeRef: 'E',
    GPSLongitude: '2/1 21/1 300/100',
  },
};

/** A JPEG with EXIF orientation `orientation`, GPS tags and a camera make. */
export function phoneJpeg(width: number, height: number, orientation: number): Promise<Buffer> {
  return splitRaw(width, height, { marker: true })
    .jpeg({ quality: 90 })
    .withExif(EXIF)
    .withMetadata({ orientation })
    .toBuffer();
}

export async function expectNoMetadata(data: Uint8Array): Promise<void> {
  const meta = await sharp(data).metadata();
  expect(meta.exif).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  expect(meta.iptc).toBeUndefined();
  expect(meta.orientation ?? 1).toBe(1);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  expect(buf.includes('Exif')).toBe(false);
  expect(buf.includes('AcmePhone')).toBe(false);
  expect(buf.includes('GPS')).toBe(false);
  expect(hasGpsLatitude(data)).toBe(false);
}

/**
 * Stored left red / right blue with a green marker top-left, turned 90° clockwise: top half
 * red with the marker at the top right, bottom half blue.
 */
export function expectTurnedClockwise(d: Decoded): void {
  const { width: w, height: h } = d;
  expectColour(d.at(Math.floor(w * 0.1), Math.floor(h * 0.4)), RED);
  expectColour(d.at(Math.floor(w * 0.9), Math.floor(h * 0.05)), GREEN);
  expectColour(d.at(Math.floor(w * 0.1), Math.floor(h * 0.05)), RED);
  expectColour(d.at(Math.floor(w * 0.1), Math.floor(h * 0.9)), BLUE);
  expectColour(d.at(Math.floor(w * 0.9), Math.floor(h * 0.9)), BLUE);
}
