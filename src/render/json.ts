/**
 * JSON Lines records: one object per image, the same shape in a single run and in a batch,
 * on stdout or in `--output`. Model text is kept character for character; every control
 * character is escaped (C1 and U+2028/9 too), so nothing reaches a terminal raw.
 */
import type { Completion, Usage } from '../api/types.js';
import { safeJson } from '../output/guard.js';

export interface ResultRecord {
  image: string;
  index: number;
  model: string | null;
  /** The answer: a string, or the parsed JSON value for --schema and --preset. */
  text: unknown;
  finish_reason: string | null;
  usage: Usage | null;
  id: string | null;
  ms: number;
  /** Only on a failure: the exit code it maps to and the one-line message. */
  error?: { code: number; message: string; status?: number };
  /** Estimated price in USD, when known (0 for an answer from the cache). */
  cost?: number;
  /** The answer came from the cache: no request was made. */
  cached?: boolean;
  /** The provider batch that answered it (--batch-api). */
  batch_id?: string;
  /** `--alt-fill`: the document the alt text went into, and the image's place in it (1-based). */
  file?: string;
  line?: number;
  column?: number;
  /** `--alt-fill`: the image's source as the document gives it. */
  source?: string;
  /** `--alt-fill`: a later place of an image described once (its usage and cost are on the first). */
  shared?: boolean;
  /**
   * Write-back (--write-metadata, --xmp-sidecar): the file written (the photo, or its sidecar)
   * and what happened: `written`, `unchanged` (it held the answer), `empty` (nothing to write),
   * `unsupported` (a format that holds no metadata).
   */
  metadata?: { file: string; status: string };
}

export interface SuccessDetails {
  completion: Completion;
  /** The answer: the text, or the parsed value of a structured answer. */
  json: unknown;
  /** Usage of every request the answer took. */
  usage: Usage | undefined;
  /** Estimated (or server-reported) price in USD. */
  cost?: number | undefined;
}

export function successRecord(
  image: string,
  index: number,
  answer: SuccessDetails,
  requestedModel: string,
  ms: number,
): ResultRecord {
  const { completion } = answer;
  const record: ResultRecord = {
    image,
    index,
    model: completion.model ?? requestedModel,
    text: answer.json,
    finish_reason: completion.finishReason ?? null,
    usage: answer.usage ?? null,
    id: completion.id ?? null,
    ms,
  };
  if (answer.cost !== undefined) record.cost = answer.cost;
  return record;
}

export function failureRecord(
  image: string,
  index: number,
  error: { code: number; message: string; status?: number | undefined },
  ms: number,
): ResultRecord {
  const detail: ResultRecord['error'] = { code: error.code, message: error.message };
  if (error.status !== undefined) detail.status = error.status;
  return {
    image,
    index,
    model: null,
    text: null,
    finish_reason: null,
    usage: null,
    id: null,
    ms,
    error: detail,
  };
}

/** One line of JSON Lines: C0, C1 and U+2028/9 escaped (see output/guard.ts). */
export function jsonLine(record: ResultRecord): string {
  return `${safeJson(record)}\n`;
}
