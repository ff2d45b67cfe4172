/**
 * Shared set-up for the batch-api tests: a client for the stand-in, a job store in a
 * temporary folder, and requests built exactly as the synchronous path builds them.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { Batches } from '../../src/api/batches.js';
import { ApiClient } from '../../src/api/client.js';
import { Files } from '../../src/api/files.js';
import { buildChatRequest } from '../../src/api/request.js';
import { Redactor } from '../../src/output/guard.js';
import type { JobInput } from '../../src/batch-api/build.js';
import { JobStore } from '../../src/batch-api/jobs.js';
import type { FlowContext } from '../../src/batch-api/submit.js';
import {
  startBatchServer,
  type BatchServer,
  type BatchServerOptions,
} from '../helpers/batch-server.js';

export const KEY = 'sk-test-batch-0123456789abcdef';

/** Temporary folders and stand-ins, removed after each test. */
export function fixtures(): {
  tempDir: () => string;
  server: (opts?: BatchServerOptions) => Promise<BatchServer>;
} {
  const dirs: string[] = [];
  const servers: BatchServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return {
    tempDir: () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'batch-api-test-'));
      dirs.push(dir);
      return dir;
    },
    server: async (opts = {}) => {
      const server = await startBatchServer({ apiKey: KEY, ...opts });
      servers.push(server);
      return server;
    },
  };
}

export function client(
  baseUrl: string,
  opts: { timeoutMs?: number; azure?: boolean } = {},
): ApiClient {
  return new ApiClient({
    baseUrl,
    apiKey: KEY,
    keyHeader: opts.azure ? 'api-key' : 'bearer',
    userAgent: 'describe-image/test',
    timeoutMs: opts.timeoutMs ?? 10_000,
    retry: { retries: 0, maxWaitMs: 60_000 },
  });
}

export function redactor(): Redactor {
  const r = new Redactor();
  r.add(KEY);
  return r;
}

/** A flow context on the stand-in, with waits that take no time. */
export function flow(
  server: BatchServer,
  root: string,
  opts: { timeoutMs?: number; azure?: boolean } = {},
): FlowContext & { api: ApiClient } {
  const api = client(server.baseUrl, opts);
  return {
    api,
    files: new Files(api),
    batches: new Batches(api),
    store: new JobStore(root, redactor()),
    sleep: () => Promise.resolve(),
  };
}

/** Distinct bytes for image `i` (the stand-in does not decode images). */
export function imageBytes(i: number, size = 64): Uint8Array {
  const out = Buffer.alloc(size);
  out.write(`image-${i}-`, 'latin1');
  for (let at = 12; at < size; at++) out[at] = (at * 31 + i) & 0xff;
  return out;
}

/** The stand-in's default answer names the sha256 of the image's data URL: this one. */
export function imageHash(i: number, size = 64): string {
  const url = `data:image/png;base64,${Buffer.from(imageBytes(i, size)).toString('base64')}`;
  return createHash('sha256').update(url).digest('hex').slice(0, 12);
}

/** `count` images as a run would prepare them: synchronous bodies, streamed, with usage. */
// eslint-disable-next-line @typescript-eslint/require-await -- async like the run's own preparation
export async function* inputs(
  count: number,
  opts: { model?: string; size?: number; from?: number } = {},
): AsyncGenerator<JobInput> {
  for (let i = opts.from ?? 0; i < (opts.from ?? 0) + count; i++) {
    yield {
      index: i,
      image: {
        image: `photos/img-${i}.png`,
        path: `/data/photos/img-${i}.png`,
        key: `/data/photos/img-${i}.png`,
      },
      payload: buildChatRequest({
        model: opts.model ?? 'gpt-4o-mini',
        prompt: 'What is in this image?',
        images: [{ mime: 'image/png', data: imageBytes(i, opts.size) }],
        detail: 'low',
        maxTokens: 300,
        stream: true,
        includeUsage: true,
      }),
    };
  }
}
