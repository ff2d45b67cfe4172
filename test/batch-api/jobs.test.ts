/**
 * Job records on disk, where a batch engine is for each provider, and the pure parts of
 * waiting (poll delays, progress).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { Redactor } from '../../src/output/guard.js';
import { PROVIDERS } from '../../src/providers.js';
import { newJobRecord } from '../../src/batch-api/build.js';
import {
  isFinished,
  isJobId,
  JobStore,
  newJobId,
  settingsKey,
  stateDir,
  type JobRecord,
} from '../../src/batch-api/jobs.js';
import { customIdFor, jobOfCustomId, mapPathFor } from '../../src/batch-api/mapping.js';
import {
  AZURE_LIMITS,
  azureBatchBase,
  batchTarget,
  GROQ_LIMITS,
  OPENAI_LIMITS,
  withOverrides,
} from '../../src/batch-api/targets.js';
import { jobProgress, pollDelayMs } from '../../src/batch-api/wait.js';
import { fixtures } from './helpers.js';

const { tempDir } = fixtures();

function record(id: string, createdAt = Date.UTC(2026, 2, 21, 14, 22, 33)): JobRecord {
  return newJobRecord({
    id,
    kind: 'api',
    createdAt,
    provider: 'openai',
    target: {
      baseUrl: 'https://api.openai.com/v1',
      lineUrl: '/v1/chat/completions',
      endpoint: '/v1/chat/completions',
    },
    model: 'gpt-4o-mini',
    settings: { prompt: 'p', detail: 'low' },
    output: { output: '/tmp/out.jsonl' },
    map: '/tmp/map.jsonl',
    shards: [
      {
        n: 1,
        path: '/tmp/s1.jsonl',
        idsPath: '/tmp/s1.ids',
        model: 'gpt-4o-mini',
        requests: 100,
        bytes: 1000,
      },
      {
        n: 2,
        path: '/tmp/s2.jsonl',
        idsPath: '/tmp/s2.ids',
        model: 'gpt-4o-mini',
        requests: 50,
        bytes: 500,
      },
    ],
    total: 150,
  });
}

describe('job ids and the state folder', () => {
  it('are dated, short, and checked', () => {
    const id = newJobId(Date.UTC(2026, 2, 21, 14, 22, 33), Buffer.from([0x7f, 0x3a]));
    expect(id).toBe('20260321-142233-7f3a');
    expect(isJobId(id)).toBe(true);
    expect(isJobId('../etc/passwd')).toBe(false);
    expect(customIdFor(id, 41)).toBe('20260321-142233-7f3a-41');
    expect(jobOfCustomId('20260321-142233-7f3a-41')).toBe(id);
    expect(mapPathFor('out/requests.jsonl')).toBe('out/requests.map.jsonl');
  });

  it('follow XDG_STATE_HOME, else ~/.local/state', () => {
    expect(stateDir({ XDG_STATE_HOME: '/x/state' }, '/home/u')).toBe('/x/state/describe-image');
    expect(stateDir({ XDG_STATE_HOME: 'relative' }, '/home/u')).toBe(
      '/home/u/.local/state/describe-image',
    );
    expect(stateDir({}, '/home/u')).toBe('/home/u/.local/state/describe-image');
  });

  it('settings keys ignore key order and undefined values', () => {
    expect(settingsKey({ a: 1, b: { c: 2, d: undefined } })).toBe(
      settingsKey({ b: { c: 2 }, a: 1 }),
    );
    expect(settingsKey({ a: 1 })).not.toBe(settingsKey({ a: 2 }));
  });
});

describe('the job store', () => {
  it('saves, reads, lists and updates records, readable by the user only', async () => {
    const root = tempDir();
    const store = new JobStore(root, new Redactor());
    const a = record('20260321-142233-7f3a');
    const b = record('20260320-101010-0001', Date.UTC(2026, 2, 20));
    await store.save(a);
    await store.save(b);
    const file = path.join(root, 'jobs', `${a.id}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(root, 'jobs')).mode & 0o777).toBe(0o700);
    expect(await store.read(a.id)).toEqual(a);
    expect((await store.list()).map((j) => j.id)).toEqual([b.id, a.id]);
    const updated = await store.update(a.id, (r) => {
      r.shards[0]!.batchId = 'batch_1';
    });
    expect(updated.shards[0]!.batchId).toBe('batch_1');
    expect((await store.read(a.id)).shards[0]!.batchId).toBe('batch_1');
    expect(statSync(await store.jobDir(a.id)).mode & 0o777).toBe(0o700);
  });

  it('says which job is missing and where it looked', async () => {
    const root = tempDir();
    const store = new JobStore(root, new Redactor());
    await expect(store.read('20260101-000000-0000')).rejects.toThrow(
      new UsageError(`no job 20260101-000000-0000 in ${path.join(root, 'jobs')} (see --jobs)`),
    );
    await expect(store.read('nope')).rejects.toThrow('nope: not a job id (see --jobs)');
    expect(await store.list()).toEqual([]);
  });

  it('skips records it cannot read when listing', async () => {
    const root = tempDir();
    const store = new JobStore(root, new Redactor());
    await store.save(record('20260321-142233-7f3a'));
    writeFileSync(path.join(root, 'jobs', '20260321-142233-0000.json'), '{torn');
    expect((await store.list()).map((j) => j.id)).toEqual(['20260321-142233-7f3a']);
    await expect(store.read('20260321-142233-0000')).rejects.toThrow(
      /not a describe-image job record/,
    );
  });

  it('writes the base URL in its displayed form, never a secret in it', async () => {
    const root = tempDir();
    const redactor = new Redactor();
    const store = new JobStore(root, redactor);
    const r = record('20260321-142233-7f3a');
    r.baseUrl = 'https://user:pa55word@gw.example.com/v1?key=abcdef123';
    await store.save(r);
    const text = readFileSync(path.join(root, 'jobs', `${r.id}.json`), 'utf8');
    expect(text).not.toMatch(/pa55word|abcdef123/);
    expect(JSON.parse(text).baseUrl).toBe('https://***:***@gw.example.com/v1?key=***');
  });
});

describe('progress and polling', () => {
  it('waits from the minimum up to a minute, Azure never below 60 s', () => {
    expect([0, 1, 2, 3, 10].map((n) => pollDelayMs(n, 3000))).toEqual([
      3000, 4500, 6750, 10125, 60000,
    ]);
    expect(pollDelayMs(0, 60_000)).toBe(60_000);
    expect(pollDelayMs(20, 60_000)).toBe(60_000);
  });

  it('sums counts over shards and names the slowest status', () => {
    const job = record('20260321-142233-7f3a');
    job.shards[0]!.status = 'in_progress';
    job.shards[0]!.counts = { total: 100, completed: 40, failed: 2 };
    job.shards[1]!.status = 'validating';
    const now = Date.parse(job.createdAt) + 90_000;
    expect(jobProgress(job, now)).toEqual({
      status: 'validating',
      completed: 40,
      failed: 2,
      total: 150,
      elapsedMs: 90_000,
      shardsDone: 0,
      shards: 2,
    });
    job.shards[1]!.status = 'completed';
    job.shards[1]!.counts = { total: 50, completed: 50, failed: 0 };
    expect(jobProgress(job, now)).toMatchObject({
      status: 'in_progress',
      completed: 90,
      shardsDone: 1,
    });
    job.shards[0]!.status = 'expired';
    expect(isFinished(job)).toBe(true);
    expect(jobProgress(job, now).status).toBe('finished');
  });
});

describe('batch targets', () => {
  it('OpenAI and any other server: the OpenAI paths and limits', () => {
    expect(batchTarget(PROVIDERS.openai, 'https://api.openai.com/v1/')).toEqual({
      baseUrl: 'https://api.openai.com/v1',
      query: {},
      lineUrl: '/v1/chat/completions',
      endpoint: '/v1/chat/completions',
      limits: OPENAI_LIMITS,
      minPollMs: 3000,
      label: 'OpenAI',
      priceFactor: 0.5,
    });
    expect(batchTarget(PROVIDERS.maxtoken, 'http://127.0.0.1:9/v1').limits).toEqual(OPENAI_LIMITS);
    expect(batchTarget(PROVIDERS.vllm, 'http://localhost:8000/v1').baseUrl).toBe(
      'http://localhost:8000/v1',
    );
  });

  it('Groq: 100 MB files', () => {
    const t = batchTarget(PROVIDERS.maxtoken, 'https://api.groq.com/openai/v1');
    expect(t).toMatchObject({
      baseUrl: 'https://api.groq.com/openai/v1',
      limits: GROQ_LIMITS,
      label: 'Groq',
    });
  });

  it('Azure: the v1 paths beside the deployment, no api-version, 60 s polls', () => {
    for (const base of [
      'https://res.openai.azure.com/openai/deployments/gpt-4o-batch',
      'https://res.openai.azure.com',
      'https://res.openai.azure.com/openai',
      'https://res.openai.azure.com/openai/v1',
    ]) {
      expect(azureBatchBase(base)).toBe('https://res.openai.azure.com/openai/v1');
    }
    expect(
      batchTarget(PROVIDERS.azure, 'https://res.openai.azure.com/openai/deployments/d'),
    ).toMatchObject({
      query: {},
      endpoint: '/chat/completions',
      lineUrl: '/v1/chat/completions',
      limits: AZURE_LIMITS,
      minPollMs: 60_000,
    });
  });

  it('OpenRouter and Gemini: one line each, suggesting --batch-file', () => {
    expect(() => batchTarget(PROVIDERS.openrouter, PROVIDERS.openrouter.baseUrl)).toThrow(
      new UsageError(
        "OpenRouter's batches take only public image URLs, not local images: write the requests with --batch-file, or run without --batch-api",
      ),
    );
    expect(() => batchTarget(PROVIDERS.gemini, PROVIDERS.gemini.baseUrl)).toThrow(
      new UsageError(
        "Gemini's OpenAI-compatible API cannot upload batch files: write the requests with --batch-file, or run without --batch-api",
      ),
    );
  });

  it('--batch-max-bytes and --batch-max-requests override', () => {
    expect(withOverrides(OPENAI_LIMITS, { maxBytes: 1000 })).toEqual({
      maxBytes: 1000,
      maxRequests: 50_000,
    });
    expect(withOverrides(OPENAI_LIMITS, { maxRequests: 7 })).toEqual({
      maxBytes: 200_000_000,
      maxRequests: 7,
    });
  });
});
