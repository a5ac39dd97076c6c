import { Clock } from '../../src/common/clock.js';

interface Waiter {
  dueMs: number;
  resolve: () => void;
}

/** A Clock tests move by hand: no sleeps, no fake timers. `advance` resolves the delays it passes. */
export class FakeClock extends Clock {
  private waiters: Waiter[] = [];

  constructor(
    private monotonicMs = 1_000_000,
    private wallMs = Date.UTC(2026, 10, 22, 12, 0, 0),
  ) {
    super();
  }

  nowMs(): number {
    return this.monotonicMs;
  }

  epochMs(): number {
    return this.wallMs;
  }

  delay(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { dueMs: this.monotonicMs + ms, resolve };
      this.waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  /** Delays not yet due: lets a test see that code is waiting before it moves time. */
  get pendingDelays(): number {
    return this.waiters.length;
  }

  advance(ms: number): void {
    this.monotonicMs += ms;
    this.wallMs += ms;
    const due = this.waiters.filter((w) => w.dueMs <= this.monotonicMs).sort((a, b) => a.dueMs - b.dueMs);
    this.waiters = this.waiters.filter((w) => w.dueMs > this.monotonicMs);
    for (const waiter of due) waiter.resolve();
  }
}
