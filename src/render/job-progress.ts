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

/** A job's age in a table cell, without spaces: `45s`, `4m12s`, `2h13m`, `3d04h`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}
