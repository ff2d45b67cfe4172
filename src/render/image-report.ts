/**
 * Pure: the one-line account of what happened to an image before it was sent, for
 * `--dry-run` and `--debug`:
 *   cat.heic: HEIC 4,032×3,024 2.1 MB → JPEG 1,024×768 112 KB (95 % smaller) · ~765 image tokens
 */
import type { ImageFacts, PreparedBytes } from '../input/prepare.js';
import { formatCount } from './text.js';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function facts(f: ImageFacts): string {
  return `${f.format.toUpperCase()} ${formatCount(f.width)}×${formatCount(f.height)} ${formatBytes(f.bytes)}`;
}

/** `tokens` undefined means the model's image costs are not known. */
export function formatImageReport(
  name: string,
  prepared: PreparedBytes | undefined,
  tokens: number | undefined,
  detail: string | undefined,
): string {
  const estimate =
    tokens === undefined
      ? 'image tokens: unknown for this model'
      : detail === 'low' || detail === 'high'
        ? `~${formatCount(tokens)} image tokens`
        : `≤ ${formatCount(tokens)} image tokens (detail auto)`;
  if (!prepared)
    return `${name}: URL, sent as it is (the server fetches it) · image tokens: unknown until fetched`;
  const { original, sent } = prepared;
  if (sent === original) return `${name}: ${facts(original)}, sent as it is · ${estimate}`;
  const saved = original.bytes > 0 ? Math.round((1 - sent.bytes / original.bytes) * 100) : 0;
  const change = saved >= 0 ? `${saved} % smaller` : `${-saved} % larger`;
  return `${name}: ${facts(original)} → ${facts(sent)} (${change}, ${Math.round(prepared.ms)} ms) · ${estimate}`;
}
