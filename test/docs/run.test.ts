/**
 * --alt-check and --alt-fill end to end on a copy of the corpus, with a stand-in for the
 * model's side (the `describe` function the command layer passes): each image is described
 * once, missing images are reported with their place, documents are written whole, a
 * document changed during the run is left alone, and a stop leaves each document filled or
 * untouched.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { expandDocuments } from '../../src/docs/files.js';
import { findImages } from '../../src/docs/find.js';
import {
  fillDocuments,
  loadDocuments,
  missingImages,
  type DescribeImage,
  type DocsEvents,
} from '../../src/docs/run.js';
import { resolveSource, SourceProblem } from '../../src/docs/sources.js';
import type { ImageFinding, SourceDocument } from '../../src/docs/types.js';
import { InputError, UsageError } from '../../src/errors.js';
import { Redactor } from '../../src/output/guard.js';
import { CORPUS, CORPUS_FILES } from './corpus.js';

let dir: string;
const MISSING_IMAGE = 'img/küste.png';

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'docs-run-'));
  await cp(CORPUS, path.join(dir, 'docs'), { recursive: true });
  // Every local image the corpus names exists, but one.
  const loaded = await loadDocuments(
    CORPUS_FILES.map((f) => `docs/${f}`),
    dir,
    {
      documentError: (f, e) => {
        throw e;
      },
    },
  );
  for (const { images } of loaded) {
    for (const image of images) {
      const source = resolveSource(image.src, image.file, { cwd: dir, root: dir });
      if (source instanceof SourceProblem || source.kind !== 'file') continue;
      if (image.src === MISSING_IMAGE) continue;
      await mkdir(path.dirname(source.path), { recursive: true });
      await writeFile(source.path, 'image bytes');
    }
  }
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function recorder() {
  const log = {
    errors: [] as string[],
    problems: [] as string[],
    diffs: new Map<string, string>(),
    filled: new Map<string, number>(),
  };
  const events: DocsEvents = {
    documentError: (file, error) =>
      log.errors.push(`${file}: ${error instanceof Error ? error.message : String(error)}`),
    problem: ({ finding, reason }) =>
      log.problems.push(`${finding.file}:${finding.line}:${finding.column}: ${reason}`),
    diff: (doc, text) => log.diffs.set(doc.path, text),
    filled: (doc: SourceDocument, choices) => log.filled.set(doc.path, choices.length),
  };
  return { log, events };
}

const FILES = () => CORPUS_FILES.map((f) => `docs/${f}`);
const originals = () =>
  Promise.all(CORPUS_FILES.map((f) => readFile(path.join(CORPUS, f), 'utf8')));
const current = () =>
  Promise.all(CORPUS_FILES.map((f) => readFile(path.join(dir, 'docs', f), 'utf8')));

/** A describe that answers from the group's source, counting calls. */
function model(onCall?: (key: string) => void | Promise<void>) {
  const calls: string[] = [];
  const describeImage: DescribeImage = async (group, prompt) => {
    calls.push(group.key);
    expect(prompt).toMatch(/alt text/);
    await onCall?.(group.key);
    return `Alt for ${path.basename(group.key)}`;
  };
  return { calls, describeImage };
}

describe('expandDocuments', () => {
  it('takes files, globs and directories, each document once, skipping node_modules', async () => {
    await mkdir(path.join(dir, 'docs/node_modules/pkg'), { recursive: true });
    await writeFile(path.join(dir, 'docs/node_modules/pkg/readme.md'), '![](x.png)');
    await writeFile(path.join(dir, 'docs/notes.txt'), 'not a document');
    expect(await expandDocuments(['docs/guide.md', 'docs/*.md', 'docs'], dir)).toEqual([
      'docs/guide.md',
      'docs/release-notes.md',
      'docs/archive.htm',
      'docs/clean.markdown',
      'docs/components.mdx',
      'docs/index.html',
    ]);
  });

  it('says what is wrong with an argument', async () => {
    await writeFile(path.join(dir, 'photo.png'), 'x');
    await expect(expandDocuments(['nothing.md'], dir)).rejects.toBeInstanceOf(InputError);
    await expect(expandDocuments(['photo.png'], dir)).rejects.toThrow(
      /photo\.png: not a Markdown, MDX or HTML document/,
    );
    await expect(expandDocuments(['docs/*.rst'], dir)).rejects.toBeInstanceOf(UsageError);
    await mkdir(path.join(dir, 'empty'));
    await expect(expandDocuments(['empty'], dir)).rejects.toThrow(/holds no Markdown/);
  });
});

