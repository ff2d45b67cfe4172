/**
 * Job records: everything a later process needs to wait for a batch job and collect its
 * results (after the submitting process died, or a reboot), under
 * `$XDG_STATE_HOME/describe-image/jobs/` (default `~/.local/state/describe-image/jobs/`).
 *
 * `<id>.json` is the record, written whole and atomically through the run's `Redactor`;
 * `<id>/` holds the job's map (custom_id → image) and, until each is uploaded, its shards.
 * A record never holds a key: the base URL is kept in its displayed form (secrets as `***`),
 * and the key is looked up again when the job is collected.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import { displayUrl, safeJson, type Redactor } from '../output/guard.js';
import type { BatchError, BatchRequestCounts } from '../api/batches.js';

/** One input file of a job, from written to uploaded to finished. */
export interface JobShard {
  /** 1-based, unique in the job (retry rounds continue the numbering). */
  n: number;
  /** 1 for the first submission, 2… for each `--retry-failed`. */
  round: number;
  model: string;
  requests: number;
  bytes: number;
  /** The local requests file, while it is kept (removed once its batch exists). */
  file: string | undefined;
  /** The shard's custom_ids in line order (maps `errors.data[].line` to an image). */
  ids: string | undefined;
  fileId?: string | undefined;
  batchId?: string | undefined;
  /** Set before `POST /batches` is sent: a later process looks for the batch before creating. */
  createSent?: boolean | undefined;
  status?: string | undefined;
  counts?: BatchRequestCounts | undefined;
  outputFileId?: string | undefined;
  errorFileId?: string | undefined;
  errors?: BatchError[] | undefined;
  /** Unix seconds the batch was created at (for finding it again in a list). */
  createdAt?: number | undefined;
  /** Tokens so far, when the provider reports them (OpenAI: batches after 2025-09-07). */
  usage?: { input_tokens: number; output_tokens: number } | undefined;
}

export interface JobRecord {
  version: 1;
  id: string;
  /** `api`: submitted to a batch engine; `file`: written by `--batch-file` for running by hand. */
  kind: 'api' | 'file';
  /** ISO date. */
  createdAt: string;
  provider: string;
  /** The base URL of `/files` and `/batches`, displayed form (never a secret). */
  baseUrl: string;
  model: string;
  lineUrl: string;
  endpoint: string;
  /** The request options the job was built with, as the CLI resolved them. */
  settings: Record<string, unknown>;
  /** `settingsKey(settings)`: two jobs with the same key would ask the same thing. */
  settingsKey: string;
  /** Output options given at submission (`-o`, `--json`, `--sidecar`…); collect-time ones win. */
  output: Record<string, unknown>;
  /** Images in the job's batches. */
  total: number;
  /** Images in the run's input, those left out of the job included. */
  inputs?: number | undefined;
  /** Images of the map that could not go into a batch (each with its failure). */
  unprepared?: number | undefined;
  /** The batch price as a share of the list price (for costs). */
  priceFactor?: number | undefined;
  /** The map file (custom_id → image). */
  map: string;
  shards: JobShard[];
  /** ISO date of the last time results were written, if ever. */
  collectedAt?: string | undefined;
  /** Set by `--cancel`. */
  cancelRequested?: boolean | undefined;
}

/** `$XDG_STATE_HOME/describe-image`, or `~/.local/state/describe-image`. */
export function stateDir(
  env: Readonly<Record<string, string | undefined>>,
  homedir: string,
): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir, '.local', 'state');
  return path.join(base, 'describe-image');
}

/** A new job id: UTC date and time, and four random hex digits (`20260321-142233-7f3a`). */
export function newJobId(now: number, random: Buffer = randomBytes(2)): string {
  const iso = new Date(now).toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
  return `${stamp}-${random.toString('hex').slice(0, 4).padStart(4, '0')}`;
}

const JOB_ID = /^\d{8}-\d{6}-[0-9a-f]{4}$/;

/** Whether `text` is shaped like a job id (checked before it becomes a file name). */
export function isJobId(text: string): boolean {
  return JOB_ID.test(text);
}

/** A stable hash of the settings (key order does not matter). */
export function settingsKey(settings: Record<string, unknown>): string {
  return createHash('sha256').update(stableJson(settings)).digest('hex').slice(0, 16);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${safeJson(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : safeJson(value);
}

/** Whether every shard has reached a status it never leaves. */
export function isFinished(job: JobRecord): boolean {
  return job.shards.length > 0 && job.shards.every((s) => isTerminal(s.status));
}

export function isTerminal(status: string | undefined): boolean {
  return (
    status === 'completed' || status === 'failed' || status === 'expired' || status === 'cancelled'
  );
}

export class JobStore {
  readonly dir: string;

  /** `root` is `stateDir(…)`; the records go in its `jobs/`. */
  constructor(
    root: string,
    private readonly redactor: Redactor,
  ) {
    this.dir = path.join(root, 'jobs');
  }

  /** The folder for a job's map and shards (created, readable by the user only). */
  async jobDir(id: string): Promise<string> {
    const dir = path.join(this.dir, checkedId(id));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private file(id: string): string {
    return path.join(this.dir, `${checkedId(id)}.json`);
  }

  /** Writes the record whole (temporary file + rename), readable by the user only. */
  async save(record: JobRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const safe: JobRecord = { ...record, baseUrl: displayUrl(record.baseUrl) };
    await writeFileAtomic(this.file(record.id), this.dir, `${safeJson(safe, 1)}\n`, this.redactor, {
      mode: 0o600,
    });
  }

  /** The record of job `id`; a `UsageError` naming `--jobs` when there is none. */
  async read(id: string): Promise<JobRecord> {
    if (!isJobId(id)) throw new UsageError(`${id}: not a job id (see --jobs)`);
    let text: string;
    try {
      text = await readFile(this.file(id), 'utf8');
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT')
        throw new UsageError(`no job ${id} in ${this.dir} (see --jobs)`);
      throw error;
    }
    const record = parseRecord(text);
    if (!record) throw new UsageError(`${this.file(id)}: not a describe-image job record`);
    return record;
  }

  /** Every job, oldest first. Unreadable records are skipped. */
  async list(): Promise<JobRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return [];
      throw error;
    }
    const jobs: JobRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json') || !isJobId(name.slice(0, -5))) continue;
      const record = parseRecord(await readFile(path.join(this.dir, name), 'utf8').catch(() => ''));
      if (record) jobs.push(record);
    }
    return jobs.sort((a, b) =>
      a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0,
    );
  }

  /** Removes a job's record and folder (a job none of whose batches was created). */
  async remove(id: string): Promise<void> {
    await rm(path.join(this.dir, checkedId(id)), { recursive: true, force: true });
    await rm(this.file(id), { force: true });
  }

  /** Reads, changes and saves a record; returns the saved one. */
  async update(id: string, change: (record: JobRecord) => void): Promise<JobRecord> {
    const record = await this.read(id);
    change(record);
    await this.save(record);
    return record;
  }
}

function checkedId(id: string): string {
  if (!isJobId(id)) throw new UsageError(`${id}: not a job id (see --jobs)`);
  return id;
}

function parseRecord(text: string): JobRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<JobRecord>;
    if (value.version !== 1 || typeof value.id !== 'string' || !Array.isArray(value.shards))
      return undefined;
    return value as JobRecord;
  } catch {
    return undefined;
  }
}
