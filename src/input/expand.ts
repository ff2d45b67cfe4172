/**
 * Turns image arguments (files, URLs, data URLs, `-`, globs, directories) and `--files-from`
 * into one lazy, de-duplicated sequence of images in input order.
 *
 * Globs are expanded by tinyglobby (quoted patterns, so the shell leaves them alone) up front,
 * so a pattern that matches nothing is a usage error before any request. Directories are
 * walked lazily, and `--files-from` is read line by line: neither the list nor the images are
 * ever all in memory.
 *
 * Only regular files found by a walk or a glob are images: a FIFO named `x.png` would hold a
 * reader forever. A walk enters each real directory once (a link to itself or to a parent
 * would otherwise be followed without end), and a file reached by two paths is one image.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, opendir, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { InStream } from '../deps.js';
import { InputError, InterruptedError, UsageError } from '../errors.js';
import {
  classifyImageArg,
  fileError,
  isUrlArg,
  openListStream,
  STDIN_NAME,
  type ImageArg,
} from './images.js';

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

/**
 * Whether a glob matches at least one file. A pattern whose only glob character is `?` and that
 * names no folder ("What is this?") is first held against the names in `cwd`: when none could
 * match, the answer is no without loading tinyglobby (and picomatch), which a prompt ending in a
 * question mark would otherwise cost every run.
 */
export async function matchesAnyFile(pattern: string, cwd: string): Promise<boolean> {
  const simple = questionMarkPattern(pattern);
  if (simple) {
    const names = await readdir(cwd).catch(() => undefined);
    if (names && !names.some((name) => simple.test(name))) return false;
  }
  return (await globFiles(pattern, cwd)).length > 0;
}

/**
 * For a glob with no folder whose only special character is `?`, a test that every name the
 * glob can match passes (it may pass more: a `?` is let stand for one or two UTF-16 units, and
 * a directory passes too); otherwise undefined.
 */
export function questionMarkPattern(pattern: string): RegExp | undefined {
  if (!pattern.includes('?') || /[/\\*[\]{}()!+@]/.test(pattern)) return undefined;
  const source = pattern.replace(/[.^$|]/g, '\\$&').replace(/\?/g, '[^/]{1,2}');
  // dot: false: a name starting with "." is matched only by a pattern that starts with ".".
  return new RegExp(`^${pattern.startsWith('.') ? '' : '(?!\\.)'}${source}$`, 'i');
}

/**
 * The files a glob matches, relative to `cwd` (absolute for an absolute pattern). Names match
 * in any case: `'*.jpg'` finds `IMG_0042.JPG`, as cameras and phones name their files.
 */
async function globFiles(pattern: string, cwd: string): Promise<string[]> {
  const { glob } = await import('tinyglobby');
  return glob(pattern, { cwd, absolute: path.isAbsolute(pattern), ...GLOB_MATCHING });
}

/** How tinyglobby matches names here (`questionMarkPattern()` follows the same rules). */
export const GLOB_MATCHING = {
  caseSensitiveMatch: false,
  dot: false,
  onlyFiles: true,
  expandDirectories: false,
} as const;

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
  /** Ends a wait for a `--files-from` FIFO's writer (Ctrl-C). */
  signal?: AbortSignal | undefined;
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
    if (!(await holdsImage(input, opts.cwd)))
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

/** What one pass over the inputs has met: real directories walked, images taken. */
interface Visited {
  cwd: string;
  onSkip: ExpandOptions['onSkip'];
  /** Real paths of the directories walked. */
  dirs: Set<string>;
  /** Real paths of directories holding glob matches, each looked up once. */
  realDirs: Map<string, Promise<string>>;
}

function visited(opts: Pick<ExpandOptions, 'cwd' | 'onSkip'>): Visited {
  return { cwd: opts.cwd, onSkip: opts.onSkip, dirs: new Set(), realDirs: new Map() };
}