describe('loadDocuments and missingImages', () => {
  it('lists the images without alt text, and reports a document that does not parse', async () => {
    await writeFile(path.join(dir, 'docs/broken.mdx'), '<img src="a.png" alt="x" \\" />\n');
    const { log, events } = recorder();
    const loaded = await loadDocuments([...FILES(), 'docs/broken.mdx'], dir, events);
    expect(loaded).toHaveLength(CORPUS_FILES.length);
    expect(log.errors).toEqual([
      expect.stringMatching(/^docs\/broken\.mdx: docs\/broken\.mdx:1:\d+: cannot parse/),
    ]);
    expect(missingImages(loaded)).toHaveLength(34);
    // With placeholders: the texts that only name the file too, and nothing hidden or decorative.
    const more = missingImages(loaded, { placeholders: true });
    expect(more.filter((i) => !missingImages(loaded).includes(i)).map((i) => i.currentAlt)).toEqual(
      ['page-003', 'tray-icon', 'logo', 'Partner'],
    );
    expect(more.every((i) => i.alt === 'missing' || i.alt === 'placeholder')).toBe(true);
  });
});

describe('fillDocuments', () => {
  it('describes each image once, writes every document, reports the missing image', async () => {
    const { log, events } = recorder();
    const { calls, describeImage } = model();
    const loaded = await loadDocuments(FILES(), dir, events);
    const ac = new AbortController();
    const summary = await fillDocuments(
      loaded,
      { cwd: dir, root: dir, redactor: new Redactor(), signal: ac.signal },
      describeImage,
      events,
    );
    expect(new Set(calls).size).toBe(calls.length);
    expect(log.errors).toEqual([]);
    // The missing image, and the MDX image whose source is set by code.
    expect(log.problems).toEqual([
      'docs/components.mdx:20:1: the source is set by code: {logo}',
      `docs/guide.md:71:34: ${MISSING_IMAGE}: not found`,
    ]);
    expect(summary).toMatchObject({ documents: 6, failed: 2 });
    expect(summary.written).toBe(5); // all but clean.markdown
    const after = await current();
    expect(after[CORPUS_FILES.indexOf('clean.markdown')]).toBe(
      (await originals())[CORPUS_FILES.indexOf('clean.markdown')],
    );
    // Every image that was missing has its text now, but the two that could not be described.
    const stillMissing = CORPUS_FILES.flatMap((f, i) =>
      findImages(decodeDocument(f, Buffer.from(after[i]!))).filter((x) => x.alt === 'missing'),
    );
    expect(stillMissing.map((x: ImageFinding) => x.src)).toEqual(['{logo}', MISSING_IMAGE]);
    expect(after[CORPUS_FILES.indexOf('guide.md')]).toContain(
      '![Alt for dashboard.png](img/dashboard.png)',
    );
    expect(after[CORPUS_FILES.indexOf('index.html')]).toContain(
      '<img src="/img/logo.svg" width="140" height="40" alt="Alt for logo.svg">',
    );
  });

  it('leaves a document that changed during the run alone, and writes the others', async () => {
    const { log, events } = recorder();
    const target = path.join(dir, 'docs/release-notes.md');
    const { describeImage } = model(async (key) => {
      if (key.endsWith('offline.png')) await writeFile(target, 'edited meanwhile\n');
    });
    const loaded = await loadDocuments(FILES(), dir, events);
    const summary = await fillDocuments(
      loaded,
      { cwd: dir, root: dir, redactor: new Redactor(), signal: new AbortController().signal },
      describeImage,
      events,
    );
    expect(log.errors).toEqual([
      'docs/release-notes.md: docs/release-notes.md: changed on disk since it was read; not written (run again to fill it)',
    ]);
    expect(await readFile(target, 'utf8')).toBe('edited meanwhile\n');
    expect(summary.written).toBe(4);
  });

  it('reports an image the model failed on, and writes the rest of its document', async () => {
    const { log, events } = recorder();
    const { describeImage } = model((key) => {
      if (key.endsWith('dashboard.png')) throw new Error('server error 500');
    });
    const loaded = await loadDocuments(['docs/guide.md'], dir, events);
    await fillDocuments(
      loaded,
      { cwd: dir, redactor: new Redactor(), signal: new AbortController().signal },
      describeImage,
      events,
    );
    expect(log.problems).toContain('docs/guide.md:12:1: server error 500');
    const text = await readFile(path.join(dir, 'docs/guide.md'), 'utf8');
    expect(text).toContain('![](img/dashboard.png)');
    expect(text).toContain('![Alt for tray-icon.png](img/tray-icon.png)');
  });

  it('leaves every document filled or untouched when stopped', async () => {
    const { log, events } = recorder();
    const ac = new AbortController();
    // The dashboard's answer waits until two documents have been written, then the run is
    // stopped (as by Ctrl-C) and the request fails with it.
    let twoWritten!: () => void;
    const written = new Promise<void>((resolve) => (twoWritten = resolve));
    const record = events.filled.bind(events);
    events.filled = (doc, choices) => {
      record(doc, choices);
      if (log.filled.size === 2) twoWritten();
    };
    const { describeImage } = model(async (key) => {
      if (!key.endsWith('dashboard.png')) return;
      await written;
      ac.abort();
      throw new Error('interrupted');
    });
    const loaded = await loadDocuments(FILES(), dir, events);
    const summary = await fillDocuments(
      loaded,
      { cwd: dir, root: dir, redactor: new Redactor(), signal: ac.signal },
      describeImage,
      events,
    );
    const before = await originals();
    const after = await current();
    // guide.md needed the stopped answer: untouched, and no error reported for it.
    expect(after[CORPUS_FILES.indexOf('guide.md')]).toBe(before[CORPUS_FILES.indexOf('guide.md')]);
    expect(log.problems.filter((p) => p.includes('dashboard'))).toEqual([]);
    expect(summary.written).toBeGreaterThanOrEqual(2);
    CORPUS_FILES.forEach((f, i) => {
      if (after[i] === before[i]) return;
      // Written: whole, nothing missing but the images that can never be described.
      const left = findImages(decodeDocument(f, Buffer.from(after[i]!)));
      expect(left.filter((x) => x.alt === 'missing' && x.src !== '{logo}')).toEqual([]);
    });
  });

  it('with --dry-run and a stand-in, writes nothing, asks no model, and gives each diff', async () => {
    const { log, events } = recorder();
    const { calls, describeImage } = model();
    const loaded = await loadDocuments(FILES(), dir, events);
    const summary = await fillDocuments(
      loaded,
      {
        cwd: dir,
        root: dir,
        redactor: new Redactor(),
        signal: new AbortController().signal,
        dryRun: true,
        standIn: (group) => `[alt text for ${path.basename(group.key)}]`,
      },
      describeImage,
      events,
    );
    expect(calls).toEqual([]);
    expect(summary.written).toBe(0);
    expect(await current()).toEqual(await originals());
    expect([...log.diffs.keys()].sort()).toEqual(
      FILES()
        .filter((f) => !f.endsWith('clean.markdown'))
        .sort(),
    );
    expect(log.diffs.get('docs/guide.md')).toContain(
      '+![\\[alt text for dashboard.png\\]](img/dashboard.png)',
    );
  });

  it('refuses an empty answer: decorative is the author’s call', async () => {
    const { log, events } = recorder();
    const loaded = await loadDocuments(['docs/release-notes.md'], dir, events);
    await fillDocuments(
      loaded,
      { cwd: dir, redactor: new Redactor(), signal: new AbortController().signal },
      () => Promise.resolve('  ""  '),
      events,
    );
    expect(log.problems).toHaveLength(5);
    expect(log.problems[0]).toMatch(/the model gave no alt text$/);
    expect(await readFile(path.join(dir, 'docs/release-notes.md'), 'utf8')).toBe(
      await readFile(path.join(CORPUS, 'release-notes.md'), 'utf8'),
    );
  });
});
