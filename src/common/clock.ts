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
}

@Injectable()
export class SystemClock extends Clock {
  nowMs(): number {
    return performance.now();
  }

  epochMs(): number {
    return Date.now();
  }
}
