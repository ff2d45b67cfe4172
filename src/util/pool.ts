/**
 * A bounded worker pool over an async iterable: `concurrency` workers pull items one at a time,
 * so neither the list nor the work is ever all in memory. Each item gets its input-order index.
 */

export interface PoolOptions {
  concurrency: number;
  /** Checked before each pull: true stops the pool from starting new items. */
  shouldStop?: () => boolean;
}

export interface PoolResult {
  /** Items handed to the worker. */
  started: number;
  /** Whether the source was read to its end. */
  exhausted: boolean;
}

/**
 * Runs `worker` over the items of `iterator`. When stopped early the iterator is left open,
 * so the caller can read what was not attempted.
 */
export async function runPool<T>(
  iterator: AsyncIterator<T> | Iterator<T>,
  options: PoolOptions,
  worker: (item: T, index: number) => Promise<void>,
): Promise<PoolResult> {
  let next = 0;
  let exhausted = false;
  // Once a worker throws, the others finish what they hold and take nothing new.
  let failed = false;
  // Pulls are chained so indexes follow the source's order whatever the iterator does.
  let pulling: Promise<unknown> = Promise.resolve();

  const pull = (): Promise<{ item: T; index: number } | undefined> => {
    const result = pulling.then(async () => {
      if (exhausted || failed || options.shouldStop?.()) return undefined;
      const step = await iterator.next();
      if (step.done) {
        exhausted = true;
        return undefined;
      }
      return { item: step.value, index: next++ };
    });
    pulling = result.catch(() => undefined);
    return result;
  };

  const run = async (): Promise<void> => {
    for (;;) {
      const got = await pull();
      if (!got) return;
      try {
        await worker(got.item, got.index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };

  const workers = Array.from({ length: Math.max(1, options.concurrency) }, run);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) {
    await iterator.return?.();
    throw rejected.reason;
  }
  return { started: next, exhausted };
}
