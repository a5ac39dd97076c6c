import { type BeforeApplicationShutdown, Injectable } from '@nestjs/common';

/**
 * The moment shutdown begins, for what must react before the drain rather than after it: readiness turns 503
 * at once (so the load balancer stops sending) and event streams end (an open subscriber once kept a SIGTERMed
 * process alive for 100 s+). main.ts begins it on SIGTERM before `app.close()`; the hook covers other closers.
 */
@Injectable()
export class ShutdownNotice implements BeforeApplicationShutdown {
  private begun = false;
  private readonly listeners = new Set<() => void>();

  get shuttingDown(): boolean {
    return this.begun;
  }

  begin(): void {
    if (this.begun) return;
    this.begun = true;
    for (const listener of [...this.listeners]) listener();
    this.listeners.clear();
  }

  /** Runs `listener` when shutdown begins (at once if it has); returns the unsubscribe. */
  onShutdown(listener: () => void): () => void {
    if (this.begun) {
      listener();
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  beforeApplicationShutdown(): void {
    this.begin();
  }
}