async function* iterate(planned: Planned[], opts: ExpandOptions): AsyncGenerator<ExpandedInput> {
  const state = visited(opts);
  // Files by real path (a link and its target, a glob and a directory that overlap, are one).
  const seen = new Set<string>();
  let count = 0;
  const take = (arg: ImageArg, real?: string): ExpandedInput | undefined => {
    const key =
      arg.kind === 'file'
        ? path.resolve(opts.cwd, arg.path)
        : arg.kind === 'stdin'
          ? STDIN_NAME
          : arg.url;
    const id = real ?? key;
    if (seen.has(id)) {
      opts.onSkip?.(arg.name, 'given more than once');
      return undefined;
    }
    seen.add(id);
    opts.onCount?.(++count);
    return { arg, name: arg.name, key };
  };
  const given = async (entry: string): Promise<ExpandedInput | undefined> => {
    const arg = classifyImageArg(entry);
    return take(arg, arg.kind === 'file' ? await realPathOf(arg.path, opts.cwd) : undefined);
  };

  for (const item of planned) {
    if (item.kind === 'one') {
      const got = item.arg.kind === 'file' ? await given(item.arg.path) : take(item.arg);
      if (got) yield got;
    } else if (item.kind === 'list') {
      for (const file of item.files) {
        const found = await globMatch(file, state);
        if (!found) continue;
        const got = take(classifyImageArg(file), found.real);
        if (got) yield got;
      }
    } else {
      for await (const found of walk(item.dir, state)) {
        const got = take(classifyImageArg(found.file), found.real);
        if (got) yield got;
      }
    }
  }

  if (opts.filesFrom !== undefined) {
    for await (const line of readLines(opts.filesFrom, opts)) {
      if (line.trim() === '') continue;
      const entry = line.replace(/\r$/, '');
      if (!isUrlArg(entry) && (await pathKind(entry, opts.cwd)) === 'dir') {
        for await (const found of walk(entry, state)) {
          const got = take(classifyImageArg(found.file), found.real);
          if (got) yield got;
        }
        continue;
      }
      const got = await given(entry);
      if (got) yield got;
    }
  }
}

/** The real path of a file named by the user; a path that cannot be resolved stands as given. */
async function realPathOf(file: string, cwd: string): Promise<string> {
  const full = path.resolve(cwd, file);
  return realpath(full).catch(() => full);
}

/** What a directory entry or a glob match is, a symbolic link followed. */
type EntryKind =
  { type: 'dir' | 'file'; real: string | undefined } | { type: 'other'; real?: undefined };

/**
 * What `full` is, from its entry or lstat (`info`) and the real path of its folder
 * (`realParent`): a directory, a regular file, or something else (a FIFO, a socket, a device).
 * A link is followed; a broken one counts as a file, so that reading it says what is wrong.
 */
async function entryKind(
  full: string,
  info: Dirent | Stats,
  realParent: string | undefined,
): Promise<EntryKind> {
  const real = realParent === undefined ? undefined : path.join(realParent, path.basename(full));
  if (info.isDirectory()) return { type: 'dir', real };
  if (info.isFile()) return { type: 'file', real };
  if (!info.isSymbolicLink()) return { type: 'other' };
  try {
    const [target, resolved] = await Promise.all([stat(full), realpath(full)]);
    if (target.isDirectory()) return { type: 'dir', real: resolved };
    return target.isFile() ? { type: 'file', real: resolved } : { type: 'other' };
  } catch {
    return { type: 'file', real: undefined };
  }
}

const NOT_REGULAR = 'not a regular file (a FIFO, socket or device)';

/**
 * A glob match if it is a regular file (checked without opening it), with its real path.
 * tinyglobby follows a link back to a parent folder one level deep: a match found through
 * such a loop is skipped, as a directory walk never enters one.
 */
