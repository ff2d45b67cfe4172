/**
 * --alt-check and --alt-fill end to end: the built CLI spawned on a copy of the corpus
 * (test/fixtures/docs/), with a loopback server standing in for the model. Every local image
 * the corpus names exists as a distinct small PNG (whatever its extension says: the bytes
 * decide), so the server tells which image a request carries by the sha256 of its bytes, and
 * answers with its name and characters that need escaping in every kind of document.
 *
 * Covered: the corpus filled (nothing but the alt texts changes, and markdownlint's MD045 and
 * HTMLHint's alt-require find nothing left but what the run reported), --alt-check's lines,
 * records and exit codes, the --json records of a fill, text output and summary, --dry-run, a
 * missing image file, a remote image that fails with --download, a document changed during
 * the run, Ctrl-C, a rejected key, and usage errors.
 */
import type { ChildProcess } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDocument, documentText } from '../../src/docs/document.js';
import { findImages, needsText } from '../../src/docs/find.js';
import { documentFixes, oneLine, type AltChoice } from '../../src/docs/fixes.js';
import { finalizeAlt } from '../../src/docs/prompt.js';
import { resolveSource, SourceProblem } from '../../src/docs/sources.js';
import type { ImageFinding, SourceDocument } from '../../src/docs/types.js';
import {
  altRequire,
  CORPUS,
  CORPUS_FILES,
  HTMLHINT_MISREADS,
  markerLines,
  md045Lines,
  unfill,
} from '../docs/corpus.js';
import { jsonLines, runCli, type CliResult } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import {
  answer,
  errorHandler,
  serverPool,
  sha256,
  type Handler,
  type RecordedRequest,
} from '../helpers/server.js';

const serve = serverPool();

/** The corpus in docs/, its images beside it, root-relative ones under site/ (--root site). */
let template: string;
const dirs: string[] = [];
/** Image name (relative to the workspace) by the sha256 of its bytes. */
const nameByHash = new Map<string, string>();

/** What the model answers for an image: its name, and text that needs escaping everywhere. */
function answerFor(name: string): string {
  return `Alt for ${name}: "quoted" [b] *c* _d_ & <e> | {f} \\ g`;
}

/** The images of a document, with the file each source names in a workspace (if any). */
function imagesOf(
  images: readonly ImageFinding[],
  cwd: string,
): { image: ImageFinding; file?: string }[] {
  return images.map((image) => {
    const source = resolveSource(image.src, image.file, { cwd, root: path.join(cwd, 'site') });
    return source instanceof SourceProblem || source.kind !== 'file'
      ? { image }
      : { image, file: source.path };
  });
}

/** The corpus as it is in the repository, by file name. */
const corpusBytes = new Map<string, Buffer>();
const original = (name: string): SourceDocument =>
  decodeDocument(`docs/${name}`, corpusBytes.get(name)!);

beforeAll(async () => {
  for (const name of CORPUS_FILES) corpusBytes.set(name, await readFile(path.join(CORPUS, name)));
  template = await tempDir('describe-image-alt-');
  await cp(CORPUS, path.join(template, 'docs'), { recursive: true });
  let n = 0;
  const written = new Set<string>();
  for (const name of CORPUS_FILES) {
    for (const { file } of imagesOf(findImages(original(name)), template)) {
      if (!file || written.has(file)) continue;
      written.add(file);
      n++;
      const color = `#${((n * 2654435) & 0xffffff).toString(16).padStart(6, '0')}`;
      const bytes = await makeImage('png', { width: 8, height: 8, color });
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
      const hash = sha256(bytes);
      if (nameByHash.has(hash)) throw new Error(`two test images share bytes: ${file}`);
      nameByHash.set(hash, path.relative(template, file));
    }
  }
  // The data: URL in guide.md.
  const data = /data:image\/gif;base64,([A-Za-z0-9+/=]+)/.exec(
    corpusBytes.get('guide.md')!.toString(),
  )!;
  nameByHash.set(sha256(Buffer.from(data[1]!, 'base64')), 'the data: URL');
});

afterAll(async () => {
  await Promise.all([template, ...dirs].map((d) => rm(d, { recursive: true, force: true })));
});

/** A fresh copy of the corpus and its images. */
async function workspace(): Promise<string> {
  const dir = await tempDir('describe-image-alt-run-');
  dirs.push(dir);
  await cp(template, dir, { recursive: true });
  return dir;
}

