/**
 * The batch engines, from the command line: `--batch-api` (submit, and with `--wait` collect),
 * `--batch-file`, `--batch-results`, `--jobs` and `--job ID`. Each command's module is loaded
 * only when it runs.
 */
import type { BatchApiMode } from '../batch-api/mode.js';
import type { BatchApiOptions } from './batch-job.js';
import type { Job, RunContext } from './job.js';
import type { Save } from './outcomes.js';

export type { BatchApiOptions } from './batch-job.js';

/**
 * Runs the batch-engine command `mode`; returns the exit code. `saves` are what each answer
 * goes to besides the outputs the options name (as `runBatch` takes them).
 */
export async function batchApi(
  job: Job,
  mode: BatchApiMode,
  opts: BatchApiOptions,
  ctx: RunContext,
  saves: readonly Save[] = [],
): Promise<number> {
  switch (mode.kind) {
    case 'submit':
      if (mode.dryRun)
        return (await import('./batch-dry-run.js')).batchDryRun(job, opts, ctx, saves);
      return (await import('./batch-submit.js')).submitRun(job, mode, opts, ctx, saves);
    case 'file':
      return (await import('./batch-submit.js')).submitRun(job, mode, opts, ctx, saves);
    case 'results':
      return (await import('./batch-collect.js')).collectResultFiles(
        job,
        mode.files,
        opts,
        ctx,
        saves,
      );
    case 'jobs':
      return (await import('./batch-jobs.js')).listJobs(job, ctx);
    case 'job':
      return (await import('./batch-jobs.js')).jobCommand(
        job,
        mode.id,
        mode.action,
        mode.wait,
        opts,
        ctx,
        saves,
      );
  }
}
