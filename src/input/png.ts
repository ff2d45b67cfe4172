/**
 * A PNG checker in plain JavaScript, for the common case of a PNG that needs no change (a
 * screenshot or an icon already within the size the model uses, with no metadata to strip):
 * it proves the file whole without loading sharp, which costs ~35 ms of every start-up and
 * a trip through libvips for every image.
 *
 * "Whole" is what a decoder needs: chunks in a valid order, every CRC right, a header that
 * makes sense, image data that inflates to exactly the scanlines the header promises, and a
 * known filter on every scanline. Anything this checker does not vouch for (animation,
 * metadata, a bad CRC, an odd chunk) is left to sharp, which then decides as before.
 */
import { createRequire } from 'node:module';

// zlib is loaded on first use: a run whose images are all answered from the cache never
// checks a PNG, and need not load it.
let zlibModule: typeof import('node:zlib') | undefined;
const zlib = (): typeof import('node:zlib') =>
  (zlibModule ??= createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib'));

export interface PngFacts {
  width: number;
  height: number;
  /** EXIF, XMP or text chunks: sharp decides what to strip, and EXIF may say to turn it. */
  metadata: boolean;
  /** APNG (an acTL chunk): sharp handles frames. */
  animated: boolean;
}

/** What the header and chunks say, with the compressed image data to check. */
export interface PngLayout extends PngFacts {
  bitDepth: number;
  colorType: number;
  /** Samples per pixel. */
  channels: number;
  interlaced: boolean;
  idat: Uint8Array[];
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Samples per pixel, and the bit depths each colour type allows. */
const COLOR_TYPES = new Map<number, { channels: number; depths: readonly number[] }>([
  [0, { channels: 1, depths: [1, 2, 4, 8, 16] }],
  [2, { channels: 3, depths: [8, 16] }],
  [3, { channels: 1, depths: [1, 2, 4, 8] }],
  [4, { channels: 2, depths: [8, 16] }],
  [6, { channels: 4, depths: [8, 16] }],
]);
const METADATA_CHUNKS = new Set(['eXIf', 'tEXt', 'zTXt', 'iTXt']);
/** Larger than any image the model uses: such a file goes through sharp to be scaled anyway. */
const MAX_EDGE = 16384;
/** Image data up to this many bytes inflated is checked on the main thread (~1 ms at most). */
const SYNC_INFLATE_MAX = 1024 * 1024;
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * Reads a PNG's structure and checks every chunk's CRC. Undefined when the bytes are not a
 * PNG this checker vouches for; the caller then hands the file to sharp.
 */
export function readPngLayout(bytes: Uint8Array): PngLayout | undefined {
  if (bytes.length < 8 + 25 + 12 || SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let layout: PngLayout | undefined;
  let palette = false;
  let idatDone = false;
  for (let at = 8; at + 12 <= buf.length;) {
    const length = buf.readUInt32BE(at);
    const end = at + 12 + length;
    if (length > 0x7fffffff || end > buf.length) return undefined;
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (
      zlib().crc32(data, zlib().crc32(buf.subarray(at + 4, at + 8))) !== buf.readUInt32BE(end - 4)
    ) {
      return undefined;
    }
    if (layout === undefined) {
      if (type !== 'IHDR' || length !== 13) return undefined;
      layout = readHeader(data);
      if (layout === undefined) return undefined;
    } else if (type === 'IHDR') {
      return undefined;
    } else if (type === 'PLTE') {
      palette = true;
    } else if (type === 'IDAT') {
      // Image data comes in consecutive chunks.
      if (idatDone) return undefined;
      layout.idat.push(data);
    } else if (type === 'IEND') {
      if (layout.idat.length === 0 || (layout.colorType === 3 && !palette)) return undefined;
      return layout;
    } else if (type === 'acTL') {
      layout.animated = true;
    } else if (METADATA_CHUNKS.has(type)) {
      layout.metadata = true;
    } else if (/^[A-Z]/.test(type)) {
      // A critical chunk (upper-case first letter) this checker does not know.
      return undefined;
    }
    if (layout.idat.length > 0 && type !== 'IDAT') idatDone = true;
    at = end;
  }
  // No IEND: the file is cut short.
  return undefined;
}

function readHeader(ihdr: Buffer): PngLayout | undefined {
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const [bitDepth = 0, colorType = 0, compression, filter, interlace] = ihdr.subarray(8, 13);
  const kind = COLOR_TYPES.get(colorType);
  if (
    width === 0 ||
    height === 0 ||
    width > MAX_EDGE ||
    height > MAX_EDGE ||
    !kind?.depths.includes(bitDepth) ||
    compression !== 0 ||
    filter !== 0 ||
    (interlace !== 0 && interlace !== 1)
  ) {
    return undefined;
  }
  return {
    width,
    height,
    bitDepth,
    colorType,
    channels: kind.channels,
    interlaced: interlace === 1,
    metadata: false,
    animated: false,
    idat: [],
  };
}

/** The scanlines the image data must inflate to: each pass's rows and row width in bytes. */
export function scanlines(layout: PngLayout): { rows: number; rowBytes: number }[] {
  const bitsPerPixel = layout.channels * layout.bitDepth;
  const pass = (width: number, rows: number): { rows: number; rowBytes: number } => ({
    rows: width === 0 ? 0 : rows,
    rowBytes: 1 + Math.ceil((width * bitsPerPixel) / 8),
  });
  if (!layout.interlaced) return [pass(layout.width, layout.height)];
  return ADAM7.map(([x0, y0, dx, dy]) =>
    pass(Math.ceil((layout.width - x0) / dx), Math.ceil((layout.height - y0) / dy)),
  );
}

/**
 * Inflates the image data (on libuv's thread pool when it is large) and checks it holds
 * exactly the promised scanlines, each with a known filter. Resolves false when it does not.
 */
export async function pngPixelsWhole(layout: PngLayout): Promise<boolean> {
  const passes = scanlines(layout);
  const expected = passes.reduce((sum, p) => sum + p.rows * p.rowBytes, 0);
  const [first, ...more] = layout.idat;
  const compressed = first && more.length === 0 ? first : Buffer.concat(layout.idat);
  // One byte more than promised is enough to tell "too much data" without inflating it all.
  const options = { maxOutputLength: expected + 1 };
  let raw: Buffer | undefined;
  if (expected <= SYNC_INFLATE_MAX) {
    // Small: inflating here takes less than a trip to the thread pool.
    try {
      raw = zlib().inflateSync(compressed, options);
    } catch {
      return false;
    }
  } else {
    raw = await new Promise<Buffer | undefined>((resolve) => {
      zlib().inflate(compressed, options, (error, result) => {
        resolve(error ? undefined : result);
      });
    });
  }
  if (raw?.length !== expected) return false;
  let at = 0;
  for (const { rows, rowBytes } of passes) {
    for (let row = 0; row < rows; row++, at += rowBytes) if ((raw[at] ?? 5) > 4) return false;
  }
  return true;
}
