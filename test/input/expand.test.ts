/**
 * planInputs (src/input/expand.ts) on a real temporary directory tree: directories, globs,
 * --files-from, de-duplication, order, totals and the errors raised before any request.
 * planInputs only looks at names, so the "images" here need not hold image bytes.
 */
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { glob } from 'tinyglobby';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InStream } from '../../src/deps.js';
import { InputError, UsageError } from '../../src/errors.js';
import {
  couldBePrompt,
  hasImageExtension,
  isGlobPattern,
  GLOB_MATCHING,
  matchesAnyFile,
  pathKind,
  planInputs,
  questionMarkPattern,
  type ExpandOptions,
  type ExpandedInput,
  type InputPlan,
} from '../../src/input/expand.js';
import { mkfifo } from '../helpers/fifo.js';
import { tempDir } from '../helpers/images.js';

let root: string;

const FILES = [
  'photos/a.png',
  'photos/b10.jpg',
  'photos/b2.jpeg',
  'photos/C.PNG',
  'photos/d.webp',
  'photos/notes.txt',
  'photos/.hidden.png',
  'photos/.thumbs/t.png',
  'photos/sub/e.gif',
  'photos/sub/readme.md',
  'photos/sub/.f.png',
  'photos/sub/deeper/g.heic',
  'photos/sub/deeper/h.tiff',
  'other/x.bmp',
  'other/y.avif',
  'textonly/notes.txt',
  'textonly/.hidden.jpg',
];

/** The visible images under photos/, in the documented order. */
const PHOTOS = [
  'photos/C.PNG',
  'photos/a.png',
  'photos/b10.jpg',
  'photos/b2.jpeg',
  'photos/d.webp',
  'photos/sub/deeper/g.heic',
  'photos/sub/deeper/h.tiff',
  'photos/sub/e.gif',
];

function emptyStdin(): InStream {
  return Readable.from([]);
}

function opts(extra: Partial<ExpandOptions> = {}): ExpandOptions {
  return { cwd: root, stdin: emptyStdin(), ...extra };
}

async function collect(plan: InputPlan): Promise<ExpandedInput[]> {
  const out: ExpandedInput[] = [];
  for await (const input of plan.inputs) out.push(input);
  return out;
}

async function names(inputs: string[], extra: Partial<ExpandOptions> = {}): Promise<string[]> {
  return (await collect(await planInputs(inputs, opts(extra)))).map((i) => i.name);
}

/** Writes these files (relative to root, folders made as needed); their bytes do not matter. */
async function touch(files: readonly string[]): Promise<void> {
  for (const file of files) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), 'x');
  }
}

