/**
 * The data that flows between the three steps of alt-text work: find (documents → images),
 * decide (images + alt texts → fixes, pure) and write (fixes → files). Types only.
 */

/** How a document is parsed, from its extension. */
export type DocKind = 'markdown' | 'mdx' | 'html';

/** A document as read: its bytes (to notice a change on disk) and its text without the BOM. */
export interface SourceDocument {
  /** The path as the user gave it (shown in messages), relative to `cwd` or absolute. */
  path: string;
  kind: DocKind;
  /** The file's bytes as read. */
  bytes: Uint8Array;
  /** The decoded text, without a leading BOM: every offset below indexes this string. */
  text: string;
  /** Whether the file began with a UTF-8 byte order mark (put back on write). */
  bom: boolean;
}

/**
 * What an image's alt text is now:
 * - `missing`: none (HTML: no `alt`; Markdown: an empty description); to be filled.
 * - `decorative`: deliberately empty (HTML `alt=""`; a Markdown image marked decorative).
 * - `unmarked-decorative`: HTML hidden from assistive technology (`aria-hidden="true"`,
 *   `role="presentation"`/`"none"`) but without `alt`: filled with `alt=""`, no model needed.
 * - `placeholder`: text that only repeats the file name (`![logo]` for `logo.png`,
 *   `alt="hero.jpg"`); replaced only when asked to.
 * - `present`: real text; never touched.
 * - `dynamic`: set by code (MDX `alt={…}` or a `{...spread}`); never touched.
 */
export type AltState =
  'missing' | 'decorative' | 'unmarked-decorative' | 'placeholder' | 'present' | 'dynamic';

/** The element an image was found as. */
export type ImageElement = 'markdown' | 'img' | 'input' | 'area';

/** What the prompt may use about where the image sits. All plain text, possibly empty. */
export interface ImageContext {
  /** The text of the nearest heading before the image. */
  heading?: string;
  /** The last sentence of text before the image. */
  before?: string;
  /** The target of the link the image is inside (an image used as a link). */
  link?: string;
  /** The image's title (Markdown title, HTML `title`). */
  title?: string;
  /** A `<figcaption>` of the `<figure>` the image is in. */
  caption?: string;
  /** `button` for `<input type="image">`, `map area` for `<area>`. */
  role?: string;
}

/**
 * Where the alt text goes, as exact offsets into `SourceDocument.text`:
 * - `markdown`: the description between `![` and `]` (`start`–`end`); `label` is set for a
 *   collapsed or shortcut reference (`![logo][]`, `![logo]`), whose description is also the
 *   label, so the rewrite must keep the label: `![ALT][logo]`. `labelEnd` is the end of the
 *   whole construct for `collapsed` (the `[]` to drop).
 * - `html`: an attribute of a tag. `insertAt` is just after the tag's last attribute (or its
 *   name), where ` alt="…"` goes; `value` is the span of an existing `alt`'s value with its
 *   quotes, when there is one to replace.
 * - `jsx`: the same for an MDX JSX element.
 */
export type AltTarget =
  | {
      kind: 'markdown';
      start: number;
      end: number;
      mdx: boolean;
      reference?: { type: 'collapsed' | 'shortcut'; label: string; end: number };
    }
  | { kind: 'html'; insertAt: number; value?: AttributeValueSpan; inMarkdown: boolean }
  | { kind: 'jsx'; insertAt: number; value?: AttributeValueSpan };

/**
 * An attribute value's span including its quotes, and the quote used: `''` for an unquoted
 * value, `none` for an attribute without a value (`alt`; the span is empty, after the name).
 */
export interface AttributeValueSpan {
  start: number;
  end: number;
  quote: '"' | "'" | '' | 'none';
}

/** One image found in a document. */
export interface ImageFinding {
  /** The document's path as given. */
  file: string;
  /** 1-based line and column of the image's first character (columns in UTF-16 units). */
  line: number;
  column: number;
  /** Offset of the image's first character in the document's text. */
  offset: number;
  element: ImageElement;
  /**
   * The source as the document gives it: the Markdown destination (escapes and entities
   * resolved, as the parser reports it) or the HTML attribute value. Empty when none.
   */
  src: string;
  alt: AltState;
  /** The alt text there is now (undefined when missing or dynamic). */
  currentAlt?: string;
  context: ImageContext;
  target: AltTarget;
}

/** An image as a scanner finds it, before the document's name and line numbers are added. */
export type ScannedImage = Omit<ImageFinding, 'file' | 'line' | 'column'>;

/** A text edit: replace `length` characters at `offset` with `text`. */
export interface Fix {
  offset: number;
  length: number;
  text: string;
}
