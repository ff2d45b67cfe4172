/**
 * The built-in presets: each wire schema follows OpenAI's strict structured-output rules, each
 * local schema is the same shape with stricter limits, and each answer is printed in its
 * natural form.
 */
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { findPreset, PRESET_NAMES, PRESETS, schemaName, type Preset } from '../src/presets.js';

/**
 * Everything that breaks OpenAI's strict mode in a schema, as JSON-pointer-ish paths: every
 * object must list all its properties in `required` and forbid additional properties.
 */
function strictProblems(schema: unknown, at = '#'): string[] {
  if (typeof schema !== 'object' || schema === null) return [`${at}: not a schema object`];
  const s = schema as Record<string, unknown>;
  const problems: string[] = [];
  const types = Array.isArray(s.type) ? (s.type as unknown[]) : [s.type];
  if (types.includes('object')) {
    const raw: unknown = s.properties;
    if (typeof raw !== 'object' || raw === null) {
      problems.push(`${at}: an object without properties`);
    } else {
      const properties = raw as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as unknown[]) : [];
      for (const key of Object.keys(properties)) {
        if (!required.includes(key)) problems.push(`${at}/properties/${key}: not in required`);
        problems.push(...strictProblems(properties[key], `${at}/properties/${key}`));
      }
      for (const key of required) {
        if (typeof key !== 'string' || !(key in properties))
          problems.push(`${at}: required lists ${String(key)}, which is not a property`);
      }
    }
    if (s.additionalProperties !== false) problems.push(`${at}: additionalProperties is not false`);
  }
  if (types.includes('array')) {
    if (s.items === undefined) problems.push(`${at}: an array without items`);
    else problems.push(...strictProblems(s.items, `${at}/items`));
  }
  for (const key of ['anyOf', 'allOf', 'oneOf'] as const) {
    const list = s[key];
    if (Array.isArray(list))
      list.forEach((sub, i) => problems.push(...strictProblems(sub, `${at}/${key}/${i}`)));
  }
  for (const key of ['$defs', 'definitions'] as const) {
    const defs = s[key];
    if (typeof defs === 'object' && defs !== null) {
      for (const [name, sub] of Object.entries(defs))
        problems.push(...strictProblems(sub, `${at}/${key}/${name}`));
    }
  }
  if (s.type === undefined && s.anyOf === undefined && s.$ref === undefined)
    problems.push(`${at}: no type`);
  return problems;
}

/** Keywords found anywhere in a schema. */
function keywordsIn(schema: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      out.add(key);
      if (key === 'properties' && typeof value === 'object' && value !== null) {
        Object.values(value).forEach(walk);
      } else {
        walk(value);
      }
    }
  };
  walk(schema);
  return out;
}

/** The shape of a schema with its limits left out: types, properties, required, items. */
function shape(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return schema;
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = { type: s.type };
  if (s.properties) {
    out.properties = Object.fromEntries(
      Object.entries(s.properties as Record<string, unknown>).map(([k, v]) => [k, shape(v)]),
    );
    out.required = s.required;
    out.additionalProperties = s.additionalProperties;
  }
  if (s.items) out.items = shape(s.items);
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true });
function localValidator(preset: Preset): (value: unknown) => boolean {
  const validate = ajv.compile(preset.localSchema ?? preset.schema);
  return (value) => validate(value);
}

function preset(name: string): Preset {
  const p = findPreset(name);
  if (!p) throw new Error(`no preset ${name}`);
  return p;
}

describe('the preset list', () => {
  it('has alt-text, caption, tags, ocr and objects, in that order', () => {
    expect(PRESET_NAMES).toEqual(['alt-text', 'caption', 'tags', 'ocr', 'objects']);
    expect(PRESETS.map((p) => p.name)).toEqual(PRESET_NAMES);
  });

  it('findPreset finds each by name and nothing else', () => {
    for (const name of PRESET_NAMES) expect(findPreset(name)?.name).toBe(name);
    expect(findPreset('Tags')).toBeUndefined();
    expect(findPreset('')).toBeUndefined();
    expect(findPreset('constructor')).toBeUndefined();
  });

  it.each(PRESETS.map((p) => [p.name, p] as const))(
    '%s has a prompt and a one-line description',
    (_name, p) => {
      expect(p.prompt.trim().length).toBeGreaterThan(20);
      expect(p.description.trim()).not.toBe('');
      expect(p.description).not.toContain('\n');
    },
  );
});

describe('wire schemas follow OpenAI strict mode', () => {
  it.each(PRESETS.map((p) => [p.name, p] as const))(
    '%s: an object at the root, every property required, no additional properties, recursively',
    (_name, p) => {
      expect(p.schema.type).toBe('object');
      expect(strictProblems(p.schema)).toEqual([]);
    },
  );

  it.each(PRESETS.map((p) => [p.name, p] as const))(
    '%s: the wire schema carries no length, pattern or range limits (they are checked locally)',
    (_name, p) => {
      const used = keywordsIn(p.schema);
      for (const keyword of [
        'maxLength',
        'minLength',
        'pattern',
        'minimum',
        'maximum',
        'minItems',
        'maxItems',
        'format',
      ]) {
        expect(used.has(keyword), `${p.name} sends ${keyword}`).toBe(false);
      }
    },
  );

  it.each(PRESETS.map((p) => [p.name, p] as const))(
    '%s: the local schema has the same shape as the wire schema and is strict too',
    (_name, p) => {
      const local = p.localSchema ?? p.schema;
      expect(shape(local)).toEqual(shape(p.schema));
      expect(strictProblems(local)).toEqual([]);
    },
  );

  it('the strictness checker itself notices a broken schema', () => {
    expect(
      strictProblems({
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'object', properties: {} } },
        required: ['a'],
      }),
    ).toEqual([
      '#/properties/b: not in required',
      '#/properties/b: additionalProperties is not false',
      '#: additionalProperties is not false',
    ]);
    expect(strictProblems({ type: 'array', items: { type: 'object' } })).toContain(
      '#/items: an object without properties',
    );
  });
});

