/** Ages for pruning the answer cache (src/cache/age.ts). */
import { describe, expect, it } from 'vitest';
import { parseAge } from '../../src/cache/age.js';

describe('parseAge', () => {
  it.each([
    ['45s', 45_000],
    ['90m', 90 * 60_000],
    ['12h', 12 * 3_600_000],
    ['30d', 30 * 86_400_000],
    ['2w', 14 * 86_400_000],
    ['1.5d', 36 * 3_600_000],
    [' 7 D ', 7 * 86_400_000],
    ['0d', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(parseAge(text)).toBe(ms);
  });

  it.each([[''], ['30'], ['d'], ['-1d'], ['1y'], ['1e3d'], ['1,5d'], ['30 days']])(
    'rejects %j',
    (text) => {
      expect(parseAge(text)).toBeUndefined();
    },
  );
});
