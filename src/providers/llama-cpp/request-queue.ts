/**
 * Runs tasks one at a time, in arrival order, with a cap on how many may wait. A waiter whose
 * signal aborts leaves the queue at once (a disconnected client must not hold a place), and a
 * failed task never blocks the next.
 */
export class QueueFullError extends Error {
  constructor(readonly capacity: number) {
    super(`request queue is full (${capacity} waiting)`);
    this.name = 'QueueFullError';
  }
}

/** The abort reason as an Error (AbortSignal.reason may be any value). */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new Error(typeof reason === 'string' ? reason : 'aborted');
}

export class RequestQueue {
  private running = false;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  /** Tasks waiting plus the one running. */
  get size(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  async run<T>(signal: AbortSignal | undefined, task: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    if (this.running) {
      if (this.waiting.length >= this.capacity) throw new QueueFullError(this.capacity);
      await new Promise<void>((resolve, reject) => {
        const waiter = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          if (signal) reject(abortError(signal));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    } else {
      this.running = true;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running = false;
    }
  }
}
