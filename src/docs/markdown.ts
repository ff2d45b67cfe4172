/**
 * Pure: images in Markdown (CommonMark + GFM, front matter) and MDX, found in the syntax tree
 * of mdast-util-from-markdown. Each image's description span comes from micromark's
 * `labelText` token, so that only the description is ever replaced; raw HTML inside Markdown
 * goes to the HTML scanner with its offsets mapped back to the document.
 */
import { fromMarkdown, type Extension } from 'mdast-util-from-markdown';
import { frontmatterFromMarkdown } from 'mdast-util-frontmatter';
import { gfmFromMarkdown } from 'mdast-util-gfm';
import { mdxFromMarkdown } from 'mdast-util-mdx';
import { frontmatter } from 'micromark-extension-frontmatter';
import { gfm } from 'micromark-extension-gfm';
import { mdxjs } from 'micromark-extension-mdxjs';
import { squash, TextTrail } from './context.js';
import { LineIndex } from './document.js';
import { scanHtml, valueSpan, type HtmlImage } from './html.js';
import { isPlaceholderAlt } from './sources.js';
import type { AltState, AltTarget, ImageContext } from './types.js';

interface Point {
  line: number;
  offset?: number | undefined;
}

/** The parts of mdast (and its GFM and MDX extensions) this module reads. */
interface MdNode {
  type: string;
  position?: { start: Point; end: Point } | undefined;
  children?: MdNode[];
  value?: unknown;
  url?: string;
  title?: string | null;
  alt?: string | null;
  identifier?: string;
  label?: string | null;
  referenceType?: 'full' | 'collapsed' | 'shortcut';
  name?: string | null;
  attributes?: MdNode[];
}

/** An image found in Markdown or MDX; offsets are the document's. */
export type MarkdownImage = HtmlImage;

/** `<!-- decorative -->`, or markdownlint's own way to silence MD045 on a line. */
const MARKER_HTML =
  /^<!--\s*(?:decorative|markdownlint-disable-line(?:\s+(?:[\w-]+\s+)*(?:MD045|no-alt-text)\b[\s\w-]*)?)\s*-->$/i;
/** `{/* decorative *\/}` in MDX, where HTML comments are not allowed. */
const MARKER_MDX = /^\/\*\s*decorative\s*\*\/$/i;

const start = (node: MdNode): number => node.position?.start.offset ?? 0;
const end = (node: MdNode): number => node.position?.end.offset ?? 0;

/** Plain text of a node: text, code and image descriptions. */
function plain(node: MdNode): string {
  if (node.type === 'text' || node.type === 'inlineCode') return String(node.value);
  if (node.type === 'image' || node.type === 'imageReference') return node.alt ?? '';
  return (node.children ?? []).map(plain).join('');
}

/**
 * Maps offsets in an HTML node's `value` to the document. Inside a block quote or a list the
 * value lacks each line's container prefix (`> `, indentation): every value line is the end
 * of its source line. Undefined when that does not hold (then the node is not edited).
 */
export function fragmentMap(
  source: string,
  value: string,
  sourceStart: number,
): ((offset: number) => number) | undefined {
  if (source === value) return (i) => sourceStart + i;
  const lines = (text: string) => text.split(/(?<=\r\n|\n|\r(?!\n))/);
  const from = lines(source);
  const to = lines(value);
  if (from.length !== to.length) return undefined;
  const starts: { value: number; source: number }[] = [];
  let v = 0;
  let s = 0;
  for (let i = 0; i < to.length; i++) {
    const a = from[i] ?? '';
    const b = to[i] ?? '';
    if (!a.endsWith(b)) return undefined;
    starts.push({ value: v, source: s + a.length - b.length });
    v += b.length;
    s += a.length;
  }
  return (offset) => {
    let line = starts.length - 1;
    while (line > 0 && (starts[line]?.value ?? 0) > offset) line--;
    const at = starts[line] ?? { value: 0, source: 0 };
    return sourceStart + at.source + offset - at.value;
  };
}

