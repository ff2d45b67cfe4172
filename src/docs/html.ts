/**
 * Pure: images in HTML, found with parse5's source locations: `<img>`, `<input type="image">`
 * and `<area href>`, each with where its alt text goes. Used for whole HTML documents and for
 * raw HTML inside Markdown (as a fragment, its offsets mapped back to the document).
 */
import { parse, parseFragment, type DefaultTreeAdapterMap } from 'parse5';
import { squash, TextTrail } from './context.js';
import { isPlaceholderAlt } from './sources.js';
import type {
  AltState,
  AltTarget,
  AttributeValueSpan,
  ImageContext,
  ImageElement,
  ScannedImage,
} from './types.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];
type ParentNode = DefaultTreeAdapterMap['parentNode'];

/** An image found in a piece of HTML; offsets are the document's. */
export type HtmlImage = ScannedImage;

export interface HtmlScanOptions {
  /** Raw HTML from inside a Markdown document: parsed as a fragment. */
  inMarkdown?: boolean;
  /** Maps an offset in the scanned text to the document's (identity when absent). */
  toSource?: (offset: number) => number;
  /** Context from around a fragment (the Markdown heading, sentence, link). */
  base?: ImageContext;
}

const BLOCKS = new Set(
  'address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header li main nav ol p pre section table td th tr ul br hr'.split(
    ' ',
  ),
);
const SILENT = new Set(['script', 'style', 'template', 'textarea', 'title']);
const HEADING = /^h[1-6]$/;

/** The text content of an element, squashed. */
function textOf(node: Node): string {
  if (node.nodeName === '#text') return (node as DefaultTreeAdapterMap['textNode']).value;
  if (!('childNodes' in node) || SILENT.has(node.nodeName)) return '';
  return squash(node.childNodes.map(textOf).join(' '));
}

function attr(el: Element, name: string): string | undefined {
  return el.attrs.find((a) => a.name === name)?.value;
}

/** The first URL of a `srcset`. */
function firstCandidate(srcset: string | undefined): string {
  return (srcset ?? '').trim().split(/\s+/)[0]?.replace(/,$/, '') ?? '';
}

