/**
 * Image geometry and token estimates (src/input/tokens.ts), checked against the worked
 * examples of OpenAI's vision guide ("Calculating costs") and the README's rules.
 */
import { describe, expect, it } from 'vitest';
import { estimateImageTokens, patchCount, targetSize, tileCount } from '../../src/input/tokens.js';

const size = (width: number, height: number) => ({ width, height });

describe('targetSize', () => {
  it('applies each documented limit to the pixel: 768 short side, 2048 long edge, 512 at low', () => {
    // One pixel over a limit is scaled to it; exactly at the limit is left alone.
    for (const detail of ['high', 'auto', undefined] as const) {
      expect(targetSize(size(769, 769), detail)).toEqual(size(768, 768));
      expect(targetSize(size(1000, 769), detail)).toEqual(size(999, 768));
      expect(targetSize(size(769, 1000), detail)).toEqual(size(768, 999));
      expect(targetSize(size(768, 768), detail)).toEqual(size(768, 768));
      expect(targetSize(size(1000, 768), detail)).toEqual(size(1000, 768));
      expect(targetSize(size(2049, 100), detail)).toEqual(size(2048, 100));
      expect(targetSize(size(100, 2049), detail)).toEqual(size(100, 2048));
      expect(targetSize(size(2048, 100), detail)).toEqual(size(2048, 100));
    }
    expect(targetSize(size(513, 100), 'low')).toEqual(size(512, 100));
    expect(targetSize(size(100, 513), 'low')).toEqual(size(100, 512));
    expect(targetSize(size(512, 512), 'low')).toEqual(size(512, 512));
  });

  it.each([
    // [width, height, expected] for high, auto and unset: fit in 2048, then short side ≤ 768.
    [4000, 1000, size(2048, 512)],
    [1000, 4000, size(512, 2048)],
    [4032, 3024, size(1024, 768)],
    [3024, 4032, size(768, 1024)],
    [1024, 1024, size(768, 768)],
    [2048, 4096, size(768, 1536)],
    [1024, 768, size(1024, 768)],
    [8000, 100, size(2048, 26)],
    [100, 80, size(100, 80)],
    [1, 1, size(1, 1)],
  ])('%i×%i → %o with detail high, auto and unset', (w, h, expected) => {
    expect(targetSize(size(w, h), 'high')).toEqual(expected);
    expect(targetSize(size(w, h), 'auto')).toEqual(expected);
    expect(targetSize(size(w, h), undefined)).toEqual(expected);
  });

  it.each([
    [4000, 1000, size(512, 128)],
    [1000, 4000, size(128, 512)],
    [4032, 3024, size(512, 384)],
    [1024, 1024, size(512, 512)],
    [512, 300, size(512, 300)],
    [100, 80, size(100, 80)],
  ])('%i×%i → %o with detail low (fit in 512×512, never up)', (w, h, expected) => {
    expect(targetSize(size(w, h), 'low')).toEqual(expected);
  });

  it('--max-size sets the long edge and replaces the detail rule', () => {
    expect(targetSize(size(4000, 1000), undefined, 300)).toEqual(size(300, 75));
    expect(targetSize(size(1000, 4000), 'high', 300)).toEqual(size(75, 300));
    expect(targetSize(size(4000, 1000), 'low', 1000)).toEqual(size(1000, 250));
    // Larger than the detail rule allows: the rule no longer applies.
    expect(targetSize(size(4000, 3000), 'high', 3000)).toEqual(size(3000, 2250));
    // Never scaled up.
    expect(targetSize(size(100, 80), undefined, 300)).toEqual(size(100, 80));
    expect(targetSize(size(300, 80), undefined, 300)).toEqual(size(300, 80));
  });

  describe('for a model that counts 32-px patches (gpt-4.1-mini, -nano, o4-mini, gpt-5-mini, -nano)', () => {
    const PATCH_MODELS = [
      'gpt-4.1-mini',
      'gpt-4.1-nano',
      'o4-mini',
      'gpt-5-mini',
      'gpt-5-nano',
      'openai/gpt-4.1-mini-2025-04-14',
      'o4-mini-2025-04-16',
    ];

    it.each(PATCH_MODELS)('%s: up to 1,536 patches the image is not scaled', (model) => {
      for (const detail of ['high', 'auto', undefined] as const) {
        expect(targetSize(size(1024, 1024), detail, undefined, model)).toEqual(size(1024, 1024));
        // 48 × 32 patches: exactly the cap.
        expect(targetSize(size(1536, 1024), detail, undefined, model)).toEqual(size(1536, 1024));
        expect(targetSize(size(1024, 1536), detail, undefined, model)).toEqual(size(1024, 1536));
        // Partial patches count: 48 × 32 again, exactly the cap.
        expect(targetSize(size(1505, 993), detail, undefined, model)).toEqual(size(1505, 993));
        expect(targetSize(size(100, 80), detail, undefined, model)).toEqual(size(100, 80));
      }
    });

    it.each(PATCH_MODELS)('%s: over 1,536 patches, the size the model scales it to', (model) => {
      // OpenAI's example: 1800×2400 is scaled to 1056×1408 (33 × 44 = 1,452 patches).
      expect(targetSize(size(1800, 2400), 'high', undefined, model)).toEqual(size(1056, 1408));
      expect(targetSize(size(4032, 3024), undefined, undefined, model)).toEqual(size(1408, 1056));
      // One patch over the cap (53 × 29 = 1,537): scaled until one side is whole patches.
      expect(targetSize(size(1665, 897), 'auto', undefined, model)).toEqual(size(1663, 896));
      // One pixel wider than the cap (49 × 32 patches).
      expect(targetSize(size(1537, 1024), 'auto', undefined, model)).toEqual(size(1489, 992));
      expect(targetSize(size(1536, 1025), 'auto', undefined, model)).toEqual(size(1504, 1004));
    });

    it('the scaled image has as many patches as the original counts, never more than 1,536', () => {
      for (const s of [
        size(1665, 897),
        size(1537, 1024),
        size(1536, 1025),
        size(1800, 2400),
        size(4032, 3024),
        size(3024, 4032),
        size(10000, 10000),
        size(1281, 1248),
        size(20000, 100),
        size(6000, 4000),
      ]) {
        const sent = targetSize(s, 'high', undefined, 'gpt-4.1-mini');
        const label = `${s.width}×${s.height} → ${sent.width}×${sent.height}`;
        expect(sent.width, label).toBeLessThan(s.width);
        const patches = Math.ceil(sent.width / 32) * Math.ceil(sent.height / 32);
        expect(patches, label).toBeLessThanOrEqual(1536);
        expect(patches, label).toBe(patchCount(s));
        // Sending it changes nothing: the model does not scale it again.
        expect(targetSize(sent, 'high', undefined, 'gpt-4.1-mini'), label).toEqual(sent);
      }
    });

    it('detail low and --max-size apply as for any model', () => {
      expect(targetSize(size(4032, 3024), 'low', undefined, 'gpt-4.1-mini')).toEqual(
        size(512, 384),
      );
      expect(targetSize(size(4032, 3024), 'high', 300, 'o4-mini')).toEqual(size(300, 225));
      expect(targetSize(size(100, 80), 'high', 300, 'o4-mini')).toEqual(size(100, 80));
    });

    it.each(['gpt-4.1', 'gpt-4o', 'gpt-4o-mini', 'gpt-5', 'o3', 'llava', 'unknown'])(
      '%s keeps the tile rule (short side 768)',
      (model) => {
        expect(targetSize(size(4032, 3024), 'high', undefined, model)).toEqual(size(1024, 768));
        expect(targetSize(size(1024, 1024), undefined, undefined, model)).toEqual(size(768, 768));
      },
    );
  });

  it('never returns a side of 0', () => {
    expect(targetSize(size(10000, 1), 'low')).toEqual(size(512, 1));
    expect(targetSize(size(1, 10000), undefined, 16)).toEqual(size(1, 16));
  });
});