/** Finds the images of a Markdown (`mdx: false`) or MDX document. */
export function scanMarkdown(text: string, mdx: boolean): MarkdownImage[] {
  const labels = new Map<number, number>();
  const labelSpans: Extension = {
    enter: {
      labelText(token) {
        labels.set(token.start.offset, token.end.offset);
      },
    },
  };
  const tree = fromMarkdown(text, {
    extensions: mdx
      ? [mdxjs(), gfm(), frontmatter(['yaml', 'toml'])]
      : [gfm(), frontmatter(['yaml', 'toml'])],
    mdastExtensions: [
      ...(mdx ? [mdxFromMarkdown()] : []),
      gfmFromMarkdown(),
      frontmatterFromMarkdown(['yaml', 'toml']),
      labelSpans,
    ],
  }) as MdNode;

  const definitions = new Map<string, MdNode>();
  const markerLines = new Set<number>();
  const collect = (node: MdNode): void => {
    if (node.type === 'definition' && node.identifier && !definitions.has(node.identifier))
      definitions.set(node.identifier, node);
    const value = typeof node.value === 'string' ? node.value : '';
    const line = node.position?.start.line ?? 0;
    if (node.type === 'html') {
      // An HTML block can hold the image and its marker: each comment is looked at alone.
      for (const comment of value.matchAll(/<!--[\s\S]*?-->/g)) {
        if (MARKER_HTML.test(comment[0])) {
          const before = value.slice(0, comment.index);
          markerLines.add(line + (before.match(/\r\n|\n|\r/g)?.length ?? 0));
        }
      }
    } else if (
      (node.type === 'mdxTextExpression' || node.type === 'mdxFlowExpression') &&
      MARKER_MDX.test(value.trim())
    ) {
      markerLines.add(line);
    }
    node.children?.forEach(collect);
  };
  collect(tree);

  const lines = new LineIndex(text);
  /** Whether a decorative marker is on a line that `from`–`to` spans. */
  const marked = (from: number, to: number): boolean => {
    for (let line = lines.at(from).line; line <= lines.at(to).line; line++)
      if (markerLines.has(line)) return true;
    return false;
  };

  const found: MarkdownImage[] = [];
  const trail = new TextTrail();
  let heading: string | undefined;

  const contextHere = (link: string | undefined): ImageContext => {
    const context: ImageContext = {};
    if (heading) context.heading = heading;
    const before = trail.sentence();
    if (before) context.before = before;
    if (link !== undefined) context.link = link;
    return context;
  };

  const markdownImage = (node: MdNode, link: string | undefined): void => {
    const at = start(node);
    const descStart = at + 2; // after `![`
    const descEnd = labels.get(descStart) ?? descStart;
    let url = node.url ?? '';
    let title = node.title;
    const target: AltTarget = { kind: 'markdown', start: descStart, end: descEnd, mdx };
    if (node.type === 'imageReference') {
      const definition = definitions.get(node.identifier ?? '');
      url = definition?.url ?? '';
      title = definition?.title;
      if (node.referenceType === 'collapsed' || node.referenceType === 'shortcut') {
        target.reference = {
          type: node.referenceType,
          label: text.slice(descStart, descEnd),
          end: end(node),
        };
      }
    }
    const altText = node.alt ?? '';
    let alt: AltState;
    if (squash(altText) === '') alt = marked(at, end(node)) ? 'decorative' : 'missing';
    else alt = isPlaceholderAlt(altText, url) ? 'placeholder' : 'present';
    const context = contextHere(link);
    if (title) context.title = squash(title);
    const image: MarkdownImage = {
      offset: at,
      element: 'markdown',
      src: url,
      alt,
      context,
      target,
    };
    if (alt !== 'missing') image.currentAlt = altText;
    found.push(image);
  };

  const jsxImage = (node: MdNode, link: string | undefined): void => {
    const attributes = node.attributes ?? [];
    const named = (name: string) =>
      attributes.find((a) => a.type === 'mdxJsxAttribute' && a.name === name);
    const spread = attributes.some((a) => a.type === 'mdxJsxExpressionAttribute');
    const srcAttr = named('src');
    const altAttr = named('alt');
    const srcValue = srcAttr?.value;
    const src =
      typeof srcValue === 'string'
        ? srcValue
        : srcValue && typeof srcValue === 'object'
          ? `{${String((srcValue as { value?: unknown }).value)}}`
          : '';
    const altValue = altAttr?.value;
    let alt: AltState;
    if (altAttr === undefined) alt = spread ? 'dynamic' : 'missing';
    else if (altValue === null || altValue === undefined) alt = 'missing';
    else if (typeof altValue !== 'string') alt = 'dynamic';
    else if (altValue.trim() === '') alt = 'decorative';
    else alt = isPlaceholderAlt(altValue, src) ? 'placeholder' : 'present';
    const at = start(node);
    let insertAt = text.indexOf('img', at) + 3;
    for (const a of attributes) insertAt = Math.max(insertAt, end(a));
    const target: AltTarget = { kind: 'jsx', insertAt };
    if (altAttr) target.value = valueSpan(text, start(altAttr), end(altAttr));
    const context = contextHere(link);
    const title = named('title')?.value;
    if (typeof title === 'string' && title) context.title = squash(title);
    const image: MarkdownImage = { offset: at, element: 'img', src, alt, context, target };
    if (typeof altValue === 'string' && alt !== 'missing') image.currentAlt = altValue;
    found.push(image);
  };

  const htmlImages = (node: MdNode, link: string | undefined): void => {
    const from = start(node);
    const map = fragmentMap(text.slice(from, end(node)), String(node.value), from);
    if (!map) return;
    const base = contextHere(link);
    found.push(
      ...scanHtml(String(node.value), { inMarkdown: true, toSource: map, base }).map((image) => {
        if (
          image.alt === 'missing' &&
          image.target.kind === 'html' &&
          marked(image.offset, image.target.insertAt)
        ) {
          return { ...image, alt: 'decorative' as const };
        }
        return image;
      }),
    );
  };

  const visit = (node: MdNode, link: string | undefined): void => {
    switch (node.type) {
      case 'text':
      case 'inlineCode':
        trail.add(String(node.value));
        return;
      case 'image':
      case 'imageReference':
        markdownImage(node, link);
        return;
      case 'html':
        htmlImages(node, link);
        return;
      case 'mdxJsxFlowElement':
      case 'mdxJsxTextElement':
        if (node.name === 'img') jsxImage(node, link);
        break;
      default:
    }
    let inner = link;
    if (node.type === 'link') inner = node.url ?? '';
    if (node.type === 'linkReference') inner = definitions.get(node.identifier ?? '')?.url ?? '';
    for (const child of node.children ?? []) visit(child, inner);
    if (node.type === 'heading') heading = squash(plain(node)) || heading;
    if (/^(paragraph|heading|tableCell|listItem|blockquote|mdxJsxFlowElement)$/.test(node.type))
      trail.block();
  };
  visit(tree, undefined);
  return found;
}
