/**
 * Batch input files ("shards"): one JSON line per request,
 * `{"custom_id", "method": "POST", "url", "body"}`, where `body` is exactly the body the
 * synchronous call sends, less `stream` and `stream_options`. Files are split by bytes and by
 * request count, one model per file, and written a line at a time: an image's base64 goes from
 * its bytes to the disk in slices, so a 200 MB shard is never whole in memory.
 */
import path from 'node:path';
import { encodeBody, type ChatRequestPayload, type EncodedBody } from '../api/request.js';
import type { ChatCompletionRequest } from '../api/types.js';
import { InputError } from '../errors.js';
import { safeJson, type Redactor } from '../output/guard.js';
import { BufferedFile } from './lines.js';

/** One request of a batch. */
export interface BatchRequest {
  customId: string;
  /** The payload as built for the synchronous call (`buildPayload`). */
  payload: ChatRequestPayload;
  /** Shown in errors about this request. */
  name: string;
}

export interface ShardLimits {
  maxBytes: number;
  maxRequests: number;
}

export interface ShardOptions extends ShardLimits {
  /** The path of shard `n` (1-based). */
  pathFor: (n: number) => string;
  /** The `url` of every line (`/v1/chat/completions`). */
  lineUrl: string;
  redactor: Redactor;
  /** Also write each shard's `custom_id`s in line order, as `<shard>.ids` (see `idsPathFor`). */
  writeIds?: boolean;
}

/** A finished shard. */
export interface ShardInfo {
  /** 1-based, in the order shards were opened. */
  n: number;
  path: string;
  /** The `.ids` file, when asked for. */
  idsPath: string | undefined;
  model: string;
  requests: number;
  bytes: number;
}

/** `shard-1.jsonl` → `shard-1.ids`. */
export function idsPathFor(shardPath: string): string {
  return `${shardPath.replace(/\.jsonl$/, '')}.ids`;
}

/** `requests.jsonl`, shard n → `requests.jsonl` for 1, `requests.2.jsonl` for 2… */
export function numberedPath(first: string, n: number): string {
  if (n === 1) return first;
  const ext = path.extname(first);
  const stem = ext ? first.slice(0, -ext.length) : first;
  return `${stem}.${n}${ext || '.jsonl'}`;
}

/** The body a batch line carries: the synchronous body without `stream`/`stream_options`. */
export function batchPayload(payload: ChatRequestPayload): ChatRequestPayload {
  const { stream: _stream, stream_options: _options, ...rest } = payload.body;
  return { body: rest as ChatCompletionRequest, attachments: payload.attachments };
}

/** One encoded input line: its exact length and its bytes, produced in slices. */
export function encodeLine(
  customId: string,
  lineUrl: string,
  payload: ChatRequestPayload,
  redactor?: Redactor,
): EncodedBody {
  let body = batchPayload(payload);
  if (redactor) body = { ...body, body: redactStrings(body.body, redactor) };
  const encoded = encodeBody(body);
  const head = Buffer.from(
    `{"custom_id":${safeJson(customId)},"method":"POST","url":${safeJson(lineUrl)},"body":`,
    'utf8',
  );
  const tail = Buffer.from('}\n', 'utf8');
  return {
    length: head.length + encoded.length + tail.length,
    *chunks() {
      yield head;
      yield* encoded.chunks();
      yield tail;
    },
  };
}

/**
 * Every string in the body (prompt, system message, schema) through the redactor. Image bytes
 * are not text and are left alone: a short secret could match inside base64 by chance.
 */
function redactStrings<T>(value: T, redactor: Redactor): T {
  if (typeof value === 'string') return redactor.redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactStrings(v, redactor)) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactStrings(item, redactor);
    return out as T;
  }
  return value;
}

/** A shard as planned: its number, model and what it holds so far. */
export interface ShardPlan {
  n: number;
  model: string;
  requests: number;
  bytes: number;
}

/**
 * Pure: which shard each request goes to, by the split rules (bytes, count, one model per
 * file). The writer follows it, and `--dry-run` can run it alone on the lines' lengths.
 */
export class ShardPlanner {
  private readonly open = new Map<string, ShardPlan>();
  /** Every shard planned so far, in the order opened. */
  readonly shards: ShardPlan[] = [];

  constructor(private readonly limits: ShardLimits) {
    if (!(limits.maxBytes > 0) || !(limits.maxRequests > 0)) {
      throw new Error('shard limits must be positive');
    }
  }