describe('tileCount', () => {
  it.each([
    [1024, 1024, 4],
    [2048, 4096, 6],
    [512, 512, 1],
    [513, 512, 2],
    [4032, 3024, 4],
    [4000, 1000, 4],
    [100, 80, 1],
  ])('%i×%i → %i tiles of 512 px after the high-detail downscale', (w, h, tiles) => {
    expect(tileCount(size(w, h))).toBe(tiles);
  });
});

describe('patchCount', () => {
  it('1024×1024 → 1024 patches (OpenAI example)', () => {
    expect(patchCount(size(1024, 1024))).toBe(1024);
  });

  it('1800×2400 → 1452 patches (OpenAI example: scaled to 1056×1408)', () => {
    expect(patchCount(size(1800, 2400))).toBe(1452);
    expect(patchCount(size(2400, 1800))).toBe(1452);
  });

  it('counts partial patches, and caps at 1536', () => {
    expect(patchCount(size(33, 33))).toBe(4);
    expect(patchCount(size(1, 1))).toBe(1);
    expect(patchCount(size(1280, 1216))).toBe(40 * 38);
    for (const s of [size(4032, 3024), size(10000, 10000), size(1281, 1248)]) {
      const n = patchCount(s);
      expect(n, `${s.width}×${s.height}`).toBeLessThanOrEqual(1536);
      expect(n, `${s.width}×${s.height}`).toBeGreaterThan(1300);
    }
    // A thin strip: scaled to 1536 patches' worth of area, then down to whole patches on the
    // short side (88.7 px → 64 px: 2 patches), so far fewer than the cap.
    expect(patchCount(size(20000, 100))).toBe(800);
  });
});

