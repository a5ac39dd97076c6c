/**
 * Admission to one model: up to `concurrency` tasks run at once (one per context sequence), the
 * rest wait in arrival order, with a cap on how many may wait and on how long. A waiter whose
 * signal aborts leaves the queue at once (a disconnected client must not hold a place), one that
 * waited `maxWaitMs` leaves with QueueWaitExceededError, and a failed task never blocks the next. First-come order is what keeps a burst of long generations from starving a short one
 * that arrived before them: nobody overtakes a waiter.
 */
import { abortError } from '../../common/abortable.js';

export class QueueFullError extends Error {
  constructor(readonly capacity: number) {
    super(`request queue is full (${capacity} waiting)`);
    this.name = 'QueueFullError';
  }
}

export class QueueWaitExceededError extends Error {
  constructor(readonly waitedMs: number) {
    super(`no turn within ${waitedMs} ms`);
    this.name = 'QueueWaitExceededError';
  }
}

/** How the queue waits: the injected Clock's delay, so tests move time instead of sleeping. */
export type Delay = (ms: number, signal: AbortSignal) => Promise<void>;

export class RequestQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly capacity: number,
    readonly concurrency = 1,
    private readonly wait: { maxMs: number; delay: Delay } | null = null,
  ) {
    if (!(concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Tasks waiting plus those running. */
  get size(): number {
    return this.waiting.length + this.running;
  }

  async run<T>(signal: AbortSignal | undefined, task: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    // Someone waiting means every turn is taken or about to be handed over: join the line behind them.
    if (this.running >= this.concurrency || this.waiting.length > 0) {
      if (this.waiting.length >= this.capacity) throw new QueueFullError(this.capacity);
      await new Promise<void>((resolve, reject) => {
        const timeout = new AbortController();
        const leave = (err: Error): void => {
          const i = this.waiting.indexOf(waiter);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          signal?.removeEventListener('abort', onAbort);
          timeout.abort();
          reject(err);
        };
        const waiter = (): void => {
          signal?.removeEventListener('abort', onAbort);
          timeout.abort();
          resolve();
        };
        const onAbort = (): void => leave(signal ? abortError(signal) : new Error('aborted'));
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
        if (this.wait) {
          const { maxMs } = this.wait;
          this.wait.delay(maxMs, timeout.signal).then(
            () => leave(new QueueWaitExceededError(maxMs)),
            () => undefined, // the turn came (or the caller left) first
          );
        }
      });
      // The finishing task handed its turn over without giving it back: `running` already counts this one.
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
