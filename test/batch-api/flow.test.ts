/**
 * The whole life of a job against the strict stand-in: shards written, uploaded, created,
 * waited for (also from a fresh store, as a new process would), collected in input order;
 * a create that times out after the server made the batch; expiry, cancellation, failed
 * validation and --retry-failed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Batches } from '../../src/api/batches.js';
import { Files } from '../../src/api/files.js';
import { APIError, ExitCode, InterruptedError, TimeoutError } from '../../src/errors.js';
import { PROVIDERS } from '../../src/providers.js';
import {
  addRetryRound,
  imagesInOpenJobs,
  imagesToRetry,
  jobShardPath,
  newJobRecord,
  writeJobFiles,
} from '../../src/batch-api/build.js';
import { collectJob, resultsInOrder, type ImageResult } from '../../src/batch-api/collect.js';
import { JobStore, newJobId, type JobRecord } from '../../src/batch-api/jobs.js';
import type { ShardLimits } from '../../src/batch-api/shards.js';
import { cancelJob, submitJob, type FlowContext } from '../../src/batch-api/submit.js';
import { batchTarget } from '../../src/batch-api/targets.js';
import { waitForJob, type JobProgress } from '../../src/batch-api/wait.js';
import type { BatchServer } from '../helpers/batch-server.js';
import { fixtures, flow, imageHash, inputs, KEY, redactor } from './helpers.js';

const { tempDir, server: standIn } = fixtures();

async function newJob(
  ctx: FlowContext,
  server: BatchServer,
  count: number,
  limits: ShardLimits,
  provider: 'openai' | 'azure' = 'openai',
): Promise<JobRecord> {
  const id = newJobId(Date.now());
  const dir = await ctx.store.jobDir(id);
  const target = batchTarget(PROVIDERS[provider], server.baseUrl);
  const map = path.join(dir, 'map.jsonl');
  const { shards, written } = await writeJobFiles(inputs(count), {
    jobId: id,
    lineUrl: target.lineUrl,
    limits,
    redactor: redactor(),
    pathFor: (n) => jobShardPath(dir, n),
    mapPath: map,
    writeIds: true,
  });
  const job = newJobRecord({
    id,
    kind: 'api',
    createdAt: Date.now(),
    provider,
    target,
    model: 'gpt-4o-mini',
    settings: { prompt: 'What is in this image?', detail: 'low' },
    output: { output: 'out.jsonl', json: true },
    map,
    shards,
    total: written,
  });
  await ctx.store.save(job);
  return job;
}

async function results(job: JobRecord, ctx: FlowContext): Promise<ImageResult[]> {
  const table = await collectJob(job, ctx.files);
  const out: ImageResult[] = [];
  for await (const result of resultsInOrder(job.map, table)) out.push(result);
  return out;
}

function answerOf(result: ImageResult): string {
  expect(result.outcome?.kind).toBe('answered');
  return result.outcome?.kind === 'answered' ? result.outcome.completion.text : '';
}

describe('a job on the stand-in', () => {
  it('submits 300 requests in three shards, survives a stopped wait, and answers each image once, in input order', async () => {
    const server = await standIn();
    const root = tempDir();
    const ctx = flow(server, root);
    const job = await newJob(ctx, server, 300, { maxBytes: 200_000_000, maxRequests: 100 });
    expect(job.shards.map((s) => s.requests)).toEqual([100, 100, 100]);

    await submitJob(job, ctx);
    expect(server.batches.size).toBe(3);
    expect([...server.batches.values()].map((b) => b.metadata)).toEqual(
      [1, 2, 3].map((n) => ({
        describe_image_job: job.id,
        describe_image_shard: String(n),
      })),
    );
    // The shards' local files are gone once their batches exist; the .ids stay.
    expect(job.shards.every((s) => s.file === undefined && s.ids !== undefined)).toBe(true);

    // The first waiting process is stopped (Ctrl-C) after its first poll: nothing is cancelled.
    const stop = new AbortController();
    const progress: JobProgress[] = [];
    const first = waitForJob(
      job,
      {
        ...ctx,
        signal: stop.signal,
        sleep: (_ms, signal) =>
          new Promise((_, reject) =>
            signal?.addEventListener('abort', () => reject(new Error('aborted'))),
          ),
      },
      {
        minPollMs: 5,
        onProgress: (p) => {
          progress.push(p);
          stop.abort();
        },
      },
    );
    await expect(first).rejects.toThrow(InterruptedError);
    await expect(first).rejects.toThrow(`describe-image --job ${job.id} --wait`);
    expect(progress[0]).toMatchObject({
      status: 'validating',
      total: 300,
      completed: 0,
      shards: 3,
      shardsDone: 0,
    });
    expect([...server.batches.values()].every((b) => b.status === 'validating')).toBe(true);

    // A new process: only the record on disk, a new store and client.
    server.finish();
    const later = flow(server, root);
    const record = await new JobStore(root, redactor()).read(job.id);
    const seen: JobProgress[] = [];
    const done = await waitForJob(record, later, { minPollMs: 1, onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)).toMatchObject({
      status: 'completed',
      completed: 300,
      failed: 0,
      total: 300,
      shardsDone: 3,
    });

    const all = await results(done, later);
    expect(all.map((r) => r.entry.index)).toEqual([...Array(300).keys()]);
    for (const [i, result] of all.entries()) {
      expect(result.entry.image).toBe(`photos/img-${i}.png`);
      expect(answerOf(result)).toBe(`answer to ${job.id}-${i} (image ${imageHash(i)})`);
    }
    expect(new Set(all.map((r) => r.batchId)).size).toBe(3);
    expect(server.violations).toEqual([]);
  });

  it('never leaves two batches for one shard when the create times out after the server made it', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir(), { timeoutMs: 400 });
    const job = await newJob(ctx, server, 20, { maxBytes: 200_000_000, maxRequests: 50_000 });
    server.faults.hangCreates = 1;
    const logs: string[] = [];
    await submitJob(job, { ...ctx, log: (line) => logs.push(line) });
    expect(server.batches.size).toBe(1);
    expect(job.shards[0]?.batchId).toBe([...server.batches.keys()][0]);
    expect(logs.join('\n')).toMatch(/create of shard 1 failed \(no answer from .* within 0\.4 s/);
    expect(server.log.filter((r) => r.method === 'POST' && r.path === '/v1/batches')).toHaveLength(
      1,
    );
    expect(server.violations).toEqual([]);
  });

  it('looks for the batch first when an earlier process sent the create and died', async () => {
    const server = await standIn();
    const root = tempDir();
    const ctx = flow(server, root, { timeoutMs: 400 });
    const job = await newJob(ctx, server, 5, { maxBytes: 200_000_000, maxRequests: 50_000 });
    server.faults.hangCreates = 1;
    // The first process gives up at once (one attempt): the record says a create was sent.
    class ListsNothing extends Batches {
      override async *listAll(): AsyncGenerator<never> {}
    }
    await expect(
      submitJob(job, { ...ctx, attempts: 1, batches: new ListsNothing(ctx.api) }),
    ).rejects.toThrow(TimeoutError);
    const record = await new JobStore(root, redactor()).read(job.id);
    expect(record.shards[0]?.createSent).toBe(true);
    expect(record.shards[0]?.batchId).toBeUndefined();
    await submitJob(record, flow(server, root));
    expect(server.batches.size).toBe(1);
    expect(record.shards[0]?.batchId).toBe([...server.batches.keys()][0]);
  });

  it('uploads again after a reset, and still creates one batch', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir());
    const job = await newJob(ctx, server, 5, { maxBytes: 200_000_000, maxRequests: 50_000 });
    server.faults.resetUploads = 1;
    await submitJob(job, ctx);
    expect(server.log.filter((r) => r.path === '/v1/files')).toHaveLength(2);
    expect(server.batches.size).toBe(1);
  });

  it('keeps the answers of an expired batch, reports the rest, and --retry-failed submits only those', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir());
    const job = await newJob(ctx, server, 10, { maxBytes: 200_000_000, maxRequests: 50_000 });
    await submitJob(job, ctx);
    const batchId = job.shards[0]!.batchId!;
    server.expire(batchId, 6);
    await waitForJob(job, ctx, { minPollMs: 1 });
    expect(job.shards[0]).toMatchObject({ status: 'expired' });

    const first = await results(job, ctx);
    const answered = first.filter((r) => r.outcome?.kind === 'answered');
    const expired = first.filter((r) => r.outcome?.kind === 'failed' && r.outcome.expired);
    expect(answered).toHaveLength(6);
    expect(expired).toHaveLength(4);
    for (const r of expired) {
      const outcome = r.outcome as unknown as { kind: 'failed'; error: APIError };
      expect(outcome.error.exitCode).toBe(ExitCode.SERVER);
      expect(outcome.error.message).toMatch(
        /^the batch expired before this request ran: .*\(--retry-failed submits it again\)/,
      );
    }

    const table = await collectJob(job, ctx.files);
    const retry = await imagesToRetry(job, table);
    expect(retry.map((e) => e.index)).toEqual(expired.map((r) => r.entry.index));
    const again = new Set(retry.map((e) => e.index));
    async function* failedOnly() {
      for await (const input of inputs(10)) if (again.has(input.index)) yield input;
    }
    const added = await addRetryRound(job, await ctx.store.jobDir(job.id), failedOnly(), {
      limits: { maxBytes: 200_000_000, maxRequests: 50_000 },
      redactor: redactor(),
    });
    expect(added).toMatchObject([{ n: 2, round: 2, requests: 4 }]);
    await submitJob(job, ctx);
    const second = [...server.batches.values()][1]!;
    expect(second.lines.map((l) => l.customId)).toEqual(retry.map((e) => e.custom_id));
    server.finish(second.id);
    await waitForJob(job, ctx, { minPollMs: 1 });

    const final = await results(job, ctx);
    expect(final.map((r) => r.outcome?.kind)).toEqual(Array(10).fill('answered'));
    // The six first answers are the first batch's; the four others the retry's.
    expect(final.filter((r) => r.batchId === batchId).map((r) => r.entry.index)).toEqual(
      answered.map((r) => r.entry.index),
    );
    expect(server.violations).toEqual([]);
  });

  it('cancels: finished answers kept, the rest reported as cancelled and retried', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir());
    const job = await newJob(ctx, server, 10, { maxBytes: 200_000_000, maxRequests: 50_000 });
    await submitJob(job, ctx);
    server.advance();
    await cancelJob(job, ctx);
    expect(job.shards[0]).toMatchObject({ status: 'cancelling' });
    expect(job.cancelRequested).toBe(true);
    server.advance();
    await waitForJob(job, ctx, { minPollMs: 1 });
    const all = await results(job, ctx);
    expect(all.map((r) => r.outcome?.kind)).toEqual(
      [...Array(5).fill('answered'), ...Array(5).fill('cancelled')].sort(),
    );
    expect(all.filter((r) => r.outcome?.kind === 'cancelled')).toHaveLength(5);
    const retry = await imagesToRetry(job, await collectJob(job, ctx.files));
    expect(retry).toHaveLength(5);
  });

  it('maps a failed validation back to each image: its own line, or the batch', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir());
    const job = await newJob(ctx, server, 4, { maxBytes: 200_000_000, maxRequests: 50_000 });
    // Line 2 asks for GET: the engine refuses the whole file.
    const file = job.shards[0]!.file!;
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[1] = lines[1]!.replace('"method":"POST"', '"method":"GET"');
    await writeFile(file, lines.join('\n'));
    await submitJob(job, ctx);
    server.finish();
    await waitForJob(job, ctx, { minPollMs: 1 });
    expect(job.shards[0]).toMatchObject({
      status: 'failed',
      errors: [{ code: 'invalid_method', line: 2 }],
    });
    const all = await results(job, ctx);
    const messages = all.map((r) =>
      r.outcome?.kind === 'failed' ? r.outcome.error.message : r.outcome?.kind,
    );
    expect(messages[1]).toBe(
      'the batch engine rejected this request (line 2): Only POST is supported',
    );
    expect(messages[0]).toBe('its batch failed validation at line 2: Only POST is supported');
    expect(
      all.every(
        (r) => r.outcome?.kind === 'failed' && r.outcome.error.exitCode === ExitCode.REJECTED,
      ),
    ).toBe(true);
  });

  it('drives Azure OpenAI on its v1 paths with the api-key header', async () => {
    const server = await standIn({ azure: true });
    expect(server.baseUrl).toMatch(/\/openai\/v1$/);
    const root = tempDir();
    // The chat base URL of a deployment; the batch engine is beside it.
    const deployment = `${server.origin}/openai/deployments/gpt-4o-batch`;
    const target = batchTarget(PROVIDERS.azure, deployment);
    expect(target).toMatchObject({
      baseUrl: server.baseUrl,
      endpoint: '/chat/completions',
      lineUrl: '/v1/chat/completions',
      minPollMs: 60_000,
    });
    const ctx = flow(server, root, { azure: true });
    const job = await newJob(ctx, server, 12, target.limits, 'azure');
    await submitJob(job, ctx);
    server.finish();
    await waitForJob(job, ctx, { minPollMs: 1 });
    const all = await results(job, ctx);
    expect(all.filter((r) => r.outcome?.kind === 'answered')).toHaveLength(12);
    expect(server.violations).toEqual([]);
  });

  it('finds the images of jobs not collected yet with the same settings', async () => {
    const server = await standIn();
    const ctx = flow(server, tempDir());
    const job = await newJob(ctx, server, 3, { maxBytes: 200_000_000, maxRequests: 50_000 });
    const open = await imagesInOpenJobs(ctx.store, job.settingsKey);
    expect([...open]).toEqual([0, 1, 2].map((i) => [`/data/photos/img-${i}.png`, job.id]));
    expect((await imagesInOpenJobs(ctx.store, 'other-settings')).size).toBe(0);
    job.collectedAt = new Date().toISOString();
    await ctx.store.save(job);
    expect((await imagesInOpenJobs(ctx.store, job.settingsKey)).size).toBe(0);
  });

  it('keeps no key in the job record', async () => {
    const server = await standIn();
    const root = tempDir();
    const ctx = flow(server, root);
    const job = await newJob(ctx, server, 3, { maxBytes: 200_000_000, maxRequests: 50_000 });
    // Even a key that found its way into the settings or the base URL is not written.
    job.settings.note = `key ${KEY}`;
    job.baseUrl = `${server.baseUrl}?api-key=${KEY}`;
    await submitJob(job, ctx);
    const text = await readFile(path.join(root, 'jobs', `${job.id}.json`), 'utf8');
    expect(text).not.toContain(KEY);
    expect(text).toContain('key ***');
    expect(JSON.parse(text).baseUrl).toBe(`${server.baseUrl}?api-key=***`);
  });
});

describe('a server without a batch engine', () => {
  it('says so in one line on a 404 from /files', async () => {
    const { startServer, errorHandler } = await import('../helpers/server.js');
    const server = await startServer(errorHandler(404, { error: { message: 'Not Found' } }));
    try {
      const ctx = flow({ baseUrl: server.baseUrl } as BatchServer, tempDir());
      const dir = tempDir();
      const file = path.join(dir, 'x.jsonl');
      await writeFile(file, '{}\n');
      const error = await new Files(ctx.api).upload(file, 'x.jsonl').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).exitCode).toBe(ExitCode.REJECTED);
      expect((error as APIError).message).toBe(
        `${new URL(server.baseUrl).host} has no batch engine (HTTP 404 on POST /files): Not Found (write the requests with --batch-file (for vllm run-batch or an upload by hand), or run without --batch-api)`,
      );
    } finally {
      await server.close();
    }
  });
});
