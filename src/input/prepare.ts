/**
 * Image preparation: every local image is decoded (so a truncated or fake file fails here,
 * not at the server), turned upright, scaled to what the model will use, stripped of
 * metadata, and converted when the format is one vision APIs do not take. sharp does the
 * work (loaded on first use); HEIC goes through heic-decode (sharp's prebuilt libvips has no
 * HEVC decoder) and BMP through bmp-ts (libvips has no BMP loader).
 */
import { createRequire } from 'node:module';
import type { Metadata, Sharp } from 'sharp';
import type { ImageDetail } from '../api/types.js';
import { InputError } from '../errors.js';
import type { ImageBytes } from './images.js';
import { pngPixelsWhole, readPngLayout } from './png.js';
import {
  CONVERTIBLE_FORMATS,
  MIME_BY_FORMAT,
  SENDABLE_FORMATS,
  type ImageFormat,
} from './sniff.js';
import { targetSize, type Size } from './tokens.js';

/** Largest image a vision API takes (OpenAI: 20 MB). */
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

export interface PrepareOptions {
  detail?: ImageDetail | undefined;
  /** The model the image goes to: its rule sets the size (see `targetSize`). */
  model?: string | undefined;
  /** `--max-size`: a long-edge limit that replaces the detail-based one. */
  maxSize?: number | undefined;
  /** `--keep-metadata`: keep EXIF, XMP, IPTC and ICC. */
  keepMetadata?: boolean | undefined;
  /** `--original`: send the bytes untouched (still checked). */
  original?: boolean | undefined;
  /** Formats the server takes as they are (default: JPEG, PNG, WebP, GIF). */
  sendable?: readonly ImageFormat[] | undefined;
}

export interface ImageFacts extends Size {
  format: ImageFormat;
  bytes: number;
}

export interface PreparedBytes {
  mime: string;
  data: Uint8Array;
  original: ImageFacts;
  sent: ImageFacts;
  /** Things the user should know (an animated image sent as its first frame). */
  notes: string[];
  /** Time spent preparing, in ms. */
  ms: number;
}

// sharp and heic-decode are CommonJS: require() loads sharp in about half the time import()
// takes (no ES-module wrapping of its dependencies), and only when an image is prepared.
const requireCjs = createRequire(import.meta.url);
type SharpFn = typeof import('sharp').default;
let sharpFn: SharpFn | undefined;

function loadSharp(): SharpFn {
  if (!sharpFn) {
    sharpFn = requireCjs('sharp') as SharpFn;
    // One libvips thread per image: the batch pool already runs images in parallel. No
    // operation cache: every image is new, and the cache only holds memory.
    sharpFn.concurrency(1);
    sharpFn.cache(false);
  }
  return sharpFn;
}

const JPEG_QUALITY = 85;
/** Formats this tool reads: sent as they are, or converted. */
const READABLE_FORMATS: readonly ImageFormat[] = [...SENDABLE_FORMATS, ...CONVERTIBLE_FORMATS];

