/**
 * libcOf (src/cache/libc.ts): the C library named by a Node binary's ELF loader, which
 * src/main.ts gives lmdb's binary loader as LIBC. Crafted headers for each case, and this
 * machine's own Node binary against detect-libc, which node-gyp-build would otherwise ask.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { libcOf, libcOfBinary } from '../../src/cache/libc.js';
import { tempDir } from '../helpers/images.js';

/** A 64-bit little-endian ELF header with one PT_LOAD and, if given, a PT_INTERP naming `loader`. */
function elf(loader: string | undefined, opts: { bits?: 1 | 2; endian?: 1 | 2 } = {}): Buffer {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x7f454c46, 0);
  head[4] = opts.bits ?? 2;
  head[5] = opts.endian ?? 1;
  const phoff = 64;
  const phentsize = 56;
  const headers = loader === undefined ? 1 : 2;
  head.writeBigUInt64LE(BigInt(phoff), 32);
  head.writeUInt16LE(phentsize, 54);
  head.writeUInt16LE(headers, 56);
  head.writeUInt32LE(1, phoff); // PT_LOAD first, as real binaries have PT_PHDR first
  if (loader !== undefined) {
    const at = phoff + phentsize;
    const text = 300;
    head.writeUInt32LE(3, at); // PT_INTERP
    head.writeBigUInt64LE(BigInt(text), at + 8);
    head.writeBigUInt64LE(BigInt(loader.length + 1), at + 32);
    head.write(`${loader}\0`, text, 'latin1');
  }
  return head;
}

describe('libcOf', () => {
  it.each([
    ['/lib64/ld-linux-x86-64.so.2', 'glibc'],
    ['/lib/ld-linux-aarch64.so.1', 'glibc'],
    ['/lib/ld-musl-x86_64.so.1', 'musl'],
    ['/lib/ld-musl-aarch64.so.1', 'musl'],
    ['/nix/store/abc/lib/ld-something.so', undefined],
  ])('reads the loader %s as %s', (loader, expected) => {
    expect(libcOf(elf(loader))).toBe(expected);
  });

  it('says nothing for a static binary, a 32-bit or big-endian ELF, or what is not ELF', () => {
    expect(libcOf(elf(undefined))).toBeUndefined();
    expect(libcOf(elf('/lib/ld-linux.so.2', { bits: 1 }))).toBeUndefined();
    expect(libcOf(elf('/lib64/ld-linux-x86-64.so.2', { endian: 2 }))).toBeUndefined();
    expect(libcOf(Buffer.from('#!/bin/sh\necho not a binary\n'.padEnd(200)))).toBeUndefined();
    expect(libcOf(Buffer.alloc(10))).toBeUndefined();
  });

  it('says nothing when the headers or the path lie beyond the bytes read', () => {
    const head = elf('/lib64/ld-linux-x86-64.so.2');
    expect(libcOf(head.subarray(0, 100))).toBeUndefined();
    expect(libcOf(head.subarray(0, 310))).toBeUndefined();
    expect(libcOf(head)).toBe('glibc');
  });

  it('libcOfBinary reads the start of a file, and says nothing of a file it cannot read', async () => {
    const dir = await tempDir('describe-image-libc-');
    const file = path.join(dir, 'node');
    writeFileSync(file, Buffer.concat([elf('/lib/ld-musl-x86_64.so.1'), Buffer.alloc(4096)]));
    expect(libcOfBinary(file)).toBe('musl');
    expect(libcOfBinary(path.join(dir, 'missing'))).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')(
    'agrees with detect-libc about the Node binary running this test',
    () => {
      // detect-libc comes with lmdb (through node-gyp-build-optional-packages) and sharp.
      const detect = createRequire(import.meta.url)('detect-libc') as {
        familySync(): string | null;
      };
      expect(libcOfBinary(process.execPath)).toBe(detect.familySync() ?? undefined);
      expect(libcOfBinary(process.execPath)).toBeDefined();
    },
  );
});
