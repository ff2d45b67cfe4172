/**
 * Colour profiles: a photo's ICC profile says how to read its pixels and holds nothing
 * private, so preparation keeps it and leaves the pixel values as they are (converting a
 * Display P3 photo to sRGB would cost a third of the preparation time, and change what a
 * server that ignores profiles sees). EXIF still goes.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { prepareBytes } from '../../src/input/prepare.js';

async function p3Photo(): Promise<Buffer> {
  return sharp({
    create: { width: 2000, height: 1500, channels: 3, background: { r: 200, g: 60, b: 40 } },
  })
    .jpeg({ quality: 95 })
    .withIccProfile('p3')
    .withExif({ IFD0: { Make: 'TestCam' } })
    .toBuffer();
}

describe('colour profiles', () => {
  it('keeps a Display P3 profile and the pixel values, and drops EXIF', async () => {
    const data = await p3Photo();
    const before = await sharp(data).metadata();
    expect(before.hasProfile).toBe(true);
    expect(before.exif).toBeDefined();

    const out = await prepareBytes(
      { name: 'p3.jpg', data, format: 'jpeg', mime: 'image/jpeg' },
      { detail: 'high' },
    );
    expect(out.sent).toMatchObject({ format: 'jpeg', width: 1024, height: 768 });
    const after = await sharp(Buffer.from(out.data)).metadata();
    expect(after.hasProfile).toBe(true);
    expect(after.icc?.equals(before.icc!)).toBe(true);
    expect(after.exif).toBeUndefined();

    // The stored values are P3's (about 186, 71, 50 for sRGB's 200, 60, 40); converted to sRGB
    // they would move by 10 or more.
    const raw = async (bytes: Uint8Array): Promise<number[]> => {
      // keepIccProfile: read the stored values, not values converted to sRGB on the way out.
      const px = await sharp(Buffer.from(bytes))
        .keepIccProfile()
        .extract({ left: 10, top: 10, width: 1, height: 1 })
        .raw()
        .toBuffer();
      return [...px];
    };
    const [r0, g0, b0] = await raw(data);
    const [r1, g1, b1] = await raw(out.data);
    expect(Math.abs(r1! - r0!)).toBeLessThanOrEqual(3);
    expect(Math.abs(g1! - g0!)).toBeLessThanOrEqual(3);
    expect(Math.abs(b1! - b0!)).toBeLessThanOrEqual(3);
  });

  it('keeps everything with --keep-metadata', async () => {
    const data = await p3Photo();
    const out = await prepareBytes(
      { name: 'p3.jpg', data, format: 'jpeg', mime: 'image/jpeg' },
      { detail: 'high', keepMetadata: true },
    );
    const after = await sharp(Buffer.from(out.data)).metadata();
    expect(after.hasProfile).toBe(true);
    expect(after.exif).toBeDefined();
  });
});
