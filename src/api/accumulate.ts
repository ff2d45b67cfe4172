/**
 * Pure: folds stream chunks (or one non-streamed response) into a `Completion`.
 * Only the first choice is read; the tool never asks for more than one.
 */
import type { ChatCompletion, ChatCompletionChunk, Completion, Usage } from './types.js';

export class CompletionAccumulator {
  private id: string | undefined;
  private model: string | undefined;
  private text = '';
  private refusal = '';
  private finishReason: string | undefined;
  private usage: Usage | undefined;

  /** Adds one chunk; returns the answer text it added (empty when none). */
  add(chunk: ChatCompletionChunk): string {
    // Azure's first chunk has an empty id and model: keep the first real ones.
    if (!this.id && chunk.id) this.id = chunk.id;
    if (!this.model && chunk.model) this.model = chunk.model;
    // Usage comes on a last chunk with no choices (include_usage), or on the finish chunk
    // (OpenRouter, older llama.cpp); `usage: null` on every other chunk means "not yet".
    if (isUsage(chunk.usage)) this.usage = chunk.usage;
    const choice = chunk.choices?.find((c) => (c.index ?? 0) === 0);
    if (!choice) return '';
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (!delta) return '';
    if (typeof delta.refusal === 'string') this.refusal += delta.refusal;
    if (typeof delta.content === 'string' && delta.content !== '') {
      this.text += delta.content;
      return delta.content;
    }
    return '';
  }

  /** Whether any answer text has arrived. */
  get hasText(): boolean {
    return this.text !== '';
  }

  result(): Completion {
    const refused = this.text === '' && this.refusal !== '';
    return {
      id: this.id,
      model: this.model,
      text: refused ? this.refusal : this.text,
      refusal: refused,
      finishReason: this.finishReason,
      usage: this.usage,
    };
  }
}

/** A non-streamed response as a `Completion`. Returns undefined if it is not one. */
export function completionFromResponse(body: ChatCompletion): Completion | undefined {
  const choice = body.choices?.find((c) => (c.index ?? 0) === 0);
  if (!choice?.message) return undefined;
  const content = typeof choice.message.content === 'string' ? choice.message.content : '';
  const refusal = typeof choice.message.refusal === 'string' ? choice.message.refusal : '';
  const refused = content === '' && refusal !== '';
  return {
    id: body.id || undefined,
    model: body.model || undefined,
    text: refused ? refusal : content,
    refusal: refused,
    finishReason: choice.finish_reason ?? undefined,
    usage: isUsage(body.usage) ? body.usage : undefined,
  };
}

function isUsage(value: unknown): value is Usage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Usage).prompt_tokens === 'number' &&
    typeof (value as Usage).completion_tokens === 'number'
  );
}
