/**
 * Colour decisions as a pure function. chalk's own detection ignores NO_COLOR
 * (chalk/supports-color#74) and knows nothing of --quiet, so each stream gets a painter built
 * from `colorLevel()`: chalk at that level, or, without colour, one that leaves text alone
 * and loads no chalk (its colour detection imports node:process and node:tty, a few ms of
 * every piped or --quiet run).
 */

export type ColorLevel = 0 | 1 | 2 | 3;

export interface ColorContext {
  env: Readonly<Record<string, string | undefined>>;
  isTTY: boolean;
  quiet?: boolean;
}

/** 0 (none) to 3 (truecolor) for one stream. */
export function colorLevel({ env, isTTY, quiet = false }: ColorContext): ColorLevel {
  // https://no-color.org: any non-empty value turns colour off, whatever else is set.
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (quiet) return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    if (force === '2') return 2;
    if (force === '3') return 3;
    return 1;
  }
  if (!isTTY || isCI(env) || env.TERM === 'dumb') return 0;
  if (env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit') return 3;
  if (/-256(color)?$/i.test(env.TERM ?? '')) return 2;
  return 1;
}

/** Whether we run under a CI system (no spinner, no colour). */
export function isCI(env: Readonly<Record<string, string | undefined>>): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/** How a piece of text is shown (nothing at all without colour). */
export type Style = 'dim' | 'red' | 'bold-red' | 'green' | 'yellow';

/** Colours text for one stream. */
export interface Painter {
  readonly level: ColorLevel;
  paint(text: string, style: Style | undefined): string;
}

/** The painter of a stream without colour. */
export const PLAIN: Painter = { level: 0, paint: (text) => text };

/** The painter for a stream: chalk (loaded now) at the level `colorLevel()` gives, or PLAIN. */
export async function painterFor(ctx: ColorContext): Promise<Painter> {
  const level = colorLevel(ctx);
  if (level === 0) return PLAIN;
  const { Chalk } = await import('chalk');
  const chalk = new Chalk({ level });
  const styles: Record<Style, (text: string) => string> = {
    dim: chalk.dim,
    red: chalk.red,
    'bold-red': chalk.red.bold,
    green: chalk.green,
    yellow: chalk.yellow,
  };
  return { level, paint: (text, style) => (style ? styles[style](text) : text) };
}
