/**
 * Stopping a write-back batch the hard way, at module level: 50 photos being written, then
 * ExifTool's process is signalled as Ctrl-C (SIGINT, which ExifTool traps) or a crash
 * (SIGKILL) would, and the writers are closed as src/main.ts does. Every photo must be either
 * fully updated or byte for byte what it was, with nothing left beside it, and no ExifTool
 * process left running. (The spawned-CLI Ctrl-C test belongs to the integration.)
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DescribeImageError } from '../../src/errors.js';
import { closeMetadataWriters, metadataProcessIds } from '../../src/metadata/registry.js';
import { exiftoolMessage } from '../../src/metadata/writer.js';
import { noise } from '../helpers/pixels.js';
import {
  allEnded,
  listing,
  openWriter,
  pixels,
  readBack,
  TRICKY,
  writerSuite,
} from '../helpers/metadata.js';

const suite = writerSuite('describe-image-meta-interrupt-');
const COUNT = 50;

/** Resolves once `count` of the promises have settled. */
function settled(promises: readonly Promise<unknown>[], count: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    for (const p of promises) {
      const tick = (): void => {
        if (++done === count) resolve();
      };
      p.then(tick, tick);
    }
  });
}

describe.each(['SIGINT', 'SIGKILL'] as const)('%s to ExifTool during a batch of 50', (signal) => {
  it('leaves each photo fully updated or untouched, and nothing else', async () => {
    const dir = path.join(suite.root, signal);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir);
    const names: string[] = [];
    const originals = new Map<string, Buffer>();
    for (let i = 0; i < COUNT; i++) {
      const file = path.join(dir, `p${String(i).padStart(2, '0')}.jpg`);
      // Big enough that a write takes a while, so the signal is likely to land inside one.
      await noise(256, 256).jpeg({ quality: 95 }).toFile(file);
      names.push(path.relative(suite.root, file));
      originals.set(file, await readFile(file));
    }
    const decoded = new Map<string, Buffer>();
    for (const file of originals.keys()) decoded.set(file, await pixels(file));

    const writer = await openWriter(suite.root);
    const writes = names.map((image) =>
      writer.write({ image, source: 'caption', answer: TRICKY, model: 'm' }),
    );
    await settled(writes, 10);
    const pids = metadataProcessIds();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, signal);
    await closeMetadataWriters();
    const outcomes = await Promise.allSettled(writes);

    let updated = 0;
    let untouched = 0;
    for (const [file, original] of originals) {
      const now = await readFile(file);
      if (now.equals(original)) {
        untouched++;
        continue;
      }
      expect((await readBack(suite.et, file))['XMP-dc:Description'], file).toBe(TRICKY);
      expect((await pixels(file)).equals(decoded.get(file)!), file).toBe(true);
      updated++;
    }
    expect(updated).toBeGreaterThanOrEqual(10);
    expect(updated + untouched).toBe(COUNT);
    expect(await listing(dir)).toEqual([...originals.keys()].map((f) => path.basename(f)).sort());

    // Each write either finished or failed with one clear line naming its photo.
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'fulfilled') {
        expect(outcome.value.status).toBe('written');
      } else {
        expect(outcome.reason).toBeInstanceOf(DescribeImageError);
        expect((outcome.reason as Error).message).toMatch(new RegExp(`^${names[i]}: .*`));
        expect((outcome.reason as Error).message).not.toContain('\n');
      }
    }
    expect(metadataProcessIds()).toEqual([]);
    expect(await allEnded(pids)).toBe(true);
  });
});

describe('SIGINT to ExifTool alone (Ctrl-C at a terminal reaches it too)', () => {
  it('while the writer goes on, as a batch finishing its last requests does: no photo is lost', async () => {
    const dir = path.join(suite.root, 'terminal');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir);
    const names: string[] = [];
    for (let i = 0; i < 20; i++) {
      const file = path.join(dir, `p${String(i).padStart(2, '0')}.jpg`);
      await noise(256, 256).jpeg({ quality: 95 }).toFile(file);
      names.push(path.relative(suite.root, file));
    }
    const writer = await openWriter(suite.root);
    try {
      const writes = names.map((image) =>
        writer.write({ image, source: 'caption', answer: TRICKY, model: 'm' }),
      );
      await settled(writes, 3);
      for (const pid of metadataProcessIds()) process.kill(pid, 'SIGINT');
      expect((await Promise.all(writes)).map((r) => r.status)).toEqual(names.map(() => 'written'));
      for (const image of names) {
        expect((await readBack(suite.et, path.join(suite.root, image)))['XMP-dc:Description']).toBe(
          TRICKY,
        );
      }
      expect(await listing(dir)).toEqual(names.map((n) => path.basename(n)));
    } finally {
      await writer.close();
    }
  });
});

describe('exiftoolMessage', () => {
  it("keeps ExifTool's reason, without the path or batch-cluster's JSON", () => {
    expect(
      exiftoolMessage(new Error('Not a valid PNG (looks more like a JPEG) - /abs/x.png')),
    ).toBe('Not a valid PNG (looks more like a JPEG)');
    expect(
      exiftoolMessage(
        new Error('Process terminated before task completed ({"gracefully":false,"lastTask":{}})'),
      ),
    ).toBe('ExifTool stopped before it was done');
    expect(exiftoolMessage('Warning: [minor] Odd thing - /abs/a.jpg')).toBe('[minor] Odd thing');
    expect(exiftoolMessage(new Error('Error: bad \x1b[31m thing ({"a":1})'))).toBe(
      'bad [31m thing',
    );
  });
});
