/**
 * Pure: what a write-back changes in one file. From the fields the file holds now (as
 * ExifTool reads them) and the answer, `planWrite()` decides every tag to write, and nothing
 * else: the dry run shows the same plan that a real run writes.
 *
 * Where each answer goes (see shared/reference/image-metadata.md, §1 and §8):
 * - description: XMP `dc:description` (the `x-default` entry; other languages are kept),
 *   EXIF `ImageDescription` (in a sidecar, its XMP twin `tiff:ImageDescription`, which Immich
 *   reads first), IPTC `Caption-Abstract` only where the file already has an IPTC block;
 * - alt text: XMP `Iptc4xmpCore:AltTextAccessibility`, and the description fields too when the
 *   file has no description at all;
 * - keywords: added to XMP `dc:subject`, IPTC `Keywords` (where IPTC exists),
 *   `lr:hierarchicalSubject` and `digiKam:TagsList`;
 * - who wrote it: `photoshop:CaptionWriter` names the tool, the model and what it wrote
 *   (`describe-image (gpt-4o; caption, tags)`); `xmp:MetadataDate` is set.
 * IPTC text is written as UTF-8 and marked so (`CodedCharacterSet`); an IPTC block that was
 * Latin-1 has its other non-ASCII values written again, so none of them changes meaning.
 */
import {
  DESCRIPTION_SOURCES,
  mergeKeywords,
  SOURCES,
  type Content,
  type Source,
} from './content.js';
import { CAPABILITIES, FORMAT_LABEL, type MetaFormat } from './formats.js';
import { characters, utf8Bytes } from './text.js';
import { safeJson } from '../output/guard.js';

/** The ExifTool tag names write-back writes (group-qualified, as reference §8 measured). */
export const TAGS = {
  description: 'XMP-dc:Description-x-default',
  exifDescription: 'EXIF:ImageDescription',
  xmpImageDescription: 'XMP-tiff:ImageDescription-x-default',
  caption: 'IPTC:Caption-Abstract',
  charset: 'IPTC:CodedCharacterSet',
  altText: 'XMP-iptcCore:AltTextAccessibility-x-default',
  subject: 'XMP-dc:Subject',
  iptcKeywords: 'IPTC:Keywords',
  hierarchical: 'XMP-lr:HierarchicalSubject',
  tagsList: 'XMP-digiKam:TagsList',
  captionWriter: 'XMP-photoshop:CaptionWriter',
  metadataDate: 'XMP-xmp:MetadataDate',
} as const;

/** The arguments that make ExifTool read those fields (with `-G1`, all languages). */
export const READ_TAGS = [
  '-XMP-dc:Description*',
  '-EXIF:ImageDescription',
  '-XMP-tiff:ImageDescription*',
  '-IPTC:all',
  '-XMP-iptcCore:AltTextAccessibility*',
  '-XMP-dc:Subject',
  '-XMP-lr:HierarchicalSubject',
  '-XMP-digiKam:TagsList',
  '-XMP-photoshop:CaptionWriter',
  '-XMP-xmp:MetadataDate',
  '-File:FileType',
];

/** IPTC-IIM limits (reference §1): longer values would be cut by ExifTool. */
export const IPTC_CAPTION_BYTES = 2000;
export const IPTC_KEYWORD_BYTES = 64;
/**
 * A JPEG's EXIF must fit one 64 KB segment (ExifTool would otherwise split it, which most
 * readers cannot follow); half of it is left for what the camera put there.
 */
export const EXIF_IN_JPEG_BYTES = 32_000;
/** IPTC's guidance for alt text. */
export const ALT_TEXT_CHARACTERS = 250;