describe('estimateImageTokens', () => {
  it('gpt-4o: 85 + 170 a tile (1024×1024 high → 765, 2048×4096 high → 1105, low → 85)', () => {
    expect(estimateImageTokens('gpt-4o', size(1024, 1024), 'high')).toBe(765);
    expect(estimateImageTokens('gpt-4o', size(2048, 4096), 'high')).toBe(1105);
    expect(estimateImageTokens('gpt-4o', size(4096, 8192), 'low')).toBe(85);
    expect(estimateImageTokens('gpt-4o', size(1024, 1024), 'low')).toBe(85);
    // auto and unset count as high: the most it can be.
    expect(estimateImageTokens('gpt-4o', size(1024, 1024), 'auto')).toBe(765);
    expect(estimateImageTokens('gpt-4o', size(1024, 1024), undefined)).toBe(765);
  });

  it('gpt-4.1, gpt-4.5 and gpt-4-turbo count like gpt-4o', () => {
    for (const model of ['gpt-4.1', 'gpt-4.5-preview', 'gpt-4-turbo', 'chatgpt-4o-latest']) {
      expect(estimateImageTokens(model, size(1024, 1024), 'high'), model).toBe(765);
      expect(estimateImageTokens(model, size(1024, 1024), 'low'), model).toBe(85);
    }
  });

  it('gpt-4o-mini: 2833 + 5667 a tile', () => {
    expect(estimateImageTokens('gpt-4o-mini', size(1024, 1024), 'high')).toBe(2833 + 5667 * 4);
    expect(estimateImageTokens('gpt-4o-mini', size(2048, 4096), 'high')).toBe(2833 + 5667 * 6);
    expect(estimateImageTokens('gpt-4o-mini', size(1024, 1024), 'low')).toBe(2833);
  });

  it('o1 and o3: 75 + 150 a tile', () => {
    for (const model of ['o1', 'o1-pro', 'o3', 'o1-2024-12-17', 'o3-2025-04-16']) {
      expect(estimateImageTokens(model, size(1024, 1024), 'high'), model).toBe(75 + 150 * 4);
      expect(estimateImageTokens(model, size(1024, 1024), 'low'), model).toBe(75);
    }
  });

  it('gpt-5: 70 + 140 a tile', () => {
    for (const model of ['gpt-5', 'gpt-5-2025-08-07', 'gpt-5-chat-latest']) {
      expect(estimateImageTokens(model, size(1024, 1024), 'high'), model).toBe(70 + 140 * 4);
      expect(estimateImageTokens(model, size(1024, 1024), 'low'), model).toBe(70);
    }
  });

  it('patch models: patches × multiplier, rounded up', () => {
    expect(estimateImageTokens('gpt-4.1-mini', size(1024, 1024), 'high')).toBe(1659); // 1658.88
    expect(estimateImageTokens('gpt-5-mini', size(1024, 1024), 'high')).toBe(1659);
    expect(estimateImageTokens('gpt-4.1-mini', size(1800, 2400), 'high')).toBe(
      Math.ceil(1452 * 1.62),
    );
    expect(estimateImageTokens('gpt-4.1-nano', size(1024, 1024), 'high')).toBe(2520); // 2519.04
    expect(estimateImageTokens('gpt-5-nano', size(1024, 1024), 'high')).toBe(2520);
    expect(estimateImageTokens('o4-mini', size(1024, 1024), 'high')).toBe(1762); // 1761.28
    expect(estimateImageTokens('o4-mini', size(1800, 2400), 'high')).toBe(Math.ceil(1452 * 1.72));
  });

  it('dated snapshots and provider prefixes count as their family', () => {
    expect(estimateImageTokens('gpt-4o-2024-08-06', size(1024, 1024), 'high')).toBe(765);
    expect(estimateImageTokens('gpt-4o-2024-05-13', size(2048, 4096), 'high')).toBe(1105);
    expect(estimateImageTokens('openai/gpt-4o', size(1024, 1024), 'high')).toBe(765);
    expect(estimateImageTokens('GPT-4o', size(1024, 1024), 'high')).toBe(765);
    expect(estimateImageTokens('gpt-4o-mini-2024-07-18', size(1024, 1024), 'high')).toBe(
      2833 + 5667 * 4,
    );
    expect(estimateImageTokens('openai/gpt-4o-mini', size(1024, 1024), 'low')).toBe(2833);
    expect(estimateImageTokens('gpt-4.1-2025-04-14', size(1024, 1024), 'high')).toBe(765);
    expect(estimateImageTokens('gpt-4.1-mini-2025-04-14', size(1024, 1024), 'high')).toBe(1659);
    expect(estimateImageTokens('openai/gpt-4.1-nano', size(1024, 1024), 'high')).toBe(2520);
    expect(estimateImageTokens('o4-mini-2025-04-16', size(1024, 1024), 'high')).toBe(1762);
  });

  it.each([
    'llava',
    'llava:13b',
    'claude-3-5-sonnet',
    'anthropic/claude-3-5-sonnet',
    'gemini-1.5-pro',
    'qwen2.5vl',
    'gpt-4',
    'gpt-4o2',
    'my-gpt-4o',
  ])('%s → unknown (undefined), not a guess', (model) => {
    expect(estimateImageTokens(model, size(1024, 1024), 'high')).toBeUndefined();
    expect(estimateImageTokens(model, size(1024, 1024), 'low')).toBeUndefined();
  });

  it('every documented family has an estimate', () => {
    for (const model of [
      'gpt-4o',
      'gpt-4o-mini',
      'gpt-4.1',
      'gpt-4.1-mini',
      'gpt-4.1-nano',
      'gpt-4.5-preview',
      'o1',
      'o3',
      'o4-mini',
      'gpt-5',
      'gpt-5-mini',
      'gpt-5-nano',
      'openai/gpt-4o-2024-08-06',
    ]) {
      expect(estimateImageTokens(model, size(1024, 1024), 'high'), model).toBeGreaterThan(0);
    }
  });
});
