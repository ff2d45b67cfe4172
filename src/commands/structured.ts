/**
 * Structured answers (`--schema`, `--preset`): the schema sent as `response_format`, the
 * answer parsed and validated locally with ajv (loaded only here), one retry when it does not
 * match, and how the answer is printed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import type { JsonSchemaFormat } from '../api/types.js';
import { InputError, SchemaMismatchError, UsageError, oneLine } from '../errors.js';
import { safeJson } from '../output/guard.js';
import { findPreset, PRESET_NAMES, schemaName, type Preset } from '../presets.js';

export interface StructuredSpec {
  /** `json_schema.name` */
  name: string;
  /** Sent to the server. */
  schema: Record<string, unknown>;
  /** Checked locally (a preset's is stricter than what it sends). */
  localSchema: Record<string, unknown>;
  preset: Preset | undefined;
  /** Where it came from, for messages. */
  source: string;
}

/** Reads `--schema` (a file, or inline JSON starting with `{`) or `--preset`. */
export async function loadStructuredSpec(
  opts: { schema?: string | undefined; preset?: string | undefined },
  cwd: string,
): Promise<StructuredSpec | undefined> {
  if (opts.preset !== undefined) {
    const preset = findPreset(opts.preset);
    if (!preset)
      throw new UsageError(`unknown preset "${opts.preset}"; presets: ${PRESET_NAMES.join(', ')}`);
    return {
      name: schemaName(preset.name),
      schema: preset.schema,
      localSchema: preset.localSchema ?? preset.schema,
      preset,
      source: `--preset ${preset.name}`,
    };
  }
  if (opts.schema === undefined) return undefined;
  const inline = opts.schema.trim().startsWith('{');
  let text = opts.schema;
  if (!inline) {
    try {
      text = await readFile(path.resolve(cwd, opts.schema), 'utf8');
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new InputError(
        `--schema ${opts.schema}: ${code === 'ENOENT' ? 'no such file (give a file, or the schema itself as JSON)' : (error as Error).message}`,
      );
    }
  }
  const where = inline ? '--schema' : `--schema ${opts.schema}`;
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new UsageError(`${where}: a JSON Schema must be a JSON object`);
  }
  const record = schema as Record<string, unknown>;
  await compile(record, where);
  const title =
    typeof record.title === 'string'
      ? record.title
      : inline
        ? 'answer'
        : path.basename(opts.schema);
  return {
    name: schemaName(title),
    schema: record,
    localSchema: record,
    preset: undefined,
    source: where,
  };
}

export function responseFormat(spec: StructuredSpec): JsonSchemaFormat {
  return {
    type: 'json_schema',
    json_schema: { name: spec.name, schema: spec.schema, strict: true },
  };
}

type Validate = ((value: unknown) => boolean) & { errors?: ErrorObject[] | null | undefined };
const compiled = new WeakMap<object, Promise<Validate>>();

/** Compiles a schema with the draft it declares (2020-12 or 2019-09, else draft-07). */
function compile(schema: Record<string, unknown>, where: string): Promise<Validate> {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = (async () => {
      const draft = typeof schema.$schema === 'string' ? schema.$schema : '';
      const options = { strict: false, allErrors: true };
      try {
        // ajv is CommonJS: bundled, its named exports sit on the default export.
        if (/2020-12|2019-09/.test(draft)) {
          const m = await import('ajv/dist/2020.js');
          const Ajv2020 =
            (m.Ajv2020 as typeof m.Ajv2020 | undefined) ??
            (m.default as unknown as typeof m.Ajv2020);
          return new Ajv2020(options).compile(schema);
        }
        const m = await import('ajv');
        const Ajv = (m.Ajv as typeof m.Ajv | undefined) ?? (m.default as unknown as typeof m.Ajv);
        return new Ajv(options).compile(schema);
      } catch (error) {
        throw new UsageError(
          `${where}: not a valid JSON Schema (${oneLine((error as Error).message, 200)})`,
        );
      }
    })();
    compiled.set(schema, validate);
  }
  return validate;
}

export type Checked = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Parses the model's text as JSON and checks it against the spec. A model that wraps the JSON
 * in a Markdown code fence (some local models do, whatever they are told) is forgiven.
 */
export async function checkAnswer(spec: StructuredSpec, text: string): Promise<Checked> {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/i.exec(text);
  let value: unknown;
  try {
    value = JSON.parse(fenced ? (fenced[1] ?? '') : text);
  } catch {
    return { ok: false, problem: `the answer is not JSON: ${oneLine(text, 80) || '(empty)'}` };
  }
  const validate = await compile(spec.localSchema, spec.source);
  if (validate(value)) return { ok: true, value };
  const problems = (validate.errors ?? [])
    .slice(0, 3)
    .map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`)
    .join('; ');
  return { ok: false, problem: `the answer does not match the schema: ${problems}` };
}

/** What a checked answer becomes in `--json` (`text`) and on stdout. */
export function presentAnswer(
  spec: StructuredSpec,
  value: unknown,
  tty: boolean,
): { json: unknown; text: string } {
  if (spec.preset) {
    const natural = spec.preset.unwrap(value as Record<string, unknown>);
    return { json: natural, text: spec.preset.toText(natural) };
  }
  return { json: value, text: tty ? safeJson(value, 2) : safeJson(value) };
}

export function mismatch(name: string, problem: string): SchemaMismatchError {
  return new SchemaMismatchError(
    `${name}: ${problem} (asked twice; the model or server may not support structured outputs)`,
  );
}
