/**
 * The batch engines from the command line: the built CLI spawned against the strict loopback
 * stand-in for `/files` and `/batches` (test/helpers/batch-server.ts). Each image is a distinct
 * small PNG sent byte for byte, and the stand-in answers each request with its custom_id and
 * the sha256 of the image it carried, so every answer can be traced to its image.
 *
 * Covered: the whole life of a job across processes (submit 300 images in three shards, the
 * waiting process killed, `--job ID --wait` in a new one); a create that times out after the
 * server made the batch; expiry and cancellation with `--retry-failed`; `--batch-file` then
 * `--batch-results` with vLLM's and OpenAI's output files; and each command's stdout, stderr
 * and exit code.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonLines, runCli, type CliOptions, type CliResult } from '../helpers/cli.js';
import { makeImage } from '../helpers/images.js';
import type { BatchServer } from '../helpers/batch-server.js';
import { errorHandler, startServer } from '../helpers/server.js';
import { fixtures, KEY } from '../batch-api/helpers.js';

const { tempDir, server: standIn } = fixtures();

interface Setup {
  server: BatchServer;
  /** The images' folder (the CLI runs here). */
  dir: string;
  /** `XDG_STATE_HOME` shared by every process of the test. */
  state: string;
  /** Image names in input order. */
  names: string[];
  /** Runs the CLI in `dir` against the stand-in. */
  cli: (args: string[], opts?: CliOptions) => Promise<CliResult>;
}

let colour = 0;

/** A stand-in, `count` distinct PNGs in a fresh folder, and a CLI pointed at both. */
async function setup(count: number, opts: Parameters<typeof standIn>[0] = {}): Promise<Setup> {
  const server = await standIn(opts);
  const dir = tempDir();
  const state = tempDir();
  const names = Array.from({ length: count }, (_, i) => `img-${String(i).padStart(3, '0')}.png`);
  await Promise.all(
    names.map(async (name) => {
      const n = colour++;
      const bytes = await makeImage('png', {
        width: 16,
        height: 16,
        color: `#${hex(n % 256)}${hex((n >> 8) % 256)}${hex((n * 37) % 256)}`,
      });
      await writeFile(path.join(dir, name), bytes);
    }),
  );
  const cli = (args: string[], o: CliOptions = {}): Promise<CliResult> =>
    runCli(args, {
      cwd: dir,
      timeoutMs: 60_000,
      ...o,
      env: {
        DESCRIBE_IMAGE_API_KEY: KEY,
        DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
        XDG_STATE_HOME: state,
        ...o.env,
      },
    });
  return { server, dir, state, names, cli };
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** The stand-in's answer for image `name` of job `id` at input position `index`. */
async function expectedAnswer(
  dir: string,
  name: string,
  id: string,
  index: number,
): Promise<string> {
  const bytes = await readFile(path.join(dir, name));
  const url = `data:image/png;base64,${bytes.toString('base64')}`;
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 12);
  return `answer to ${id}-${index} (image ${hash})`;
}

function jobIdIn(stderr: string): string {
  const id = /submitted job (\d{8}-\d{6}-[0-9a-f]{4})/.exec(stderr)?.[1];
  expect(id, stderr).toBeDefined();
  return id!;
}

function batchesCreated(server: BatchServer): number {
  return server.log.filter((r) => r.method === 'POST' && r.path.endsWith('/batches')).length;
}

interface Record {
  image: string;
  index: number;
  text: string | null;
  batch_id?: string;
  cost?: number;
  error?: { code: number; message: string };
}

