/**
 * OpenAI's chat schemas (test/fixtures/openapi-chat.json) as a JSON Schema validator, for
 * checking the request bodies the tool builds.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { schemaValidators } from './openapi-schema.js';

/** `CreateChatCompletionRequest`. */
export const validateRequest: ValidateFunction = schemaValidators('openapi-chat.json', [
  'CreateChatCompletionRequest',
]).CreateChatCompletionRequest;

/** Asserts that `body` is a valid `CreateChatCompletionRequest`, showing ajv's errors if not. */
export function expectValidRequest(body: unknown): void {
  const ok = validateRequest(body);
  expect(ok, JSON.stringify(validateRequest.errors, null, 1)).toBe(true);
}
