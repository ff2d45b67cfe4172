/**
 * Loads a trimmed OpenAPI fixture (test/fixtures/openapi-*.json) into Ajv. No vitest here: the
 * batch stand-in (test/helpers/batch-server.ts) uses it from the benchmark too.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';

/**
 * OpenAPI 3.0's `nullable: true` is not JSON Schema (and Ajv refuses it next to a `$ref`):
 * it is rewritten as `anyOf: [schema, {type: null}]`, which is what it means.
 */
export function openApiToJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openApiToJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'nullable' && typeof value === 'boolean') continue;
    out[key] = openApiToJsonSchema(value);
  }
  return (node as { nullable?: unknown }).nullable === true
    ? { anyOf: [out, { type: 'null' }] }
    : out;
}

/** A validator for each named schema of `test/fixtures/<file>`. */
export function schemaValidators<Name extends string>(
  file: string,
  names: readonly Name[],
): Record<Name, ValidateFunction> {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('uri', (text: string) => URL.canParse(text));
  ajv.addFormat('binary', () => true);
  ajv.addFormat('unixtime', () => true);
  ajv.addFormat('int64', () => true);
  const id = file.replace(/\.json$/, '');
  ajv.addSchema(
    openApiToJsonSchema(
      JSON.parse(readFileSync(new URL(`../fixtures/${file}`, import.meta.url), 'utf8')),
    ) as object,
    id,
  );
  const out = {} as Record<Name, ValidateFunction>;
  for (const name of names) out[name] = ajv.compile({ $ref: `${id}#/$defs/${name}` });
  return out;
}