describe('a job from submission to results', () => {
  it('submits 300 images in three shards, survives its waiting process being killed, and a new process writes every answer once, in input order', async () => {
    const { server, dir, names, cli } = await setup(300);
    let killed = false;
    const first = await cli(
      ['.', '--batch-api', '--wait', '--batch-max-requests', '100', '-o', 'alt.jsonl'],
      {
        onSpawn: (child) => {
          child.stderr?.on('data', (d: Buffer) => {
            // Waiting: the batches exist. Killed outright, as a reboot would.
            if (!killed && /waiting for it/.test(String(d))) {
              killed = true;
              child.kill('SIGKILL');
            }
          });
        },
      },
    );
    expect(first.signal, first.stderr).toBe('SIGKILL');
    const id = jobIdIn(first.stderr);
    expect(first.stderr).toMatch(new RegExp(`batch 3 of 3 submitted`));
    expect(server.batches.size).toBe(3);
    expect([...server.batches.values()].map((b) => b.lines.length)).toEqual([100, 100, 100]);
    expect(existsSync(path.join(dir, 'alt.jsonl'))).toBe(false);

    server.finish();
    // A new process, given only the job id: the output file was remembered.
    const second = await cli(['--job', id, '--wait']);
    expect(second.stderr).toMatch(
      /summary: 300 succeeded · 0 failed · 0 skipped · 0 not attempted \(of 300\)/,
    );
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe('');
    const records = jsonLines<Record>(await readFile(path.join(dir, 'alt.jsonl'), 'utf8'));
    expect(records.map((r) => r.image)).toEqual(names);
    expect(records.map((r) => r.index)).toEqual(names.map((_, i) => i));
    for (const [i, record] of records.entries()) {
      expect(record.text).toBe(await expectedAnswer(dir, names[i]!, id, i));
      expect(record.batch_id).toMatch(/^batch_/);
    }
    expect(new Set(records.map((r) => r.batch_id)).size).toBe(3);
    // --wait never submits anything again.
    expect(batchesCreated(server)).toBe(3);
    expect(server.violations).toEqual([]);
  }, 120_000);

  it('a create that times out after the server made the batch leaves exactly one batch', async () => {
    const { server, cli } = await setup(5);
    server.faults.hangCreates = 1;
    const r = await cli(['.', '--batch-api', '--timeout', '1']);
    expect(r.code, r.stderr).toBe(0);
    const id = jobIdIn(r.stderr);
    expect(r.stdout).toBe(`${id}\n`);
    expect(server.batches.size).toBe(1);
    expect(batchesCreated(server)).toBe(1);
    const [batch] = server.batches.values();
    expect(batch?.metadata).toEqual({ describe_image_job: id, describe_image_shard: '1' });
    const status = await cli(['--job', id, '--json']);
    expect(JSON.parse(status.stdout).batches).toEqual([
      expect.objectContaining({ n: 1, id: batch?.id }),
    ]);
    expect(server.violations).toEqual([]);
  });

  it('after expiry the finished answers are kept, the rest reported (exit 7), and --retry-failed submits only those', async () => {
    const { server, dir, names, cli } = await setup(10);
    const submitted = await cli(['.', '--batch-api']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    const [batch] = server.batches.values();
    server.expire(batch!.id, 6);

    const collected = await cli(['--job', id, '--wait', '--json']);
    expect(collected.code, collected.stderr).toBe(7);
    const records = jsonLines<Record>(collected.stdout);
    expect(records.map((r) => r.image)).toEqual(names);
    for (const [i, r] of records.entries()) {
      if (i < 6) expect(r.text).toBe(await expectedAnswer(dir, names[i]!, id, i));
      else
        expect(r.error).toMatchObject({
          code: 7,
          message: expect.stringMatching(/expired before this request ran/),
        });
    }
    expect(collected.stderr).toMatch(/summary: 6 succeeded · 4 failed/);
    expect(collected.stderr).toMatch(/--retry-failed submits it again/);

    const retried = await cli(['--job', id, '--retry-failed']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toBe(`${id}\n`);
    expect(server.batches.size).toBe(2);
    const again = [...server.batches.values()][1]!;
    expect(again.lines.map((l) => l.customId)).toEqual([6, 7, 8, 9].map((i) => `${id}-${i}`));
    expect(again.metadata).toEqual({ describe_image_job: id, describe_image_shard: '2' });

    server.finish();
    const all = await cli(['--job', id, '--wait', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const final = jsonLines<Record>(all.stdout);
    expect(final.map((r) => r.image)).toEqual(names);
    for (const [i, r] of final.entries()) {
      expect(r.text).toBe(await expectedAnswer(dir, names[i]!, id, i));
      expect(r.batch_id).toBe(i < 6 ? batch!.id : again.id);
    }
    expect(server.violations).toEqual([]);
  });

  it('a shard the engine refuses at validation fails each of its images with the reason (exit 6)', async () => {
    const { server, names, cli } = await setup(3, { maxFileBytes: 200 });
    const id = (await cli(['.', '--batch-api'])).stdout.trim();
    server.finish();
    const r = await cli(['--job', id, '--wait', '--json']);
    expect(r.code, r.stderr).toBe(6);
    const records = jsonLines<Record>(r.stdout);
    expect(records.map((x) => x.image)).toEqual(names);
    for (const x of records)
      expect(x.error).toMatchObject({
        code: 6,
        message: expect.stringMatching(
          new RegExp(
            `^${x.image}: its batch failed validation: The input file is \\d+ bytes; the limit is 200\\.`,
          ),
        ),
      });
    expect(r.stderr).toMatch(/summary: 0 succeeded · 3 failed/);
  });

  it('cancelling keeps the finished answers, reports the rest as not run (exit 130), and --retry-failed submits only those', async () => {
    const { server, dir, names, cli } = await setup(8, { cancelKeeps: () => 3 });
    const id = (await cli(['.', '--batch-api'])).stdout.trim();
    const cancelled = await cli(['--job', id, '--cancel']);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toBe('');
    expect(cancelled.stderr).toMatch(
      new RegExp(`cancelling job ${id} \\(1 batch\\): answers already finished are kept`),
    );
    const [batch] = server.batches.values();
    expect(batch?.status).toBe('cancelling');
    server.advance();

    const collected = await cli(['--job', id, '--wait', '--json']);
    expect(collected.code, collected.stderr).toBe(130);
    const records = jsonLines<Record>(collected.stdout);
    expect(records.map((r) => r.image)).toEqual(names.slice(0, 3));
    expect(collected.stderr).toMatch(
      /summary: 3 succeeded · 0 failed · 0 skipped · 5 not attempted \(of 8\)/,
    );
    expect(collected.stderr).toMatch(
      `5 image(s) were cancelled before they ran: describe-image --job ${id} --retry-failed`,
    );

    const retried = await cli(['--job', id, '--retry-failed']);
    expect(retried.code, retried.stderr).toBe(0);
    const again = [...server.batches.values()][1];
    expect(again?.lines.map((l) => l.customId)).toEqual([3, 4, 5, 6, 7].map((i) => `${id}-${i}`));
    server.finish();
    const all = await cli(['--job', id, '--wait', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const final = jsonLines<Record>(all.stdout);
    expect(final.map((r) => r.image)).toEqual(names);
    for (const [i, r] of final.entries())
      expect(r.text).toBe(await expectedAnswer(dir, names[i]!, id, i));
    expect(server.violations).toEqual([]);
  }, 60_000);
});

const FIXTURES = fileURLToPath(new URL('../fixtures/batch/', import.meta.url));
const FIXTURE_JOB = '20260321-142233-7f3a';

/** A recorded output file with its job id replaced by `id` (the custom_ids are JOB-INDEX). */
async function outputFor(fixture: string, id: string, target: string): Promise<string> {
  const text = await readFile(path.join(FIXTURES, fixture), 'utf8');
  await writeFile(target, text.replaceAll(FIXTURE_JOB, id));
  return target;
}

describe('--batch-file, then --batch-results', () => {
  const MODEL = 'Qwen/Qwen2.5-VL-7B-Instruct';
  const URL_IMAGE = 'https://example.com/bird.jpg';

  /** Three local images and one URL, written as requests for vllm run-batch. */
  async function written(): Promise<Setup & { id: string; requests: string; inputs: string[] }> {
    const s = await setup(3);
    const requests = path.join(s.dir, 'out', 'requests.jsonl');
    await mkdir(path.dirname(requests));
    const inputs = [...s.names, URL_IMAGE];
    const r = await s.cli([
      ...inputs,
      '--provider',
      'vllm',
      '-m',
      MODEL,
      '--no-download',
      '--batch-file',
      requests,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(`wrote 4 request(s) to ${requests}`);
    expect(r.stderr).toMatch(`vllm run-batch -i ${requests} -o results.jsonl --model ${MODEL}`);
    const map = (await readFile(path.join(s.dir, 'out', 'requests.map.jsonl'), 'utf8')).split('\n');
    const id = JSON.parse(map[0]!).job as string;
    // Nothing was sent anywhere.
    expect(s.server.log).toEqual([]);
    return { ...s, id, requests, inputs };
  }

  it('writes each request as the synchronous body without stream, then reads vllm run-batch output into results in input order', async () => {
    const s = await written();
    const lines = jsonLines<{ custom_id: string; body: any }>(await readFile(s.requests, 'utf8'));
    expect(lines.map((l) => l.custom_id)).toEqual([0, 1, 2, 3].map((i) => `${s.id}-${i}`));
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(['custom_id', 'method', 'url', 'body']);
      expect(line).toMatchObject({ method: 'POST', url: '/v1/chat/completions' });
      expect(line.body).not.toHaveProperty('stream');
      expect(line.body).not.toHaveProperty('stream_options');
    }
    // The body a synchronous run of the first image would send, images shortened as --dry-run shows them.
    const sync = await s.cli([
      s.names[0]!,
      '--provider',
      'vllm',
      '-m',
      MODEL,
      '--no-download',
      '--dry-run',
    ]);
    const { stream: _s, stream_options: _o, ...syncBody } = JSON.parse(sync.stdout);
    const shortened = JSON.parse(
      JSON.stringify(lines[0]!.body).replace(
        /"data:image\/png;base64,([^"]*)"/,
        (_all, b64: string) =>
          `"data:image/png;base64,…(${Buffer.from(b64, 'base64').length.toLocaleString('en-US')} bytes)"`,
      ),
    );
    expect(shortened).toEqual(syncBody);
    expect(lines[3]!.body.messages[0].content[1].image_url.url).toBe(URL_IMAGE);

    const results = await outputFor(
      'vllm-output.jsonl',
      s.id,
      path.join(s.dir, 'out', 'results.jsonl'),
    );
    const r = await s.cli(['--batch-results', results, '--json']);
    expect(r.code, r.stderr).toBe(6);
    const records = jsonLines<Record>(r.stdout);
    expect(records.map((x) => x.image)).toEqual(s.inputs);
    expect(records.map((x) => x.text)).toEqual([
      'A ginger cat asleep on a blue sofa.',
      null,
      null,
      'A small bird on a branch.',
    ]);
    expect(records[1]?.error).toMatchObject({
      code: 6,
      message: expect.stringMatching(/At most 1 image\(s\)/),
    });
    expect(records[2]?.error).toMatchObject({
      code: 6,
      message: expect.stringMatching(/stream mode/),
    });
    expect(r.stderr).toMatch(
      /summary: 2 succeeded · 2 failed · 0 skipped · 0 not attempted \(of 4\)/,
    );
  });

  it("reads OpenAI's output and error files, finding the map beside them with no job record", async () => {
    const s = await written();
    const out = path.join(s.dir, 'out');
    const files = [
      await outputFor('openai-output.jsonl', s.id, path.join(out, 'output.jsonl')),
      await outputFor('openai-errors.jsonl', s.id, path.join(out, 'errors.jsonl')),
    ];
    // Another machine: no job records, only the files.
    const r = await s.cli(['--batch-results', ...files, '-o', 'captions.jsonl'], {
      env: { XDG_STATE_HOME: tempDir() },
    });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stdout).toBe('');
    const records = jsonLines<Record>(await readFile(path.join(s.dir, 'captions.jsonl'), 'utf8'));
    expect(records.map((x) => x.image)).toEqual(s.inputs);
    expect(records[0]?.text).toBe('A ginger cat asleep on a blue sofa.');
    expect(records[1]?.text).toBe('A brown dog running on a beach.');
    expect(records[2]?.error?.code).toBe(6);
    expect(records[3]?.error).toMatchObject({ code: 7, message: expect.stringMatching(/expired/) });
  });

  it('says which map is missing when the results belong to no known job', async () => {
    const s = await setup(0);
    const results = await outputFor(
      'vllm-output.jsonl',
      FIXTURE_JOB,
      path.join(s.dir, 'results.jsonl'),
    );
    const r = await s.cli(['--batch-results', results]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `describe-image: error: --batch-results: cannot tell which images these results belong to (job ${FIXTURE_JOB}); add the .map.jsonl file --batch-file wrote to the files\n`,
    );
  });
});

describe('what each command prints, and when it refuses', () => {
  it('--batch-api prints the job id alone on stdout and how to collect on stderr; --jobs and --job ID show it', async () => {
    const { server, cli } = await setup(3);
    const r = await cli(['.', '--batch-api', '-o', 'alt.jsonl']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(r.stdout).toBe(`${id}\n`);
    expect(r.stderr).toMatch(
      `submitted job ${id}: 3 images in 1 batch (maxtoken.io, ${server.baseUrl}); collect the results with: describe-image --job ${id} --wait`,
    );

    const list = await cli(['--jobs']);
    expect(list.code).toBe(0);
    expect(list.stderr).toBe('');
    const rows = list.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^JOB +STATUS +DONE +FAILED +AGE +COST +MODEL$/);
    expect(rows[1]).toMatch(new RegExp(`^${id} +validating +0/3 +0 +\\S+ +- +maxtoken gpt-`));
    const json = jsonLines<any>((await cli(['--jobs', '--json'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({
        id,
        kind: 'api',
        status: 'validating',
        total: 3,
        completed: 0,
        batches: 1,
      }),
    ]);

    server.finish();
    const one = await cli(['--job', id]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(
      new RegExp(`^job ${id}: completed · 3/3 done · 1/1 batch finished · `),
    );
    expect(one.stdout).toMatch(/\n {2}batch 1: batch_\d+ · completed · 3 requests · 3\/3 done\n$/);
    expect(one.stderr).toMatch(
      `finished: write the results with describe-image --job ${id} --wait`,
    );
    expect(JSON.parse((await cli(['--job', id, '--json'])).stdout)).toMatchObject({
      id,
      status: 'completed',
      completed: 3,
      output: expect.stringMatching(/alt\.jsonl$/),
    });
    // Cost so far, from the tokens the provider reported, at half gpt-4o's $2.50/$10 per million.
    const [job] = jsonLines<any>((await cli(['--jobs', '--json'])).stdout);
    expect(job.cost).toBeCloseTo(((300 * 2.5 + 30 * 10) / 1e6) * 0.5, 9);
    expect((await cli(['--jobs'])).stdout).toMatch(
      new RegExp(`^${id} +completed +3/3 +0 +\\S+ +~\\$0\\.0005 +`, 'm'),
    );
  });

  it('--jobs with no job prints nothing on stdout', async () => {
    const { cli } = await setup(0);
    const r = await cli(['--jobs']);
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(r.stderr).toMatch(/^no batch jobs in \S+\n$/);
  });

  it.each([
    [['--wait'], '--wait goes with --batch-api or --job ID'],
    [['--cancel', '--batch-api', '.'], '--cancel goes with --job ID'],
    [['--retry-failed'], '--retry-failed goes with --job ID'],
    [['--jobs', '--batch-api', '.'], 'give one of --batch-api, --jobs, not several'],
    [
      ['--job', '20260321-142233-7f3a', 'img-000.png'],
      '--job takes no images: the job names its own',
    ],
    [
      ['--job', '20260321-142233-7f3a', '--cancel', '--wait'],
      '--cancel cannot be combined with --wait',
    ],
    [
      ['.', '--batch-api', '--together'],
      '--together sends one request; it cannot be used with --batch-api',
    ],
    [
      ['.', '--batch-max-bytes', '1000'],
      '--batch-max-bytes goes with --batch-api, --batch-file or --job ID --retry-failed',
    ],
    [
      ['--jobs', '--batch-max-requests', '10'],
      '--batch-max-requests goes with --batch-api, --batch-file or --job ID --retry-failed',
    ],
    [
      ['--batch-results', 'x.jsonl', '--dry-run'],
      '--dry-run goes with --batch-api, not --batch-results',
    ],
    [
      ['.', '--batch-file', 'r.jsonl', '--wait'],
      '--batch-file sends nothing: there is nothing to --wait for',
    ],
    [['--job', 'nonsense'], 'nonsense: not a job id (see --jobs)'],
    [
      ['.', '--batch-api', '--resume'],
      '--resume needs --output FILE (the file to resume from), or write-back (--write-metadata, --xmp-sidecar)',
    ],
  ])('%j is a usage error before any request', async (args, message) => {
    const { server, cli } = await setup(1);
    const r = await cli(args);
    expect(r.stderr).toBe(`describe-image: error: ${message}\n`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(server.log).toEqual([]);
  });

  it('a job id with no record is a usage error naming where records live', async () => {
    const { state, cli } = await setup(0);
    const r = await cli(['--job', '20260321-142233-7f3a', '--wait']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `describe-image: error: no job 20260321-142233-7f3a in ${path.join(state, 'describe-image', 'jobs')} (see --jobs)\n`,
    );
  });

  it.each([
    ['openrouter', "OpenRouter's batches take only public image URLs"],
    ['gemini', "Gemini's OpenAI-compatible API cannot upload batch files"],
  ])(
    '%s cannot take local images in a batch: one line, suggesting --batch-file',
    async (provider, why) => {
      const { server, cli } = await setup(1);
      const r = await cli(['.', '--batch-api', '--provider', provider]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `describe-image: error: ${why}${provider === 'gemini' ? '' : ', not local images'}: write the requests with --batch-file, or run without --batch-api\n`,
      );
      expect(server.log).toEqual([]);
    },
  );

  it('a server without /files and /batches has no batch engine: one line, exit 6, no job left', async () => {
    const { dir, state } = await setup(0);
    await writeFile(path.join(dir, 'a.png'), await makeImage('png', { width: 16, height: 16 }));
    // vLLM's server (FastAPI) answers a path it does not serve so.
    const chat = await startServer(errorHandler(404, { detail: 'Not Found' }));
    try {
      const r = await runCli(['a.png', '--batch-api'], {
        cwd: dir,
        env: {
          DESCRIBE_IMAGE_API_KEY: KEY,
          DESCRIBE_IMAGE_BASE_URL: chat.baseUrl,
          XDG_STATE_HOME: state,
        },
      });
      expect(r.code).toBe(6);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        expect.stringMatching(
          /^describe-image: error: 127\.0\.0\.1:\d+ has no batch engine \(HTTP 404 on POST \/files\).*\(write the requests with --batch-file \(for vllm run-batch or an upload by hand\), or run without --batch-api\)/,
        ),
      ]);
      expect(chat.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['POST /v1/files']);
      expect(await readdir(path.join(state, 'describe-image', 'jobs'))).toEqual([]);
    } finally {
      await chat.close();
    }
  });

  it('--dry-run --batch-api sends nothing and shows the shards and the cost at the batch price beside the synchronous one', async () => {
    const { server, cli, names } = await setup(5);
    const r = await cli([
      '.',
      '--batch-api',
      '--dry-run',
      '--provider',
      'openai',
      '-m',
      'gpt-4o',
      '--batch-max-requests',
      '2',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines<any>(r.stdout);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o' },
    });
    expect(r.stderr).toMatch(
      /batch file 1: 2 requests, 0\.0 MB, gpt-4o\nbatch file 2: 2 requests, 0\.0 MB, gpt-4o\nbatch file 3: 1 request, 0\.0 MB, gpt-4o\n/,
    );
    const cost =
      /estimated input cost for the images ~\$([\d.]+) at the batch price \(~\$([\d.]+) synchronous\)/.exec(
        r.stderr,
      );
    expect(cost, r.stderr).not.toBeNull();
    expect(Number(cost![1]) * 2).toBeCloseTo(Number(cost![2]), 4);
    expect(r.stderr).toMatch(`dry run: ${names.length} requests in 3 batch files, not sent`);
    expect(server.log).toEqual([]);
  });

  it('leaves out images already in an unfinished job with the same settings (naming the job), and those --resume finds in -o', async () => {
    const { server, dir, names, cli } = await setup(4);
    const first = (await cli([...names.slice(0, 2), '--batch-api'])).stdout.trim();
    const second = await cli(['.', '--batch-api']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(
      `skipped 2 image(s) already in job ${first} (same settings); collect it with describe-image --job ${first} --wait`,
    );
    expect([...server.batches.values()][1]?.lines.map((l) => l.customId)).toEqual(
      [2, 3].map((i) => `${second.stdout.trim()}-${i}`),
    );
    // Another prompt is another question: nothing left out.
    await cli(['.', '--batch-api', '-p', 'What colour is it?']);
    expect([...server.batches.values()][2]?.lines).toHaveLength(4);

    await writeFile(
      path.join(dir, 'done.jsonl'),
      `${JSON.stringify({ image: names[3], index: 3, text: 'done before' })}\n`,
    );
    const resumed = await cli([
      '.',
      '--batch-api',
      '-p',
      'Is it blue?',
      '-o',
      'done.jsonl',
      '--resume',
    ]);
    expect(resumed.stderr).toMatch('skipped 1 image(s) already done (answered in done.jsonl)');
    expect([...server.batches.values()][3]?.lines).toHaveLength(3);
  });

  it('output options given when collecting win over those given at submission', async () => {
    const { server, dir, cli } = await setup(2);
    const id = (await cli(['.', '--batch-api', '-o', 'first.jsonl'])).stdout.trim();
    server.finish();
    const r = await cli(['--job', id, '--wait', '-o', 'second.jsonl']);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(await readFile(path.join(dir, 'second.jsonl'), 'utf8'))).toHaveLength(2);
    expect(existsSync(path.join(dir, 'first.jsonl'))).toBe(false);
  });

  it('Ctrl-C while waiting stops the waiting, cancels nothing, and says how to pick it up again', async () => {
    const { server, cli } = await setup(2);
    const id = (await cli(['.', '--batch-api'])).stdout.trim();
    let sent = false;
    const r = await cli(['--job', id, '--wait'], {
      onSpawn: (child) => {
        child.stderr?.on('data', (d: Buffer) => {
          if (!sent && String(d).includes(`job ${id}: validating`)) {
            sent = true;
            child.kill('SIGINT');
          }
        });
      },
    });
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      `stopped waiting; job ${id} goes on at the provider: collect it with describe-image --job ${id} --wait\n`,
    );
    expect(server.log.filter((q) => q.path.endsWith('/cancel'))).toEqual([]);
    expect([...server.batches.values()][0]?.status).toBe('validating');
  });

  it('--batch-api --wait writes the results in the same process; an image that cannot be prepared is reported once, in its place', async () => {
    const { server, dir, names, cli } = await setup(3);
    await writeFile(path.join(dir, names[1]!), 'not an image');
    let finished = false;
    const r = await cli(['.', '--batch-api', '--wait', '--json'], {
      onSpawn: (child) => {
        child.stderr?.on('data', (d: Buffer) => {
          if (!finished && /waiting for it/.test(String(d))) {
            finished = true;
            server.finish();
          }
        });
      },
    });
    expect(r.code, r.stderr).toBe(3);
    const id = jobIdIn(r.stderr);
    const records = jsonLines<Record>(r.stdout);
    expect(records.map((x) => x.image)).toEqual(names);
    expect(records[0]?.text).toBe(await expectedAnswer(dir, names[0]!, id, 0));
    expect(records[1]?.error).toMatchObject({ code: 3, message: expect.stringMatching(names[1]!) });
    expect(records[2]?.text).toBe(await expectedAnswer(dir, names[2]!, id, 2));
    expect(r.stderr.match(/^describe-image: error: .*$/gm)).toEqual([
      expect.stringMatching(`describe-image: error: ${names[1]!}`),
    ]);
    expect(r.stderr).toMatch(
      /summary: 2 succeeded · 1 failed · 0 skipped · 0 not attempted \(of 3\)/,
    );
    expect(r.stderr).toMatch(/costs are at the batch price \(50 % of the list price\)/);
    expect([...server.batches.values()][0]?.lines).toHaveLength(2);
  }, 60_000);

  it('structured answers are checked against the schema the job was submitted with; --retry-failed asks again for those that fail it', async () => {
    const { server, names, cli } = await setup(3, {
      answer: (_body, customId) => ({
        text: JSON.stringify({
          alt_text: customId.endsWith('-1') ? 'x'.repeat(200) : `alt for ${customId}`,
        }),
      }),
    });
    const id = (await cli(['.', '--batch-api', '--preset', 'alt-text'])).stdout.trim();
    const [batch] = server.batches.values();
    expect(batch?.lines[0]?.body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: expect.any(String), strict: true },
    });
    server.finish();
    const r = await cli(['--job', id, '--wait', '--json']);
    expect(r.code, r.stderr).toBe(6);
    const records = jsonLines<Record>(r.stdout);
    expect(records.map((x) => x.image)).toEqual(names);
    expect(records.map((x) => x.text)).toEqual([`alt for ${id}-0`, null, `alt for ${id}-2`]);
    expect(records[1]?.error).toMatchObject({
      code: 6,
      message: expect.stringMatching(/does not match the schema/),
    });
    await cli(['--job', id, '--retry-failed']);
    expect([...server.batches.values()][1]?.lines.map((l) => l.customId)).toEqual([`${id}-1`]);
  });
});

describe('the answer cache', () => {
  /** A setup whose processes share one answer cache. */
  async function cached(count: number): Promise<Setup & { cache: string }> {
    const s = await setup(count);
    const cache = tempDir();
    return {
      ...s,
      cache,
      cli: (args, o = {}) => s.cli(args, { ...o, env: { XDG_CACHE_HOME: cache, ...o.env } }),
    };
  }

  it("fills the cache with a batch's answers: a synchronous run of the same images then asks nothing", async () => {
    const { server, dir, names, cli } = await cached(3);
    const id = (await cli(['.', '--batch-api'])).stdout.trim();
    server.finish();
    expect((await cli(['--job', id, '--wait'])).code).toBe(0);
    const before = server.log.length;
    // The stand-in has no /chat/completions: any request would fail the run.
    const sync = await cli(['.', '--json']);
    expect(sync.code, sync.stderr).toBe(0);
    // --json writes each record as its image finishes: matched by image, not by line.
    const records = jsonLines<Record & { cached?: boolean }>(sync.stdout);
    expect(records.map((r) => r.image).sort()).toEqual([...names].sort());
    for (const r of records) {
      const i = names.indexOf(r.image);
      expect(r.text).toBe(await expectedAnswer(dir, r.image, id, i));
      expect(r.cached).toBe(true);
    }
    expect(server.log.length).toBe(before);
  });

  it('--batch-api sends only the images whose answer is not in the cache, and writes the others from it in their place', async () => {
    const { server, dir, names, cli } = await cached(4);
    const first = (await cli([...names.slice(1, 3), '--batch-api'])).stdout.trim();
    server.finish();
    await cli(['--job', first, '--wait']);

    const r = await cli(['.', '--batch-api', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch('2 image(s) answered from the cache: not sent');
    const id = r.stdout.trim();
    const batch = [...server.batches.values()][1];
    expect(batch?.lines.map((l) => l.customId)).toEqual([`${id}-0`, `${id}-3`]);
    server.finish();
    const all = await cli(['--job', id, '--wait', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const records = jsonLines<Record & { cached?: boolean }>(all.stdout);
    expect(records.map((x) => x.image)).toEqual(names);
    expect(records.map((x) => x.cached ?? false)).toEqual([false, true, true, false]);
    expect(records.map((x) => (x.cached ? x.cost : x.batch_id))).toEqual([
      batch?.id,
      0,
      0,
      batch?.id,
    ]);
    for (const [i, x] of records.entries()) {
      const job = i === 1 || i === 2 ? first : id;
      expect(x.text).toBe(
        await expectedAnswer(dir, names[i]!, job, i === 1 || i === 2 ? i - 1 : i),
      );
    }
    expect(all.stderr).toMatch('cache: 2 answers from the cache, no request made');
  });

  it('identical images in one submission are asked once, and each gets the answer', async () => {
    const { server, dir, names, cli } = await cached(3);
    // img-002.png becomes a copy of img-000.png: the same bytes under another name.
    await writeFile(path.join(dir, names[2]!), await readFile(path.join(dir, names[0]!)));
    const r = await cli(['.', '--batch-api', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch('1 image(s) identical to an earlier one: asked once');
    const id = r.stdout.trim();
    const batch = [...server.batches.values()][0];
    expect(batch?.lines.map((l) => l.customId)).toEqual([`${id}-0`, `${id}-1`]);
    server.finish();
    const all = await cli(['--job', id, '--wait', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const records = jsonLines<Record & { cached?: boolean }>(all.stdout);
    expect(records.map((x) => x.image)).toEqual(names);
    const first = await expectedAnswer(dir, names[0]!, id, 0);
    expect(records.map((x) => x.text)).toEqual([
      first,
      await expectedAnswer(dir, names[1]!, id, 1),
      first,
    ]);
    expect(records.map((x) => x.cached ?? false)).toEqual([false, false, true]);
  });

  it('a job whose every image is in the cache sends nothing and writes the answers at once', async () => {
    const { server, cli } = await cached(2);
    const first = (await cli(['.', '--batch-api'])).stdout.trim();
    server.finish();
    await cli(['--job', first, '--wait']);
    const batches = server.batches.size;
    const r = await cli(['.', '--batch-api', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/every image was answered from the cache; nothing was sent/);
    expect(jsonLines<Record & { cached?: boolean }>(r.stdout).map((x) => x.cached)).toEqual([
      true,
      true,
    ]);
    expect(server.batches.size).toBe(batches);
  });

  it('--no-cache sends every image and stores nothing; --cache-only cannot submit', async () => {
    const { server, cli } = await cached(2);
    const first = (await cli(['.', '--batch-api'])).stdout.trim();
    server.finish();
    await cli(['--job', first, '--wait']);
    const again = (
      await cli(['.', '--batch-api', '--no-cache', '-p', 'Another question?'])
    ).stdout.trim();
    expect([...server.batches.values()].at(-1)?.lines).toHaveLength(2);
    server.finish();
    await cli(['--job', again, '--wait', '--no-cache']);
    const third = await cli(['.', '--batch-api', '-p', 'Another question?']);
    expect(third.stderr).not.toMatch(/from the cache/);
    const only = await cli(['.', '--batch-api', '--cache-only']);
    expect(only.code).toBe(2);
    expect(only.stderr).toBe(
      'describe-image: error: --cache-only asks nothing; it cannot be used with --batch-api\n',
    );
  });
});

describe('write-back', () => {
  it('--batch-api --xmp-sidecar remembers write-back in the job: --job ID --wait in a later process writes each sidecar', async () => {
    const { server, dir, names, cli } = await setup(2);
    const r = await cli(['.', '--batch-api', '--xmp-sidecar']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    server.finish();
    // Collected with no write-back option given: the job's own is used.
    const collected = await cli(['--job', id, '--wait', '--json']);
    expect(collected.code, collected.stderr).toBe(0);
    const records = jsonLines<Record & { metadata?: { file: string; status: string } }>(
      collected.stdout,
    );
    for (const [i, name] of names.entries()) {
      expect(records[i]?.metadata).toEqual({
        file: path.join(dir, `${name}.xmp`),
        status: 'written',
      });
      const xmp = await readFile(path.join(dir, `${name}.xmp`), 'utf8');
      expect(xmp).toContain(await expectedAnswer(dir, name, id, i));
    }
    expect(collected.stderr).toMatch(/metadata: 2 /);
  });

  it.each(['--skip-existing', '--resume'])(
    '%s at submission leaves out the photos already written',
    async (option) => {
      const { server, dir, names, cli } = await setup(3);
      const first = (await cli([names[0]!, '--batch-api', '--xmp-sidecar'])).stdout.trim();
      server.finish();
      expect((await cli(['--job', first, '--wait'])).code).toBe(0);
      expect(existsSync(path.join(dir, `${names[0]!}.xmp`))).toBe(true);
      const r = await cli(['.', '--batch-api', '--xmp-sidecar', option]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch('skipped 1 image(s) already done (saved)');
      const id = r.stdout.trim();
      const batch = [...server.batches.values()][1];
      expect(batch?.lines.map((l) => l.customId)).toEqual([`${id}-1`, `${id}-2`]);
    },
  );
});

describe('providers', () => {
  it("Azure OpenAI: the v1 paths without api-version, the api-key header, and the deployment as every line's model", async () => {
    const { server, dir, names, cli } = await setup(3, { azure: true });
    const env = {
      DESCRIBE_IMAGE_BASE_URL: undefined,
      DESCRIBE_IMAGE_API_KEY: undefined,
      AZURE_OPENAI_ENDPOINT: server.origin,
      AZURE_OPENAI_API_KEY: KEY,
    };
    const r = await cli(['.', '--batch-api', '--provider', 'azure', '-m', 'gpt-4o-batch'], { env });
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(r.stderr).toMatch(`(Azure OpenAI, ${server.origin}/openai/v1)`);
    const [batch] = server.batches.values();
    expect(batch?.endpoint).toBe('/chat/completions');
    expect(batch?.lines.map((l) => l.body.model as string)).toEqual([
      'gpt-4o-batch',
      'gpt-4o-batch',
      'gpt-4o-batch',
    ]);
    expect(new Set(server.log.map((q) => q.path.split('/').slice(0, 4).join('/')))).toEqual(
      new Set(['/openai/v1/files', '/openai/v1/batches']),
    );
    server.finish();
    const all = await cli(
      ['--job', id, '--wait', '--json', '--provider', 'azure', '-m', 'gpt-4o-batch'],
      { env },
    );
    expect(all.code, all.stderr).toBe(0);
    const records = jsonLines<Record>(all.stdout);
    for (const [i, x] of records.entries())
      expect(x.text).toBe(await expectedAnswer(dir, names[i]!, id, i));
    // Collected through another server: refused before anything is asked of it.
    const before = server.log.length;
    const other = await cli(['--job', id, '--wait']);
    expect(other.stderr).toBe(
      `describe-image: error: job ${id} was submitted to ${server.origin}/openai/v1 (azure), and this run goes to ${server.baseUrl} (maxtoken): run with the same --provider, --profile or --base-url\n`,
    );
    expect(other.code).toBe(2);
    expect(server.log.length).toBe(before);
    expect(server.violations).toEqual([]);
  });
});
