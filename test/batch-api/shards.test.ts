/**
 * Shards: split by bytes and by count, one model per file, each line's body exactly the
 * synchronous body less stream/stream_options, written a line at a time (a 100 MB shard is
 * built while memory holds a few megabytes).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildChatRequest, materializeBody } from '../../src/api/request.js';
import { InputError } from '../../src/errors.js';
import { Redactor } from '../../src/output/guard.js';
import {
  batchPayload,
  encodeLine,
  idsPathFor,
  numberedPath,
  ShardPlanner,
  ShardWriter,
  type BatchRequest,
} from '../../src/batch-api/shards.js';
import { expectValidRequest } from '../helpers/openapi.js';
import { fixtures, imageBytes } from './helpers.js';

const { tempDir } = fixtures();

function request(
  i: number,
  opts: { model?: string; size?: number; prompt?: string } = {},
): BatchRequest {
  return {
    customId: `job-${i}`,
    name: `img-${i}.png`,
    payload: buildChatRequest({
      model: opts.model ?? 'gpt-4o-mini',
      prompt: opts.prompt ?? 'What is in this image?',
      system: 'Answer briefly.',
      images: [{ mime: 'image/png', data: imageBytes(i, opts.size ?? 300) }],
      detail: 'high',
      maxTokens: 200,
      temperature: 0.2,
      stream: true,
      includeUsage: true,
      responseFormat: {
        type: 'json_schema',
        json_schema: { name: 'alt', strict: true, schema: { type: 'object' } },
      },
    }),
  };
}

function lines(file: string): any[] {
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l): any => JSON.parse(l));
}

function writer(
  dir: string,
  limits: { maxBytes?: number; maxRequests?: number } = {},
  redactor = new Redactor(),
): ShardWriter {
  return new ShardWriter({
    pathFor: (n) => path.join(dir, `shard-${n}.jsonl`),
    lineUrl: '/v1/chat/completions',
    maxBytes: limits.maxBytes ?? 200_000_000,
    maxRequests: limits.maxRequests ?? 50_000,
    redactor,
    writeIds: true,
  });
}

describe('a batch line', () => {
  it('carries the synchronous body, less stream and stream_options, byte for byte', () => {
    const req = request(1);
    const line = encodeLine(req.customId, '/v1/chat/completions', req.payload);
    const bytes = Buffer.concat([...line.chunks()]);
    expect(bytes.length).toBe(line.length);
    expect(bytes.at(-1)).toBe(0x0a);
    const parsed = JSON.parse(bytes.toString('utf8'));
    expect(Object.keys(parsed)).toEqual(['custom_id', 'method', 'url', 'body']);
    expect(parsed).toMatchObject({
      custom_id: 'job-1',
      method: 'POST',
      url: '/v1/chat/completions',
    });
    const sync = materializeBody(req.payload) as unknown as Record<string, unknown>;
    expect(sync.stream).toBe(true);
    const { stream: _s, stream_options: _o, ...expected } = sync;
    expect(parsed.body).toEqual(expected);
    expect(Object.keys(parsed.body)).toEqual(Object.keys(expected));
    expectValidRequest(parsed.body);
    expect(materializeBody(batchPayload(req.payload))).toEqual(expected);
  });

  it('redacts secrets in the text it carries, never in the image', () => {
    const redactor = new Redactor();
    redactor.add('sk-secret-1234');
    const req = request(2, { prompt: 'key sk-secret-1234 here' });
    const parsed = JSON.parse(
      Buffer.concat([
        ...encodeLine('c', '/v1/chat/completions', req.payload, redactor).chunks(),
      ]).toString(),
    );
    expect(parsed.body.messages[1].content[0].text).toBe('key *** here');
    expect(parsed.body.messages[1].content[1].image_url.url).toBe(
      `data:image/png;base64,${Buffer.from(imageBytes(2, 300)).toString('base64')}`,
    );
  });
});

describe('shards', () => {
  it('split by request count', async () => {
    const dir = tempDir();
    const w = writer(dir, { maxRequests: 4 });
    const placed = [];
    for (let i = 0; i < 10; i++) placed.push(await w.add(request(i)));
    const shards = await w.close();
    expect(shards.map((s) => s.requests)).toEqual([4, 4, 2]);
    expect(placed.slice(3, 6)).toEqual([
      { shard: 1, line: 4 },
      { shard: 2, line: 1 },
      { shard: 2, line: 2 },
    ]);
    for (const shard of shards) {
      expect(statSync(shard.path).size).toBe(shard.bytes);
      expect(lines(shard.path)).toHaveLength(shard.requests);
      expect(readFileSync(idsPathFor(shard.path), 'utf8')).toBe(
        lines(shard.path)
          .map((l) => `${l.custom_id}\n`)
          .join(''),
      );
    }
    expect(lines(shards[2]!.path).map((l) => String(l.custom_id))).toEqual(['job-8', 'job-9']);
  });

  it('split by bytes, never over the limit, and no temporary file left', async () => {
    const dir = tempDir();
    const one = encodeLine('job-0', '/v1/chat/completions', request(0).payload).length;
    const w = writer(dir, { maxBytes: one * 3 + 10 });
    for (let i = 0; i < 10; i++) await w.add(request(i));
    const shards = await w.close();
    expect(shards.map((s) => s.requests)).toEqual([3, 3, 3, 1]);
    for (const shard of shards) expect(shard.bytes).toBeLessThanOrEqual(one * 3 + 10);
    expect(readdirSync(dir).sort()).toEqual(
      [1, 2, 3, 4].flatMap((n) => [`shard-${n}.ids`, `shard-${n}.jsonl`]).sort(),
    );
  });

  it('put each model in its own file', async () => {
    const dir = tempDir();
    const w = writer(dir);
    for (let i = 0; i < 6; i++)
      await w.add(request(i, { model: i % 2 ? 'gpt-4o' : 'gpt-4o-mini' }));
    const shards = await w.close();
    expect(shards.map((s) => [s.model, s.requests])).toEqual([
      ['gpt-4o-mini', 3],
      ['gpt-4o', 3],
    ]);
    for (const shard of shards)
      expect(new Set(lines(shard.path).map((l) => String(l.body.model)))).toEqual(
        new Set([shard.model]),
      );
  });

  it('refuse a request larger than a whole file, and go on with the others', async () => {
    const dir = tempDir();
    const w = writer(dir, { maxBytes: 5000 });
    await w.add(request(0));
    await expect(w.add(request(1, { size: 6000 }))).rejects.toThrow(InputError);
    await expect(w.add(request(1, { size: 6000 }))).rejects.toThrow(
      /^img-1\.png: its request is 0\.0 MB, over the 0\.0 MB a batch file may hold/,
    );
    await w.add(request(2));
    const shards = await w.close();
    expect(lines(shards[0]!.path).map((l) => String(l.custom_id))).toEqual(['job-0', 'job-2']);
  });

  it('are planned without writing anything (for --dry-run), as the writer splits them', () => {
    const planner = new ShardPlanner({ maxBytes: 100, maxRequests: 3 });
    expect(planner.fits(101)).toBe(false);
    const placed = [40, 40, 30, 10, 10, 10, 10].map((b, i) =>
      planner.place(i === 3 ? 'other' : 'm', b),
    );
    expect(placed.map((p) => [p.shard.n, p.line, p.opened, p.closed?.n])).toEqual([
      [1, 1, true, undefined],
      [1, 2, false, undefined],
      [2, 1, true, 1],
      [3, 1, true, undefined],
      [2, 2, false, undefined],
      [2, 3, false, undefined],
      [4, 1, true, 2],
    ]);
    expect(planner.shards).toEqual([
      { n: 1, model: 'm', requests: 2, bytes: 80 },
      { n: 2, model: 'm', requests: 3, bytes: 50 },
      { n: 3, model: 'other', requests: 1, bytes: 10 },
      { n: 4, model: 'm', requests: 1, bytes: 10 },
    ]);
  });

  it('name later files after the first', () => {
    expect(numberedPath('out/requests.jsonl', 1)).toBe('out/requests.jsonl');
    expect(numberedPath('out/requests.jsonl', 3)).toBe('out/requests.3.jsonl');
    expect(numberedPath('requests', 2)).toBe('requests.2.jsonl');
  });

  it('write a 100 MB shard a line at a time, never holding it in memory', async () => {
    const dir = tempDir();
    const w = writer(dir);
    // One 3 MB image, shared by every request: what memory holds beside it is the writer's.
    const data = new Uint8Array(3 * 1024 * 1024).fill(7);
    const payload = buildChatRequest({
      model: 'm',
      prompt: 'p',
      images: [{ mime: 'image/png', data }],
      stream: false,
    });
    global.gc?.();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for (let i = 0; i < 25; i++) {
      await w.add({ customId: `c-${i}`, name: `i${i}`, payload });
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }
    const [shard] = await w.close();
    expect(shard!.bytes).toBeGreaterThan(100_000_000);
    expect(statSync(shard!.path).size).toBe(shard!.bytes);
    // The whole shard as bytes would be 100 MB; as built it is a few buffers at a time.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  });
});
