/**
 * Which C library a Linux Node binary runs on, from the first bytes of the binary itself: the
 * dynamic loader named in its ELF program headers (`/lib64/ld-linux-x86-64.so.2` is glibc,
 * `/lib/ld-musl-x86_64.so.1` is musl). It is what detect-libc reads first too; lmdb's binary
 * loader (node-gyp-build) asks detect-libc unless the `LIBC` variable says, and loading
 * detect-libc (with node:child_process, for a fallback it rarely needs) costs ~10 ms of every
 * run that opens the answer cache. `libcOf()` is pure; `libcOfBinary()` reads the bytes.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** How many bytes of the binary `libcOf()` needs at most. */
const ELF_HEAD_BYTES = 2048;

/** `libcOf()` of the binary at `file` (src/main.ts: /proc/self/exe); undefined if unreadable. */
export function libcOfBinary(file: string): 'glibc' | 'musl' | undefined {
  try {
    const fd = openSync(file, 'r');
    try {
      const head = Buffer.alloc(ELF_HEAD_BYTES);
      return libcOf(head.subarray(0, readSync(fd, head, 0, ELF_HEAD_BYTES, 0)));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** 'glibc' or 'musl', or undefined when the bytes do not say (not a 64-bit ELF, no loader). */
export function libcOf(head: Uint8Array): 'glibc' | 'musl' | undefined {
  if (head.length < 64) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  // "\x7fELF", 64-bit, little-endian.
  if (view.getUint32(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return undefined;
  const offset = Number(view.getBigUint64(32, true));
  const size = view.getUint16(54, true);
  const count = view.getUint16(56, true);
  for (let i = 0; i < count; i++) {
    const at = offset + i * size;
    if (at + 48 > head.length) return undefined;
    // PT_INTERP: the loader's path, NUL-terminated.
    if (view.getUint32(at, true) !== 3) continue;
    const start = Number(view.getBigUint64(at + 8, true));
    const length = Number(view.getBigUint64(at + 32, true));
    if (start + length > head.length) return undefined;
    const loader = new TextDecoder()
      .decode(head.subarray(start, start + length))
      .replace(/\0.*$/s, '');
    if (loader.includes('/ld-musl-')) return 'musl';
    if (loader.includes('/ld-linux-')) return 'glibc';
    return undefined;
  }
  return undefined;
}