beforeAll(async () => {
  root = await tempDir('describe-image-expand-');
  await touch(FILES);
  await mkdir(path.join(root, 'empty'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('helpers', () => {
  it('hasImageExtension: the documented extensions, in any case', () => {
    for (const ext of [
      'jpg',
      'jpeg',
      'jpe',
      'jfif',
      'png',
      'gif',
      'webp',
      'heic',
      'heif',
      'avif',
      'tif',
      'tiff',
      'bmp',
    ]) {
      expect(hasImageExtension(`a.${ext}`), ext).toBe(true);
      expect(hasImageExtension(`dir/A.${ext.toUpperCase()}`), ext).toBe(true);
    }
    for (const name of ['notes.txt', 'readme.md', 'png', 'a.png.txt', 'a.svg', 'a.pdf'])
      expect(hasImageExtension(name), name).toBe(false);
  });

  it('isGlobPattern: any glob character makes a pattern, spaces or not; URLs and names are not', () => {
    for (const pattern of [
      '*.png',
      'photos/**/*.{jpg,png}',
      'img[0-9].png',
      'photos/?.png',
      'My Photos/*.jpg',
      'what?',
    ])
      expect(isGlobPattern(pattern), pattern).toBe(true);
    for (const name of ['https://example.com/*.png', 'cat.png', 'My Photos/cat.png'])
      expect(isGlobPattern(name), name).toBe(false);
  });

  it('couldBePrompt: whitespace, or a lone ? with no / or extension beside it', () => {
    for (const text of ['What is this?', 'Is this a *cat*?', 'My Photos/*.jpg', 'what?'])
      expect(couldBePrompt(text), text).toBe(true);
    for (const pattern of ['*.png', 'photos/?.png', 'img?.jpg', 'photos/**/*.{jpg,png}', 'a[12]'])
      expect(couldBePrompt(pattern), pattern).toBe(false);
  });

  it('pathKind tells files, directories and missing paths apart, relative to cwd', async () => {
    expect(await pathKind('photos/a.png', root)).toBe('file');
    expect(await pathKind('photos', root)).toBe('dir');
    expect(await pathKind('photos/nope.png', root)).toBe('missing');
    expect(await pathKind(path.join(root, 'photos'), '/')).toBe('dir');
  });
});

describe('directories', () => {
  it('yields the image files recursively, sorted, skipping hidden files and folders and non-images', async () => {
    const skipped: [string, string][] = [];
    const plan = await planInputs(['photos'], opts({ onSkip: (n, why) => skipped.push([n, why]) }));
    expect(plan.multiple).toBe(true);
    expect(await plan.count()).toBe(PHOTOS.length);
    const inputs = await collect(plan);
    expect(inputs.map((i) => i.name)).toEqual(PHOTOS);
    for (const input of inputs) {
      expect(input.arg.kind).toBe('file');
      expect(input.key).toBe(path.join(root, input.name));
    }
    const why = new Map(skipped);
    expect(why.get('photos/.hidden.png')).toBe('hidden');
    expect(why.get('photos/.thumbs')).toBe('hidden');
    expect(why.get('photos/sub/.f.png')).toBe('hidden');
    expect(why.get('photos/notes.txt')).toMatch(/not an image/);
    expect(why.get('photos/sub/readme.md')).toMatch(/not an image/);
    // Nothing inside a hidden folder is even looked at.
    expect(skipped.some(([n]) => n.startsWith('photos/.thumbs/'))).toBe(false);
  });

  it('gives the same names with a trailing slash or ./', async () => {
    expect(await names(['photos/'])).toEqual(PHOTOS);
    expect(await names(['./photos'])).toEqual(PHOTOS);
  });

  it('with an absolute path yields absolute names', async () => {
    expect(await names([path.join(root, 'other')])).toEqual([
      path.join(root, 'other/x.bmp'),
      path.join(root, 'other/y.avif'),
    ]);
  });

  it('a directory with no image files (hidden ones do not count) is an InputError', async () => {
    await expect(planInputs(['textonly'], opts())).rejects.toThrow(InputError);
    await expect(planInputs(['textonly'], opts())).rejects.toThrow(/textonly/);
    await expect(planInputs(['empty'], opts())).rejects.toThrow(InputError);
  });
});

describe('globs', () => {
  it('are expanded and sorted, skipping hidden files and folders', async () => {
    expect(await names(['photos/**/*.png'])).toEqual(['photos/C.PNG', 'photos/a.png']);
    expect(await names(['photos/**/*.{png,PNG,gif,heic}'])).toEqual([
      'photos/C.PNG',
      'photos/a.png',
      'photos/sub/deeper/g.heic',
      'photos/sub/e.gif',
    ]);
  });

  it('drop non-image matches (with onSkip) and never match directories', async () => {
    const skipped: string[] = [];
    const plan = await planInputs(['photos/*'], opts({ onSkip: (n) => skipped.push(n) }));
    expect(await collect(plan).then((l) => l.map((i) => i.name))).toEqual([
      'photos/C.PNG',
      'photos/a.png',
      'photos/b10.jpg',
      'photos/b2.jpeg',
      'photos/d.webp',
    ]);
    expect(skipped).toContain('photos/notes.txt');
    expect(await plan.count()).toBe(5);
  });

  it('match names in any case: *.jpg finds A.JPG, the README example finds .HEIC and .JPG', async () => {
    const tree = ['cased/A.JPG', 'cased/b.jpg', 'cased/2024/IMG_0042.HEIC', 'cased/2024/c.Png'];
    await touch(tree);
    expect(await names(['cased/*.jpg'])).toEqual(['cased/A.JPG', 'cased/b.jpg']);
    expect(await names(['cased/**/*.{jpg,jpeg,png,heic}'])).toEqual([
      'cased/2024/IMG_0042.HEIC',
      'cased/2024/c.Png',
      'cased/A.JPG',
      'cased/b.jpg',
    ]);
    expect(await matchesAnyFile('cased/*.JPG', root)).toBe(true);
    expect(await matchesAnyFile('cased/*.gif', root)).toBe(false);
  });

  it('a pattern with a space in a folder name is a glob', async () => {
    await touch(['My Photos/x.jpg', 'My Photos/y.png', 'My Photos/notes.txt']);
    expect(await names(['My Photos/*.jpg', 'My Photos/*.png'])).toEqual([
      'My Photos/x.jpg',
      'My Photos/y.png',
    ]);
    expect(await matchesAnyFile('My Photos/*', root)).toBe(true);
    expect(await matchesAnyFile('What is this?', root)).toBe(false);
  });

  it('a ?-only pattern is checked against the folder first, and never misses what tinyglobby finds', async () => {
    const dir = path.join(root, 'questions');
    const names = [
      'What is this1',
      'what is thisX',
      '.hidden1',
      'ab',
      'éa',
      '\u{1F600}b',
      'x.y',
      'a^b',
      'a$b',
      'a|b',
      'Is it a cat',
    ];
    await touch(names.map((name) => `questions/${name}`));
    const patterns = [
      'What is this?',
      'What is that?',
      'a?',
      '??',
      '?b',
      'a^?',
      'a$?',
      'a|?',
      '.hidden?',
      '?hidden?',
      'x?y',
      'x.?',
      'Is it a cat?',
      'Is it a dog?',
    ];
    for (const pattern of patterns) {
      const test = questionMarkPattern(pattern);
      expect(test, pattern).toBeInstanceOf(RegExp);
      const found = await glob(pattern, { cwd: dir, ...GLOB_MATCHING });
      for (const name of found) expect(test!.test(name), `${pattern} ${name}`).toBe(true);
      expect(await matchesAnyFile(pattern, dir), pattern).toBe(found.length > 0);
    }
    // Names that cannot match are told apart without tinyglobby.
    expect(questionMarkPattern('What is that?')!.test('What is this1')).toBe(false);
    expect(questionMarkPattern('a?')!.test('.a1')).toBe(false);
    // Anything beyond ? and plain characters, or a folder, goes to tinyglobby alone.
    for (const pattern of ['*.png', 'a/b?', 'a[12]?', '{a,b}?', '!a?', '@(a)?', 'a\\?', 'plain'])
      expect(questionMarkPattern(pattern), pattern).toBeUndefined();
  });

  it('a glob that matches nothing is a UsageError naming the pattern', async () => {
    const error = await planInputs(['photos/a.png', 'nothing/*.png'], opts()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('nothing/*.png');
  });

  it('a glob that matches only non-images is a UsageError too', async () => {
    const error = await planInputs(['photos/*.txt'], opts()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('photos/*.txt');
  });

  it('a glob that only hidden files would match is a UsageError', async () => {
    await expect(planInputs(['textonly/*.jpg'], opts())).rejects.toThrow(UsageError);
  });
});

describe('de-duplication and order', () => {
  it('keeps the first occurrence: two globs, ./a and a, a glob and a path, a directory', async () => {
    const skipped: [string, string][] = [];
    const plan = await planInputs(
      [
        'photos/b*.jpg',
        'photos/*.jpg',
        './photos/a.png',
        'photos/a.png',
        'photos/sub/../a.png',
        path.join(root, 'photos/a.png'),
        'photos',
      ],
      opts({ onSkip: (n, why) => skipped.push([n, why]) }),
    );
    const inputs = await collect(plan);
    expect(inputs.map((i) => i.name)).toEqual([
      'photos/b10.jpg',
      'photos/a.png',
      'photos/C.PNG',
      'photos/b2.jpeg',
      'photos/d.webp',
      'photos/sub/deeper/g.heic',
      'photos/sub/deeper/h.tiff',
      'photos/sub/e.gif',
    ]);
    expect(new Set(inputs.map((i) => i.key)).size).toBe(inputs.length);
    expect(await plan.count()).toBe(inputs.length);
    expect(skipped.filter(([, why]) => /more than once/.test(why)).length).toBeGreaterThanOrEqual(
      5,
    );
  });

  it('the same URL twice is one image; URLs are passed through as they are', async () => {
    const url = 'https://example.com/cat.png?x=1';
    const plan = await planInputs([url, 'photos/a.png', url], opts());
    const inputs = await collect(plan);
    expect(inputs.map((i) => [i.arg.kind, i.key])).toEqual([
      ['url', url],
      ['file', path.join(root, 'photos/a.png')],
    ]);
    expect(await plan.count()).toBe(2);
  });

  it('"-" twice is one image from standard input', async () => {
    const inputs = await collect(await planInputs(['-', '-'], opts()));
    expect(inputs.map((i) => [i.arg.kind, i.name])).toEqual([['stdin', '-']]);
  });

  it('one file is not "multiple"; two files, a glob or a directory are', async () => {
    expect((await planInputs(['photos/a.png'], opts())).multiple).toBe(false);
    expect((await planInputs(['photos/a.png', 'photos/d.webp'], opts())).multiple).toBe(true);
    expect((await planInputs(['photos/a*.png'], opts())).multiple).toBe(true);
    expect((await planInputs(['other'], opts())).multiple).toBe(true);
  });

  it('a missing plain path is kept (reading it reports "no such file" later)', async () => {
    const inputs = await collect(await planInputs(['photos/missing.png'], opts()));
    expect(inputs.map((i) => [i.arg.kind, i.name])).toEqual([['file', 'photos/missing.png']]);
  });
});

describe('--files-from', () => {
  it('reads a file of paths and URLs, one a line, after the arguments; total is not known', async () => {
    await writeFile(
      path.join(root, 'list.txt'),
      [
        'photos/d.webp',
        '',
        '   ',
        './photos/a.png',
        'photos/a.png\r',
        'https://example.com/z.jpg',
        'other',
        'photos/d.webp',
        'photos/missing.png',
        'photos/name with spaces.png',
      ].join('\n'),
    );
    const plan = await planInputs(['photos/a.png'], opts({ filesFrom: 'list.txt' }));
    expect(await plan.count()).toBeUndefined();
    expect(plan.multiple).toBe(true);
    const inputs = await collect(plan);
    expect(inputs.map((i) => i.name)).toEqual([
      'photos/a.png',
      'photos/d.webp',
      'https://example.com/z.jpg',
      'other/x.bmp',
      'other/y.avif',
      'photos/missing.png',
      'photos/name with spaces.png',
    ]);
  });

  it('--files-from alone is "multiple" even with a one-line list', async () => {
    await writeFile(path.join(root, 'one.txt'), 'photos/a.png\n');
    const plan = await planInputs([], opts({ filesFrom: 'one.txt' }));
    expect(plan.multiple).toBe(true);
    expect(await plan.count()).toBeUndefined();
    expect((await collect(plan)).map((i) => i.name)).toEqual(['photos/a.png']);
  });

  it('"-" reads the list from standard input', async () => {
    const stdin = Readable.from(['photos/b2.jpeg\nphotos/', 'a.png\n', 'photos/b2.jpeg\n']);
    const plan = await planInputs([], opts({ filesFrom: '-', stdin }));
    expect(await plan.count()).toBeUndefined();
    expect((await collect(plan)).map((i) => i.name)).toEqual(['photos/b2.jpeg', 'photos/a.png']);
  });

  it('"-" from a terminal is a UsageError', async () => {
    const tty: InStream = {
      isTTY: true,
      [Symbol.asyncIterator]: () => Readable.from([])[Symbol.asyncIterator](),
    };
    const plan = await planInputs([], opts({ filesFrom: '-', stdin: tty }));
    await expect(collect(plan)).rejects.toThrow(UsageError);
  });

  it('a missing list file is a UsageError naming it', async () => {
    const error = await planInputs([], opts({ filesFrom: 'no-such-list.txt' }))
      .then(collect)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('no-such-list.txt');
  });

  it('a directory as the list is a UsageError', async () => {
    const error = await planInputs([], opts({ filesFrom: 'photos' }))
      .then(collect)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
  });

  it('"-" as both an image and the list is a UsageError, before reading anything', async () => {
    await expect(planInputs(['-'], opts({ filesFrom: '-' }))).rejects.toThrow(UsageError);
    await expect(planInputs(['photos/a.png', '-'], opts({ filesFrom: '-' }))).rejects.toThrow(
      /standard input/,
    );
  });

  it('reads the list lazily: images come before the list has ended', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slowList(): AsyncGenerator<string> {
      yield 'photos/a.png\n';
      await gate;
      yield 'photos/d.webp\n';
    }
    const plan = await planInputs([], opts({ filesFrom: '-', stdin: Readable.from(slowList()) }));
    const iterator = plan.inputs[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.name).toBe('photos/a.png');
    release();
    expect((await iterator.next()).value?.name).toBe('photos/d.webp');
    expect((await iterator.next()).done).toBe(true);
  });
});

describe('onCount', () => {
  it('counts the distinct images as they are found', async () => {
    const counts: number[] = [];
    const plan = await planInputs(
      ['photos/a.png', 'photos/a.png', 'other'],
      opts({ onCount: (n) => counts.push(n) }),
    );
    await collect(plan);
    expect(counts).toEqual([1, 2, 3]);
  });
});

describe('links and files that are not regular files', () => {
  // links/: a.png, alias.png → a.png, loop → . (itself), sub/b.png, sub/up → .. (its parent),
  // fifo.png (a FIFO: no writer will ever come), fifo-link.png → fifo.png.
  // onlyfifo/: x.png, a FIFO, and nothing else.
  beforeAll(async () => {
    const at = (p: string): string => path.join(root, p);
    await touch(['links/a.png', 'links/sub/b.png']);
    await mkdir(at('onlyfifo'));
    await symlink('a.png', at('links/alias.png'));
    await symlink('.', at('links/loop'));
    await symlink('..', at('links/sub/up'));
    mkfifo(at('links/fifo.png'));
    await symlink('fifo.png', at('links/fifo-link.png'));
    mkfifo(at('onlyfifo/x.png'));
  });

  it('a directory with links to itself and to its parent is walked once; a linked file is one image', async () => {
    const skipped: [string, string][] = [];
    const plan = await planInputs(['links'], opts({ onSkip: (n, why) => skipped.push([n, why]) }));
    const inputs = await collect(plan);
    expect(inputs.map((i) => i.name)).toEqual(['links/a.png', 'links/sub/b.png']);
    expect(await plan.count()).toBe(2);
    const why = new Map(skipped);
    expect(why.get('links/alias.png')).toMatch(/more than once/);
    expect(why.get('links/loop')).toMatch(/already walked/);
    expect(why.get('links/sub/up')).toMatch(/already walked/);
  });

  it('skips a FIFO (named like an image, or linked to) in a walk or a glob, without opening it', async () => {
    const skipped: [string, string][] = [];
    const onSkip = (n: string, why: string): number => skipped.push([n, why]);
    expect(await names(['links'], { onSkip })).toEqual(['links/a.png', 'links/sub/b.png']);
    expect(await names(['links/*.png'], { onSkip })).toEqual(['links/a.png']);
    for (const fifo of ['links/fifo.png', 'links/fifo-link.png'])
      expect(skipped.filter(([n]) => n === fifo).map(([, why]) => why)).toContain(
        'not a regular file (a FIFO, socket or device)',
      );
  });

  it('a recursive glob through the loops yields each real file once', async () => {
    const plan = await planInputs(['links/**/*.png'], opts());
    expect((await collect(plan)).map((i) => i.name)).toEqual(['links/a.png', 'links/sub/b.png']);
    expect(await plan.count()).toBe(2);
  });

  it('a glob and a directory that overlap, and a link given first: each real file once, keyed by the path given', async () => {
    const plan = await planInputs(
      ['links/alias.png', 'links/sub/b.png', 'links/*.png', 'links'],
      opts(),
    );
    const inputs = await collect(plan);
    // --resume matches on the key: the absolute path as it was given, not the link's target.
    expect(inputs.map((i) => [i.name, i.key])).toEqual([
      ['links/alias.png', path.join(root, 'links/alias.png')],
      ['links/sub/b.png', path.join(root, 'links/sub/b.png')],
    ]);
    expect(await plan.count()).toBe(2);
  });

  it('a directory whose only "image" is a FIFO holds no image files', async () => {
    await expect(planInputs(['onlyfifo'], opts())).rejects.toThrow(/holds no image files/);
  });
});
