import { describe, expect, it } from 'vitest';
import { Turnstile } from '../../src/util/ordered.js';
import { Semaphore } from '../../src/util/semaphore.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Turnstile', () => {
  it('lets index i through only after every lower index passed', async () => {
    const t = new Turnstile();
    const order: number[] = [];
    const go = async (i: number): Promise<void> => {
      await t.wait(i);
      order.push(i);
      t.pass(i);
    };
    // Started in reverse: they still get through in index order.
    await Promise.all([go(3), go(2), go(1), go(0)]);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('a pass out of order is remembered, and passing twice changes nothing', async () => {
    const t = new Turnstile();
    t.pass(1);
    let third = false;
    void t.wait(2).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    t.pass(0);
    t.pass(0);
    await tick();
    expect(third).toBe(true);
    await expect(t.wait(1)).resolves.toBeUndefined();
  });
});

describe('Semaphore', () => {
  it('never has more than its size running, and runs the rest in arrival order', async () => {
    const s = new Semaphore(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        s.run(async () => {
          started.push(i);
          running++;
          most = Math.max(most, running);
          await tick();
          running--;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('frees its place when the task throws', async () => {
    const s = new Semaphore(1);
    await expect(s.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(s.run(() => Promise.resolve(7))).resolves.toBe(7);
  });
});
