/**
 * Sidecar files (src/output/sidecar.ts): names, existence, and atomic writes through a
 * temporary file and a rename, on a real temporary directory.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { sidecarExists, sidecarPath, writeSidecar } from '../../src/output/sidecar.js';
import { Redactor } from '../../src/output/guard.js';
import { tempDir } from '../helpers/images.js';

let root: string;

beforeAll(async () => {
  root = await tempDir('describe-image-sidecar-');
  await mkdir(path.join(root, 'photos'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Files in a directory that look like leftovers of a write. */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith('.') || f.endsWith('.tmp'));
}

describe('sidecarPath', () => {
  it('appends .txt, or .json with --json, to the whole image name', () => {
    expect(sidecarPath('photos/cat.jpg', false)).toBe('photos/cat.jpg.txt');
    expect(sidecarPath('photos/cat.jpg', true)).toBe('photos/cat.jpg.json');
    expect(sidecarPath('/abs/a.b.png', false)).toBe('/abs/a.b.png.txt');
  });
});

describe('sidecarExists', () => {
  it('looks for the kind asked for, relative to cwd', async () => {
    await writeFile(path.join(root, 'photos/has.png.txt'), 'x');
    expect(await sidecarExists('photos/has.png', root, false)).toBe(true);
    expect(await sidecarExists('photos/has.png', root, true)).toBe(false);
    expect(await sidecarExists('photos/none.png', root, false)).toBe(false);
    expect(await sidecarExists(path.join(root, 'photos/has.png'), '/elsewhere', false)).toBe(true);
    expect(await sidecarExists('has.png', path.join(root, 'photos'), false)).toBe(true);
  });
});

describe('writeSidecar', () => {
  it('writes the content, resolving a relative target against cwd, and leaves no temporary file', async () => {
    await writeSidecar('photos/a.png.txt', root, 'A cat.\n', new Redactor());
    expect(await readFile(path.join(root, 'photos/a.png.txt'), 'utf8')).toBe('A cat.\n');
    expect(await leftovers(path.join(root, 'photos'))).toEqual([]);
  });

  it('replaces an existing sidecar', async () => {
    const target = path.join(root, 'photos/b.png.txt');
    await writeFile(target, 'old answer, rather longer than the new one\n');
    await writeSidecar(target, '/unused', 'new\n', new Redactor());
    expect(await readFile(target, 'utf8')).toBe('new\n');
    expect(await leftovers(path.join(root, 'photos'))).toEqual([]);
  });

  it('keeps UTF-8 text byte for byte', async () => {
    const text = 'Un chat roux — 猫 🐈, "quoted"\n';
    await writeSidecar('photos/u.png.txt', root, text, new Redactor());
    expect(await readFile(path.join(root, 'photos/u.png.txt'), 'utf8')).toBe(text);
  });

  it('a reader never sees a partial file: only a whole old or a whole new content', async () => {
    const target = path.join(root, 'photos/big.png.json');
    const versions = ['o', 'n', 'm', 'p'].map(
      (c, i) => `${JSON.stringify({ text: c.repeat(i === 0 ? 1_000_000 : 6_000_000) })}\n`,
    );
    await writeFile(target, versions[0]!);
    const state = { writing: true };
    let reads = 0;
    const partial: number[] = [];
    const reader = (async () => {
      while (state.writing) {
        const text = await readFile(target, 'utf8');
        reads++;
        if (!versions.includes(text)) partial.push(text.length);
      }
    })();
    for (const next of versions.slice(1)) await writeSidecar(target, root, next, new Redactor());
    state.writing = false;
    await reader;
    expect(reads).toBeGreaterThan(1);
    expect(partial).toEqual([]);
    expect(await readFile(target, 'utf8')).toBe(versions[3]);
    expect(await leftovers(path.join(root, 'photos'))).toEqual([]);
  });

  it('concurrent writes to one sidecar leave one of them whole, and no temporary file', async () => {
    const target = 'photos/race.png.txt';
    const contents = Array.from({ length: 8 }, (_, i) => `${String(i).repeat(100_000)}\n`);
    await Promise.all(contents.map((c) => writeSidecar(target, root, c, new Redactor())));
    expect(contents).toContain(await readFile(path.join(root, target), 'utf8'));
    expect(await leftovers(path.join(root, 'photos'))).toEqual([]);
  });

  it('a missing directory is an InputError naming the sidecar', async () => {
    const error = await writeSidecar('nowhere/a.png.txt', root, 'x', new Redactor()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain('nowhere/a.png.txt');
  });

  it('a directory in the way is an InputError, and the temporary file is removed', async () => {
    await mkdir(path.join(root, 'photos/dir.png.txt'));
    const error = await writeSidecar('photos/dir.png.txt', root, 'x', new Redactor()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain('photos/dir.png.txt');
    expect(await leftovers(path.join(root, 'photos'))).toEqual([]);
    expect(await readdir(path.join(root, 'photos/dir.png.txt'))).toEqual([]);
  });
});
