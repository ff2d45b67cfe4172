/**
 * Pure image geometry and token maths, as OpenAI documents them (vision guide, "Calculating
 * costs"). Used to scale images to what the server would scale them to anyway, and to
 * estimate what an image costs before it is sent.
 */
import type { ImageDetail } from '../api/types.js';

export interface Size {
  width: number;
  height: number;
}

/** Long-edge limit of `detail: low`. */
export const LOW_DETAIL_EDGE = 512;
/** High detail: first fit inside this square… */
export const HIGH_DETAIL_EDGE = 2048;
/** …then make the shortest side at most this. */
export const HIGH_DETAIL_SHORT_SIDE = 768;

function scaled(size: Size, scale: number): Size {
  if (scale >= 1) return { width: size.width, height: size.height };
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/**
 * The size an image is worth sending at: what the server scales it to, never up. With
 * `maxEdge` (--max-size), only that long-edge limit applies, for providers with other rules;
 * with `detail: low`, the 512-px fit. Otherwise the rule of the model it goes to: a model that
 * counts 32-px patches (gpt-4.1-mini, o4-mini…) keeps every pixel up to its patch cap; any
 * other model, known or not, gets the tile rule (fit 2048, short side at most 768).
 */
export function targetSize(
  size: Size,
  detail: ImageDetail | undefined,
  maxEdge?: number,
  model?: string,
): Size {
  const long = Math.max(size.width, size.height);
  if (maxEdge !== undefined) return scaled(size, maxEdge / long);
  if (detail === 'low') return scaled(size, LOW_DETAIL_EDGE / long);
  if (model !== undefined && countingFor(model)?.kind === 'patches') {
    return scaled(size, patchScale(size));
  }
  // high and auto: one scale factor for both steps, so there is a single resize.
  const fit = Math.min(1, HIGH_DETAIL_EDGE / long);
  const short = Math.min(size.width, size.height) * fit;
  const shrink = Math.min(1, HIGH_DETAIL_SHORT_SIDE / short);
  return scaled(size, fit * shrink);
}

/** How a model family counts image tokens. */
type Counting =
  { kind: 'tiles'; base: number; tile: number } | { kind: 'patches'; multiplier: number };

/**
 * Model families whose image costs OpenAI documents, matched on the model id (a dated
 * snapshot like gpt-4o-2024-08-06 counts as its family; a provider prefix like `openai/` is
 * ignored). Anything else is unknown: no estimate is better than a wrong one.
 */
const FAMILIES: { pattern: RegExp; counting: Counting }[] = [
  { pattern: /^gpt-4o-mini(-|$)/, counting: { kind: 'tiles', base: 2833, tile: 5667 } },
  { pattern: /^(gpt-4\.1|gpt-5)-mini(-|$)/, counting: { kind: 'patches', multiplier: 1.62 } },
  { pattern: /^(gpt-4\.1|gpt-5)-nano(-|$)/, counting: { kind: 'patches', multiplier: 2.46 } },
  { pattern: /^o4-mini(-|$)/, counting: { kind: 'patches', multiplier: 1.72 } },
  {
    pattern: /^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-4-vision)(-|$)/,
    counting: { kind: 'tiles', base: 85, tile: 170 },
  },
  { pattern: /^(o1|o1-pro|o3)(-|$)/, counting: { kind: 'tiles', base: 75, tile: 150 } },
  { pattern: /^gpt-5(-chat)?(-|$)/, counting: { kind: 'tiles', base: 70, tile: 140 } },
];

function countingFor(model: string): Counting | undefined {
  const id = model.toLowerCase().replace(/^.*\//, '');
  return FAMILIES.find((f) => f.pattern.test(id))?.counting;
}

const PATCH = 32;
/** Most 32-px patches a patch-counting model takes; a larger image is scaled down to fit. */
const PATCH_CAP = 1536;

/**
 * The scale a patch-counting model applies (1 when the image is within the cap): to the
 * area of 1536 patches, then down until one side is a whole number of patches.
 */
function patchScale(size: Size): number {
  const raw = Math.ceil(size.width / PATCH) * Math.ceil(size.height / PATCH);
  if (raw <= PATCH_CAP) return 1;
  const r = Math.sqrt((PATCH * PATCH * PATCH_CAP) / (size.width * size.height));
  const w = size.width * r;
  const h = size.height * r;
  return r * Math.min(Math.floor(w / PATCH) / (w / PATCH), Math.floor(h / PATCH) / (h / PATCH));
}

/** 32-px patches of an image for patch-counting models, after their own downscale. */
export function patchCount(size: Size): number {
  const r = patchScale(size);
  // The scale makes one side a whole number of patches; the epsilon keeps float error
  // (44.000000001) from counting a patch that is not there.
  const patches =
    Math.ceil((size.width * r) / PATCH - 1e-9) * Math.ceil((size.height * r) / PATCH - 1e-9);
  return Math.min(patches, PATCH_CAP);
}

/** 512-px tiles after the high-detail downscale. */
export function tileCount(size: Size): number {
  const fitted = targetSize(size, 'high');
  return Math.ceil(fitted.width / 512) * Math.ceil(fitted.height / 512);
}

/**
 * Estimated input tokens for one image of `size` sent with `detail` to `model`, or undefined
 * when the model's counting is not documented.
 */
export function estimateImageTokens(
  model: string,
  size: Size,
  detail: ImageDetail | undefined,
): number | undefined {
  const counting = countingFor(model);
  if (!counting) return undefined;
  if (counting.kind === 'patches') return Math.ceil(patchCount(size) * counting.multiplier);
  if (detail === 'low') return counting.base;
  return counting.base + counting.tile * tileCount(size);
}
