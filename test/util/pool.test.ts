import { describe, expect, it } from 'vitest';
import { runPool } from '../../src/util/pool.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An async source whose `next()` takes a varying time, counting how many items it gave out. */
function slowSource(count: number): AsyncIterator<string> & { pulled: number; returned: boolean } {
  const source = {
    pulled: 0,
    returned: false,
    async next(): Promise<IteratorResult<string>> {
      const i = source.pulled;
      if (i >= count) return { done: true, value: undefined };
      source.pulled++;
      await sleep(i % 3);
      return { done: false, value: `item-${i}` };
    },
    return(): Promise<IteratorResult<string>> {
      source.returned = true;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return source;
}

describe('runPool', () => {
  it('runs at most `concurrency` workers at once, and uses all of them', async () => {
    let active = 0;
    let peak = 0;
    const seen: number[] = [];
    const result = await runPool(
      [...Array(20).keys()][Symbol.iterator](),
      { concurrency: 3 },
      async (item) => {
        active++;
        peak = Math.max(peak, active);
        await sleep(2 + (item % 4));
        seen.push(item);
        active--;
      },
    );
    expect(peak).toBe(3);
    expect(active).toBe(0);
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    expect(result).toEqual({ started: 20, exhausted: true });
  });

  it('concurrency below 1 still runs one worker', async () => {
    const seen: number[] = [];
    const result = await runPool([1, 2, 3][Symbol.iterator](), { concurrency: 0 }, async (item) => {
      await sleep(0);
      seen.push(item);
    });
    expect(seen).toEqual([1, 2, 3]);
    expect(result.started).toBe(3);
  });

  it('indexes follow the iterator order, even with a slow async iterator', async () => {
    const source = slowSource(15);
    const pairs: [string, number][] = [];
    const result = await runPool(source, { concurrency: 4 }, async (item, index) => {
      pairs.push([item, index]);
      await sleep((index * 5) % 4);
    });
    expect(pairs).toHaveLength(15);
    for (const [item, index] of pairs) expect(item).toBe(`item-${index}`);
    expect(new Set(pairs.map(([, index]) => index)).size).toBe(15);
    expect(result).toEqual({ started: 15, exhausted: true });
  });

  it('works over an async generator', async () => {
    async function* gen(): AsyncGenerator<number> {
      for (let i = 0; i < 5; i++) {
        await sleep(1);
        yield i * 10;
      }
    }
    const pairs: [number, number][] = [];
    await runPool(gen(), { concurrency: 2 }, async (item, index) => {
      await sleep(1);
      pairs.push([item, index]);
    });
    expect(pairs.sort((a, b) => a[1] - b[1])).toEqual([
      [0, 0],
      [10, 1],
      [20, 2],
      [30, 3],
      [40, 4],
    ]);
  });

  it('an empty source starts nothing and is exhausted', async () => {
    let calls = 0;
    const result = await runPool([][Symbol.iterator](), { concurrency: 4 }, () => {
      calls++;
      return Promise.resolve();
    });
    expect(calls).toBe(0);
    expect(result).toEqual({ started: 0, exhausted: true });
  });

  it('shouldStop stops pulling and leaves the rest of the iterator unconsumed', async () => {
    let stop = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    function* gen(): Generator<number> {
      for (let i = 0; i < 10; i++) yield i;
    }
    const iterator = gen();
    const started: number[] = [];
    const run = runPool(iterator, { concurrency: 3, shouldStop: () => stop }, async (item) => {
      started.push(item);
      await gate;
    });
    await sleep(5);
    expect(started).toEqual([0, 1, 2]);
    stop = true;
    release();
    const result = await run;
    expect(result).toEqual({ started: 3, exhausted: false });
    expect(started).toEqual([0, 1, 2]);
    // The iterator is still open, right where the pool left it.
    expect(iterator.next()).toEqual({ value: 3, done: false });
    expect([...iterator]).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('shouldStop true from the start starts nothing and pulls nothing', async () => {
    const source = slowSource(5);
    const result = await runPool(source, { concurrency: 2, shouldStop: () => true }, () =>
      Promise.resolve(),
    );
    expect(result).toEqual({ started: 0, exhausted: false });
    expect(source.pulled).toBe(0);
    expect(source.returned).toBe(false);
  });

  it('shouldStop set by a worker stops the pool after the items already pulled', async () => {
    const source = slowSource(100);
    const seen: number[] = [];
    let stop = false;
    const result = await runPool(
      source,
      { concurrency: 1, shouldStop: () => stop },
      async (_item, index) => {
        seen.push(index);
        if (index === 4) stop = true;
        await sleep(0);
      },
    );
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(result).toEqual({ started: 5, exhausted: false });
    expect(source.pulled).toBe(5);
    expect(source.returned).toBe(false);
  });

  it('a worker throwing rejects runPool with that error, and closes the iterator', async () => {
    const source = slowSource(6);
    const failure = new Error('disk full');
    const run = runPool(source, { concurrency: 2 }, async (_item, index) => {
      await sleep(1);
      if (index === 1) throw failure;
    });
    await expect(run).rejects.toBe(failure);
    expect(source.returned).toBe(true);
  });

  it('a worker throwing synchronously rejects too', async () => {
    const run = runPool([1, 2, 3][Symbol.iterator](), { concurrency: 1 }, (item) => {
      if (item === 2) throw new Error('sync boom');
      return Promise.resolve();
    });
    await expect(run).rejects.toThrow('sync boom');
  });

  it('an iterator whose next() throws rejects runPool', async () => {
    let n = 0;
    const iterator: Iterator<number> = {
      next: () => {
        if (n === 2) throw new Error('readdir failed');
        return { done: false, value: n++ };
      },
    };
    await expect(runPool(iterator, { concurrency: 2 }, () => sleep(1))).rejects.toThrow(
      'readdir failed',
    );
  });
});