/** The fields write-back reads and writes, as a file holds them now. */
export interface Existing {
  /** `dc:description`, `x-default`. */
  description: string | undefined;
  /** EXIF `ImageDescription` (in a sidecar: XMP `tiff:ImageDescription`, `x-default`). */
  imageDescription: string | undefined;
  /** IPTC `Caption-Abstract`. */
  caption: string | undefined;
  /** Whether any description field, in any language, holds text. */
  hasDescription: boolean;
  altText: string | undefined;
  subject: string[];
  iptcKeywords: string[];
  hierarchical: string[];
  tagsList: string[];
  captionWriter: string | undefined;
  metadataDate: string | undefined;
  /** ExifTool's `File:FileType`. */
  fileType: string | undefined;
  iptc: {
    /** The file has an IPTC-IIM block. */
    present: boolean;
    /** Its `CodedCharacterSet`, as ExifTool names it (`UTF8`), if it has one. */
    charset: string | undefined;
    /** It is marked UTF-8. */
    utf8: boolean;
    /** Its other values that are not ASCII, to write again as UTF-8 when it becomes UTF-8. */
    nonAscii: Record<string, string | string[]>;
  };
}

/** Nothing at all: a sidecar that does not exist yet. */
export function emptyExisting(): Existing {
  return {
    description: undefined,
    imageDescription: undefined,
    caption: undefined,
    hasDescription: false,
    altText: undefined,
    subject: [],
    iptcKeywords: [],
    hierarchical: [],
    tagsList: [],
    captionWriter: undefined,
    metadataDate: undefined,
    fileType: undefined,
    iptc: { present: false, charset: undefined, utf8: false, nonAscii: {} },
  };
}

/** A JSON value as text (ExifTool quotes every value with `structformat=jsonq`). */
function scalar(value: unknown): string {
  return typeof value === 'string' ? value : safeJson(value);
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(scalar).join(', ');
  return scalar(value);
}

function list(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value.map(scalar) : [scalar(value)];
}

const hasText = (value: unknown): boolean => (text(value) ?? '').trim() !== '';

/** IPTC record-1 and version tags: never text to convert. */
const IPTC_STRUCTURAL = new Set([
  'IPTC:CodedCharacterSet',
  'IPTC:EnvelopeRecordVersion',
  'IPTC:ApplicationRecordVersion',
]);

/**
 * Reads ExifTool's JSON (`readRaw` with `-G1 -api structformat=jsonq` and `READ_TAGS`) into
 * the fields write-back uses.
 */
export function parseExisting(raw: Readonly<Record<string, unknown>>): Existing {
  const out = emptyExisting();
  out.description = text(raw['XMP-dc:Description']);
  out.imageDescription = text(raw['IFD0:ImageDescription'] ?? raw['XMP-tiff:ImageDescription']);
  out.caption = text(raw['IPTC:Caption-Abstract']);
  out.altText = text(raw['XMP-iptcCore:AltTextAccessibility']);
  out.subject = list(raw['XMP-dc:Subject']);
  out.iptcKeywords = list(raw['IPTC:Keywords']);
  out.hierarchical = list(raw['XMP-lr:HierarchicalSubject']);
  out.tagsList = list(raw['XMP-digiKam:TagsList']);
  out.captionWriter = text(raw['XMP-photoshop:CaptionWriter']);
  out.metadataDate = text(raw['XMP-xmp:MetadataDate']);
  out.fileType = text(raw['File:FileType']);
  for (const [key, value] of Object.entries(raw)) {
    if (
      (/^XMP-dc:Description(-|$)/.test(key) ||
        /^XMP-tiff:ImageDescription(-|$)/.test(key) ||
        key === 'IFD0:ImageDescription' ||
        key === 'IPTC:Caption-Abstract') &&
      hasText(value)
    ) {
      out.hasDescription = true;
    }
    if (!key.startsWith('IPTC:')) continue;
    out.iptc.present = true;
    if (IPTC_STRUCTURAL.has(key)) continue;
    const values = list(value);
    // eslint-disable-next-line no-control-regex -- ASCII is the point
    if (values.some((v) => /[^\u0000-\u007f]/.test(v) && !v.startsWith('base64:')))
      out.iptc.nonAscii[key] = Array.isArray(value) ? values : scalar(value);
  }
  out.iptc.charset = text(raw['IPTC:CodedCharacterSet']);
  out.iptc.utf8 = out.iptc.charset === 'UTF8';
  return out;
}

/** One field's change, for the dry run. */
export interface Change {
  /** The ExifTool tag, e.g. `XMP-dc:Description`, `IPTC:Keywords`. */
  field: string;
  before: string | string[] | undefined;
  after: string | string[];
}