describe('local checks', () => {
  it('alt-text: up to 125 characters, or empty for a decorative image', () => {
    const ok = localValidator(preset('alt-text'));
    expect(ok({ alt_text: 'A red bicycle leaning on a brick wall.' })).toBe(true);
    expect(ok({ alt_text: '' })).toBe(true);
    expect(ok({ alt_text: 'x'.repeat(125) })).toBe(true);
    expect(ok({ alt_text: 'x'.repeat(126) })).toBe(false);
    expect(ok({ alt_text: 42 })).toBe(false);
    expect(ok({})).toBe(false);
    expect(ok({ alt_text: 'ok', extra: 1 })).toBe(false);
  });

  it('alt-text: the limit counts characters, not bytes', () => {
    const ok = localValidator(preset('alt-text'));
    expect(ok({ alt_text: 'é'.repeat(125) })).toBe(true);
  });

  it('tags: lowercase, non-empty strings', () => {
    const ok = localValidator(preset('tags'));
    expect(ok({ tags: ['cat', 'red sofa', 'living room', 'été', '1990s'] })).toBe(true);
    expect(ok({ tags: [] })).toBe(true);
    expect(ok({ tags: ['cat', 'Sofa'] })).toBe(false);
    expect(ok({ tags: ['CAT'] })).toBe(false);
    expect(ok({ tags: [''] })).toBe(false);
    expect(ok({ tags: 'cat, sofa' })).toBe(false);
    expect(ok({ tags: [1] })).toBe(false);
  });

  it('objects: a name and a whole count of at least 0', () => {
    const ok = localValidator(preset('objects'));
    expect(ok({ objects: [{ name: 'cat', count: 2 }] })).toBe(true);
    expect(ok({ objects: [{ name: 'cat', count: 0 }] })).toBe(true);
    expect(ok({ objects: [] })).toBe(true);
    expect(ok({ objects: [{ name: 'cat', count: -1 }] })).toBe(false);
    expect(ok({ objects: [{ name: 'cat', count: 1.5 }] })).toBe(false);
    expect(ok({ objects: [{ name: '', count: 1 }] })).toBe(false);
    expect(ok({ objects: [{ name: 'cat' }] })).toBe(false);
    expect(ok({ objects: [{ name: 'cat', count: 1, colour: 'grey' }] })).toBe(false);
  });

  it('caption and ocr: a string, empty allowed for ocr', () => {
    expect(localValidator(preset('caption'))({ caption: 'A cat.' })).toBe(true);
    expect(localValidator(preset('caption'))({ caption: null })).toBe(false);
    expect(localValidator(preset('ocr'))({ text: '' })).toBe(true);
    expect(localValidator(preset('ocr'))({ text: 'EXIT\nSortie' })).toBe(true);
    expect(localValidator(preset('ocr'))({ text: ['EXIT'] })).toBe(false);
  });
});

describe('natural form', () => {
  const natural = (name: string, answer: Record<string, unknown>): [unknown, string] => {
    const p = preset(name);
    const value = p.unwrap(answer);
    return [value, p.toText(value)];
  };

  it('alt-text and caption: the string', () => {
    expect(natural('alt-text', { alt_text: 'A red bicycle.' })).toEqual([
      'A red bicycle.',
      'A red bicycle.',
    ]);
    expect(natural('alt-text', { alt_text: '' })).toEqual(['', '']);
    expect(natural('caption', { caption: 'Two cats asleep.' })).toEqual([
      'Two cats asleep.',
      'Two cats asleep.',
    ]);
  });

  it('tags: the array, printed one per line', () => {
    expect(natural('tags', { tags: ['cat', 'red sofa', 'window'] })).toEqual([
      ['cat', 'red sofa', 'window'],
      'cat\nred sofa\nwindow',
    ]);
    expect(natural('tags', { tags: [] })).toEqual([[], '']);
  });

  it('ocr: the text exactly as it is, line breaks and spaces kept', () => {
    const text = '  EXIT\n\nSortie  \tNotausgang\n';
    expect(natural('ocr', { text })).toEqual([text, text]);
  });

  it('objects: the array, printed as "name: count" lines', () => {
    const objects = [
      { name: 'cat', count: 2 },
      { name: 'coffee mug', count: 1 },
      { name: 'ghost', count: 0 },
    ];
    expect(natural('objects', { objects })).toEqual([objects, 'cat: 2\ncoffee mug: 1\nghost: 0']);
  });
});

describe('schemaName', () => {
  it.each([
    ['alt-text', 'alt-text'],
    ['invoice.json', 'invoice'],
    ['invoice.schema.json', 'invoice_schema'],
    ['My Receipt (v2)', 'My_Receipt_v2'],
    ['Ünïcode names', 'n_code_names'],
    ['', 'answer'],
    ['...', 'answer'],
    ['***', 'answer'],
  ])('%j → %j', (input, expected) => {
    expect(schemaName(input)).toBe(expected);
  });

  it('is at most 64 characters of letters, digits, _ and -', () => {
    const name = schemaName(`${'long name '.repeat(20)}.json`);
    expect(name.length).toBe(64);
    for (const input of ['a b/c\\d:e', 'x'.repeat(200), 'über-schema v1.2', '🙂 smile']) {
      expect(schemaName(input)).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    }
  });

  it('every preset name is already a valid schema name', () => {
    for (const name of PRESET_NAMES) expect(schemaName(name)).toBe(name);
  });
});
