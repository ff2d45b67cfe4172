/**
 * Prices and cost: the lookup order (exact id, then without a provider prefix, then without a
 * date suffix; config prices before built-in ones at each step), the arithmetic, a cost the
 * server reports itself, and the lines shown to the user.
 */
import { describe, expect, it } from 'vitest';
import type { Usage } from '../src/api/types.js';
import { BUILTIN_PRICES, costOf, formatCostLine, formatUsd, priceFor } from '../src/pricing.js';

const usage = (prompt: number, completion: number, extra: Partial<Usage> = {}): Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  ...extra,
});

describe('priceFor', () => {
  it('finds an exact id', () => {
    expect(priceFor('gpt-4o-2024-08-06')).toEqual({ input: 2.5, output: 10 });
    expect(priceFor('gpt-4o-mini')).toEqual({ input: 0.15, output: 0.6 });
  });

  it('an exact dated id beats its family (gpt-4o-2024-05-13 was dearer)', () => {
    expect(priceFor('gpt-4o-2024-05-13')).toEqual({ input: 5, output: 15 });
    expect(priceFor('gpt-4o')).toEqual({ input: 2.5, output: 10 });
  });

  it('ignores a provider prefix', () => {
    expect(priceFor('openai/gpt-4o-mini')).toEqual({ input: 0.15, output: 0.6 });
    expect(priceFor('openai/gpt-4o-2024-05-13')).toEqual({ input: 5, output: 15 });
    expect(priceFor('azure/gpt-4.1')).toEqual({ input: 2, output: 8 });
  });

  it('ignores a date suffix', () => {
    expect(priceFor('gpt-4.1-2025-04-14')).toEqual({ input: 2, output: 8 });
    expect(priceFor('gpt-4o-mini-2024-07-18')).toEqual({ input: 0.15, output: 0.6 });
    expect(priceFor('gpt-5-nano-2025-08-07')).toEqual({ input: 0.05, output: 0.4 });
  });

  it('ignores both at once', () => {
    expect(priceFor('openai/gpt-4.1-mini-2025-04-14')).toEqual({ input: 0.4, output: 1.6 });
  });

  it('does not strip anything else', () => {
    expect(priceFor('gpt-4o-2024-08-06-preview')).toBeUndefined();
    expect(priceFor('gpt-4o-audio-preview')).toBeUndefined();
    expect(priceFor('gpt-4o-2024-08')).toBeUndefined();
    expect(priceFor('GPT-4O')).toBeUndefined();
  });

  it('knows nothing of other models', () => {
    for (const model of ['llava', 'llava:13b', 'gemini-2.0-flash', 'mydeploy', '', 'unknown']) {
      expect(priceFor(model), model).toBeUndefined();
    }
  });

  it('is not fooled by names of Object.prototype', () => {
    for (const model of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'x/valueOf']) {
      expect(priceFor(model), model).toBeUndefined();
      expect(priceFor(model, {}), model).toBeUndefined();
    }
  });

  it('a config price adds a model the table does not know', () => {
    const overrides = { 'llava:13b': { input: 0, output: 0 }, mydeploy: { input: 3, output: 12 } };
    expect(priceFor('llava:13b', overrides)).toEqual({ input: 0, output: 0 });
    expect(priceFor('mydeploy', overrides)).toEqual({ input: 3, output: 12 });
    expect(priceFor('mydeploy-2025-01-01', overrides)).toEqual({ input: 3, output: 12 });
  });

  it('a config price overrides the built-in one', () => {
    const overrides = { 'gpt-4o-2024-08-06': { input: 1.25, output: 5 } };
    expect(priceFor('gpt-4o-2024-08-06', overrides)).toEqual({ input: 1.25, output: 5 });
    expect(priceFor('openai/gpt-4o-2024-08-06', overrides)).toEqual({ input: 1.25, output: 5 });
    // Other models keep their built-in price.
    expect(priceFor('gpt-4o-mini', overrides)).toEqual({ input: 0.15, output: 0.6 });
  });

  it('config prices are searched before the built-in table, at every step', () => {
    const overrides = { 'gpt-4o': { input: 1, output: 2 } };
    // The override for gpt-4o covers a snapshot the table does not list…
    expect(priceFor('gpt-4o-2030-01-01', overrides)).toEqual({ input: 1, output: 2 });
    // …and one it does: a price set for a model covers its dated snapshots.
    expect(priceFor('gpt-4o-2024-08-06', overrides)).toEqual({ input: 1, output: 2 });
    // Without overrides the built-in snapshot price is found.
    expect(priceFor('gpt-4o-2024-08-06')).toEqual({ input: 2.5, output: 10 });
    // An override for the prefixed id is found before the bare built-in one.
    expect(priceFor('openrouter/gpt-4o', { 'openrouter/gpt-4o': { input: 9, output: 9 } })).toEqual(
      { input: 9, output: 9 },
    );
  });

  it('does not change the built-in table', () => {
    const before = JSON.stringify(BUILTIN_PRICES);
    priceFor('gpt-4o', { 'gpt-4o': { input: 0, output: 0 }, extra: { input: 1, output: 1 } });
    expect(JSON.stringify(BUILTIN_PRICES)).toBe(before);
    expect(priceFor('extra')).toBeUndefined();
  });

  it('every built-in price is a non-negative number per million tokens, output ≥ input', () => {
    for (const [model, price] of Object.entries(BUILTIN_PRICES)) {
      expect(price.input, model).toBeGreaterThanOrEqual(0);
      expect(price.output, model).toBeGreaterThanOrEqual(price.input);
      expect(model).not.toMatch(/\//);
    }
  });
});

