import { describe, expect, it } from 'vitest';
import { OrderedEmitter } from '../../src/util/ordered.js';

function recorder<T>(): { emitted: [T, number][]; emit: (value: T, index: number) => void } {
  const emitted: [T, number][] = [];
  return { emitted, emit: (value, index) => void emitted.push([value, index]) };
}

function track(promise: Promise<void>): { readonly done: boolean } {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('OrderedEmitter: order', () => {
  it('emits in index order whatever the settle order (every permutation of 6)', () => {
    const all = permutations([0, 1, 2, 3, 4, 5]);
    expect(all).toHaveLength(720);
    for (const order of all) {
      const r = recorder<string>();
      const emitter = new OrderedEmitter(r.emit, 100);
      for (const index of order) emitter.settle(index, `v${index}`);
      expect(r.emitted, order.join(',')).toEqual([0, 1, 2, 3, 4, 5].map((i) => [`v${i}`, i]));
      expect(emitter.heldCount).toBe(0);
    }
  });

  it('emits each result as soon as everything before it is out', () => {
    const r = recorder<string>();
    const emitter = new OrderedEmitter(r.emit, 10);
    emitter.settle(2, 'c');
    expect(r.emitted).toEqual([]);
    expect(emitter.heldCount).toBe(1);
    emitter.settle(1, 'b');
    expect(r.emitted).toEqual([]);
    emitter.settle(0, 'a');
    expect(r.emitted.map(([v]) => v)).toEqual(['a', 'b', 'c']);
    emitter.settle(4, 'e');
    expect(r.emitted).toHaveLength(3);
    emitter.settle(3, 'd');
    expect(r.emitted.map(([v]) => v)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(emitter.heldCount).toBe(0);
  });

  it('undefined values print nothing but let later ones through', () => {
    const r = recorder<string>();
    const emitter = new OrderedEmitter(r.emit, 10);
    emitter.settle(1, 'b');
    emitter.settle(2, undefined);
    emitter.settle(3, 'd');
    expect(r.emitted).toEqual([]);
    emitter.settle(0, undefined);
    expect(r.emitted).toEqual([
      ['b', 1],
      ['d', 3],
    ]);
  });

  it('empty strings are printed (only undefined is skipped)', () => {
    const r = recorder<string>();
    const emitter = new OrderedEmitter(r.emit, 10);
    emitter.settle(0, '');
    expect(r.emitted).toEqual([['', 0]]);
  });
});

describe('OrderedEmitter: waitForRoom', () => {
  it('lets indexes below next + window start at once', async () => {
    const emitter = new OrderedEmitter<string>(() => undefined, 3);
    const rooms = [0, 1, 2].map((i) => track(emitter.waitForRoom(i)));
    await flush();
    expect(rooms.map((r) => r.done)).toEqual([true, true, true]);
  });

  it('blocks an index ≥ next + window until the earlier ones settle', async () => {
    const emitter = new OrderedEmitter<string>(() => undefined, 2);
    const two = track(emitter.waitForRoom(2));
    const three = track(emitter.waitForRoom(3));
    await flush();
    expect([two.done, three.done]).toEqual([false, false]);

    // Settling index 1 first does not help: index 0 is still the oldest unfinished one.
    emitter.settle(1, 'b');
    await flush();
    expect([two.done, three.done]).toEqual([false, false]);

    // Settling 0 moves `next` to 2, so 2 and 3 both fit.
    emitter.settle(0, 'a');
    await flush();
    expect([two.done, three.done]).toEqual([true, true]);
  });

  it('releases one waiter per settled index', async () => {
    const emitter = new OrderedEmitter<string>(() => undefined, 1);
    const one = track(emitter.waitForRoom(1));
    const two = track(emitter.waitForRoom(2));
    await flush();
    expect([one.done, two.done]).toEqual([false, false]);
    emitter.settle(0, undefined);
    await flush();
    expect([one.done, two.done]).toEqual([true, false]);
    emitter.settle(1, 'x');
    await flush();
    expect([one.done, two.done]).toEqual([true, true]);
  });

  it('keeps the number of results held back within the window', async () => {
    const window = 3;
    const r = recorder<number>();
    const emitter = new OrderedEmitter<number>(r.emit, window);
    let peakHeld = 0;
    // Item 0 is slow; the others finish at once.
    const slow = new Promise<void>((resolve) => setTimeout(resolve, 20));
    const work = Array.from({ length: 10 }, async (_, i) => {
      await emitter.waitForRoom(i);
      if (i === 0) await slow;
      emitter.settle(i, i);
      peakHeld = Math.max(peakHeld, emitter.heldCount);
    });
    await Promise.all(work);
    expect(r.emitted.map(([v]) => v)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peakHeld).toBeLessThanOrEqual(window - 1);
  });
});

describe('OrderedEmitter: drain', () => {
  it('emits what is held, in order, and releases every waiter', async () => {
    const r = recorder<string>();
    const emitter = new OrderedEmitter(r.emit, 2);
    emitter.settle(3, 'd');
    emitter.settle(1, 'b');
    emitter.settle(2, undefined);
    const waiting = track(emitter.waitForRoom(5));
    await flush();
    expect(waiting.done).toBe(false);
    emitter.drain();
    await flush();
    expect(r.emitted).toEqual([
      ['b', 1],
      ['d', 3],
    ]);
    expect(emitter.heldCount).toBe(0);
    expect(waiting.done).toBe(true);
  });

  it('emits in numeric order, not as text would sort (2 before 10)', () => {
    const r = recorder<string>();
    const emitter = new OrderedEmitter(r.emit, 20);
    for (const i of [10, 2, 11, 3]) emitter.settle(i, `#${i}`);
    emitter.drain();
    expect(r.emitted.map(([, i]) => i)).toEqual([2, 3, 10, 11]);
  });
});