/** Prepares one local image for sending. */
export async function prepareBytes(
  image: ImageBytes,
  opts: PrepareOptions,
  now: () => number = Date.now,
): Promise<PreparedBytes> {
  let started = now();
  const sendable = opts.sendable ?? SENDABLE_FORMATS;
  const label = image.name === '-' ? 'standard input' : image.name;
  const fail = (what: string, error?: unknown): InputError =>
    new InputError(
      `${label}: ${what}${error instanceof Error ? ` (${error.message.replace(/\s+/g, ' ').trim()})` : ''}`,
      error === undefined ? undefined : { cause: error },
    );

  if (!READABLE_FORMATS.includes(image.format)) {
    throw fail(
      `${image.format.toUpperCase()} images are not supported; convert it to PNG or JPEG (supported: JPEG, PNG, WebP, GIF, HEIC, AVIF, TIFF, BMP)`,
    );
  }

  if (opts.original && !sendable.includes(image.format)) {
    throw fail(
      `--original sends the file as it is, but ${image.format.toUpperCase()} is not a format the server accepts; leave out --original to convert it`,
    );
  }

  // The exact bytes go, once checked.
  const unchanged = (facts: ImageFacts, notes: string[] = []): PreparedBytes => {
    checkSize(facts.bytes, label, Boolean(opts.original));
    return {
      mime: image.mime,
      data: image.data,
      original: facts,
      sent: facts,
      notes,
      ms: now() - started,
    };
  };
  const png = await wholePngToSend(image, opts, sendable);
  if (png) return unchanged(png);

  const sharp = loadSharp();
  // The time reported is the image's own, not loading sharp (once a run).
  started = now();
  if (opts.original) {
    const input = sharp(image.data, { failOn: 'error' });
    const meta = await readMetadata(input, image.format, fail);
    await decodeCheck(input, image.format, fail);
    return unchanged({
      format: image.format,
      width: meta.width,
      height: meta.pageHeight ?? meta.height,
      bytes: image.data.length,
    });
  }

  const notes: string[] = [];
  let input: Sharp;
  let hasAlpha: boolean;
  let orientation = 1;
  let metadataPresent = false;
  let pages = 1;
  let size: Size;

  if (image.format === 'heic' || image.format === 'bmp') {
    const raw =
      image.format === 'heic'
        ? await decodeHeic(image.data, fail)
        : await decodeBmp(image.data, fail);
    hasAlpha = !raw.opaque;
    size = { width: raw.width, height: raw.height };
    input = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 4 } });
    if (!hasAlpha) input = input.removeAlpha();
  } else {
    input = sharp(image.data, { failOn: 'error' });
    const meta = await readMetadata(input, image.format, fail);
    if (!meta.width || !meta.height)
      throw fail(`cannot read the ${image.format.toUpperCase()} image's size`);
    hasAlpha = meta.hasAlpha;
    orientation = meta.orientation ?? 1;
    metadataPresent = Boolean(meta.exif ?? meta.xmp ?? meta.iptc);
    pages = meta.pages ?? 1;
    size =
      orientation >= 5
        ? { width: meta.height, height: meta.width }
        : { width: meta.width, height: meta.height };
    // Multi-frame files (animated GIF/WebP, multi-page TIFF) report the height of one frame
    // as pageHeight; sharp reads the first frame by default.
    if (pages > 1 && meta.pageHeight) {
      size =
        orientation >= 5
          ? { width: meta.pageHeight, height: meta.width }
          : { width: meta.width, height: meta.pageHeight };
    }
  }

  const original: ImageFacts = { format: image.format, ...size, bytes: image.data.length };
  const animated = pages > 1 && (image.format === 'gif' || image.format === 'webp');
  const convert = !sendable.includes(image.format) || (animated && image.format === 'gif');
  // An alpha channel that is opaque everywhere is no reason to send a PNG photo.
  if (convert && hasAlpha && image.format !== 'heic' && image.format !== 'bmp') {
    hasAlpha = !(await input.stats().catch(() => ({ isOpaque: false }))).isOpaque;
  }
  const outFormat: ImageFormat = convert ? (hasAlpha ? 'png' : 'jpeg') : image.format;
  if (animated) {
    notes.push(
      `${label}: animated ${image.format.toUpperCase()} (${pages} frames): sending the first frame as ${outFormat.toUpperCase()}`,
    );
  } else if (pages > 1) {
    notes.push(`${label}: ${pages} pages: sending the first one`);
  }

  const target = targetSize(size, opts.detail, opts.maxSize, opts.model);
  const resize = target.width < size.width || target.height < size.height;
  const untouched =
    !convert &&
    !resize &&
    !animated &&
    orientation === 1 &&
    (!metadataPresent || Boolean(opts.keepMetadata));

  if (untouched) {
    // Already right: send the exact bytes, after checking that every pixel decodes.
    await decodeCheck(input, image.format, fail);
    return unchanged(original, notes);
  }

  let pipeline = input.autoOrient();
  if (resize) pipeline = pipeline.resize(target.width, target.height, { fit: 'fill' });
  // The colour profile is kept (it says how to read the pixels, and holds nothing private):
  // the pixels then stay as they were, rather than being converted to sRGB, which costs a
  // third of the preparation of a phone photo.
  pipeline = opts.keepMetadata ? pipeline.keepMetadata() : pipeline.keepIccProfile();
  pipeline = encode(pipeline, outFormat);
  let output: { data: Buffer; info: { width: number; height: number; size: number } };
  try {
    output = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw fail(
      `cannot decode the ${image.format.toUpperCase()} image; the file may be truncated or corrupt`,
      error,
    );
  }
  checkSize(output.data.length, label, false);
  return {
    mime: MIME_BY_FORMAT[outFormat],
    data: output.data,
    original,
    sent: {
      format: outFormat,
      width: output.info.width,
      height: output.info.height,
      bytes: output.data.length,
    },
    notes,
    ms: now() - started,
  };
}

