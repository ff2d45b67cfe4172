#!/usr/bin/env node
// Write-back benchmark: the time per photo to write a caption into 1,000 small JPEGs with
// src/metadata/writer.ts (one ExifTool, `concurrency` writes in flight as a batch at -c 8
// would have), next to a floor: copying each file (ExifTool reads and rewrites the whole
// file through a temporary copy and a rename).
//
// `benchWriteBack({ work })` returns rows for bench/run.mjs's table; `node bench/metadata.mjs
// [--quick]` prints them. The writer is bundled from src/ with esbuild first, since dist/
// holds it only once the CLI uses it.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import sharp from 'sharp';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** src/metadata/writer.ts as an ES module in `dir`, finding the project's node_modules. */
async function bundleWriter(dir) {
  mkdirSync(dir, { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const outfile = path.join(dir, 'writer.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'src/metadata/writer.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['exiftool-vendored'],
    logLevel: 'error',
  });
  return import(pathToFileURL(outfile).href);
}

/**
 * `count` distinct 64×48 JPEGs in `dir` (`p00000.jpg` …), none needing preparation; their
 * names. Each differs from every other (an answer cache cannot answer one for another).
 */
export async function smallJpegs(dir, count) {
  mkdirSync(dir, { recursive: true });
  const names = [];
  for (let i = 0; i < count; i++) {
    const jpeg = await sharp({
      create: {
        width: 64,
        height: 48,
        channels: 3,
        background: { r: i % 256, g: (i >> 8) * 40 + 10, b: 160 },
      },
    })
      .jpeg()
      .toBuffer();
    const name = `p${String(i).padStart(5, '0')}.jpg`;
    writeFileSync(path.join(dir, name), jpeg);
    names.push(name);
  }
  return names;
}

/**
 * Writes a caption into `count` fresh 64×48 JPEGs. Returns the table rows and the numbers:
 * ExifTool's start, milliseconds per photo, and the copy floor per photo.
 */
export async function benchWriteBack({ work, count = 1000, concurrency = 8 }) {
  const { openMetadataWriter } = await bundleWriter(path.join(work, 'metadata-bundle'));
  const photos = path.join(work, 'metadata-photos');
  const copies = path.join(work, 'metadata-copies');
  mkdirSync(copies, { recursive: true });
  const names = await smallJpegs(photos, count);

  let t0 = performance.now();
  for (const name of names) copyFileSync(path.join(photos, name), path.join(copies, name));
  const copyMs = (performance.now() - t0) / count;

  t0 = performance.now();
  const writer = await openMetadataWriter({
    target: 'embed',
    sidecarStyle: 'append',
    keepMtime: true,
    backup: false,
    dryRun: false,
    cwd: photos,
    now: () => Date.now(),
  });
  const startMs = performance.now() - t0;

  t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const image = names[next++];
      await writer.write({
        image,
        source: 'caption',
        answer: `A test card, colour ${image}.`,
        model: 'bench',
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const perPhotoMs = (performance.now() - t0) / count;
  t0 = performance.now();
  await writer.close();
  const closeMs = performance.now() - t0;

  const rows = [
    [
      `write-back, ${count.toLocaleString('en-US')} small JPEGs`,
      `caption into each, ${concurrency} at a time`,
      `${perPhotoMs.toFixed(1)} ms a photo`,
      `copying the file: ${copyMs.toFixed(2)} ms (${(perPhotoMs / copyMs).toFixed(0)}×)`,
    ],
    ['', 'ExifTool start, end', `${startMs.toFixed(0)} ms, ${closeMs.toFixed(0)} ms`, 'once a run'],
  ];
  return { rows, startMs, perPhotoMs, copyMs, closeMs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const work = await mkdtemp(path.join(os.tmpdir(), 'describe-image-bench-meta-'));
  try {
    const quick = process.argv.includes('--quick');
    const { rows } = await benchWriteBack({ work, count: quick ? 100 : 1000 });
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
