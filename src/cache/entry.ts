/**
 * Pure: what the answer cache stores for a key, which answers may be stored, and the stored
 * form. Only whole answers are kept (`finish_reason` `stop`; a structured answer only once it
 * passed its schema), never an image's bytes and never a key.
 *
 * The stored form is a checksum, then the entry as JSON. The checksum covers the key too, so
 * damaged bytes, or an entry that ended up under another key, read as a miss, never as a wrong
 * answer; so does an entry of another format version or of the wrong shape.
 */
import { createHash } from 'node:crypto';
import type { Completion, Usage } from '../api/types.js';
import { safeJson } from '../output/guard.js';

/** Bump when the stored entry's shape changes: older entries then read as misses. */
export const ENTRY_FORMAT = 1;

/** The answer itself: a text answer, or the value a structured answer parsed to. */
export type CachedAnswer = { kind: 'text'; text: string } | { kind: 'structured'; value: unknown };

export interface CacheEntry {
  answer: CachedAnswer;
  /** The model that answered, as the server reported it. */
  model: string | undefined;
  /** The completion id. */
  id: string | undefined;
  /** Always `stop`: nothing else is stored. */
  finishReason: string;
  /** Token usage of every request the answer took. */
  usage: Usage | undefined;
  /** When it was asked, in ms since the epoch. */
  askedAt: number;
}

/** A finished request, as the pipeline has it, or the error it ended with. */
export interface AnswerOutcome {
  /** The completion the answer came from (for a structured answer, the one that passed). */
  completion: Pick<Completion, 'id' | 'model' | 'text' | 'refusal' | 'finishReason'>;
  usage: Usage | undefined;
  /**
   * A structured answer: `checked: true` with the value that passed its schema, or
   * `checked: false`. Absent for a text answer.
   */
  structured?: { checked: true; value: unknown } | { checked: false } | undefined;
  /** False when the answer did not arrive whole (an interrupted or cut stream). */
  complete?: boolean | undefined;
}

/**
 * Whether an answer may be stored: a whole, non-empty answer that ended with `stop`, not a
 * refusal, and for a structured one, a value that passed its schema. Never an error.
 */
export function isCacheable(outcome: AnswerOutcome | Error): outcome is AnswerOutcome {
  if (outcome instanceof Error) return false;
  const { completion, structured } = outcome;
  if (outcome.complete === false) return false;
  if (completion.finishReason !== 'stop' || completion.refusal) return false;
  if (structured) return structured.checked && structured.value !== undefined;
  return completion.text !== '';
}

/** The entry to store for an answer, or undefined when it must not be stored. */
export function entryFor(outcome: AnswerOutcome | Error, askedAt: number): CacheEntry | undefined {
  if (!isCacheable(outcome)) return undefined;
  const { completion, structured } = outcome;
  return {
    answer:
      structured?.checked === true
        ? { kind: 'structured', value: structured.value }
        : { kind: 'text', text: completion.text },
    model: completion.model,
    id: completion.id,
    finishReason: 'stop',
    usage: outcome.usage,
    askedAt,
  };
}

/** Hex digits of checksum in front of the JSON. */
const SUM_LENGTH = 32;

function checksum(key: string, json: string): string {
  // One update of one string hashes the same bytes as three updates, with less overhead.
  return createHash('sha256')
    .update(key + '\u0000' + json)
    .digest('hex')
    .slice(0, SUM_LENGTH);
}

/** The stored text of an entry under `key`. */
export function encodeEntry(key: string, entry: CacheEntry): string {
  const json = safeJson({
    v: ENTRY_FORMAT,
    answer: entry.answer,
    model: entry.model ?? null,
    id: entry.id ?? null,
    finish_reason: entry.finishReason,
    usage: entry.usage ?? null,
    asked_at: entry.askedAt,
  });
  return checksum(key, json) + json;
}

/** The entry stored under `key`, or undefined when it is damaged, of another version or shape. */
export function decodeEntry(key: string, stored: unknown): CacheEntry | undefined {
  if (typeof stored !== 'string' || stored.length <= SUM_LENGTH) return undefined;
  const json = stored.slice(SUM_LENGTH);
  if (stored.slice(0, SUM_LENGTH) !== checksum(key, json)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isRecord(raw) || raw.v !== ENTRY_FORMAT) return undefined;
  const answer = readAnswer(raw.answer);
  const usage = raw.usage === null ? undefined : readUsage(raw.usage);
  if (
    !answer ||
    usage === false ||
    !isOptionalString(raw.model) ||
    !isOptionalString(raw.id) ||
    raw.finish_reason !== 'stop' ||
    typeof raw.asked_at !== 'number' ||
    !Number.isFinite(raw.asked_at)
  ) {
    return undefined;
  }
  return {
    answer,
    model: raw.model ?? undefined,
    id: raw.id ?? undefined,
    finishReason: raw.finish_reason,
    usage,
    askedAt: raw.asked_at,
  };
}

function readAnswer(value: unknown): CachedAnswer | undefined {
  if (!isRecord(value)) return undefined;
  if (value.kind === 'text' && typeof value.text === 'string' && value.text !== '')
    return { kind: 'text', text: value.text };
  if (value.kind === 'structured' && 'value' in value)
    return { kind: 'structured', value: value.value };
  return undefined;
}

function readUsage(value: unknown): Usage | false {
  if (
    !isRecord(value) ||
    typeof value.prompt_tokens !== 'number' ||
    typeof value.completion_tokens !== 'number'
  ) {
    return false;
  }
  return value as Usage;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOptionalString(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}