/**
 * A PNG that goes as it is (already within the target size and with no metadata, or with
 * --original), proved whole without sharp (see png.ts); undefined when sharp must decide.
 */
async function wholePngToSend(
  image: ImageBytes,
  opts: PrepareOptions,
  sendable: readonly ImageFormat[],
): Promise<ImageFacts | undefined> {
  if (image.format !== 'png' || !sendable.includes('png')) return undefined;
  const layout = readPngLayout(image.data);
  if (!layout || layout.animated) return undefined;
  if (!opts.original) {
    // Metadata is sharp's to judge, --keep-metadata or not: an eXIf chunk may say to turn it.
    if (layout.metadata) return undefined;
    const target = targetSize(layout, opts.detail, opts.maxSize, opts.model);
    if (target.width < layout.width || target.height < layout.height) return undefined;
  }
  if (!(await pngPixelsWhole(layout))) return undefined;
  const { width, height } = layout;
  return { format: 'png', width, height, bytes: image.data.length };
}

function encode(pipeline: Sharp, format: ImageFormat): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: JPEG_QUALITY });
    case 'png':
      return pipeline.png();
    case 'webp':
      return pipeline.webp({ quality: JPEG_QUALITY });
    case 'gif':
      return pipeline.gif();
    default:
      return pipeline.jpeg({ quality: JPEG_QUALITY });
  }
}

/** The image's header: size, orientation, metadata, pages. */
async function readMetadata(
  input: Sharp,
  format: ImageFormat,
  fail: (what: string, error?: unknown) => InputError,
): Promise<Metadata> {
  try {
    return await input.metadata();
  } catch (error) {
    throw fail(`cannot read the ${format.toUpperCase()} image; the file may be corrupt`, error);
  }
}

/** Decodes every pixel (to a tiny thumbnail) so that truncated files are caught. */
async function decodeCheck(
  input: Sharp,
  format: ImageFormat,
  fail: (what: string, error?: unknown) => InputError,
): Promise<void> {
  try {
    await input.resize(8, 8, { fit: 'inside' }).raw().toBuffer();
  } catch (error) {
    throw fail(
      `cannot decode the ${format.toUpperCase()} image; the file may be truncated or corrupt`,
      error,
    );
  }
}

/** Over 20 MB is an input error; with --original, --max-size is refused, so it is not offered. */
function checkSize(bytes: number, label: string, original: boolean): void {
  if (bytes > MAX_IMAGE_BYTES) {
    const hint = original
      ? 'leave out --original so that it is scaled down, or use a smaller image'
      : 'use --max-size or a smaller image';
    throw new InputError(
      `${label}: ${(bytes / 1048576).toFixed(1)} MB after preparation, over the 20 MB limit of vision APIs; ${hint}`,
    );
  }
}

interface RawImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel. */
  data: Uint8Array;
  opaque: boolean;
}

function isOpaque(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

function alphaAllZero(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 0) return false;
  return true;
}

async function decodeHeic(
  data: Uint8Array,
  fail: (what: string, error?: unknown) => InputError,
): Promise<RawImage> {
  const decode = requireCjs('heic-decode') as typeof import('heic-decode').default;
  try {
    // libheif applies the file's rotation and mirroring (irot/imir) while decoding.
    const image = await decode({ buffer: Buffer.from(data.buffer, data.byteOffset, data.length) });
    const rgba = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length);
    return { width: image.width, height: image.height, data: rgba, opaque: isOpaque(rgba) };
  } catch (error) {
    throw fail('cannot decode the HEIC image; the file may be truncated or corrupt', error);
  }
}

async function decodeBmp(
  data: Uint8Array,
  fail: (what: string, error?: unknown) => InputError,
): Promise<RawImage> {
  const { decode } = await import('bmp-ts');
  try {
    const image = decode(Buffer.from(data.buffer, data.byteOffset, data.length), { toRGBA: true });
    const rgba = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length);
    // Only 32-bit BMPs carry alpha, and many leave it all zero: then it means "opaque".
    const opaque =
      ((image.bitPP as number | undefined) ?? 24) < 32 || isOpaque(rgba) || alphaAllZero(rgba);
    if (opaque) for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
    if (!image.width || !image.height) throw new Error('no pixels');
    return { width: image.width, height: Math.abs(image.height), data: rgba, opaque };
  } catch (error) {
    throw fail('cannot decode the BMP image; the file may be truncated or corrupt', error);
  }
}
