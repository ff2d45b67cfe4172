/**
 * Pure: which metadata each file format can hold, how a file's real format (as ExifTool reads
 * it from the bytes) is checked against its name, and the names of XMP sidecars.
 */
import path from 'node:path';

/** A format write-back knows; `xmp` is a sidecar. */
export type MetaFormat = 'jpeg' | 'png' | 'webp' | 'heic' | 'avif' | 'tiff' | 'gif' | 'bmp' | 'xmp';

export interface Capabilities {
  /** EXIF IFD0 (ImageDescription). */
  exif: boolean;
  /** IPTC-IIM (written only where the file already has an IPTC block). */
  iptc: boolean;
  /** XMP. */
  xmp: boolean;
}

/** ExifTool's table of supported file types (R/W/C), and measured (see reference §4, §8). */
export const CAPABILITIES: Record<MetaFormat, Capabilities> = {
  jpeg: { exif: true, iptc: true, xmp: true },
  tiff: { exif: true, iptc: true, xmp: true },
  // PNG has only a non-standard zTXt IPTC profile: written only where one already is.
  png: { exif: true, iptc: true, xmp: true },
  webp: { exif: true, iptc: false, xmp: true },
  heic: { exif: true, iptc: false, xmp: true },
  avif: { exif: true, iptc: false, xmp: true },
  gif: { exif: false, iptc: false, xmp: true },
  bmp: { exif: false, iptc: false, xmp: false },
  xmp: { exif: false, iptc: false, xmp: true },
};

export const FORMAT_LABEL: Record<MetaFormat, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  heic: 'HEIC',
  avif: 'AVIF',
  tiff: 'TIFF',
  gif: 'GIF',
  bmp: 'BMP',
  xmp: 'XMP sidecar',
};

/** ExifTool's `File:FileType` → our format (undefined: not an image write-back knows). */
export function formatOfFileType(fileType: string | undefined): MetaFormat | undefined {
  const type = (fileType ?? '').toUpperCase();
  // "WEBP", "Extended WEBP", "WEBP (lossless)"
  if (/\bWEBP\b/.test(type)) return 'webp';
  switch (type) {
    case 'JPEG':
      return 'jpeg';
    case 'PNG':
      return 'png';
    case 'HEIC':
    case 'HEIF':
      return 'heic';
    case 'AVIF':
      return 'avif';
    case 'TIFF':
      return 'tiff';
    case 'GIF':
      return 'gif';
    case 'BMP':
      return 'bmp';
    case 'XMP':
      return 'xmp';
    default:
      return undefined;
  }
}

const EXTENSIONS: Record<string, MetaFormat> = {
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.jpe': 'jpeg',
  '.jfif': 'jpeg',
  '.png': 'png',
  '.webp': 'webp',
  '.heic': 'heic',
  '.heif': 'heic',
  '.hif': 'heic',
  '.avif': 'avif',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.gif': 'gif',
  '.bmp': 'bmp',
  '.dib': 'bmp',
  '.xmp': 'xmp',
};

/** What a file's name says it is (undefined: an extension write-back does not know). */
export function formatOfName(file: string): MetaFormat | undefined {
  return EXTENSIONS[path.extname(file).toLowerCase()];
}

/** The usual extension of a format, for a message that suggests a rename. */
export function extensionOf(format: MetaFormat): string {
  return format === 'jpeg' ? '.jpg' : format === 'tiff' ? '.tif' : `.${format}`;
}

/**
 * How an XMP sidecar is named: `append` gives `photo.jpg.xmp` (digiKam, darktable, Immich),
 * `replace` gives `photo.xmp` (Lightroom, Camera Raw, Capture One).
 */
export type SidecarStyle = 'append' | 'replace';

/** The sidecar of `image` in the given style. */
export function sidecarPathFor(image: string, style: SidecarStyle): string {
  if (style === 'append') return `${image}.xmp`;
  const ext = path.extname(image);
  return `${ext ? image.slice(0, -ext.length) : image}.xmp`;
}