  /** Whether a line of `bytes` fits in a shard at all. */
  fits(bytes: number): boolean {
    return bytes <= this.limits.maxBytes;
  }

  /**
   * Places a line of `bytes` for `model`: the shard and line (1-based) it goes to, and the
   * shard this closes (full), if any. The caller checks `fits()` first.
   */
  place(
    model: string,
    bytes: number,
  ): { shard: ShardPlan; line: number; opened: boolean; closed: ShardPlan | undefined } {
    let shard = this.open.get(model);
    let closed: ShardPlan | undefined;
    if (
      shard &&
      (shard.requests + 1 > this.limits.maxRequests || shard.bytes + bytes > this.limits.maxBytes)
    ) {
      closed = shard;
      shard = undefined;
    }
    const opened = shard === undefined;
    if (!shard) {
      shard = { n: this.shards.length + 1, model, requests: 0, bytes: 0 };
      this.shards.push(shard);
      this.open.set(model, shard);
    }
    shard.requests++;
    shard.bytes += bytes;
    return { shard, line: shard.requests, opened, closed };
  }
}

interface OpenShard {
  info: ShardInfo;
  file: BufferedFile;
  ids: BufferedFile | undefined;
}

/**
 * Writes requests into shards. `add()` calls are queued, so callers may add from several
 * workers; lines keep the order of the calls. `close()` puts every shard in place;
 * `discard()` removes what was written.
 */
export class ShardWriter {
  private readonly open = new Map<number, OpenShard>();
  private readonly done: ShardInfo[] = [];
  private readonly planner: ShardPlanner;
  private queue: Promise<unknown> = Promise.resolve();
  /** A write that failed half-way (a full disk): the shard is torn, nothing more goes in. */
  private broken: Error | undefined;

  constructor(private readonly opts: ShardOptions) {
    this.planner = new ShardPlanner(opts);
  }

  /** Adds one request; resolves to the shard and line (1-based) it went to. */
  add(request: BatchRequest): Promise<{ shard: number; line: number }> {
    const next = this.queue.then(() => this.write(request));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async write(request: BatchRequest): Promise<{ shard: number; line: number }> {
    if (this.broken !== undefined) throw this.broken;
    const { opts } = this;
    const line = encodeLine(request.customId, opts.lineUrl, request.payload, opts.redactor);
    if (!this.planner.fits(line.length)) {
      throw new InputError(
        `${request.name}: its request is ${mb(line.length)}, over the ${mb(opts.maxBytes)} a batch file may hold; use a smaller --max-size or --detail low`,
      );
    }
    const placed = this.planner.place(request.payload.body.model, line.length);
    const closing = placed.closed && this.open.get(placed.closed.n);
    if (closing) await this.finish(closing);
    const shard = placed.opened
      ? await this.start(placed.shard.n, placed.shard.model)
      : this.open.get(placed.shard.n);
    if (!shard) throw new Error(`shard ${placed.shard.n} is not open`);
    try {
      for (const chunk of line.chunks()) await shard.file.write(chunk);
      await shard.ids?.write(`${request.customId}\n`);
    } catch (error) {
      this.broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    shard.info.requests = placed.shard.requests;
    shard.info.bytes = placed.shard.bytes;
    return { shard: placed.shard.n, line: placed.line };
  }

  private async start(n: number, model: string): Promise<OpenShard> {
    const target = this.opts.pathFor(n);
    const file = await BufferedFile.create(target);
    let ids: BufferedFile | undefined;
    try {
      ids = this.opts.writeIds ? await BufferedFile.create(idsPathFor(target)) : undefined;
    } catch (error) {
      await file.discard();
      throw error;
    }
    const shard: OpenShard = {
      info: { n, path: target, idsPath: ids?.target, model, requests: 0, bytes: 0 },
      file,
      ids,
    };
    this.open.set(n, shard);
    return shard;
  }

  private async finish(shard: OpenShard): Promise<void> {
    this.open.delete(shard.info.n);
    await shard.file.commit();
    await shard.ids?.commit();
    this.done.push(shard.info);
  }

  /** Puts every shard in place; returns them in the order they were opened. */
  async close(): Promise<ShardInfo[]> {
    await this.queue;
    for (const shard of [...this.open.values()]) await this.finish(shard);
    return [...this.done].sort((a, b) => a.n - b.n);
  }

  /** Removes the shards still being written (finished ones are the caller's to remove). */
  async discard(): Promise<void> {
    await this.queue;
    for (const shard of this.open.values()) {
      await shard.file.discard();
      await shard.ids?.discard();
    }
    this.open.clear();
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