describe('costOf', () => {
  it('estimates from tokens × price per million', () => {
    const cost = costOf(usage(1250, 89), 'gpt-4o-2024-08-06');
    expect(cost?.kind).toBe('estimated');
    expect(cost?.price).toEqual({ input: 2.5, output: 10 });
    expect(cost?.usd).toBeCloseTo(0.004015, 12);
  });

  it('uses the config prices', () => {
    const cost = costOf(usage(1_000_000, 500_000), 'llava', { llava: { input: 0.5, output: 2 } });
    expect(cost).toEqual({ usd: 1.5, kind: 'estimated', price: { input: 0.5, output: 2 } });
  });

  it('is undefined for a model without a price', () => {
    expect(costOf(usage(1250, 89), 'llava')).toBeUndefined();
  });

  it('a cost the server reports wins, whatever the model', () => {
    expect(costOf(usage(1250, 89, { cost: 0.00123 }), 'gpt-4o')).toEqual({
      usd: 0.00123,
      kind: 'reported',
    });
    expect(costOf(usage(1250, 89, { cost: 0.5 }), 'some/unknown-model')).toEqual({
      usd: 0.5,
      kind: 'reported',
    });
  });

  it('a reported cost of 0 (a free model) is a cost, not a missing one', () => {
    expect(costOf(usage(1250, 89, { cost: 0 }), 'gpt-4o')).toEqual({ usd: 0, kind: 'reported' });
  });

  it('a reported cost that is not a finite number is ignored', () => {
    for (const cost of [Number.NaN, Infinity, '0.01' as unknown as number]) {
      const result = costOf(usage(1250, 89, { cost }), 'gpt-4o-2024-08-06');
      expect(result?.kind).toBe('estimated');
      expect(result?.usd).toBeCloseTo(0.004015, 12);
    }
  });

  it('zero tokens cost nothing', () => {
    expect(costOf(usage(0, 0), 'gpt-4o')?.usd).toBe(0);
  });
});

describe('formatCostLine and formatUsd', () => {
  it('an estimate: "~", four decimals under a cent, and the prices used', () => {
    const cost = costOf(usage(1250, 89), 'gpt-4o-2024-08-06')!;
    expect(formatCostLine(cost)).toBe('cost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)');
  });

  it('a reported cost says so', () => {
    expect(formatCostLine({ usd: 0.00123, kind: 'reported' })).toBe(
      'cost: $0.0012 (reported by the server)',
    );
    expect(formatCostLine({ usd: 0, kind: 'reported' })).toBe(
      'cost: $0.00 (reported by the server)',
    );
  });

  it('prices with more decimals are shown to the cent', () => {
    const cost = costOf(usage(2_000_000, 1_000_000), 'gpt-4o-mini')!;
    expect(formatCostLine(cost)).toBe('cost: ~$0.90 (estimate: $0.15/M in, $0.60/M out)');
  });

  it.each([
    [0, '$0.00'],
    [0.004015, '$0.0040'],
    [0.00005, '$0.0001'],
    [0.0099, '$0.0099'],
    [0.01, '$0.01'],
    [0.125, '$0.13'],
    [12.3456, '$12.35'],
  ])('formatUsd(%d) is %s', (usd, text) => {
    expect(formatUsd(usd)).toBe(text);
  });
});
