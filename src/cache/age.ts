/**
 * Pure: an age as a user writes it for pruning the answer cache (`30d`, `12h`, `90m`, `2w`,
 * `1.5d`), in milliseconds.
 */

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Milliseconds in `text`, or undefined when it is not a number followed by s, m, h, d or w. */
export function parseAge(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = UNIT_MS[(match[2] ?? '').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}
