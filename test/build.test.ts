/**
 * The bundle keeps start-up lean: `--help` and `--version` load dist/main.js alone, and what
 * every other run loads before it knows what it will do (main.js, the chunks it imports at
 * once, and their static imports) holds none of undici, ora, chalk, sharp, ajv, mime-db,
 * tinyglobby, parse5, micromark or diff; those come in through dynamic imports only when a
 * request, a spinner, an image or a document needs them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/cli.js';

const DIST = path.join(ROOT, 'dist');

/** Files loaded before any dynamic import runs: the entries and their static imports, recursively. */
function staticClosure(entries: string[]): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const code = readFileSync(file, 'utf8');
    seen.set(file, code);
    // Static forms: `import {a} from "./x.js"`, `import "./x.js"`, `export … from "./x.js"`.
    for (const match of code.matchAll(
      /(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]*?\s*from\s*)?["'](\.\.?\/[^"']+)["']/g,
    )) {
      visit(path.resolve(path.dirname(file), match[1]!));
    }
  };
  for (const entry of entries) visit(entry);
  return seen;
}

const MAIN = path.join(DIST, 'main.js');

describe('the start-up bundle', () => {
  const loaded = staticClosure([MAIN]);

  it('--help and --version load dist/main.js and nothing else of the project', () => {
    expect([...loaded.keys()]).toEqual([MAIN]);
    expect(loaded.get(MAIN)!.length).toBeLessThan(10_000);
  });

  // Every other run: main() imports these at once (errors, deps, the CLI), before it knows
  // what the run needs.
  const first = [...loaded.get(MAIN)!.matchAll(/import\(["'](\.\/chunks\/[^"']+)["']\)/g)].map(
    (m) => path.join(DIST, m[1]!),
  );
  const everyRun = staticClosure([MAIN, ...first]);
  const all = [...everyRun.values()].join('\n');

  it('every run loads the CLI and the option parser first, and little else', () => {
    expect(
      first.some((f) => /\/cli-[\w-]+\.js$/.test(f)),
      first.join(' '),
    ).toBe(true);
    expect(everyRun.size).toBeGreaterThan(first.length);
    expect(all).toMatch(/commander\.unknownOption/);
    expect(all.length).toBeLessThan(200_000);
  });

  const lazy = readdirSync(path.join(DIST, 'chunks'))
    .map((f) => path.join(DIST, 'chunks', f))
    .filter((f) => !everyRun.has(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');

  it.each([
    ['undici', /UND_ERR_HEADERS_TIMEOUT/],
    ['ora', /\bdots12\b/],
    // Colour only: a piped or --quiet run paints nothing.
    ['chalk', /bgWhiteBright/],
    ['sharp', /\(["']sharp["']\)/],
    ['ajv', /\$dynamicRef/],
    ['mime-db', /application\/vnd\.openxmlformats/],
    ['tinyglobby', /expandDirectories/],
    ['lmdb', /\(["']lmdb["']\)/],
    ['the batch engines', /describe_image_shard/],
    // --alt-check and --alt-fill only: the HTML and Markdown parsers.
    ['parse5', /sourceCodeLocationInfo/],
    ['micromark', /labelImageMarker/],
    ['diff', /createTwoFilesPatch|structuredPatch/],
    // External (it finds its Perl script through its own package): the import that loads it.
    ['exiftool-vendored', /import\(["']exiftool-vendored["']\)/],
  ])('holds %s in a lazy chunk only', (_name, signature) => {
    expect(lazy).toMatch(signature);
    expect(all).not.toMatch(signature);
  });

  it('--alt-check loads the document parsers, but nothing that sends a request or reads an image', () => {
    const chunk = readdirSync(path.join(DIST, 'chunks')).find((f) => /^alt-[A-Z0-9]+\.js$/.test(f));
    expect(chunk).toBeDefined();
    const check = staticClosure([path.join(DIST, 'chunks', chunk!)]);
    const code = [...check.values()].join('\n');
    expect(code).toMatch(/runAltCheck|image without alt text/);
    for (const signature of [/UND_ERR_HEADERS_TIMEOUT/, /\(["']sharp["']\)/, /\bdots12\b/])
      expect(code).not.toMatch(signature);
  });

  it('reaches them through dynamic imports', () => {
    const chunks = readFileSync(path.join(DIST, 'main.js'), 'utf8');
    expect(chunks).toMatch(/import\(["']\.\/chunks\//);
  });
});

describe('the prerendered --help', () => {
  it('is what commander renders for the same program', async () => {
    const text = readFileSync(path.join(DIST, 'help.txt'), 'utf8');
    // Any second option sends --help through commander instead of the prerendered text.
    const live = await runCli(['--help', '--quiet']);
    expect(live.code).toBe(0);
    expect(live.stdout).toBe(text);
    const fast = await runCli(['--help']);
    expect(fast.code).toBe(0);
    expect(fast.stdout).toBe(text);
    expect(text).toMatch(/^Usage: describe-image \[options\] <image\.\.\.> \[prompt\]/);
  });
});
