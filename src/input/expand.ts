/**
 * Turns image arguments (files, URLs, data URLs, `-`, globs, directories) and `--files-from`
 * into one lazy, de-duplicated sequence of images in input order.
 *
 * Globs are expanded by tinyglobby (quoted patterns, so the shell leaves them alone) up front,
 * so a pattern that matches nothing is a usage error before any request. Directories are
 * walked lazily, and `--files-from` is read line by line: neither the list nor the images are
 * ever all in memory.
 */
import { createReadStream } from 'node:fs';
import { opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { InStream } from '../deps.js';
import { InputError, UsageError } from '../errors.js';
import { classifyImageArg, fileError, isUrlArg, STDIN_NAME, type ImageArg } from './images.js';

/** File extensions of the formats this tool reads (sent as they are or converted). */
export const IMAGE_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.jpe',
  '.jfif',
  '.png',
  '.gif',
  '.webp',
  '.heic',
  '.heif',
  '.avif',
  '.tif',
  '.tiff',
  '.bmp',
]);

export function hasImageExtension(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/** One image of the run: the argument, its display name, and its de-duplication key. */
export interface ExpandedInput {
  arg: ImageArg;
  name: string;
  /** Absolute path for files, the URL itself otherwise. */
  key: string;
}

/** Whether an argument that is not an existing path is a glob: it has a glob character. */
export function isGlobPattern(arg: string): boolean {
  return !isUrlArg(arg) && /[*?[{]/.test(arg);
}

/**
 * Whether a glob could as well be a prompt ("What is this?", "Is it a *cat*?"): it holds
 * whitespace, or its only glob character is a `?` with no path separator or image-like
 * extension beside it. The last argument shaped so is a glob only if it matches a file.
 */
export function couldBePrompt(pattern: string): boolean {
  if (/\s/.test(pattern)) return true;
  if (/[*[{]/.test(pattern)) return false;
  return !pattern.includes('/') && !/\.[a-z0-9?]{2,5}$/i.test(pattern);
}

/** Whether a glob matches at least one file (tinyglobby is loaded only when this is called). */
export async function matchesAnyFile(pattern: string, cwd: string): Promise<boolean> {
  return (await globFiles(pattern, cwd)).length > 0;
}

/**
 * The files a glob matches, relative to `cwd` (absolute for an absolute pattern). Names match
 * in any case: `'*.jpg'` finds `IMG_0042.JPG`, as cameras and phones name their files.
 */
async function globFiles(pattern: string, cwd: string): Promise<string[]> {
  const { glob } = await import('tinyglobby');
  return glob(pattern, {
    cwd,
    absolute: path.isAbsolute(pattern),
    caseSensitiveMatch: false,
    dot: false,
    onlyFiles: true,
    expandDirectories: false,
  });
}

export type ArgKind = 'file' | 'dir' | 'missing';

export async function pathKind(file: string, cwd: string): Promise<ArgKind> {
  try {
    const info = await stat(path.resolve(cwd, file));
    return info.isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

export interface ExpandOptions {
  cwd: string;
  stdin: InStream;
  /** `--files-from`: a file of paths or URLs, one per line, or `-` for stdin. */
  filesFrom?: string | undefined;
  /** Called as images are found (for a progress total that grows until the list ends). */
  onCount?: (seen: number) => void;
  /** Called for each directory entry or glob match that is skipped, with why. */
  onSkip?: (name: string, why: string) => void;
}

/** A positional argument after checking: what to do with it when its turn comes. */
type Planned =
  { kind: 'one'; arg: ImageArg } | { kind: 'dir'; dir: string } | { kind: 'list'; files: string[] };

/** The checked inputs of a run. */
export interface InputPlan {
  inputs: AsyncIterable<ExpandedInput>;
  /** More than one image may come (several arguments, a glob, a directory, --files-from). */
  multiple: boolean;
  /**
   * Counts the distinct images by walking the arguments once more (names only), for a
   * progress total; undefined with --files-from, which is read once, or if the walk fails.
   */
  count(): Promise<number | undefined>;
}

/**
 * Checks the positional arguments (globs match something, directories hold an image) and
 * returns the lazy sequence. Usage errors are thrown here, before anything is sent.
 */
export async function planInputs(
  inputs: readonly string[],
  opts: ExpandOptions,
): Promise<InputPlan> {
  if (opts.filesFrom === STDIN_NAME && inputs.includes(STDIN_NAME)) {
    throw new UsageError(
      'standard input cannot hold both an image ("-") and the --files-from list',
    );
  }
  const planned: Planned[] = [];
  for (const input of inputs) planned.push(await plan(input, opts));
  return {
    inputs: iterate(planned, opts),
    multiple:
      opts.filesFrom !== undefined || planned.length > 1 || planned.some((p) => p.kind !== 'one'),
    count: async () => {
      if (opts.filesFrom !== undefined) return undefined;
      const keys = new Set<string>();
      try {
        for await (const input of iterate(planned, { cwd: opts.cwd, stdin: opts.stdin }))
          keys.add(input.key);
      } catch {
        return undefined;
      }
      return keys.size;
    },
  };
}

async function plan(input: string, opts: ExpandOptions): Promise<Planned> {
  if (input === STDIN_NAME || isUrlArg(input)) return { kind: 'one', arg: classifyImageArg(input) };
  const kind = await pathKind(input, opts.cwd);
  if (kind === 'file') return { kind: 'one', arg: classifyImageArg(input) };
  if (kind === 'dir') {
    if (!(await holdsImage(path.resolve(opts.cwd, input))))
      throw new InputError(
        `${input}: the directory holds no image files (looked for ${extensionList()})`,
      );
    return { kind: 'dir', dir: input };
  }
  if (isGlobPattern(input)) {
    const matches = await globFiles(input, opts.cwd);
    const files = matches.filter((m) => {
      if (hasImageExtension(m)) return true;
      opts.onSkip?.(m, 'not an image file name');
      return false;
    });
    files.sort(comparePaths);
    if (files.length === 0) {
      throw new UsageError(
        matches.length === 0
          ? `no files match ${input}`
          : `${input} matches ${matches.length} file(s) but no images (looked for ${extensionList()})`,
      );
    }
    return { kind: 'list', files };
  }
  // Not a path, URL or pattern: reading it will report "no such file".
  return { kind: 'one', arg: classifyImageArg(input) };
}

function extensionList(): string {
  return [...IMAGE_EXTENSIONS].join(' ');
}

async function* iterate(planned: Planned[], opts: ExpandOptions): AsyncGenerator<ExpandedInput> {
  const seen = new Set<string>();
  let count = 0;
  const take = (arg: ImageArg): ExpandedInput | undefined => {
    const key =
      arg.kind === 'file'
        ? path.resolve(opts.cwd, arg.path)
        : arg.kind === 'stdin'
          ? STDIN_NAME
          : arg.url;
    if (seen.has(key)) {
      opts.onSkip?.(arg.name, 'given more than once');
      return undefined;
    }
    seen.add(key);
    opts.onCount?.(++count);
    return { arg, name: arg.name, key };
  };

  for (const item of planned) {
    if (item.kind === 'one') {
      const got = take(item.arg);
      if (got) yield got;
    } else if (item.kind === 'list') {
      for (const file of item.files) {
        const got = take(classifyImageArg(file));
        if (got) yield got;
      }
    } else {
      for await (const file of walk(item.dir, opts.cwd, opts.onSkip)) {
        const got = take(classifyImageArg(file));
        if (got) yield got;
      }
    }
  }

  if (opts.filesFrom !== undefined) {
    for await (const line of readLines(opts.filesFrom, opts)) {
      if (line.trim() === '') continue;
      const entry = line.replace(/\r$/, '');
      if (!isUrlArg(entry) && (await pathKind(entry, opts.cwd)) === 'dir') {
        for await (const file of walk(entry, opts.cwd, opts.onSkip)) {
          const got = take(classifyImageArg(file));
          if (got) yield got;
        }
        continue;
      }
      const got = take(classifyImageArg(entry));
      if (got) yield got;
    }
  }
}

/** Whether any image file is under `dir` (stops at the first; no sorting, no list). */
async function holdsImage(dir: string): Promise<boolean> {
  const subdirs: string[] = [];
  let handle;
  try {
    handle = await opendir(dir);
  } catch {
    return false;
  }
  for await (const entry of handle) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    const isDir = entry.isSymbolicLink()
      ? (await pathKind(full, dir)) === 'dir'
      : entry.isDirectory();
    if (isDir) subdirs.push(full);
    else if (hasImageExtension(entry.name)) return true;
  }
  for (const sub of subdirs) if (await holdsImage(sub)) return true;
  return false;
}

/** Image files under `dir`, recursively, in name order, skipping hidden entries. */
async function* walk(
  dir: string,
  cwd: string,
  onSkip: ExpandOptions['onSkip'],
): AsyncGenerator<string> {
  let handle;
  try {
    handle = await opendir(path.resolve(cwd, dir));
  } catch (error) {
    throw fileError(dir, error);
  }
  // One directory's names at a time (not the whole tree), sorted for a stable order.
  const entries: { name: string; isDir: boolean }[] = [];
  for await (const entry of handle) {
    if (entry.name.startsWith('.')) {
      onSkip?.(path.join(dir, entry.name), 'hidden');
      continue;
    }
    let isDir = entry.isDirectory();
    if (entry.isSymbolicLink()) isDir = (await pathKind(path.join(dir, entry.name), cwd)) === 'dir';
    entries.push({ name: entry.name, isDir });
  }
  entries.sort((a, b) => comparePaths(a.name, b.name));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDir) {
      yield* walk(full, cwd, onSkip);
    } else if (hasImageExtension(entry.name)) {
      yield full;
    } else {
      onSkip?.(full, 'not an image file name');
    }
  }
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function* readLines(source: string, opts: ExpandOptions): AsyncGenerator<string> {
  let input: NodeJS.ReadableStream;
  if (source === STDIN_NAME) {
    if (opts.stdin.isTTY)
      throw new UsageError(
        '--files-from - reads the list from standard input, but it is a terminal',
      );
    input = Readable.from(opts.stdin);
  } else {
    const kind = await pathKind(source, opts.cwd);
    if (kind !== 'file')
      throw new UsageError(
        `--files-from ${source}: ${kind === 'dir' ? 'is a directory' : 'no such file'}`,
      );
    input = createReadStream(path.resolve(opts.cwd, source));
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
  }
}