/** The image a chat request carries: a file's name, the URL, or `unknown`. */
function imageOf(req: RecordedRequest): string {
  const user = (req.json?.messages as { role: string; content: unknown }[]).find(
    (m) => m.role === 'user',
  );
  const parts = user?.content as { type: string; image_url?: { url: string }; text?: string }[];
  const url = parts.find((p) => p.type === 'image_url')?.image_url?.url ?? '';
  if (/^https?:/.test(url)) return url;
  const match = /^data:[^,]*;base64,(.*)$/s.exec(url);
  return (match && nameByHash.get(sha256(Buffer.from(match[1]!, 'base64')))) ?? 'unknown';
}

/** The text of a chat request's user message (the prompt). */
function promptOf(req: RecordedRequest): string {
  const user = (req.json?.messages as { role: string; content: unknown }[]).find(
    (m) => m.role === 'user',
  );
  const parts = user?.content as { type: string; text?: string }[];
  return parts.find((p) => p.type === 'text')?.text ?? '';
}

/** Answers every chat request with `answerFor(image)`; `before` may hold or act first. */
function namingHandler(before?: (name: string) => Promise<void> | void): Handler {
  return async (req, res) => {
    const name = imageOf(req);
    await before?.(name);
    answer(req, res, { text: answerFor(name), id: `chatcmpl-${name}` });
  };
}

