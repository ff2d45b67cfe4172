/**
 * No ExifTool (Perl) process outlives the program: a child Node process opens a writer,
 * starts writes, and is then stopped as a crash, a second Ctrl-C (`process.exit`) or SIGTERM
 * would stop it, with the wiring INTEGRATION-metadata.md gives src/main.ts: an `exit` handler
 * that sends SIGINT to `metadataProcessIds()`, and `closeMetadataWriters()` on SIGTERM.
 * Without that wiring the Perl process is orphaned (and polls its closed stdin forever):
 * the last test shows it, which is why main.ts must have it.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { allEnded, listing, readBack, running, TRICKY, writerSuite } from '../helpers/metadata.js';
import { noise } from '../helpers/pixels.js';

const suite = writerSuite('describe-image-meta-shutdown-');
let bundle: string;
let child: string;

// The child: main.ts's wiring (when WIRE=1), then writes to every photo in its folder.
const CHILD = `
const m = require(process.env.BUNDLE);
const [mode, dir] = process.argv.slice(2);
let keep;
if (process.env.WIRE === '1') {
  process.on('exit', () => {
    for (const pid of m.metadataProcessIds()) {
      try { process.kill(pid, 'SIGINT'); } catch {}
    }
  });
  process.on('SIGTERM', () => {
    m.closeMetadataWriters().then(() => clearInterval(keep));
  });
}
(async () => {
  const fs = require('node:fs');
  const w = await m.openMetadataWriter({
    target: 'embed', sidecarStyle: 'append', keepMtime: true, backup: false, dryRun: false,
    cwd: dir, now: () => Date.now(),
  });
  const photos = fs.readdirSync(dir).filter((f) => f.endsWith('.jpg'));
  const writes = photos.map((image) =>
    w.write({ image, source: 'caption', answer: process.env.ANSWER, model: 'm' }).catch(() => {}));
  await writes[0];
  process.stdout.write(JSON.stringify(m.metadataProcessIds()) + '\\n');
  if (mode === 'crash') setImmediate(() => { throw new Error('boom'); });
  if (mode === 'exit') process.exit(130);
  if (mode === 'sigterm') keep = setInterval(() => {}, 1000);
})();
`;

beforeAll(async () => {
  const work = path.join(suite.root, 'bundle');
  await mkdir(work);
  // The bundle imports exiftool-vendored at run time: let it find the project's.
  await symlink(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
  const entry = path.join(work, 'entry.ts');
  await writeFile(
    entry,
    `export { openMetadataWriter } from ${JSON.stringify(path.join(ROOT, 'src/metadata/writer.ts'))};\n` +
      `export { metadataProcessIds, closeMetadataWriters } from ${JSON.stringify(path.join(ROOT, 'src/metadata/registry.ts'))};\n`,
  );
  bundle = path.join(work, 'metadata.cjs');
  await build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['exiftool-vendored'],
    logLevel: 'error',
  });
  child = path.join(work, 'child.cjs');
  await writeFile(child, CHILD);
});

/** Runs the child on a folder of 20 photos; returns the Perl pids it reported, and the folder. */
async function run(
  mode: 'crash' | 'exit' | 'sigterm',
  wired: boolean,
): Promise<{ pids: number[]; code: number | null; dir: string; originals: Map<string, Buffer> }> {
  const dir = path.join(suite.root, `${mode}-${wired ? 'wired' : 'bare'}`);
  await mkdir(dir);
  const originals = new Map<string, Buffer>();
  for (let i = 0; i < 20; i++) {
    const file = path.join(dir, `p${String(i).padStart(2, '0')}.jpg`);
    await noise(256, 256).jpeg({ quality: 95 }).toFile(file);
    originals.set(file, await readFile(file));
  }
  const proc = spawn(process.execPath, [child, mode, dir], {
    env: {
      PATH: process.env.PATH ?? '',
      BUNDLE: bundle,
      WIRE: wired ? '1' : '0',
      ANSWER: TRICKY,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const reported = new Promise<number[]>((resolve) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as number[]);
    });
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const pids = await Promise.race([reported, exited.then(() => [] as number[])]);
  if (mode === 'sigterm') proc.kill('SIGTERM');
  const code = await exited;
  return { pids, code, dir, originals };
}

/** Every photo fully written or untouched, and nothing else in the folder. */
async function expectWhole(dir: string, originals: Map<string, Buffer>): Promise<void> {
  for (const [file, original] of originals) {
    if ((await readFile(file)).equals(original)) continue;
    expect((await readBack(suite.et, file))['XMP-dc:Description'], file).toBe(TRICKY);
  }
  expect(await listing(dir)).toEqual([...originals.keys()].map((f) => path.basename(f)).sort());
}

describe('with main.ts wiring, no Perl process survives', () => {
  it.each(['crash', 'exit', 'sigterm'] as const)('%s', async (mode) => {
    const { pids, code, dir, originals } = await run(mode, true);
    expect(pids.length).toBeGreaterThan(0);
    expect(code).toBe(mode === 'crash' ? 1 : mode === 'exit' ? 130 : 0);
    expect(await allEnded(pids)).toBe(true);
    await expectWhole(dir, originals);
  });
});

describe('without it', () => {
  it('the Perl process is orphaned', async () => {
    const { pids } = await run('exit', false);
    expect(pids.length).toBeGreaterThan(0);
    try {
      // Given a moment, it is still there: nothing told it to go.
      await new Promise((r) => setTimeout(r, 500));
      expect(pids.some(running)).toBe(true);
    } finally {
      for (const pid of pids.filter(running)) process.kill(pid, 'SIGINT');
    }
    expect(await allEnded(pids)).toBe(true);
  });
});
