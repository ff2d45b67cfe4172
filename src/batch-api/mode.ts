/**
 * Pure: which batch-engine command the options ask for (`--batch-api`, `--batch-file`,
 * `--batch-results`, `--jobs`, `--job ID` with `--wait`, `--cancel` or `--retry-failed`), and
 * a usage error for every combination that cannot work, before anything is read or sent.
 */
import { UsageError } from '../errors.js';

/** The options this module reads, as commander parsed them. */
export interface BatchApiFlags {
  batchApi?: boolean | undefined;
  wait?: boolean | undefined;
  jobs?: boolean | undefined;
  job?: string | undefined;
  cancel?: boolean | undefined;
  retryFailed?: boolean | undefined;
  batchFile?: string | undefined;
  batchResults?: string[] | undefined;
  batchMaxBytes?: number | undefined;
  batchMaxRequests?: number | undefined;
  together?: boolean | undefined;
  dryRun?: boolean | undefined;
  filesFrom?: string | undefined;
}

export type BatchApiMode =
  /** `--batch-api` (with `--dry-run`: the shards and the estimate, nothing sent). */
  | { kind: 'submit'; wait: boolean; dryRun: boolean }
  /** `--batch-file PATH`: the request files and their map, nothing sent. */
  | { kind: 'file'; path: string }
  /** `--batch-results FILE…`: results from output files. */
  | { kind: 'results'; files: string[] }
  /** `--jobs`. */
  | { kind: 'jobs' }
  /** `--job ID`, alone (its status) or with an action. */
  | { kind: 'job'; id: string; action: 'status' | 'wait' | 'cancel' | 'retry'; wait: boolean };

/** Whether any batch-engine option was given (cheap: decides whether to load the rest). */
export function wantsBatchApi(flags: BatchApiFlags): boolean {
  return (
    flags.batchApi === true ||
    flags.wait === true ||
    flags.jobs === true ||
    flags.job !== undefined ||
    flags.cancel === true ||
    flags.retryFailed === true ||
    flags.batchFile !== undefined ||
    flags.batchResults !== undefined ||
    flags.batchMaxBytes !== undefined ||
    flags.batchMaxRequests !== undefined
  );
}

/**
 * The command the flags ask for; undefined when none is given. `hasInputs`: images (or a
 * prompt) were given as arguments.
 */
export function batchApiMode(flags: BatchApiFlags, hasInputs: boolean): BatchApiMode | undefined {
  if (!wantsBatchApi(flags)) return undefined;
  const chosen = [
    flags.batchApi && '--batch-api',
    flags.batchFile !== undefined && '--batch-file',
    flags.batchResults !== undefined && '--batch-results',
    flags.jobs && '--jobs',
    flags.job !== undefined && '--job',
  ].filter((c): c is string => typeof c === 'string');
  if (chosen.length > 1) throw new UsageError(`give one of ${chosen.join(', ')}, not several`);
  const what = chosen[0];
  if (what === undefined) {
    const lone = flags.wait
      ? '--wait'
      : flags.cancel
        ? '--cancel'
        : flags.retryFailed
          ? '--retry-failed'
          : flags.batchMaxBytes !== undefined
            ? '--batch-max-bytes'
            : '--batch-max-requests';
    throw new UsageError(
      lone === '--wait'
        ? '--wait goes with --batch-api or --job ID'
        : lone === '--cancel' || lone === '--retry-failed'
          ? `${lone} goes with --job ID`
          : onlyWithBatches(lone),
    );
  }
  if (flags.together)
    throw new UsageError(`--together sends one request; it cannot be used with ${what}`);
  if (what !== '--job' && (flags.cancel || flags.retryFailed))
    throw new UsageError(`${flags.cancel ? '--cancel' : '--retry-failed'} goes with --job ID`);
  const limits = flags.batchMaxBytes !== undefined || flags.batchMaxRequests !== undefined;
  const limitName =
    flags.batchMaxBytes !== undefined ? '--batch-max-bytes' : '--batch-max-requests';
  if (flags.dryRun && what !== '--batch-api')
    throw new UsageError(`--dry-run goes with --batch-api, not ${what}`);

  switch (what) {
    case '--batch-api':
      return { kind: 'submit', wait: Boolean(flags.wait), dryRun: Boolean(flags.dryRun) };
    case '--batch-file':
      if (flags.wait)
        throw new UsageError('--batch-file sends nothing: there is nothing to --wait for');
      return { kind: 'file', path: flags.batchFile ?? '' };
    case '--batch-results':
      noImages(what, hasInputs, flags);
      if (flags.wait)
        throw new UsageError('--batch-results reads local files: there is nothing to --wait for');
      if (limits) throw new UsageError(onlyWithBatches(limitName));
      return { kind: 'results', files: flags.batchResults ?? [] };
    case '--jobs':
      noImages(what, hasInputs, flags);
      if (flags.wait)
        throw new UsageError('--jobs lists the jobs; wait for one with --job ID --wait');
      if (limits) throw new UsageError(onlyWithBatches(limitName));
      return { kind: 'jobs' };
    default: {
      noImages('--job', hasInputs, flags);
      if (flags.cancel && (flags.wait || flags.retryFailed))
        throw new UsageError(
          `--cancel cannot be combined with ${flags.wait ? '--wait' : '--retry-failed'}`,
        );
      if (limits && !flags.retryFailed) throw new UsageError(onlyWithBatches(limitName));
      const action = flags.cancel
        ? 'cancel'
        : flags.retryFailed
          ? 'retry'
          : flags.wait
            ? 'wait'
            : 'status';
      return { kind: 'job', id: flags.job ?? '', action, wait: Boolean(flags.wait) };
    }
  }
}

function noImages(what: string, hasInputs: boolean, flags: BatchApiFlags): void {
  if (hasInputs || flags.filesFrom !== undefined)
    throw new UsageError(
      `${what} takes no images${what === '--job' ? ': the job names its own' : ''}`,
    );
}

/** The message for a batch-size limit given where no batch is built. */
function onlyWithBatches(flag: string): string {
  return `${flag} goes with --batch-api, --batch-file or --job ID --retry-failed`;
}