function fill(
  args: string[],
  cwd: string,
  baseUrl: string,
  opts: Parameters<typeof runCli>[1] = {},
) {
  return runCli(['--alt-fill', '--base-url', baseUrl, '--root', 'site', ...args], {
    cwd,
    ...opts,
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A document of the workspace as it is now. */
async function current(dir: string, name: string): Promise<SourceDocument> {
  return decodeDocument(`docs/${name}`, await readFile(path.join(dir, 'docs', name)));
}

/**
 * What a fill with these answers writes into the original document: the alt text of every
 * image it fills (`""` for a hidden one), by the name the server answers for its source.
 * Images whose source cannot be had are left out.
 */
function expectedChoices(
  images: readonly ImageFinding[],
  dir: string,
  placeholders: boolean,
): AltChoice[] {
  const choices: AltChoice[] = [];
  for (const { image, file } of imagesOf(images, dir)) {
    if (!needsText(image, { placeholders })) continue;
    if (image.alt === 'unmarked-decorative') {
      choices.push({ image, alt: '' });
      continue;
    }
    let shown: string | undefined;
    if (file) shown = path.relative(dir, file);
    else if (image.src.startsWith('data:')) shown = 'the data: URL';
    else if (/^https?:/.test(image.src)) shown = image.src;
    if (shown === undefined) continue; // set by code: never described
    const final = finalizeAlt(answerFor(shown));
    if (!final.ok) throw new Error(final.reason);
    choices.push({ image, alt: final.text });
  }
  return choices;
}

/** A --json record of --alt-fill (README, "JSON output"). */
interface AltRecord {
  index: number;
  image: string;
  file: string;
  line: number;
  column: number;
  source: string;
  text: string | null;
  usage: { prompt_tokens: number } | null;
  cost?: number;
  shared?: boolean;
  error?: { code: number; message: string };
}

function summaryLine(stderr: string): string | undefined {
  return /^summary: .*$/m.exec(stderr)?.[0];
}

describe('--alt-fill on the corpus', () => {
  let dir: string;
  let r: CliResult;
  let requests: RecordedRequest[];

  beforeAll(async () => {
    dir = await workspace();
    const server = await serve(namingHandler());
    r = await fill(['--alt-placeholders', '--json', 'docs'], dir, server.baseUrl);
    requests = server.requests;
  });

  it('describes each image once, reports the one it cannot, and exits 3', () => {
    expect(r.stderr).toContain(
      'describe-image: error: docs/components.mdx:20:1: the source is set by code: {logo}',
    );
    expect(r.code, r.stderr).toBe(3);
    const asked = requests.map(imageOf);
    expect(asked).not.toContain('unknown');
    expect(new Set(asked).size).toBe(asked.length);
    // tray-icon.png is used twice in guide.md (once as a placeholder), asked once.
    expect(asked.filter((n) => n.endsWith('tray-icon.png'))).toEqual(['docs/img/tray-icon.png']);
    expect(asked).toContain('https://example.com/photos/pier.jpg');
    expect(asked).toContain('the data: URL');
    expect(summaryLine(r.stderr)).toBe(
      `summary: ${asked.length + 1} succeeded · 1 failed · 0 skipped · 0 not attempted (of ${asked.length + 2})`,
    );
  });

  it('asks for alt text with the context of each image', () => {
    const prompt = (name: string) => promptOf(requests.find((q) => imageOf(q) === name)!);
    expect(prompt('docs/img/dashboard.png')).toMatch(/^Write the alt text for this image/);
    expect(prompt('docs/img/dashboard.png')).toContain(
      'Section heading: Getting started with Tidewater',
    );
    expect(prompt('docs/img/chart-small.png')).toContain(
      'The image is a link to: img/chart-large.png',
    );
    expect(prompt('docs/img/search.png')).toContain('submit button');
  });

  describe.each(CORPUS_FILES)('%s', (name) => {
    it('changes nothing but the alt texts: taking them out gives the original bytes', async () => {
      const doc = original(name);
      const filled = await current(dir, name);
      const before = findImages(doc);
      const choices = expectedChoices(before, dir, true);
      const back = unfill(doc.text, filled.text, documentFixes(choices));
      expect(Buffer.from(documentText(doc, back)).equals(corpusBytes.get(name)!)).toBe(true);
      expect(filled.bom).toBe(doc.bom);
      // Each filled image reads back with exactly its text.
      const after = findImages(filled);
      for (const { image, alt } of choices) {
        const now = after[before.indexOf(image)]!;
        expect([now.src, now.alt, now.currentAlt ?? '']).toEqual([
          image.src,
          alt === '' ? 'decorative' : 'present',
          oneLine(alt),
        ]);
      }
    });

    it('leaves the linters nothing to report but what the run reported', async () => {
      const filled = await current(dir, name);
      const full = documentText(filled, filled.text);
      const left = findImages(filled).filter((i) => i.alt === 'missing');
      expect(left.map((i) => `${i.file}:${i.line}`)).toEqual(
        name === 'components.mdx' ? ['docs/components.mdx:20'] : [],
      );
      if (filled.kind === 'html') {
        expect(altRequire(full)).toEqual(HTMLHINT_MISREADS[name] ?? []);
      } else {
        const expected = [...new Set([...markerLines(filled.text), ...left.map((i) => i.line)])];
        expect([...new Set(md045Lines(full))]).toEqual(expected.sort((a, b) => a - b));
      }
    });
  });

  it('gives a --json record for each place: file, line, column, source, image, alt text', () => {
    const records = jsonLines<AltRecord>(r.stdout).sort((a, b) => a.index - b.index);
    expect(records).toHaveLength(requests.length + 2);
    // One per place, numbered in document order.
    expect(records.map((x) => x.index)).toEqual(records.map((_, i) => i));
    const places = records.map((x) => `${x.file}:${x.line}:${x.column}`);
    expect(places.slice(0, 3)).toEqual([
      'docs/archive.htm:6:4',
      'docs/archive.htm:8:4',
      'docs/archive.htm:9:16',
    ]);
    const dashboard = records.find((x) => x.source === 'img/dashboard.png')!;
    expect(dashboard).toMatchObject({
      file: 'docs/guide.md',
      line: 12,
      column: 1,
      image: 'docs/img/dashboard.png',
      text: oneLine(answerFor('docs/img/dashboard.png')),
      id: 'chatcmpl-docs/img/dashboard.png',
      usage: { prompt_tokens: 1250 },
    });
    expect(dashboard.cost).toBeGreaterThan(0);
    // An image described once: its usage is on its first place only.
    const tray = records.filter((x) => x.image === 'docs/img/tray-icon.png');
    expect(tray.map((x) => [x.line, x.shared ?? false, x.usage !== null])).toEqual([
      [22, false, true],
      [23, true, false],
    ]);
    const failed = records.find((x) => x.error !== undefined)!;
    expect(failed).toMatchObject({
      file: 'docs/components.mdx',
      line: 20,
      source: '{logo}',
      text: null,
      error: { code: 3 },
    });
    // A data: URL is shown by its header, not its data.
    expect(records.find((x) => x.image === 'data:image/gif;base64,…')?.source).toBe(
      'data:image/gif;base64,…',
    );
  });

  it('--alt-check afterwards lists exactly what the fill could not do', async () => {
    const check = await runCli(['--alt-check', 'docs'], { cwd: dir });
    expect(check.stdout).toBe('docs/components.mdx:20:1: image without alt text: {logo}\n');
    expect(check.code).toBe(1);
  });
});

describe('--alt-check', () => {
  it('lists each image without alt text as FILE:LINE:COL, exits 1, and sends nothing', async () => {
    const dir = await workspace();
    const server = await serve(namingHandler());
    const env = { DESCRIBE_IMAGE_BASE_URL: server.baseUrl };
    const r = await runCli(['--alt-check', 'docs'], { cwd: dir, env });
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(34);
    expect(lines.slice(0, 3)).toEqual([
      'docs/archive.htm:6:4: image without alt text: scans/page-001.jpg',
      'docs/archive.htm:9:16: image without alt text: scans/stamp.gif',
      'docs/components.mdx:12:1: image without alt text: img/button-primary.png',
    ]);
    expect(lines).toContain('docs/guide.md:12:1: image without alt text: img/dashboard.png');
    expect(lines).toContain('docs/index.html:49:47: image without alt text: img/tide%20table.png');
    // CRLF and a BOM: the line and column are still the editor's.
    expect(lines.at(-1)).toBe(
      'docs/release-notes.md:20:26: image without alt text: assets/cellular.png',
    );
    expect(lines.filter((l) => l.includes('clean.markdown'))).toEqual([]);
    expect(r.stderr).toBe('34 images without alt text in 6 documents\n');
    expect(server.requests).toHaveLength(0);
  });

  it('exits 0 on a clean document, and -q prints nothing on stderr', async () => {
    const dir = await workspace();
    const r = await runCli(['--alt-check', '-q', 'docs/clean.markdown'], { cwd: dir });
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', '']);
  });

  it('--json gives a record per image; --alt-placeholders adds the texts that only name the file', async () => {
    const dir = await workspace();
    const r = await runCli(['--alt-check', '--json', 'docs/archive.htm'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(jsonLines<Record<string, unknown>>(r.stdout)).toEqual([
      {
        file: 'docs/archive.htm',
        line: 6,
        column: 4,
        element: 'img',
        source: 'scans/page-001.jpg',
        alt: null,
      },
      {
        file: 'docs/archive.htm',
        line: 9,
        column: 16,
        element: 'img',
        source: 'scans/stamp.gif',
        alt: null,
      },
    ]);
    const p = await runCli(['--alt-check', '--alt-placeholders', 'docs/archive.htm'], {
      cwd: dir,
    });
    expect(p.stdout.split('\n')[1]).toBe(
      'docs/archive.htm:8:4: alt text only names the file or says "image" ("page-003"): scans/page-003.jpg',
    );
  });

  it('exits 3 when a document cannot be parsed, after checking the others', async () => {
    const dir = await workspace();
    await writeFile(path.join(dir, 'docs/broken.mdx'), '<img src="a.png" alt="x" \\" />\n');
    const r = await runCli(['--alt-check', 'docs'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^describe-image: error: docs\/broken\.mdx:1:\d+: cannot parse it as MDX/m,
    );
    expect(r.stdout.split('\n')).toHaveLength(35);
  });
});

describe('--alt-fill', () => {
  it('prints each alt text under its place, and a summary; -p adds to each prompt', async () => {
    const dir = await workspace();
    const server = await serve(namingHandler());
    const r = await fill(
      ['-p', 'The readers are sailors.', 'docs/release-notes.md'],
      dir,
      server.baseUrl,
    );
    expect(r.code, r.stderr).toBe(0);
    for (const q of server.requests) {
      expect(promptOf(q)).toMatch(/^Write the alt text for this image/);
      expect(promptOf(q)).toMatch(/\n\nThe readers are sailors\.$/);
    }
    const places = ['7:60', '9:1', '11:43', '17:1', '20:26'];
    const images = [
      'assets/offline.png',
      'export-dialog.png',
      'assets/formats.png',
      'assets/language-settings.png',
      'assets/cellular.png',
    ];
    expect(r.stdout).toBe(
      places
        .map(
          (p, i) =>
            `==> docs/release-notes.md:${p} <==\n${oneLine(answerFor(`docs/${images[i]!}`))}\n`,
        )
        .join('\n'),
    );
    expect(summaryLine(r.stderr)).toBe(
      'summary: 5 succeeded · 0 failed · 0 skipped · 0 not attempted (of 5)',
    );
    expect(r.stderr).toContain('tokens: 6,250 in · 445 out · 6,695 total');
    expect(r.stderr).toContain(
      'alt text: 5 images to fill in 1 document · 5 images described · 1 document written',
    );
  });

  it('--dry-run prints the diff with a stand-in for each text, needs no key, sends and writes nothing', async () => {
    const dir = await workspace();
    const server = await serve(namingHandler());
    const r = await runCli(
      ['--alt-fill', '--dry-run', '--root', 'site', 'docs/guide.md', 'docs/index.html'],
      { cwd: dir, env: { DESCRIBE_IMAGE_BASE_URL: server.baseUrl } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests).toHaveLength(0);
    for (const name of CORPUS_FILES)
      expect((await readFile(path.join(dir, 'docs', name))).equals(corpusBytes.get(name)!)).toBe(
        true,
      );
    expect(r.stdout).toMatch(/^--- a\/docs\/guide\.md\n\+\+\+ b\/docs\/guide\.md\n/);
    expect(r.stdout).toContain(
      '\n-![](img/dashboard.png)\n+![\\[alt text for dashboard.png\\]](img/dashboard.png)\n',
    );
    expect(r.stdout).toContain('\n--- a/docs/index.html\n+++ b/docs/index.html\n');
    expect(r.stdout).toContain(
      '+    <a href="/"><img src="/img/logo.svg" width="140" height="40" alt="[alt text for logo.svg]"></a>\n',
    );
    expect(r.stderr).toContain('nothing sent, nothing written');
  });

  it('reports a missing image file with its place, and fills the rest of the document', async () => {
    const dir = await workspace();
    await unlink(path.join(dir, 'docs/img/küste.png'));
    const server = await serve(namingHandler());
    const r = await fill(['docs/guide.md'], dir, server.baseUrl);
    expect(r.stderr).toContain(
      'describe-image: error: docs/guide.md:71:34: img/küste.png: not found',
    );
    expect(r.code).toBe(3);
    const text = (await current(dir, 'guide.md')).text;
    expect(text).toContain('zeigt die Pegel');
    expect(text).toContain('![](img/küste.png)');
    expect(text).not.toContain('![](img/dashboard.png)');
    expect(server.requests.map(imageOf)).not.toContain('docs/img/küste.png');
    expect(summaryLine(r.stderr)).toBe(
      'summary: 13 succeeded · 1 failed · 0 skipped · 0 not attempted (of 14)',
    );
  });

  it('reports a remote image that fails with --download, and fills the others', async () => {
    const dir = await workspace();
    const ok = await makeImage('png', { width: 8, height: 8, color: '#123456' });
    nameByHash.set(sha256(ok), 'downloaded ok.png');
    const server = await serve(async (req, res) => {
      if (req.url === '/img/ok.png') {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(ok);
      } else if (req.url === '/img/gone.png') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such image');
      } else await namingHandler()(req, res, undefined as never);
    });
    const text = `# Remote\n\n![](${server.origin}/img/gone.png)\n\n![](${server.origin}/img/ok.png)\n`;
    await writeFile(path.join(dir, 'docs/remote.md'), text);
    const r = await fill(['--download', 'docs/remote.md'], dir, server.baseUrl);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^describe-image: error: docs\/remote\.md:3:1: .*404/m);
    const chats = server.requests.filter((q) => q.method === 'POST');
    expect(chats.map(imageOf)).toEqual(['downloaded ok.png']);
    // Only the downloaded image's text went in.
    const before = decodeDocument('docs/remote.md', Buffer.from(text));
    const [, okImage] = findImages(before);
    const alt = oneLine(answerFor('downloaded ok.png'));
    const after = await current(dir, 'remote.md');
    expect(unfill(text, after.text, documentFixes([{ image: okImage!, alt }]))).toBe(text);
    expect(findImages(after).map((i) => i.currentAlt)).toEqual([undefined, alt]);
  });

  it('leaves a document that changed during the run as it is, and writes the others', async () => {
    const dir = await workspace();
    const notes = path.join(dir, 'docs/release-notes.md');
    const server = await serve(
      namingHandler(async (name) => {
        if (name === 'docs/assets/offline.png') await writeFile(notes, 'edited meanwhile\n');
      }),
    );
    const r = await fill(['docs/release-notes.md', 'docs/archive.htm'], dir, server.baseUrl);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      'describe-image: error: docs/release-notes.md:7:60: changed on disk since it was read; not written (run again to fill it)',
    );
    expect(await readFile(notes, 'utf8')).toBe('edited meanwhile\n');
    const archive = (await current(dir, 'archive.htm')).text;
    expect(archive).toContain(`BORDER=0 alt="Alt for docs/scans/page-001.jpg: &quot;quoted&quot;`);
    expect(summaryLine(r.stderr)).toBe(
      'summary: 2 succeeded · 5 failed · 0 skipped · 0 not attempted (of 7)',
    );
  });

  it('Ctrl-C leaves every document filled or untouched, and exits 130', async () => {
    const dir = await workspace();
    // Two requests at a time. The answers for guide.md's dashboard and the release notes'
    // offline icon wait for the signal: once both are asked, every slot is taken, so any
    // request the server sees after that was started after the signal. The documents before
    // guide.md (archive.htm, components.mdx) need neither, and are written by then.
    const held = ['docs/img/dashboard.png', 'docs/assets/offline.png'];
    let signalled = false;
    const server = await serve(
      namingHandler(async (name) => {
        if (!held.includes(name)) return;
        while (!signalled) await sleep(10);
        await sleep(100);
      }),
    );
    const changed = async (name: string) =>
      !(await readFile(path.join(dir, 'docs', name))).equals(corpusBytes.get(name)!);
    let child: ChildProcess | undefined;
    const running = fill(['-c', '2', 'docs'], dir, server.baseUrl, {
      onSpawn: (c) => (child = c),
    });
    await until(
      async () =>
        held.every((name) => server.requests.some((q) => imageOf(q) === name)) &&
        (await changed('archive.htm')) &&
        (await changed('components.mdx')),
      20_000,
      'both held requests, and the first two documents written',
    );
    const atSignal = server.requests.length;
    signalled = true;
    child!.kill('SIGINT');
    const r = await running;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('interrupted');
    // No request started after the signal.
    expect(server.requests).toHaveLength(atSignal);
    // The documents that needed a held answer are untouched; every other one is untouched or
    // whole (index.html may have been waiting behind the held requests).
    expect(await changed('guide.md')).toBe(false);
    expect(await changed('release-notes.md')).toBe(false);
    for (const name of ['archive.htm', 'components.mdx', 'index.html']) {
      if (name === 'index.html' && !(await changed(name))) continue;
      const left = findImages(await current(dir, name)).filter((i) => i.alt === 'missing');
      expect(left.map((i) => i.src)).toEqual(name === 'components.mdx' ? ['{logo}'] : []);
    }
    // No temporary file is left beside the documents.
    expect((await readdir(path.join(dir, 'docs'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('stops on a rejected key (exit 4), as a batch does, and writes nothing', async () => {
    const dir = await workspace();
    const server = await serve(
      errorHandler(401, {
        error: { message: 'Incorrect API key provided', type: 'invalid_request_error' },
      }),
    );
    const r = await fill(['-c', '2', 'docs/guide.md'], dir, server.baseUrl);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('stopped: authentication failed');
    expect(server.requests.length).toBeLessThanOrEqual(2);
    expect(await readFile(path.join(dir, 'docs/guide.md'))).toEqual(corpusBytes.get('guide.md'));
  });
});

describe('usage errors (exit 2, before anything is sent)', () => {
  it.each([
    [['--alt-check', '--alt-fill', 'docs'], 'give --alt-check or --alt-fill, not both'],
    [['--root', 'site', 'docs/guide.md'], '--root needs --alt-fill'],
    [['--alt-placeholders', 'a.png'], '--alt-placeholders needs --alt-check or --alt-fill'],
    [
      ['--alt-fill', '--sidecar', 'docs'],
      '--alt-fill works on documents; it cannot be combined with --sidecar',
    ],
    [['--alt-fill', '--preset', 'alt-text', 'docs'], 'cannot be combined with --preset'],
    [['--alt-check', '-o', 'x.jsonl', 'docs'], '--alt-check prints to standard output'],
    [['--alt-check', '--root', 'site', 'docs'], '--root is for --alt-fill'],
    [
      ['--alt-fill', '--dry-run', '--json', 'docs'],
      'prints a diff; it cannot be combined with --json',
    ],
    [['--alt-fill'], '--alt-fill needs documents'],
    [['--alt-check', 'docs/img/dashboard.png'], 'not a Markdown, MDX or HTML document'],
    [['--alt-fill', '--root', 'nowhere', 'docs'], '--root nowhere: no such directory'],
  ])('%j', async (args, message) => {
    const dir = await workspace();
    const server = await serve(namingHandler());
    const r = await runCli(args, { cwd: dir, env: { DESCRIBE_IMAGE_BASE_URL: server.baseUrl } });
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(2);
    expect(server.requests).toHaveLength(0);
  });
});
