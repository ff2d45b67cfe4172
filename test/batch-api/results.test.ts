/**
 * Reading results: OpenAI's output and error files and vLLM's single file (written by hand
 * from the reference's line formats, see test/fixtures/README.md), joined on custom_id in
 * whatever order they come, and each request's outcome when it has no line.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseBatch } from '../../src/api/batches.js';
import { APIError, ExitCode, MalformedResponseError } from '../../src/errors.js';
import { collectFiles, resultsInOrder, type ImageResult } from '../../src/batch-api/collect.js';
import { readLines } from '../../src/batch-api/lines.js';
import { jobOfCustomId, readMap } from '../../src/batch-api/mapping.js';
import {
  outcomeOfLine,
  outcomeWithoutLine,
  parseOutputLine,
  preferOutcome,
  type Outcome,
} from '../../src/batch-api/results.js';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`../fixtures/batch/${name}`, import.meta.url));
const MAP = fixture('requests.map.jsonl');
const URL_ = '/v1/chat/completions';
const known = (id: string): boolean => jobOfCustomId(id) === '20260321-142233-7f3a';

async function collect(...files: string[]): Promise<ImageResult[]> {
  const table = await collectFiles(files.map(fixture), URL_, known);
  const out: ImageResult[] = [];
  for await (const r of resultsInOrder(MAP, table)) out.push(r);
  return out;
}

function summary(r: ImageResult): string {
  const o = r.outcome;
  if (!o) return `${r.entry.image}: none`;
  if (o.kind === 'answered') return `${r.entry.image}: ${o.completion.text}`;
  if (o.kind === 'cancelled') return `${r.entry.image}: cancelled`;
  return `${r.entry.image}: [${o.error.exitCode}${o.expired ? ' expired' : ''}] ${o.error.message}`;
}

describe('OpenAI-format results (output file + error file)', () => {
  it('joins lines in any order, keeps 4xx lines in the output file as rejections, and reads expiry from the error file', async () => {
    const all = await collect('openai-output.jsonl', 'openai-errors.jsonl');
    expect(all.map(summary)).toEqual([
      'photos/cat.jpg: A ginger cat asleep on a blue sofa.',
      'photos/dog.jpg: A brown dog running on a beach.',
      "photos/huge.png: [6] the server rejected the request (HTTP 400): This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages. [request id a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5]",
      'https://example.com/bird.jpg: [7 expired] the batch expired before this request ran: This request could not be executed before the completion window expired. (--retry-failed submits it again)',
    ]);
    const dog = all[1]!.outcome as Extract<Outcome, { kind: 'answered' }>;
    expect(dog.completion).toEqual({
      id: 'chatcmpl-AFq2bX1',
      model: 'gpt-4o-mini-2024-07-18',
      text: 'A brown dog running on a beach.',
      refusal: false,
      finishReason: 'stop',
      usage: expect.objectContaining({
        prompt_tokens: 36854,
        completion_tokens: 9,
        total_tokens: 36863,
      }),
    });
    expect(dog.requestId).toBe('8d1f0c2b7e6a5d4c3b2a190817263544');
    const huge = all[2]!.outcome as Extract<Outcome, { kind: 'failed' }>;
    const error = huge.error;
    if (!(error instanceof APIError)) throw new Error('expected an APIError');
    expect(error.status).toBe(400);
    expect(error.info.code).toBe('context_length_exceeded');
  });

  it('leaves an image without a line without an outcome', async () => {
    const all = await collect('openai-output.jsonl');
    expect(all.map((r) => r.outcome?.kind)).toEqual(['answered', 'answered', 'failed', undefined]);
  });
});

describe('vLLM-format results (one file, failures with status_code 400)', () => {
  it('reads successes and both kinds of failure line', async () => {
    const all = await collect('vllm-output.jsonl');
    expect(all.map(summary)).toEqual([
      'photos/cat.jpg: A ginger cat asleep on a blue sofa.',
      'photos/dog.jpg: [6] the server could not use the image (HTTP 400): At most 1 image(s) may be provided in one request. (check that it is a valid PNG, JPEG, WebP or GIF file) [request id vllm-batch-1a2b3c4d5e6f4a7b]',
      'photos/huge.png: [6] the server rejected the request (HTTP 400): Request must not be sent in stream mode [request id vllm-batch-9f8e7d6c5b4a4392]',
      'https://example.com/bird.jpg: A small bird on a branch.',
    ]);
  });
});

describe('lines', () => {
  it('counts lines that are not results and custom_ids from another job', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const dir = mkdtempSync(`${os.tmpdir()}/results-`);
    const file = `${dir}/out.jsonl`;
    writeFileSync(
      file,
      'not json\n{"custom_id":"19990101-000000-abcd-1","response":null,"error":{"code":"x"}}\n{"no":"id"}\n',
    );
    const table = await collectFiles([file], URL_, known);
    expect(table.badLines).toBe(2);
    expect(table.unknownCount).toBe(1);
    expect(table.unknown).toEqual(['19990101-000000-abcd-1']);
    expect(table.size).toBe(0);
  });

  it('are split across chunks, CRLF and multi-byte characters alike', async () => {
    const text = Buffer.from('{"a":"é"}\r\n\n{"b":"✓"}\n{"c":1}', 'utf8');
    function* pieces() {
      for (let i = 0; i < text.length; i += 3) yield text.subarray(i, i + 3);
    }
    const chunks = (): AsyncIterable<Uint8Array> => Readable.from(pieces());
    const out: string[] = [];
    for await (const line of readLines(chunks())) out.push(line);
    expect(out).toEqual(['{"a":"é"}', '{"b":"✓"}', '{"c":1}']);
  });

  it('a 2xx line without an answer, a line with neither response nor error, and a cancelled one', () => {
    const noAnswer = outcomeOfLine(
      parseOutputLine('{"custom_id":"a","response":{"status_code":200,"body":{}},"error":null}')!,
      URL_,
    );
    expect(noAnswer.kind === 'failed' && noAnswer.error).toBeInstanceOf(MalformedResponseError);
    const empty = outcomeOfLine(
      parseOutputLine('{"custom_id":"a","response":null,"error":null}')!,
      URL_,
    );
    expect(empty.kind).toBe('failed');
    const cancelled = outcomeOfLine(
      parseOutputLine(
        '{"custom_id":"a","response":null,"error":{"code":"batch_cancelled","message":"x"}}',
      )!,
      URL_,
    );
    expect(cancelled).toEqual({ kind: 'cancelled' });
    const other = outcomeOfLine(
      parseOutputLine(
        '{"custom_id":"a","response":null,"error":{"code":"server_error","message":"boom"}}',
      )!,
      URL_,
    );
    expect(other.kind === 'failed' && other.error.message).toBe(
      'the batch engine could not run this request: boom',
    );
    expect(other.kind === 'failed' && other.error.exitCode).toBe(ExitCode.SERVER);
  });
});

describe('a request without a line', () => {
  const errors = [
    { code: 'invalid_method', message: 'Only POST is supported', param: 'method', line: 2 },
  ];
  it('takes its outcome from its batch', () => {
    const failed = { status: 'failed', errors };
    const own = outcomeWithoutLine(failed, 2, URL_);
    expect(own?.kind === 'failed' && own.error.message).toBe(
      'the batch engine rejected this request (line 2): Only POST is supported',
    );
    const other = outcomeWithoutLine(failed, 1, URL_);
    expect(other?.kind === 'failed' && other.error.message).toBe(
      'its batch failed validation at line 2: Only POST is supported',
    );
    const noReason = outcomeWithoutLine({ status: 'failed', errors: [] }, 1, URL_);
    expect(noReason?.kind === 'failed' && noReason.error.message).toBe(
      'its batch failed validation: no reason given',
    );
    const expired = outcomeWithoutLine({ status: 'expired', errors: [] }, 1, URL_);
    expect(expired?.kind === 'failed' && expired.expired && expired.error.exitCode).toBe(
      ExitCode.SERVER,
    );
    expect(outcomeWithoutLine({ status: 'cancelled', errors: [] }, 1, URL_)).toEqual({
      kind: 'cancelled',
    });
    const lost = outcomeWithoutLine({ status: 'completed', errors: [] }, 1, URL_);
    expect(lost?.kind === 'failed' && lost.error.message).toBe(
      'the batch finished without a result for this request',
    );
    expect(outcomeWithoutLine({ status: 'in_progress', errors: [] }, 1, URL_)).toBeUndefined();
  });

  it('an answer is never replaced; a later failure replaces an earlier one', () => {
    const answered: Outcome = {
      kind: 'answered',
      completion: {
        id: 'a',
        model: 'm',
        text: 't',
        refusal: false,
        finishReason: 'stop',
        usage: undefined,
      },
      requestId: undefined,
    };
    const cancelled: Outcome = { kind: 'cancelled' };
    expect(preferOutcome(answered, cancelled)).toBe(answered);
    expect(preferOutcome(cancelled, answered)).toBe(answered);
    expect(preferOutcome(undefined, cancelled)).toBe(cancelled);
  });
});

describe('the map', () => {
  it('maps custom_ids to images, never holding image bytes', async () => {
    const { job, entries } = await readMap(MAP);
    expect(job).toBe('20260321-142233-7f3a');
    expect(entries.get('20260321-142233-7f3a-3')).toEqual({
      custom_id: '20260321-142233-7f3a-3',
      index: 3,
      image: 'https://example.com/bird.jpg',
      url: 'https://example.com/bird.jpg',
      key: 'https://example.com/bird.jpg',
    });
  });

  it('refuses a file that is not one', async () => {
    await expect(readMap(fixture('vllm-output.jsonl'))).rejects.toThrow(
      /not a describe-image batch map$/,
    );
    await expect(readMap(fixture('missing.jsonl'))).rejects.toThrow(
      /cannot read the batch map \(no such file\)$/,
    );
  });
});

describe("Azure's older batch object", () => {
  it('is read: ISO dates, a capitalised status, nulls', () => {
    const batch = parseBatch(
      JSON.parse(readFileSync(fixture('azure-batch-2024-10-21.json'), 'utf8')),
    );
    expect(batch).toMatchObject({
      id: 'batch_fe3f047a-de39-4068-9008-346795bfc1db',
      status: 'validating',
      created_at: Math.floor(Date.parse('2024-07-19T17:13:57.249Z') / 1000),
      output_file_id: undefined,
      request_counts: { total: 0, completed: 0, failed: 0 },
      errors: [],
      metadata: {},
    });
  });
});

describe('--batch-results finds the map', () => {
  it('among the files, from the job record, or beside the results', async () => {
    const { mkdtempSync, copyFileSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { resolveResultsMap } = await import('../../src/batch-api/offline.js');
    const { JobStore } = await import('../../src/batch-api/jobs.js');
    const { Redactor } = await import('../../src/output/guard.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'results-map-'));
    try {
      const store = new JobStore(path.join(dir, 'state'), new Redactor());
      const out = fixture('vllm-output.jsonl');
      expect(await resolveResultsMap([out, MAP], store)).toEqual({
        map: MAP,
        job: '20260321-142233-7f3a',
        results: [out],
      });
      // Neither given nor recorded: the results' folder is searched for a map of that job.
      const results = path.join(dir, 'out.jsonl');
      copyFileSync(out, results);
      await expect(resolveResultsMap([results], store)).rejects.toThrow(
        '--batch-results: cannot tell which images these results belong to (job 20260321-142233-7f3a); add the .map.jsonl file --batch-file wrote to the files',
      );
      copyFileSync(MAP, path.join(dir, 'requests.map.jsonl'));
      expect(await resolveResultsMap([results], store)).toEqual({
        map: path.join(dir, 'requests.map.jsonl'),
        job: '20260321-142233-7f3a',
        results: [results],
      });
      await expect(resolveResultsMap([path.join(dir, 'missing.jsonl')], store)).rejects.toThrow(
        /missing\.jsonl: no such file$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
