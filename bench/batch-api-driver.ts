/**
 * Benchmark driver for the batch engines (bench/batch-api.mjs bundles it with esbuild and runs
 * each mode in its own process, so that /usr/bin/time measures one thing):
 *
 *   serve                        the loopback batch stand-in; prints its base URL over IPC
 *   shard BYTES DIR BASE_URL     builds one shard of about BYTES from large images, uploads it
 *                                 to the stand-in and creates its batch
 *
 * `shard` prints one JSON line on stdout: what it did and how long it took. The stand-in and its
 * schemas are loaded only by `serve`, so that `shard`'s peak RSS is the engine's own.
 */
import path from 'node:path';
import { Batches } from '../src/api/batches.js';
import { ApiClient } from '../src/api/client.js';
import { Files } from '../src/api/files.js';
import { buildChatRequest } from '../src/api/request.js';
import { Redactor } from '../src/output/guard.js';
import {
  jobShardPath,
  newJobRecord,
  writeJobFiles,
  type JobInput,
} from '../src/batch-api/build.js';
import { JobStore, newJobId } from '../src/batch-api/jobs.js';
import { submitJob } from '../src/batch-api/submit.js';
import { OPENAI_LIMITS } from '../src/batch-api/targets.js';

const [mode, first = '', second = '', third = ''] = process.argv.slice(2);
const redactor = new Redactor();
const LINE_URL = '/v1/chat/completions';

/** Incompressible image bytes (the stand-in does not decode them), distinct per request. */
function noise(size: number, seed: number): Uint8Array {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.writeUInt32LE(x, Math.min(i, size - 4));
  }
  return out;
}

async function shard(target: number, dir: string, baseUrl: string): Promise<void> {
  const imageBytes = 1_400_000;
  const perLine = Math.ceil((imageBytes * 4) / 3) + 400;
  const count = Math.floor(target / perLine);
  // Eight images, taken in turn: the memory measured is the writer's and the uploader's, not
  // the benchmark's own image generator's.
  const pool = Array.from({ length: 8 }, (_, i) => noise(imageBytes, i));
  async function* inputs(): AsyncGenerator<JobInput> {
    for (let index = 0; index < count; index++) {
      yield {
        index,
        image: { image: `img-${index}.png` },
        payload: buildChatRequest({
          model: 'gpt-4o-mini',
          prompt: 'What is in this image?',
          images: [{ mime: 'image/png', data: pool[index % pool.length] ?? new Uint8Array() }],
          stream: true,
          includeUsage: true,
        }),
      };
      await Promise.resolve();
    }
  }
  const t0 = performance.now();
  const id = newJobId(Date.now());
  const store = new JobStore(dir, redactor);
  const jobDir = await store.jobDir(id);
  const { shards, written } = await writeJobFiles(inputs(), {
    jobId: id,
    lineUrl: LINE_URL,
    limits: OPENAI_LIMITS,
    redactor,
    pathFor: (n) => jobShardPath(jobDir, n),
    mapPath: path.join(jobDir, 'map.jsonl'),
    writeIds: true,
  });
  const built = (performance.now() - t0) / 1000;
  const job = newJobRecord({
    id,
    kind: 'api',
    createdAt: Date.now(),
    provider: 'openai',
    target: { baseUrl, lineUrl: LINE_URL, endpoint: LINE_URL },
    model: 'gpt-4o-mini',
    settings: {},
    output: {},
    map: path.join(jobDir, 'map.jsonl'),
    shards,
    total: written,
  });
  const api = new ApiClient({
    baseUrl,
    apiKey: 'sk-bench',
    userAgent: 'describe-image/bench',
    timeoutMs: 600_000,
    retry: { retries: 0, maxWaitMs: 60_000 },
  });
  await submitJob(job, { files: new Files(api), batches: new Batches(api), store });
  await api.close();
  report({
    mode,
    requests: written,
    shards: shards.length,
    bytes: shards.reduce((sum, s) => sum + s.bytes, 0),
    buildSeconds: built,
    seconds: (performance.now() - t0) / 1000,
    batch: job.shards[0]?.status,
  });
}

function report(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

if (mode === 'shard') await shard(Number(first), second, third);
else if (mode === 'serve') {
  const { startBatchServer } = await import('../test/helpers/batch-server.js');
  const server = await startBatchServer({ apiKey: 'sk-bench' });
  process.send?.({ baseUrl: server.baseUrl });
  process.on('disconnect', () => {
    void server.close().then(() => process.exit(0));
  });
} else {
  throw new Error(`unknown mode ${mode ?? ''}`);
}
