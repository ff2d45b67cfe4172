/**
 * OpenAI's chat schemas (test/fixtures/openapi-chat.json) as a JSON Schema validator, for
 * checking the request bodies the tool builds.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';

/**
 * OpenAPI 3.0's `nullable: true` is not JSON Schema (and Ajv refuses it next to a `$ref`):
 * it is rewritten as `anyOf: [schema, {type: null}]`, which is what it means.
 */
function openApiToJsonSchema(node: unknown): unknown {
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

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uri', (text: string) => URL.canParse(text));
ajv.addSchema(
  openApiToJsonSchema(
    JSON.parse(readFileSync(new URL('../fixtures/openapi-chat.json', import.meta.url), 'utf8')),
  ) as object,
  'openapi-chat',
);

/** `CreateChatCompletionRequest`. */
export const validateRequest: ValidateFunction = ajv.compile({
  $ref: 'openapi-chat#/$defs/CreateChatCompletionRequest',
});

/** Asserts that `body` is a valid `CreateChatCompletionRequest`, showing ajv's errors if not. */
export function expectValidRequest(body: unknown): void {
  const ok = validateRequest(body);
  expect(ok, JSON.stringify(validateRequest.errors, null, 1)).toBe(true);
}
