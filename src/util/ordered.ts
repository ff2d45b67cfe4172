/**
 * Emits results in input order while they finish in any order, holding back at most `window`
 * of them: a worker waits for room before it starts an item too far ahead of the oldest
 * unfinished one.
 */
export class OrderedEmitter<T> {
  private next = 0;
  private readonly held = new Map<number, T | undefined>();
  private readonly waiting: { index: number; resolve: () => void }[] = [];

  constructor(
    private readonly emit: (value: T, index: number) => void,
    private readonly window: number,
  ) {}

  /** Resolves once item `index` may start. */
  waitForRoom(index: number): Promise<void> {
    if (index < this.next + this.window) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ index, resolve }));
  }

  /** Item `index` is finished; `value` undefined means it prints nothing. */
  settle(index: number, value: T | undefined): void {
    this.held.set(index, value);
    while (this.held.has(this.next)) {
      const ready = this.held.get(this.next);
      this.held.delete(this.next);
      if (ready !== undefined) this.emit(ready, this.next);
      this.next++;
    }
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i] as { index: number; resolve: () => void };
      if (w.index < this.next + this.window) {
        this.waiting.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Releases everything still waiting (on stop); held results are emitted in order. */
  drain(): void {
    const indexes = [...this.held.keys()].sort((a, b) => a - b);
    for (const index of indexes) {
      const value = this.held.get(index);
      if (value !== undefined) this.emit(value, index);
    }
    this.held.clear();
    for (const w of this.waiting.splice(0)) w.resolve();
  }

  /** Results finished but not yet emitted. */
  get heldCount(): number {
    return this.held.size;
  }
}

/**
 * Lets workers through one index at a time, in order: `wait(i)` resolves once every index
 * below `i` has called `pass()`. Used so requests queue for the server in input order even
 * when their images finish preparing out of order.
 */
export class Turnstile {
  private next = 0;
  private readonly passed = new Set<number>();
  private readonly waiting = new Map<number, () => void>();

  wait(index: number): Promise<void> {
    if (index <= this.next) return Promise.resolve();
    return new Promise((resolve) => this.waiting.set(index, resolve));
  }

  /** Marks `index` as through; passing it again does nothing. */
  pass(index: number): void {
    if (index < this.next) return;
    this.passed.add(index);
    while (this.passed.has(this.next)) {
      this.passed.delete(this.next);
      this.next++;
    }
    const resolve = this.waiting.get(this.next);
    if (resolve) {
      this.waiting.delete(this.next);
      resolve();
    }
  }
}
