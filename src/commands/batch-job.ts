/**
 * What every batch-engine command shares: the job store, the connection to the provider's
 * `/files` and `/batches`, and a run's `Job` rebuilt from a job record (the request settings it
 * was submitted with, its output options under the ones given now).
 */
import path from 'node:path';
import type { ApiClient } from '../api/client.js';
import { Batches } from '../api/batches.js';
import { Files } from '../api/files.js';
import { JobStore, stateDir, type JobRecord } from '../batch-api/jobs.js';
import type { FlowContext } from '../batch-api/submit.js';
import { batchTarget, type BatchTarget } from '../batch-api/targets.js';
import { UsageError } from '../errors.js';
import { checkOutputPairs } from './output-pairs.js';
import { displayUrl } from '../output/guard.js';
import { createClient, modelOf, type Job, type RunContext, type WriteBack } from './job.js';
import { loadStructuredSpec, type StructuredSpec } from './structured.js';

/** Output options as given on this command line (undefined: not given). */
export interface OutputFlags {
  output?: string | undefined;
  json?: boolean | undefined;
  sidecar?: boolean | undefined;
  resume?: boolean | undefined;
  skipExisting?: boolean | undefined;
  /** `--write-metadata`, `--xmp-sidecar` and their options. */
  writeBack?: WriteBack | undefined;
}

/** What `cli.ts` passes besides the `Job`. */
export interface BatchApiOptions {
  /** `--batch-max-bytes`, `--batch-max-requests`. */
  maxBytes: number | undefined;
  maxRequests: number | undefined;
  given: OutputFlags;
}

/** The job records under `$XDG_STATE_HOME/describe-image/`. */
export function jobStore(ctx: RunContext): JobStore {
  return new JobStore(stateDir(ctx.deps.env, ctx.deps.homedir), ctx.redactor);
}

/** A connection to the provider's batch engine. */
export interface Engine {
  target: BatchTarget;
  client: ApiClient;
  files: Files;
  batches: Batches;
}

/**
 * The batch engine of the run's provider and base URL: the same key, key header, proxy and
 * timeout as its chat requests. Throws a `UsageError` for a provider that has none for images.
 */
export async function openEngine(job: Job, ctx: RunContext): Promise<Engine> {
  const target = batchTarget(job.provider, job.api.baseUrl);
  const client = await createClient(
    { ...job, api: { ...job.api, baseUrl: target.baseUrl, query: target.query } },
    ctx,
    { connections: 2 },
  );
  return { target, client, files: new Files(client), batches: new Batches(client) };
}

export function flowContext(engine: Engine, store: JobStore, ctx: RunContext): FlowContext {
  return {
    files: engine.files,
    batches: engine.batches,
    store,
    signal: ctx.deps.interrupt,
    log: (line) => ctx.reporter.debug(line),
  };
}

/**
 * A job may only be driven through the server it was submitted to: the key in use now was
 * chosen for that server (never taken from the record, which holds none).
 */
export function checkSameServer(record: JobRecord, engine: Engine, provider: string): void {
  if (record.kind === 'file') {
    throw new UsageError(
      `job ${record.id} was written by --batch-file, not submitted: run its requests yourself (vllm run-batch -i …) and write the results with --batch-results`,
    );
  }
  const now = displayUrl(engine.target.baseUrl);
  if (record.baseUrl !== now || record.provider !== provider) {
    throw new UsageError(
      `job ${record.id} was submitted to ${record.baseUrl} (${record.provider}), and this run goes to ${now} (${provider}): run with the same --provider, --profile or --base-url`,
    );
  }
}

/** The request settings a job is built with: two jobs with the same ask the same thing. */
export function requestSettings(job: Job): Record<string, unknown> {
  const spec = job.structured;
  return {
    provider: job.provider.name,
    baseUrl: displayUrl(job.api.baseUrl),
    model: modelOf(job),
    prompt: job.prompt,
    system: job.system,
    detail: job.detail,
    maxTokens: job.maxTokens,
    maxCompletionTokens: job.maxCompletionTokens,
    temperature: job.temperature,
    structured: spec
      ? spec.preset
        ? { preset: spec.preset.name }
        : { name: spec.name, schema: spec.schema, source: spec.source }
      : undefined,
    maxSize: job.maxSize,
    keepMetadata: job.keepMetadata,
    original: job.original,
    download: job.download,
  };
}

/** The output options to remember in a job record: those given, the file made absolute. */
export function outputSettings(given: OutputFlags, cwd: string): Record<string, unknown> {
  return {
    output: given.output === undefined ? undefined : path.resolve(cwd, given.output),
    json: given.json,
    sidecar: given.sidecar,
    resume: given.resume,
    skipExisting: given.skipExisting,
    writeBack: given.writeBack,
  };
}

/**
 * The run's job with the request settings the record was submitted with (what a retry sends,
 * how answers are checked and priced) and its output options under the ones given now.
 */
export async function jobFromRecord(
  job: Job,
  record: JobRecord,
  given: OutputFlags,
  cwd: string,
): Promise<Job> {
  const s = record.settings;
  const o = record.output;
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
  const detail = text(s.detail);
  return checkedOutput({
    ...job,
    model: text(s.model) ?? record.model,
    prompt: text(s.prompt) ?? job.prompt,
    system: text(s.system),
    detail: detail === 'auto' || detail === 'low' || detail === 'high' ? detail : undefined,
    maxTokens: num(s.maxTokens),
    maxCompletionTokens: num(s.maxCompletionTokens),
    temperature: num(s.temperature),
    structured: await structuredOf(s.structured, cwd),
    maxSize: num(s.maxSize),
    keepMetadata: bool(s.keepMetadata) ?? false,
    original: bool(s.original) ?? false,
    download: bool(s.download) ?? job.download,
    output: given.output ?? text(o.output),
    json: given.json ?? bool(o.json) ?? false,
    sidecar: given.sidecar ?? bool(o.sidecar) ?? false,
    resume: given.resume ?? bool(o.resume) ?? false,
    skipExisting: given.skipExisting ?? bool(o.skipExisting) ?? false,
    writeBack: given.writeBack ?? writeBackIn(o.writeBack),
  });
}

/** A write-back remembered in a job record, if it is one. */
function writeBackIn(raw: unknown): WriteBack | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const sources = ['caption', 'ocr', 'prompt', 'alt-text', 'tags', 'objects'];
  if (
    (r.target !== 'embed' && r.target !== 'sidecar') ||
    (r.sidecarStyle !== 'append' && r.sidecarStyle !== 'replace') ||
    typeof r.keepMtime !== 'boolean' ||
    typeof r.backup !== 'boolean' ||
    typeof r.source !== 'string' ||
    !sources.includes(r.source)
  )
    return undefined;
  return {
    target: r.target,
    sidecarStyle: r.sidecarStyle,
    keepMtime: r.keepMtime,
    backup: r.backup,
    source: r.source as WriteBack['source'],
  };
}

/** The checks `cli.ts` makes on output options, once the record's are merged in. */
export function checkedOutput(job: Job): Job {
  checkOutputPairs(job);
  return job;
}

async function structuredOf(raw: unknown, cwd: string): Promise<StructuredSpec | undefined> {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.preset === 'string') return loadStructuredSpec({ preset: r.preset }, cwd);
  if (typeof r.schema !== 'object' || r.schema === null) return undefined;
  const schema = r.schema as Record<string, unknown>;
  return {
    name: typeof r.name === 'string' ? r.name : 'answer',
    schema,
    localSchema: schema,
    preset: undefined,
    source: typeof r.source === 'string' ? r.source : '--schema',
  };
}
