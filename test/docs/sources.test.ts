/** Image sources: resolving, placeholders, grouping, and local files checked to exist. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import {
  checkLocalSources,
  groupImages,
  isPlaceholderAlt,
  resolveSource,
  SourceProblem,
} from '../../src/docs/sources.js';

const cwd = '/site';

describe('resolveSource', () => {
  it.each([
    ['img/a.png', { kind: 'file', path: '/site/docs/guide/img/a.png' }],
    ['../img/a.png', { kind: 'file', path: '/site/docs/img/a.png' }],
    ['./my%20shot%C3%A9.png', { kind: 'file', path: '/site/docs/guide/my shoté.png' }],
    ['a.png?v=2#top', { kind: 'file', path: '/site/docs/guide/a.png' }],
    ['100%.png', { kind: 'file', path: '/site/docs/guide/100%.png' }],
    ['  b.png  ', { kind: 'file', path: '/site/docs/guide/b.png' }],
  ])('%s relative to the document', (src, expected) => {
    expect(resolveSource(src, 'docs/guide/page.md', { cwd })).toMatchObject(expected);
  });

  it('takes a root-relative source from --root, and asks for it without', () => {
    expect(resolveSource('/img/a.png', 'docs/page.md', { cwd, root: 'public' })).toMatchObject({
      kind: 'file',
      path: '/site/public/img/a.png',
    });
    const problem = resolveSource('/img/a.png', 'docs/page.md', { cwd });
    expect(problem).toBeInstanceOf(SourceProblem);
    expect((problem as SourceProblem).reason).toMatch(/--root/);
  });

  it('keeps http(s) URLs as URLs (fragment dropped, query kept) and data: URLs whole', () => {
    expect(resolveSource('https://e.com/a.png?w=2#x', 'p.md', { cwd })).toEqual({
      kind: 'url',
      url: 'https://e.com/a.png?w=2',
      key: 'https://e.com/a.png?w=2',
    });
    expect(resolveSource('//cdn.e.com/a.png', 'p.md', { cwd })).toMatchObject({
      url: 'https://cdn.e.com/a.png',
    });
    expect(resolveSource('data:image/gif;base64,R0lG', 'p.md', { cwd })).toMatchObject({
      kind: 'data',
      url: 'data:image/gif;base64,R0lG',
    });
  });

  it.each([
    ['', /no source/],
    ['mailto:a@b.c', /mailto/],
    ['{props.src}', /set by code/],
    ['?only=query', /names no file/],
  ])('%j cannot be used', (src, reason) => {
    const problem = resolveSource(src, 'p.md', { cwd });
    expect(problem).toBeInstanceOf(SourceProblem);
    expect((problem as SourceProblem).reason).toMatch(reason);
  });
});

describe('isPlaceholderAlt', () => {
  it.each([
    ['logo', 'img/logo.svg', true],
    ['Logo.SVG', 'img/logo.svg', true],
    ['hero banner', 'hero_banner.jpg', true],
    ['screenshot', 'a.png', true],
    ['Tidewater', 'img/logo.svg', false],
    ['', 'a.png', false],
  ])('%j for %s: %s', (alt, src, expected) => {
    expect(isPlaceholderAlt(alt, src)).toBe(expected);
  });
});

describe('groupImages and checkLocalSources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'docs-sources-'));
    await mkdir(path.join(dir, 'docs/img'), { recursive: true });
    await writeFile(path.join(dir, 'docs/img/a.png'), 'x');
    await mkdir(path.join(dir, 'docs/img/dir.png'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function images(file: string, text: string) {
    return findImages(decodeDocument(file, new TextEncoder().encode(text)));
  }

  it('describes an image once wherever it is used, and reports the rest with their place', async () => {
    const found = [
      ...images('docs/one.md', '![](img/a.png)\n\n![](./img/a.png?v=1)\n\n![](img/missing.png)\n'),
      ...images('docs/two.html', '<img src="img/a.png"><img src="/x.png"><img src="img/dir.png">'),
    ];
    const { groups, problems } = groupImages(found, { cwd: dir });
    expect(groups.map((g) => [path.relative(dir, g.key), g.findings.length])).toEqual([
      ['docs/img/a.png', 3],
      ['docs/img/missing.png', 1],
      ['docs/img/dir.png', 1],
    ]);
    expect(problems.map((p) => `${p.finding.file}:${p.finding.line}:${p.finding.column}`)).toEqual([
      'docs/two.html:1:22',
    ]);

    const checked = await checkLocalSources(groups);
    expect(checked.groups.map((g) => g.findings.length)).toEqual([3]);
    expect(checked.problems.map((p) => `${p.finding.file}:${p.finding.line}: ${p.reason}`)).toEqual(
      ['docs/one.md:5: img/missing.png: not found', 'docs/two.html:1: img/dir.png: is not a file'],
    );
  });

  it('keeps each map area apart: its text names its link, not the whole image', () => {
    const found = images(
      'docs/map.html',
      '<img src="img/a.png" usemap="#m"><map name="m"><area href="/n"><area href="/s"></map>',
    );
    const { groups } = groupImages(found, { cwd: dir });
    expect(groups.map((g) => g.findings.map((f) => f.element))).toEqual([
      ['img'],
      ['area'],
      ['area'],
    ]);
  });
});
