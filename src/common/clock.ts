import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';

/**
 * Time source for everything that measures durations (eviction, probes, heartbeats).
 * Injected so tests move time instead of sleeping.
 */
export abstract class Clock {
  /** Monotonic milliseconds; only differences are meaningful. Never goes backwards. */
  abstract nowMs(): number;
  /** Wall-clock milliseconds since the Unix epoch, for timestamps shown to people. */
  abstract epochMs(): number;
  /**
   * Resolves once `ms` of this clock's time has passed; rejects with the signal's reason when it aborts first.
   * Code waits through this (never a bare setTimeout), so tests move time instead of sleeping. A pending
   * delay never keeps the process alive.
   */
  abstract delay(ms: number, signal?: AbortSignal): Promise<void>;
}

@Injectable()
export class SystemClock extends Clock {
  nowMs(): number {
    return performance.now();
  }

  epochMs(): number {
    return Date.now();
  }

  delay(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
