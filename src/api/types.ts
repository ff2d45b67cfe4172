/**
 * Wire types for OpenAI-compatible chat completions: only the fields this tool sends or reads.
 * Names follow the OpenAPI schemas (`CreateChatCompletionRequest`,
 * `CreateChatCompletionStreamResponse`, `CompletionUsage`).
 */

export type ImageDetail = 'auto' | 'low' | 'high';

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: ImageDetail };
}

export type ContentPart = TextPart | ImagePart;

export type ChatMessage =
  { role: 'system'; content: string } | { role: 'user'; content: ContentPart[] };

export interface JsonSchemaFormat {
  type: 'json_schema';
  json_schema: { name: string; schema: Record<string, unknown>; strict: boolean };
}

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  stream: boolean;
  stream_options?: { include_usage: boolean };
  response_format?: JsonSchemaFormat;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** OpenRouter reports the request's price in credits (USD). */
  cost?: number;
  [key: string]: unknown;
}

export interface ChunkChoice {
  index?: number;
  delta?: { content?: string | null; refusal?: string | null; role?: string };
  finish_reason?: string | null;
}

export interface ChatCompletionChunk {
  id?: string;
  model?: string;
  choices?: ChunkChoice[];
  usage?: Usage | null;
}

export interface ChatCompletion {
  id?: string;
  model?: string;
  choices?: {
    index?: number;
    message?: { content?: string | null; refusal?: string | null };
    finish_reason?: string | null;
  }[];
  usage?: Usage | null;
}

/** What one request produced, streamed or not. */
export interface Completion {
  id: string | undefined;
  model: string | undefined;
  text: string;
  /** Set when the model refused; then `text` holds the refusal. */
  refusal: boolean;
  finishReason: string | undefined;
  usage: Usage | undefined;
}
