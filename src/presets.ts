/**
 * Pure: built-in structured answers. Each preset is a prompt, the JSON schema sent as
 * `response_format` (strict structured outputs: an object at the root, every property
 * required, no additional properties), a stricter schema checked locally (length limits and
 * patterns that strict mode does not accept on the wire), and how to print the answer.
 */

export interface Preset {
  name: string;
  description: string;
  prompt: string;
  /** Sent as `response_format.json_schema.schema`. */
  schema: Record<string, unknown>;
  /** Checked on the answer; defaults to `schema`. */
  localSchema?: Record<string, unknown>;
  /** The answer's natural value: what `--json` puts in `text`. */
  unwrap(answer: Record<string, unknown>): unknown;
  /** The natural value as text for stdout. */
  toText(value: unknown): string;
}

const object = (properties: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});

export const PRESETS: readonly Preset[] = [
  {
    name: 'alt-text',
    description:
      'one sentence of alt text (at most 125 characters), or "" for a purely decorative image',
    prompt:
      'Write alt text for this image for a screen-reader user: one sentence of at most 125 characters that ' +
      'conveys what matters in the image, without "image of" or "picture of". If the image is purely ' +
      'decorative and carries no information, answer with an empty string.',
    schema: object({
      alt_text: { type: 'string', description: 'at most 125 characters; "" if decorative' },
    }),
    localSchema: object({ alt_text: { type: 'string', maxLength: 125 } }),
    unwrap: (a) => a.alt_text,
    toText: (v) => String(v),
  },
  {
    name: 'caption',
    description: 'a caption',
    prompt: 'Write a caption for this image: one or two sentences describing what it shows.',
    schema: object({ caption: { type: 'string' } }),
    unwrap: (a) => a.caption,
    toText: (v) => String(v),
  },
  {
    name: 'tags',
    description: 'lowercase keywords, one per line',
    prompt:
      'List keywords for this image: the main subjects, objects, setting, colours and style. Each keyword is ' +
      'lowercase, one to three words, without duplicates.',
    schema: object({ tags: { type: 'array', items: { type: 'string' } } }),
    localSchema: object({
      tags: { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[^A-Z]*$' } },
    }),
    unwrap: (a) => a.tags,
    toText: (v) => (v as string[]).join('\n'),
  },
  {
    name: 'ocr',
    description: 'the text in the image, verbatim, in reading order',
    prompt:
      'Transcribe all the text in this image exactly as written, in reading order, keeping line breaks. ' +
      'Do not correct, translate or summarise it. If there is no text, answer with an empty string.',
    schema: object({ text: { type: 'string' } }),
    unwrap: (a) => a.text,
    toText: (v) => String(v),
  },
  {
    name: 'objects',
    description: 'the objects in the image and how many of each, as "name: count" lines',
    prompt:
      'List the distinct kinds of objects in this image, each with how many of it are visible.',
    schema: object({
      objects: {
        type: 'array',
        items: object({ name: { type: 'string' }, count: { type: 'integer' } }),
      },
    }),
    localSchema: object({
      objects: {
        type: 'array',
        items: object({
          name: { type: 'string', minLength: 1 },
          count: { type: 'integer', minimum: 0 },
        }),
      },
    }),
    unwrap: (a) => a.objects,
    toText: (v) =>
      (v as { name: string; count: number }[]).map((o) => `${o.name}: ${o.count}`).join('\n'),
  },
];

export const PRESET_NAMES = PRESETS.map((p) => p.name);

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}

/** A name for `json_schema.name`: letters, digits, `_` and `-`, at most 64 characters. */
export function schemaName(text: string): string {
  const name = text
    .replace(/\.[a-z]+$/i, '')
    .replace(/[^a-zA-Z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return (name || 'answer').slice(0, 64);
}