async function globMatch(file: string, state: Visited): Promise<{ real?: string } | undefined> {
  const full = path.resolve(state.cwd, file);
  let info: Stats;
  try {
    info = await lstat(full);
  } catch {
    // Gone since the glob ran: reading it says so.
    return {};
  }
  const folders: string[] = [];
  for (let dir = path.dirname(full); ; dir = path.dirname(dir)) {
    folders.push(dir);
    if (path.dirname(dir) === dir) break;
  }
  const reals = await Promise.all(folders.map((dir) => realDirOf(dir, state)));
  if (new Set(reals).size < reals.length) {
    state.onSkip?.(file, 'inside a link back to one of its parent folders');
    return undefined;
  }
  const kind = await entryKind(full, info, reals[0]);
  if (kind.type === 'file') return kind.real === undefined ? {} : { real: kind.real };
  state.onSkip?.(file, kind.type === 'dir' ? 'a directory' : NOT_REGULAR);
  return undefined;
}

/** The real path of a folder, looked up once per pass. */
function realDirOf(dir: string, state: Visited): Promise<string> {
  let real = state.realDirs.get(dir);
  if (!real) {
    real = realpath(dir).catch(() => dir);
    state.realDirs.set(dir, real);
  }
  return real;
}

/**
 * Whether any image file is under `dir` (stops at the first). A folder that cannot be read
 * is an InputError here, before any request, as it would be when its turn came.
 */
async function holdsImage(dir: string, cwd: string): Promise<boolean> {
  const images = walk(dir, visited({ cwd }));
  try {
    return !(await images.next()).done;
  } finally {
    await images.return(undefined);
  }
}

/** An image file found by a walk: its path as the walk reached it, and its real path. */
interface Found {
  file: string;
  real: string | undefined;
}

/**
 * Image files under `dir`, recursively, in name order, skipping hidden entries, entries that
 * are not regular files, and directories already walked (by real path). `realDir` is the
 * real path of `dir` when the caller knows it.
 */
async function* walk(dir: string, state: Visited, realDir?: string): AsyncGenerator<Found> {
  const full = path.resolve(state.cwd, dir);
  let handle;
  try {
    realDir ??= await realpath(full);
    if (state.dirs.has(realDir)) {
      state.onSkip?.(dir, 'a directory already walked');
      return;
    }
    state.dirs.add(realDir);
    handle = await opendir(full);
  } catch (error) {
    throw fileError(dir, error);
  }
  // One directory's names at a time (not the whole tree), sorted for a stable order.
  const entries: { name: string; kind: EntryKind }[] = [];
  for await (const entry of handle) {
    if (entry.name.startsWith('.')) {
      state.onSkip?.(path.join(dir, entry.name), 'hidden');
      continue;
    }
    entries.push({
      name: entry.name,
      kind: await entryKind(path.join(full, entry.name), entry, realDir),
    });
  }
  entries.sort((a, b) => comparePaths(a.name, b.name));
  for (const { name, kind } of entries) {
    const file = path.join(dir, name);
    if (kind.type === 'dir') {
      yield* walk(file, state, kind.real);
    } else if (!hasImageExtension(name)) {
      state.onSkip?.(file, 'not an image file name');
    } else if (kind.type === 'other') {
      state.onSkip?.(file, NOT_REGULAR);
    } else {
      yield { file, real: kind.real };
    }
  }
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function* readLines(source: string, opts: ExpandOptions): AsyncGenerator<string> {
  let input: NodeJS.ReadableStream;
  let release = (): void => undefined;
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
    // A FIFO (`--files-from <(find …)`) must not be opened with a blocking open: see images.ts.
    ({ stream: input, release } = await openListStream(source, opts.cwd, opts.signal));
  }
  // Loaded here: only --files-from reads lines, and a run without it need not load readline.
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } catch (error) {
    // Ctrl-C while waiting for the list's writer: the list ends here.
    if (error instanceof InterruptedError) return;
    throw error;
  } finally {
    lines.close();
    release();
  }
}
