/**
 * Pure: what a request cost, estimated from the token counts and a price per million tokens.
 * A small built-in table (OpenAI's list prices) that the config file's `prices` extends or
 * overrides; a price the server reports itself (OpenRouter's `usage.cost`) wins over both.
 */
import type { Usage } from './api/types.js';
import type { Price } from './config.js';

/** USD per million tokens, standard tier. */
export const BUILTIN_PRICES: Readonly<Record<string, Price>> = {
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-2024-08-06': { input: 2.5, output: 10 },
  'gpt-4o-2024-11-20': { input: 2.5, output: 10 },
  'gpt-4o-2024-05-13': { input: 5, output: 15 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
};

/**
 * The price for `model`: the exact id first, then without a provider prefix (`openai/`), then
 * without a date suffix (`-2024-08-06`). The config's prices are searched before the built-in
 * ones, so a price set for `gpt-4o` also covers its dated snapshots.
 */
export function priceFor(
  model: string,
  overrides: Readonly<Record<string, Price>> = {},
): Price | undefined {
  const bare = model.replace(/^[^/]+\//, '');
  const ids = [model, bare, bare.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
  for (const table of [overrides, BUILTIN_PRICES]) {
    for (const id of ids) {
      if (Object.hasOwn(table, id)) return table[id];
    }
  }
  return undefined;
}

export interface Cost {
  usd: number;
  /** `reported`: the server said so (OpenRouter); `estimated`: tokens × price. */
  kind: 'reported' | 'estimated';
  /** The price an estimate used. */
  price?: Price;
}

export function costOf(
  usage: Usage,
  model: string,
  overrides?: Readonly<Record<string, Price>>,
): Cost | undefined {
  if (typeof usage.cost === 'number' && Number.isFinite(usage.cost))
    return { usd: usage.cost, kind: 'reported' };
  const price = priceFor(model, overrides);
  if (!price) return undefined;
  return {
    usd: (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000,
    kind: 'estimated',
    price,
  };
}

/**
 * A list-price estimate at a share of the price (a batch engine's discount: 0.5 for half the
 * price). A price the server reported is what was charged, and stays as it is.
 */
export function atPriceFactor(
  cost: Cost | undefined,
  factor: number | undefined,
): Cost | undefined {
  if (!cost || factor === undefined || cost.kind === 'reported' || !cost.price) return cost;
  return {
    usd: cost.usd * factor,
    kind: 'estimated',
    price: { input: cost.price.input * factor, output: cost.price.output * factor },
  };
}

/** `cost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)` or `cost: $0.0040 (reported by the server)` */
export function formatCostLine(cost: Cost): string {
  if (cost.kind === 'reported' || !cost.price)
    return `cost: ${formatUsd(cost.usd)} (reported by the server)`;
  const perMillion = (usd: number): string => `$${usd.toFixed(2)}/M`;
  return `cost: ~${formatUsd(cost.usd)} (estimate: ${perMillion(cost.price.input)} in, ${perMillion(cost.price.output)} out)`;
}

/** `$0.0040`; prices under a cent keep four decimals. */
export function formatUsd(usd: number): string {
  return `$${usd >= 0.01 || usd === 0 ? usd.toFixed(2) : usd.toFixed(4)}`;
}
