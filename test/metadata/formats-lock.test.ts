/**
 * Formats and sidecar names (src/metadata/formats.ts), the per-path lock (lock.ts) and file
 * stamps (stamp.ts).
 */
import { mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatOfFileType, formatOfName, sidecarPathFor } from '../../src/metadata/formats.js';
import { lockKey, PathLocks } from '../../src/metadata/lock.js';
import { sameStamp, stampOf } from '../../src/metadata/stamp.js';
import { tempDir } from '../helpers/images.js';

let root: string;
beforeAll(async () => {
  root = await tempDir('describe-image-meta-lock-');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('formats', () => {
  it("maps ExifTool's file types and the usual extensions", () => {
    expect(formatOfFileType('Extended WEBP')).toBe('webp');
    expect(formatOfFileType('WEBP (lossless)')).toBe('webp');
    expect(formatOfFileType('HEIF')).toBe('heic');
    expect(formatOfFileType('TXT')).toBeUndefined();
    expect(formatOfName('a/B.JPEG')).toBe('jpeg');
    expect(formatOfName('x.tif')).toBe('tiff');
    expect(formatOfName('x.raw')).toBeUndefined();
  });

  it('names sidecars in both styles', () => {
    expect(sidecarPathFor('photos/cat.jpg', 'append')).toBe('photos/cat.jpg.xmp');
    expect(sidecarPathFor('photos/cat.jpg', 'replace')).toBe('photos/cat.xmp');
    expect(sidecarPathFor('photos/a.b.heic', 'replace')).toBe('photos/a.b.xmp');
    expect(sidecarPathFor('photos/noext', 'replace')).toBe('photos/noext.xmp');
  });
});

describe('PathLocks', () => {
  it('runs tasks on one path one after another, in order, and others alongside', async () => {
    const locks = new PathLocks();
    const log: string[] = [];
    const task = (name: string, waitFor?: Promise<void>) => async () => {
      log.push(`start ${name}`);
      await waitFor;
      log.push(`end ${name}`);
      return name;
    };
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const a1 = locks.run('/a', task('a1', gate));
    const a2 = locks.run('/a', task('a2'));
    const b1 = locks.run('/b', task('b1'));
    await b1;
    expect(log).toEqual(['start a1', 'start b1', 'end b1']);
    open();
    expect(await Promise.all([a1, a2])).toEqual(['a1', 'a2']);
    expect(log.slice(3)).toEqual(['end a1', 'start a2', 'end a2']);
    expect(locks.size).toBe(0);
  });

  it('goes on after a task that failed', async () => {
    const locks = new PathLocks();
    await expect(locks.run('/a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await locks.run('/a', () => Promise.resolve(1))).toBe(1);
    expect(locks.size).toBe(0);
  });

  it('keys a file by its real path, and a file not there yet by its folder', async () => {
    await mkdir(path.join(root, 'real'));
    await writeFile(path.join(root, 'real/p.jpg'), 'x');
    await symlink(path.join(root, 'real'), path.join(root, 'link'));
    const real = await lockKey(path.join(root, 'real/p.jpg'));
    expect(await lockKey(path.join(root, 'link/p.jpg'))).toBe(real);
    expect(await lockKey(path.join(root, 'link/new.xmp'))).toBe(
      path.join(path.dirname(real), 'new.xmp'),
    );
  });
});

describe('stamps', () => {
  it('tell a rewritten file from the same one', async () => {
    const file = path.join(root, 's.bin');
    await writeFile(file, 'one');
    const a = stampOf(await stat(file));
    expect(sameStamp(a, stampOf(await stat(file)))).toBe(true);
    await writeFile(file, 'three');
    expect(sameStamp(a, stampOf(await stat(file)))).toBe(false);
  });
});