/** Something about a format, said once per run however many images it concerns. */
export interface Note {
  key: string;
  message: string;
}

/** A tag's new value: text, or a list (keywords). */
export type TagValue = string | string[];

export interface Plan {
  /** The tags to write, in order; empty when the file already holds the answer. */
  tags: [string, TagValue][];
  changes: Change[];
  notes: Note[];
  /** About this image only (an over-long alt text, a keyword IPTC cannot hold). */
  warnings: string[];
}

export interface PlanInput {
  format: MetaFormat;
  existing: Existing;
  content: Exclude<Content, { kind: 'none' }>;
  /** `describe-image`. */
  tool: string;
  /** The model that wrote the answer. */
  model: string;
  now: Date;
}

/** Decides every tag to write into one file (an image, or an XMP sidecar). */
export function planWrite(input: PlanInput): Plan {
  const { format, existing, content } = input;
  const caps = CAPABILITIES[format];
  const plan: Plan = { tags: [], changes: [], notes: [], warnings: [] };
  const set = (
    tag: string,
    before: string | string[] | undefined,
    after: TagValue,
    field = tag.replace(/-x-default$/, ''),
  ): void => {
    plan.tags.push([tag, after]);
    plan.changes.push({ field, before, after });
  };
  const iptc = caps.iptc && existing.iptc.present;
  let ownsDescription = false;

  const writeDescription = (value: string): void => {
    ownsDescription = true;
    if (existing.description !== value) set(TAGS.description, existing.description, value);
    if (format === 'xmp') {
      if (existing.imageDescription !== value)
        set(TAGS.xmpImageDescription, existing.imageDescription, value);
    } else if (caps.exif) {
      if (format === 'jpeg' && utf8Bytes(value) > EXIF_IN_JPEG_BYTES) {
        plan.warnings.push(
          `the description is over the ${EXIF_IN_JPEG_BYTES.toLocaleString('en-US')} bytes a JPEG's EXIF can spare: EXIF ImageDescription was left as it was (XMP holds it)`,
        );
      } else if (existing.imageDescription !== value) {
        set(TAGS.exifDescription, existing.imageDescription, value);
      }
    } else {
      plan.notes.push({
        key: `${format}:exif`,
        message: `${FORMAT_LABEL[format]} files cannot hold EXIF: ImageDescription is not written to them (XMP dc:description is)`,
      });
    }
    if (iptc && existing.caption !== value) {
      if (utf8Bytes(value) > IPTC_CAPTION_BYTES) {
        plan.warnings.push(
          `the description is over IPTC's ${IPTC_CAPTION_BYTES.toLocaleString('en-US')} bytes: IPTC Caption-Abstract was left as it was (XMP and EXIF hold it)`,
        );
      } else {
        set(TAGS.caption, existing.caption, value);
      }
    }
  };

  switch (content.kind) {
    case 'description':
      writeDescription(content.text);
      break;
    case 'alt-text': {
      const length = characters(content.text);
      if (length > ALT_TEXT_CHARACTERS) {
        plan.warnings.push(
          `the alt text is ${length} characters, over the ${ALT_TEXT_CHARACTERS} IPTC recommends (written all the same)`,
        );
      }
      if (existing.altText !== content.text) set(TAGS.altText, existing.altText, content.text);
      if (!existing.hasDescription) writeDescription(content.text);
      break;
    }
    case 'keywords': {
      const add = (tag: string, before: string[], keywords: readonly string[]): void => {
        const { merged, added } = mergeKeywords(before, keywords);
        if (added.length > 0) set(tag, before.length > 0 ? before : undefined, merged);
      };
      add(TAGS.subject, existing.subject, content.keywords);
      if (iptc) {
        const fits = content.keywords.filter((k) => utf8Bytes(k) <= IPTC_KEYWORD_BYTES);
        for (const k of content.keywords.filter((k) => !fits.includes(k))) {
          plan.warnings.push(
            `the keyword "${k}" is over IPTC's ${IPTC_KEYWORD_BYTES} bytes: not added to IPTC Keywords (XMP holds it)`,
          );
        }
        add(TAGS.iptcKeywords, existing.iptcKeywords, fits);
      }
      add(
        TAGS.hierarchical,
        existing.hierarchical,
        flat(content.keywords, '|', 'lr:hierarchicalSubject', plan),
      );
      add(TAGS.tagsList, existing.tagsList, flat(content.keywords, '/', 'digiKam:TagsList', plan));
      break;
    }
  }

  if (plan.tags.length === 0) return plan;

  const iptcTags = plan.tags.filter(([tag]) => tag.startsWith('IPTC:'));
  if (iptcTags.length > 0 && !existing.iptc.utf8) {
    set(TAGS.charset, existing.iptc.charset, 'UTF8');
    // Without this, those values would be read as UTF-8 and show as mojibake.
    const written = new Set(iptcTags.map(([tag]) => tag));
    for (const [tag, value] of Object.entries(existing.iptc.nonAscii)) {
      if (!written.has(tag)) set(tag, value, value, `${tag} (the same text, now as UTF-8)`);
    }
  }

  const writer = captionWriterAfter(input, ownsDescription);
  if (writer !== undefined && writer !== existing.captionWriter)
    set(TAGS.captionWriter, existing.captionWriter, writer);
  set(TAGS.metadataDate, existing.metadataDate, exifDate(input.now));
  return plan;
}

