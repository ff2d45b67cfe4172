/**
 * Pure: is an LMDB data file whole enough to hand to lmdb? lmdb-js crashes the process
 * (SIGSEGV, SIGBUS) when it opens a file that is not an LMDB file, or reads one cut short,
 * instead of returning an error; so the store reads the file's meta pages itself first and
 * moves a damaged file aside before lmdb ever maps it.
 *
 * The layout is that of the LMDB 0.9.9x that lmdb 3 builds (its page header carries a txnid:
 * 24 bytes on 64-bit platforms): pages 0 and 1 are meta pages; with overlapping sync a third,
 * "flushed" meta sits half a page into page 0. LMDB picks the meta with the newest txnid,
 * then maps every page up to that meta's `mm_last_pg`.
 */

/** Bytes to read from the start of the file: two pages of the largest page size. */
export const HEADER_BYTES = 2 * 65_536;

const PAGE_HEADER = 24;
const P_META = 0x08;
const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
const NO_PAGE = 0xffff_ffff_ffff_ffffn;

// Offsets within an MDB_meta (after the page header).
const MAGIC_AT = 0;
const VERSION_AT = 4;
const DB_SIZE = 48;
const DBS_AT = 24;
const PSIZE_AT = DBS_AT; // mm_dbs[FREE_DBI].md_pad
const ROOT_IN_DB = 40; // md_root
const LAST_PG_AT = DBS_AT + 2 * DB_SIZE;
const TXNID_AT = LAST_PG_AT + 8;
const META_SIZE = TXNID_AT + 8;

interface Meta {
  lastPage: bigint;
  txnid: bigint;
  roots: bigint[];
}

/**
 * Why the data file whose first bytes are `head` (up to `HEADER_BYTES` of them) cannot be
 * opened safely, or undefined when it can. `size` is the file's length; 0 is a new file.
 */
export function lmdbFileProblem(head: Uint8Array, size: number): string | undefined {
  if (size === 0) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < PAGE_HEADER + META_SIZE) return `not an LMDB file (${size} bytes)`;
  const psize = view.getUint32(PAGE_HEADER + PSIZE_AT, true);
  const first = readMeta(view, 0, psize);
  if (typeof first === 'string') return first;
  if (psize < 512 || psize > 65_536 || (psize & (psize - 1)) !== 0)
    return `not an LMDB file (page size ${psize})`;
  if (head.length < psize + PAGE_HEADER + META_SIZE || size < 2 * psize)
    return `cut short at ${size} bytes`;
  const second = readMeta(view, psize, psize);
  if (typeof second === 'string') return second;
  const metas = [first, second];
  // The flushed meta holds only the fields from mm_mapsize on; a txnid of 0 means unused.
  const flushedAt = psize / 2;
  const flushed = fields(view, flushedAt);
  if (flushed.txnid !== 0n) {
    if (view.getUint32(flushedAt + PAGE_HEADER + PSIZE_AT, true) !== psize)
      return 'its meta pages disagree on the page size';
    metas.push(flushed);
  }
  for (const meta of metas) {
    const needed = (meta.lastPage + 1n) * BigInt(psize);
    if (BigInt(size) < needed) return `cut short at ${size} bytes of ${needed}`;
    if (meta.roots.some((root) => root !== NO_PAGE && root > meta.lastPage))
      return 'its meta pages point past its end';
  }
  return undefined;
}

function readMeta(view: DataView, at: number, psize: number): Meta | string {
  const flags = view.getUint16(at + 18, true);
  const magic = view.getUint32(at + PAGE_HEADER + MAGIC_AT, true);
  if ((flags & P_META) === 0 || magic !== MAGIC) return 'not an LMDB file';
  const version = view.getUint32(at + PAGE_HEADER + VERSION_AT, true) & 0xffff;
  if (version !== DATA_VERSION) return `LMDB data version ${version}, not ${DATA_VERSION}`;
  if (at !== 0 && view.getUint32(at + PAGE_HEADER + PSIZE_AT, true) !== psize)
    return 'its meta pages disagree on the page size';
  return fields(view, at);
}

function fields(view: DataView, at: number): Meta {
  const base = at + PAGE_HEADER;
  return {
    lastPage: view.getBigUint64(base + LAST_PG_AT, true),
    txnid: view.getBigUint64(base + TXNID_AT, true),
    roots: [0, 1].map((db) => view.getBigUint64(base + DBS_AT + db * DB_SIZE + ROOT_IN_DB, true)),
  };
}
