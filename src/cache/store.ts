/**
 * The answer cache on disk: the one module that loads lmdb (LMDB: one memory-mapped file, safe
 * with several processes at once), and only when a run opens the cache, so `--help`,
 * `--version` and `--no-cache` never pay for it. Keys come from `key.ts`, entries and their
 * stored form from `entry.ts`.
 *
 * Nothing here throws or prints: a problem is reported once through `warn` and the cache
 * carries on as well as it can. A damaged data file is moved aside and a new one started; a
 * directory that cannot be used gives a disabled cache (every lookup a miss, nothing stored);
 * a full disk stops storing for the rest of the run. A lookup never returns a wrong answer:
 * entries are checksummed and validated on the way out (see `decodeEntry`).
 *
 * Writes are queued and committed together in one synchronous transaction every
 * `FLUSH_MS` (or every `FLUSH_COUNT` entries, and on `close()`). lmdb's asynchronous writes
 * would cost the main thread less, but when a commit fails (a full disk) they leave a rejected
 * promise no caller can handle, which ends the process; a synchronous commit just throws.
 */
import {
  closeSync,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { RootDatabase } from 'lmdb';
import { oneLine } from '../errors.js';
import { decodeEntry, encodeEntry, type CacheEntry } from './entry.js';
import { HEADER_BYTES, lmdbFileProblem } from './lmdb-header.js';

export const DATA_FILE = 'data.mdb';
const LOCK_SUFFIX = '-lock';
const DAMAGED = '.damaged-';
/** Longest a stored answer waits in memory before it is committed. */
export const FLUSH_MS = 50;
/** Queued answers that are committed at once, without waiting for the timer. */
export const FLUSH_COUNT = 512;

export interface CacheStats {
  /** Answers stored. */
  entries: number;
  /** Size of the cache's files (the data file and its lock file). */
  bytes: number;
}

export interface AnswerCache {
  /** The directory the cache lives in. */
  readonly dir: string;
  /** False for a cache that could not be opened: lookups miss, nothing is stored. */
  readonly enabled: boolean;
  /** The stored answer for `key`, or undefined (none, damaged, or the cache is disabled). */
  get(key: string): CacheEntry | undefined;
  /** Stores an answer; it is committed within `FLUSH_MS`, and by `close()` at the latest. */
  put(key: string, entry: CacheEntry): void;
  /** Entries and bytes on disk. */
  stats(): CacheStats;
  /** Removes the entries asked before `now - olderThanMs` (and any damaged one); returns how many. */
  prune(olderThanMs: number, now: number): number;
  /** Removes every entry and any data file moved aside as damaged; returns how many entries. */
  clear(): number;
  /** Commits what is queued and closes the store. The cache is disabled afterwards. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Called once for each problem: a damaged store, an unusable directory, a full disk. */
  warn: (message: string) => void;
  /** Create the directory and the store when missing (default true; false for `stats`). */
  create?: boolean | undefined;
  /** The clock, for the name of a damaged file moved aside. */
  now?: (() => number) | undefined;
}

type Lmdb = typeof import('lmdb');
const requireCjs = createRequire(import.meta.url);

// LMDB error codes (lmdb.h) and the errno values of a full disk.
const MDB_PAGE_NOTFOUND = -30797;
const MDB_CORRUPTED = -30796;
const MDB_PANIC = -30795;
const MDB_VERSION_MISMATCH = -30794;
const MDB_INVALID = -30793;
const MDB_MAP_FULL = -30792;
const MDB_BAD_TXN = -30782;
const DAMAGE_CODES = new Set([
  MDB_PAGE_NOTFOUND,
  MDB_CORRUPTED,
  MDB_PANIC,
  MDB_VERSION_MISMATCH,
  MDB_INVALID,
  MDB_BAD_TXN,
]);
const EFBIG = 27;
const ENOSPC = 28;
const EDQUOT = 122;
const FULL_CODES = new Set<unknown>([MDB_MAP_FULL, ENOSPC, EFBIG, EDQUOT, 'ENOSPC', 'EDQUOT']);

/**
 * Opens (by default creating) the cache in `dir`: the directory mode 0700, its files 0600.
 * Never throws: a cache that cannot be opened comes back disabled, after one warning.
 */
export function openAnswerCache(dir: string, options: OpenOptions): Promise<AnswerCache> {
  return Promise.resolve(openNow(dir, options));
}

function openNow(dir: string, options: OpenOptions): AnswerCache {
  const file = path.join(dir, DATA_FILE);
  const create = options.create ?? true;
  try {
    if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
    else statSync(file);
  } catch (error) {
    if (!create && code(error) === 'ENOENT') return disabledCache(dir);
    options.warn(unusable(dir, error));
    return disabledCache(dir);
  }
  let lmdb: Lmdb;
  try {
    // lmdb's CommonJS build, through require(): about 40 ms, where import() of its ES module
    // entry (many small files, each resolved) costs over 100 ms of a cached run's start-up.
    lmdb = requireCjs('lmdb') as Lmdb;
  } catch (error) {
    options.warn(unusable(dir, error));
    return disabledCache(dir);
  }
  return new LmdbCache(lmdb, dir, file, options).start();
}

/** A cache that holds nothing: for `--no-cache`, and when the directory cannot be used. */
export function disabledCache(dir: string): AnswerCache {
  return {
    dir,
    enabled: false,
    get: () => undefined,
    put: () => undefined,
    stats: () => ({ entries: 0, bytes: 0 }),
    prune: () => 0,
    clear: () => 0,
    close: () => Promise.resolve(),
  };
}

class LmdbCache implements AnswerCache {
  enabled = true;
  private db: RootDatabase<string, string> | undefined;
  /** The data file's identity when opened: a file replaced since is not ours to move. */
  private identity = '';
  private writable = true;
  private readonly queue = new Map<string, string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly warn: (message: string) => void;
  private readonly now: () => number;

  constructor(
    private readonly lmdb: Lmdb,
    readonly dir: string,
    private readonly file: string,
    options: OpenOptions,
  ) {
    this.warn = options.warn;
    this.now = options.now ?? Date.now;
  }

  /** Opens the store, moving a damaged data file aside first; disabled if that fails. */
  start(): this {
    try {
      const problem = this.prepareFiles();
      if (problem) this.moveAside(problem);
      this.db = this.openDb();
    } catch (error) {
      this.disable(unusable(this.dir, error));
    }
    return this;
  }

  get(key: string): CacheEntry | undefined {
    const queued = this.queue.get(key);
    if (queued !== undefined) return decodeEntry(key, queued);
    const db = this.db;
    if (!db) return undefined;
    let stored: string | undefined;
    try {
      // Another process may have committed since this one's read snapshot began.
      db.resetReadTxn();
      stored = db.get(key);
    } catch (error) {
      this.failed(error);
      return undefined;
    }
    return decodeEntry(key, stored);
  }

  put(key: string, entry: CacheEntry): void {
    if (!this.db || !this.writable) return;
    this.queue.set(key, encodeEntry(key, entry));
    if (this.queue.size >= FLUSH_COUNT) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  stats(): CacheStats {
    if (!this.enabled) return { entries: 0, bytes: 0 };
    this.flush();
    const db = this.db;
    let entries = 0;
    try {
      if (db) entries = (db.getStats() as { entryCount: number }).entryCount;
    } catch (error) {
      this.failed(error);
    }
    let bytes = 0;
    for (const name of [DATA_FILE, DATA_FILE + LOCK_SUFFIX]) {
      try {
        bytes += statSync(path.join(this.dir, name)).size;
      } catch {
        // Not there: nothing on disk.
      }
    }
    return { entries, bytes };
  }

  prune(olderThanMs: number, now: number): number {
    this.flush();
    const db = this.db;
    if (!db) return 0;
    const before = now - olderThanMs;
    try {
      db.resetReadTxn();
      const old: string[] = [];
      for (const { key, value } of db.getRange()) {
        const entry = decodeEntry(key, value);
        if (!entry || entry.askedAt < before) old.push(key);
      }
      db.transactionSync(() => {
        for (const key of old) db.removeSync(key);
      });
      return old.length;
    } catch (error) {
      this.failed(error);
      return 0;
    }
  }

  clear(): number {
    this.queue.clear();
    const db = this.db;
    let count = 0;
    try {
      if (db) {
        count = (db.getStats() as { entryCount: number }).entryCount;
        db.clearSync();
      }
    } catch (error) {
      this.failed(error);
    }
    for (const name of readdirSafe(this.dir)) {
      if (name.startsWith(DATA_FILE + DAMAGED)) rmSync(path.join(this.dir, name), { force: true });
    }
    return count;
  }

  async close(): Promise<void> {
    this.flush();
    const db = this.db;
    this.db = undefined;
    this.enabled = false;
    if (db) await db.close().catch(() => undefined);
  }

  /** Commits the queued answers in one transaction. */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const db = this.db;
    if (!db || this.queue.size === 0) return;
    const batch = [...this.queue];
    this.queue.clear();
    if (!this.writable) return;
    try {
      db.transactionSync(() => {
        for (const [key, value] of batch) db.putSync(key, value);
      });
    } catch (error) {
      this.failed(error);
    }
  }

  /**
   * Creates the data and lock files (0600: lmdb would make them 0664) or checks that they can
   * be opened for writing, and reads the data file's header. Returns why the data file cannot
   * be opened safely, if it cannot. Throws when the files cannot be used at all.
   */
  private prepareFiles(): string | undefined {
    const fd = openSync(this.file, 'a+', 0o600);
    try {
      const stat = fstatSync(fd);
      if ((stat.mode & 0o077) !== 0) fchmodSync(fd, stat.mode & 0o700);
      this.identity = `${stat.dev}:${stat.ino}`;
      const head = new Uint8Array(Math.min(stat.size, HEADER_BYTES));
      readSync(fd, head, 0, head.length, 0);
      const problem = lmdbFileProblem(head, stat.size);
      closeSync(openSync(this.file + LOCK_SUFFIX, 'a', 0o600));
      return problem;
    } finally {
      closeSync(fd);
    }
  }

  private openDb(): RootDatabase<string, string> {
    return this.lmdb.open<string, string>({
      path: this.file,
      encoding: 'string',
      // Not in lmdb's types: the mode of files it creates (its default is 0664).
      ...({ permissionsMode: 0o600 } as object),
    });
  }

  /** Moves a damaged data file aside (unless another process already has), reports it. */
  private moveAside(problem: string): void {
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, '-');
    const aside = `${this.file}${DAMAGED}${stamp}`;
    let current = '';
    try {
      const stat = statSync(this.file);
      current = `${stat.dev}:${stat.ino}`;
    } catch {
      // Gone already.
    }
    if (current === this.identity) {
      renameSync(this.file, aside);
      // Its lock file belongs to it; a process still using the old file keeps its open copy.
      rmSync(this.file + LOCK_SUFFIX, { force: true });
      this.warn(
        `the answer cache ${this.file} was damaged (${problem}); moved it to ${path.basename(aside)} and started afresh`,
      );
    }
    const still = this.prepareFiles();
    if (still) throw new Error(`${this.file} is still damaged (${still})`);
  }

  /** Handles a failed lmdb call: a damaged store is replaced, a full disk stops writes. */
  private failed(error: unknown): void {
    const c = code(error);
    if (FULL_CODES.has(c)) {
      this.writable = false;
      this.queue.clear();
      this.warn(
        `the answer cache ${this.dir} cannot grow: the disk is full (${message(error)}); answers are no longer stored this run`,
      );
      return;
    }
    if (typeof c === 'number' && DAMAGE_CODES.has(c)) {
      const old = this.db;
      this.db = undefined;
      try {
        this.moveAside(message(error));
        this.db = this.openDb();
      } catch (again) {
        this.disable(unusable(this.dir, again));
      }
      // Closing a damaged environment may fail; its file is no longer the store's.
      void old?.close().catch(() => undefined);
      return;
    }
    this.writable = false;
    this.queue.clear();
    this.warn(
      `the answer cache ${this.dir} failed (${message(error)}); answers are no longer stored this run`,
    );
  }

  private disable(warning: string): void {
    const db = this.db;
    this.db = undefined;
    this.enabled = false;
    this.writable = false;
    this.queue.clear();
    void db?.close().catch(() => undefined);
    this.warn(warning);
  }
}

function unusable(dir: string, error: unknown): string {
  return `the answer cache ${dir} cannot be used (${message(error)}); answers are neither looked up nor stored this run`;
}

function code(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function message(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error), 120);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
