/**
 * What a file was when it was read, to tell whether it changed before its metadata is
 * written: an answer about the old picture must not land in a new one. Size, modification
 * and change times, and the inode: a rewrite that keeps the size and the modification time
 * (ExifTool's `-P` does) still changes the change time, and a replaced file has a new inode.
 */

export interface FileStamp {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

/** The stamp of `fs.Stats` (from `stat`, or `fstat` on the descriptor the image was read from). */
export function stampOf(stats: FileStamp): FileStamp {
  return {
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: stats.ino,
    dev: stats.dev,
  };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino &&
    a.dev === b.dev
  );
}