/** Finds the images of an HTML document, or of a fragment with `inMarkdown`. */
export function scanHtml(text: string, options: HtmlScanOptions = {}): HtmlImage[] {
  const toSource = options.toSource ?? ((i: number) => i);
  const parseOptions = { sourceCodeLocationInfo: true, scriptingEnabled: false } as const;
  const root: ParentNode = options.inMarkdown
    ? parseFragment(text, parseOptions)
    : parse(text, parseOptions);

  // <area> describes a region of the image whose usemap names its <map>.
  const mapImages = new Map<string, string>();
  const collect = (node: Node): void => {
    if (node.nodeName === 'img') {
      const usemap = attr(node, 'usemap')?.trim();
      if (usemap?.startsWith('#')) {
        const src = attr(node, 'src')?.trim() ?? '';
        if (!mapImages.has(usemap.slice(1))) mapImages.set(usemap.slice(1), src);
      }
    }
    if ('content' in node) collect(node.content);
    if ('childNodes' in node) node.childNodes.forEach(collect);
  };
  collect(root);

  const found: HtmlImage[] = [];
  const trail = new TextTrail();
  let heading = options.base?.heading;

  interface Around {
    link?: string;
    caption?: string;
    picture?: Element;
    map?: string;
  }

  const visit = (node: Node, around: Around): void => {
    if (node.nodeName === '#text') {
      trail.add((node as DefaultTreeAdapterMap['textNode']).value);
      return;
    }
    if (!('childNodes' in node)) return;
    const el = 'tagName' in node ? node : undefined;
    const inner: Around = { ...around };
    if (el) {
      const name = el.tagName;
      if (name === 'a' && attr(el, 'href') !== undefined) inner.link = attr(el, 'href') ?? '';
      if (name === 'figure') {
        const caption = el.childNodes.find((c) => c.nodeName === 'figcaption');
        if (caption) inner.caption = textOf(caption);
      }
      if (name === 'picture') inner.picture = el;
      if (name === 'map') inner.map = attr(el, 'name') ?? attr(el, 'id') ?? '';
      const image = imageOf(el, text, around, toSource, options);
      if (image) {
        const context: ImageContext = { ...options.base, ...image.context };
        if (heading) context.heading = heading;
        const before = trail.sentence();
        if (before) context.before = before;
        else if (options.base?.before) context.before = options.base.before;
        found.push({ ...image, context });
      }
    }
    const kids =
      el?.tagName === 'template'
        ? [(el as DefaultTreeAdapterMap['template']).content]
        : node.childNodes;
    const silent = el !== undefined && SILENT.has(el.tagName) && el.tagName !== 'template';
    if (!silent) for (const child of kids) visit(child, inner);
    if (el && BLOCKS.has(el.tagName)) trail.block();
    if (el && HEADING.test(el.tagName)) heading = textOf(el) || heading;
  };

  /** The image an element is, if it is one that needs alt text. */
  function imageOf(
    el: Element,
    source: string,
    around: Around,
    map: (i: number) => number,
    opts: HtmlScanOptions,
  ): (Omit<HtmlImage, 'context'> & { context: ImageContext }) | undefined {
    const name = el.tagName;
    let element: ImageElement;
    if (name === 'img') element = 'img';
    else if (name === 'input' && attr(el, 'type')?.trim().toLowerCase() === 'image')
      element = 'input';
    else if (name === 'area' && attr(el, 'href') !== undefined) element = 'area';
    else return undefined;
    const location = el.sourceCodeLocation;
    const startTag = location?.startTag;
    if (!location || !startTag) return undefined;

    let src: string;
    const context: ImageContext = {};
    if (element === 'area') {
      src = mapImages.get(around.map ?? '') ?? '';
      context.link = attr(el, 'href') ?? '';
      context.role = 'map area';
    } else {
      src = attr(el, 'src')?.trim() ?? '';
      if (src === '') src = firstCandidate(attr(el, 'srcset'));
      if (src === '' && around.picture) {
        const first = around.picture.childNodes.find(
          (c) => c.nodeName === 'source' && attr(c, 'srcset'),
        );
        if (first) src = firstCandidate(attr(first as Element, 'srcset'));
      }
      if (element === 'input') context.role = 'button';
      if (around.link !== undefined) context.link = around.link;
    }
    const title = attr(el, 'title');
    if (title) context.title = squash(title);
    if (around.caption) context.caption = around.caption;

    const current = attr(el, 'alt');
    const alt = altState(el, element, current, src);

    // Insert after the last attribute, or after the tag name when there is none.
    const attrLocs = location.attrs ?? {};
    let insertAt = startTag.startOffset + 1 + name.length;
    for (const loc of Object.values(attrLocs)) insertAt = Math.max(insertAt, loc.endOffset);
    const altLoc = attrLocs.alt;
    const target: AltTarget = {
      kind: 'html',
      insertAt: map(insertAt),
      inMarkdown: opts.inMarkdown ?? false,
    };
    if (altLoc && current !== undefined) {
      const span = valueSpan(source, altLoc.startOffset, altLoc.endOffset);
      target.value = { start: map(span.start), end: map(span.end), quote: span.quote };
    }
    const image: Omit<HtmlImage, 'context'> & { context: ImageContext } = {
      offset: map(startTag.startOffset),
      element,
      src,
      alt,
      context,
      target,
    };
    if (current !== undefined && alt !== 'missing') image.currentAlt = current;
    return image;
  }

  visit(root, {});
  return found;
}

function altState(
  el: Element,
  element: ImageElement,
  current: string | undefined,
  src: string,
): AltState {
  if (element !== 'img') {
    // A button or a link needs a name: empty is as missing as absent.
    if (current === undefined || current.trim() === '') return 'missing';
  } else if (current === undefined) {
    const hidden =
      attr(el, 'aria-hidden')?.trim().toLowerCase() === 'true' ||
      /^(presentation|none)$/i.test(attr(el, 'role')?.trim() ?? '');
    return hidden ? 'unmarked-decorative' : 'missing';
  } else if (current.trim() === '') {
    return 'decorative';
  }
  return isPlaceholderAlt(current, src) ? 'placeholder' : 'present';
}

/**
 * The value part of an attribute whose whole span (`name`, `name=v`, `name = "v"`) parse5
 * gave: with its quotes, or an empty span after the name (quote `none`) when it has no value.
 */
export function valueSpan(text: string, start: number, end: number): AttributeValueSpan {
  const slice = text.slice(start, end);
  const equals = slice.indexOf('=');
  if (equals === -1) return { start: end, end, quote: 'none' };
  let at = equals + 1;
  while (at < slice.length && /\s/.test(slice[at] ?? '')) at++;
  const quote = slice[at];
  return {
    start: start + at,
    end,
    quote: quote === '"' || quote === "'" ? quote : '',
  };
}
