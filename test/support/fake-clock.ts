import { Clock } from '../../src/common/clock.js';

/** A Clock tests move by hand: no sleeps, no fake timers. */
export class FakeClock extends Clock {
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

  advance(ms: number): void {
    this.monotonicMs += ms;
    this.wallMs += ms;
  }
}
