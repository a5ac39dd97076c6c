/**
 * node-llama-cpp's batch dispatcher holds the context lock for as long as any sequence has a
 * decode queued, and trimming a sequence's cache needs that lock. While other sequences generate,
 * the queue never empties, so a request that had to trim a reused sequence before its prompt
 * waited until every other generation had ended (time to first token at 8 clients: p50 0.9 s, but
 * 5-12 s for the one that arrived a moment late; llama-server: 0.75 s). The gate lets such a
 * request hold the other sequences between two tokens: the queue drains, the dispatcher lets the
 * lock go, the trim runs (a cheap cache operation), and everyone continues.
 */
export class DecodeGate {
  private holders = 0;
  private opened: Promise<void> = Promise.resolve();
  private open: (() => void) | null = null;

  /** What a sequence awaits before its next decode: null while nobody holds the gate. */
  passage(): Promise<void> | null {
    return this.holders > 0 ? this.opened : null;
  }

  /** Runs `task` while every sequence waits before its next decode. */
  async hold<T>(task: () => Promise<T>): Promise<T> {
    if (this.holders++ === 0) this.opened = new Promise<void>((resolve) => (this.open = resolve));
    try {
      return await task();
    } finally {
      if (--this.holders === 0) {
        this.open?.();
        this.open = null;
      }
    }
  }
}
