/**
 * Pure: how a batch job's progress reads on one line, while waiting and in `--jobs`.
 */
import type { JobProgress } from '../batch-api/wait.js';
import { formatDuration } from './summary.js';
import { formatCount } from './text.js';

/** `in_progress · 1,234/10,000 done · 12 failed · 1/3 batches finished · 4m12s` */
export function formatJobProgress(p: JobProgress): string {
  const parts = [p.status, `${formatCount(p.completed)}/${formatCount(p.total)} done`];
  if (p.failed > 0) parts.push(`${formatCount(p.failed)} failed`);
  parts.push(`${p.shardsDone}/${p.shards} batch${p.shards === 1 ? '' : 'es'} finished`);
  parts.push(formatDuration(p.elapsedMs));
  return parts.join(' · ');
}
