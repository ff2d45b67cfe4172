/**
 * `--batch-results FILE…`: which map the given output files belong to. A map among the files
 * is used as it is; otherwise the first result's `custom_id` names its job, whose record (from
 * `--batch-file` or `--batch-api`) names the map; otherwise a map beside a results file whose
 * job matches. Output files from vLLM (`vllm run-batch -o`) or downloaded by hand.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { isJobId, type JobStore } from './jobs.js';
import { readLines } from './lines.js';
import { jobOfCustomId, openMap } from './mapping.js';
import { parseOutputLine } from './results.js';

export interface ResultsInput {
  /** The map file (custom_id → image). */
  map: string;
  /** The job the results belong to. */
  job: string;
  /** The output files, in the order given (the map taken out). */
  results: string[];
}

/** Sorts `files` into results and their map; throws a `UsageError` when no map is found. */
export async function resolveResultsMap(
  files: readonly string[],
  store: JobStore,
): Promise<ResultsInput> {
  const results: string[] = [];
  let given: { map: string; job: string } | undefined;
  for (const file of files) {
    const header = await mapHeader(file);
    if (header) given = { map: file, job: header };
    else results.push(file);
  }
  if (results.length === 0) throw new UsageError('--batch-results: no results file given');
  if (given) return { ...given, results };

  const job = await firstJob(results);
  if (job && isJobId(job)) {
    const record = await store.read(job).catch(() => undefined);
    if (record) return { map: record.map, job, results };
    for (const dir of new Set(results.map((f) => path.dirname(f)))) {
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names.filter((n) => n.endsWith('.map.jsonl')).sort()) {
        const candidate = path.join(dir, name);
        if ((await mapHeader(candidate)) === job) return { map: candidate, job, results };
      }
    }
  }
  throw new UsageError(
    `--batch-results: cannot tell which images these results belong to${job ? ` (job ${job})` : ''}; add the .map.jsonl file --batch-file wrote to the files`,
  );
}

/** The job of a map file, or undefined when `file` is not one. */
async function mapHeader(file: string): Promise<string | undefined> {
  try {
    const { header, entries } = await openMap(file);
    await entries.return(undefined);
    return header.job;
  } catch (error) {
    if (error instanceof InputError && /no such file/.test(error.message)) {
      throw new InputError(`${file}: no such file`);
    }
    return undefined;
  }
}

/** The job named by the first result line's `custom_id`. */
async function firstJob(files: readonly string[]): Promise<string | undefined> {
  for (const file of files) {
    for await (const text of readLines(createReadStream(file))) {
      const line = parseOutputLine(text);
      if (line) return jobOfCustomId(line.customId);
    }
  }
  return undefined;
}
