/**
 * Image sources in documents: what a `src` points at (pure), the same image found in many
 * places grouped so that it is described once (pure), and local files checked to exist (I/O).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImageFinding } from './types.js';

/** What a document's image source resolves to. `key` identifies the image across documents. */
export type ResolvedSource =
  | { kind: 'file'; path: string; key: string }
  | { kind: 'url'; url: string; key: string }
  | { kind: 'data'; url: string; key: string };

export interface ResolveOptions {
  /** Directory relative paths of documents are taken from. */
  cwd: string;
  /** `--root`: the directory a root-relative source (`/img/x.png`) is found in. */
  root?: string | undefined;
}

/** A source that cannot be used, with the reason (shown with the document's file and line). */
export class SourceProblem {
  constructor(readonly reason: string) {}
}

/** `decodeURIComponent`, or the text as it is when it holds a malformed escape. */
export function decodePath(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Pure: where the source `src` of an image in the document `docPath` points.
 * - `http(s)://…` and `//host/…` stay URLs (the fragment dropped: it never reaches a server);
 * - `data:` URLs are kept whole;
 * - a path loses its `?query` and `#fragment`, is percent-decoded, and is taken relative to
 *   the document, or to `root` when it starts with `/`.
 */
export function resolveSource(
  src: string,
  docPath: string,
  options: ResolveOptions,
): ResolvedSource | SourceProblem {
  const text = src.trim();
  if (text === '') return new SourceProblem('the image has no source');
  // An MDX `src={…}`: only the running page knows it.
  if (/^\{.*\}$/s.test(text)) return new SourceProblem(`the source is set by code: ${text}`);
  if (/^data:/i.test(text)) return { kind: 'data', url: text, key: text };
  const absolute = text.startsWith('//') ? `https:${text}` : text;
  if (/^https?:/i.test(absolute)) {
    let url: URL;
    try {
      url = new URL(absolute);
    } catch {
      return new SourceProblem(`not a valid URL: ${text}`);
    }
    url.hash = '';
    return { kind: 'url', url: url.href, key: url.href };
  }
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(text);
  if (scheme) return new SourceProblem(`a ${scheme[1] ?? ''}: source is not an image file`);
  const bare = decodePath(text.replace(/[?#].*$/s, ''));
  if (bare === '') return new SourceProblem('the source names no file');
  let full: string;
  if (bare.startsWith('/')) {
    if (options.root === undefined) {
      return new SourceProblem(
        `${text} is relative to the site's root: give the root directory with --root`,
      );
    }
    full = path.join(path.resolve(options.cwd, options.root), bare);
  } else {
    full = path.resolve(options.cwd, path.dirname(docPath), bare);
  }
  return { kind: 'file', path: full, key: full };
}

// Words that say "there is an image here" and nothing about it.
const GENERIC = new Set([
  'image',
  'img',
  'picture',
  'pic',
  'photo',
  'screenshot',
  'screen shot',
  'alt',
  'alt text',
  'untitled',
  'placeholder',
  'icon',
  'graphic',
]);

/**
 * Pure: whether a non-empty alt text only repeats the source's file name (`logo.png`, `logo`,
 * `my-chart` for `my_chart.svg`) or is a generic word ("image", "screenshot").
 */
export function isPlaceholderAlt(alt: string, src: string): boolean {
  const said = alt.trim().toLowerCase().replace(/\s+/g, ' ');
  if (said === '') return false;
  if (GENERIC.has(said)) return true;
  const name = path.posix.basename(decodePath(src.trim().replace(/[?#].*$/s, ''))).toLowerCase();
  if (name === '') return false;
  const stem = name.replace(/\.[a-z0-9]+$/, '');
  return said === name || said === stem || said === stem.replace(/[-_.]+/g, ' ');
}

/** Images that share a source: described once, the answer written at every finding. */
export interface ImageGroup {
  key: string;
  source: ResolvedSource;
  findings: ImageFinding[];
}

/** A finding whose source cannot be used, and why. */
export interface FindingProblem {
  finding: ImageFinding;
  reason: string;
}

/**
 * Pure: the findings grouped by the image they show (first seen first), and those whose
 * source cannot be resolved. A map area is its own group: its text names a region and its
 * link, not the whole image.
 */
export function groupImages(
  findings: readonly ImageFinding[],
  options: ResolveOptions,
): { groups: ImageGroup[]; problems: FindingProblem[] } {
  const groups = new Map<string, ImageGroup>();
  const problems: FindingProblem[] = [];
  for (const finding of findings) {
    const source = resolveSource(finding.src, finding.file, options);
    if (source instanceof SourceProblem) {
      problems.push({ finding, reason: source.reason });
      continue;
    }
    const key =
      finding.element === 'area'
        ? `${source.key}#area:${finding.context.link ?? ''}:${finding.file}:${finding.offset}`
        : source.key;
    const group = groups.get(key);
    if (group) group.findings.push(finding);
    else groups.set(key, { key, source, findings: [finding] });
  }
  return { groups: [...groups.values()], problems };
}

/**
 * Checks that every local file source exists and is a file. Groups whose file is missing are
 * removed from the result and each of their findings becomes a problem (with its file and
 * line, via the finding); the rest go on.
 */
export async function checkLocalSources(
  groups: readonly ImageGroup[],
): Promise<{ groups: ImageGroup[]; problems: FindingProblem[] }> {
  const found = await Promise.all(
    groups.map((group) =>
      group.source.kind !== 'file'
        ? Promise.resolve(undefined)
        : stat(group.source.path).then(
            (s) => (s.isFile() ? undefined : 'is not a file'),
            (error: unknown) =>
              (error as { code?: string }).code === 'ENOENT' ? 'not found' : 'cannot be read',
          ),
    ),
  );
  const kept: ImageGroup[] = [];
  const problems: FindingProblem[] = [];
  groups.forEach((group, i) => {
    const why = found[i];
    if (why === undefined) kept.push(group);
    else
      for (const finding of group.findings)
        problems.push({ finding, reason: `${finding.src}: ${why}` });
  });
  return { groups: kept, problems };
}
