/**
 * Waiting for something a real socket, process or runtime does: no clock can move those, so the test polls
 * for the event it needs instead of sleeping for a guessed time. The bound is generous real time and only
 * turns a broken build into a failure instead of a hang; no assertion depends on it.
 */
import { setTimeout as tick } from 'node:timers/promises';
import type { FakeClock } from './fake-clock.js';

export interface WaitOptions {
  /** Real-time bound before the wait fails (default 20 s: a busy 2-core machine never gets near it). */
  timeoutMs?: number;
  /** Runs between polls: e.g. `advancing(clock, ms)` so backoffs and deadlines on a FakeClock pass. */
  between?: () => void;
}

/** Resolves once `check()` is true, polling every few ms; rejects naming `what` after the bound. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  options: WaitOptions = {},
): Promise<void> {
  const deadline = performance.now() + (options.timeoutMs ?? 20_000);
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    options.between?.();
    // A short tick, not a guess at how long something takes: the loop ends as soon as the event happened.
    await tick(5);
  }
}

/** For `between`: moves `clock` by `stepMs` whenever code is waiting on it (a backoff, a deadline). */
export function advancing(clock: FakeClock, stepMs: number): () => void {
  return () => {
    if (clock.pendingDelays > 0) clock.advance(stepMs);
  };
}