/** Keywords without `separator`, which would make a hierarchy of a plain keyword. */
function flat(keywords: readonly string[], separator: string, field: string, plan: Plan): string[] {
  const out: string[] = [];
  for (const k of keywords) {
    if (k.includes(separator)) {
      plan.warnings.push(
        `the keyword "${k}" is not added to ${field}, where "${separator}" separates levels`,
      );
    } else {
      out.push(k);
    }
  }
  return out;
}

/** What `photoshop:CaptionWriter` says after this write, or undefined to leave it. */
function captionWriterAfter(input: PlanInput, ownsDescription: boolean): string | undefined {
  const { existing, content, tool } = input;
  const ours = parseCaptionWriter(existing.captionWriter, tool);
  // Someone else's name stays unless their description was replaced.
  if (!ours && (existing.captionWriter ?? '').trim() !== '' && !ownsDescription) return undefined;
  const sources = new Set<Source>(ours?.sources ?? []);
  if (ownsDescription) for (const s of DESCRIPTION_SOURCES) sources.delete(s);
  sources.add(content.source);
  return formatCaptionWriter(
    tool,
    input.model,
    SOURCES.filter((s) => sources.has(s)),
  );
}

/** `describe-image (gpt-4o; caption, tags)`. */
export function formatCaptionWriter(
  tool: string,
  model: string,
  sources: readonly Source[],
): string {
  const name = model.replace(/\s+/g, ' ').trim() || 'unknown model';
  return `${tool} (${name}; ${sources.join(', ')})`;
}

/** The model and sources of a caption writer this tool wrote, or undefined. */
export function parseCaptionWriter(
  value: string | undefined,
  tool: string,
): { model: string; sources: Source[] } | undefined {
  if (value === undefined || !value.startsWith(`${tool} (`) || !value.endsWith(')')) return;
  const inner = value.slice(tool.length + 2, -1);
  const split = inner.lastIndexOf('; ');
  if (split === -1) return;
  const names = inner.slice(split + 2).split(', ');
  const sources = SOURCES.filter((s) => names.includes(s));
  if (sources.length !== names.length) return;
  return { model: inner.slice(0, split), sources };
}

/**
 * Whether the file already holds an answer this tool wrote from `source`: the caption writer
 * names the source, and its field is not empty (for `--resume` and `--skip-existing`).
 */
export function holdsAnswer(existing: Existing, source: Source, tool: string): boolean {
  const ours = parseCaptionWriter(existing.captionWriter, tool);
  if (!ours?.sources.includes(source)) return false;
  switch (source) {
    case 'caption':
    case 'ocr':
    case 'prompt':
      return hasText(existing.description);
    case 'alt-text':
      return hasText(existing.altText);
    case 'tags':
    case 'objects':
      return existing.subject.length > 0;
  }
}

/** ExifTool's date format, in UTC: `2026:03:14 15:09:26+00:00`. */
export function exifDate(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, ':')} ${iso.slice(11, 19)}+00:00`;
}
