/** A FIFO async mutex. `tryRun` lets eviction skip a model that is busy instead of waiting on it (no lock cycles). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  get locked(): boolean {
    return this.holders > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.holders++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      return await fn();
    } finally {
      this.holders--;
      release();
    }
  }

  /** Runs fn only if nobody holds or waits for the lock; otherwise returns undefined at once. */
  async tryRun<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.locked) return undefined;
    return this.run(fn);
  }
}
