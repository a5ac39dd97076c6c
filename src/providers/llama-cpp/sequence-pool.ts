/**
 * The context sequences of one loaded model. Admission (RequestQueue) guarantees that a request
 * holding a turn finds a free sequence here; this pool only decides which one. Like llama-server's
 * slot selection by prompt similarity, a request goes to the free sequence whose evaluated tokens
 * share the longest prefix with its prompt, so a multi-turn chat continues where its last turn left
 * off and only the new messages are evaluated. Ties go to the sequence used least recently, which
 * keeps the caches of recent conversations alive longest.
 */
import type { LlamaCompletion, LlamaContextSequence, Token } from 'node-llama-cpp';

export interface PooledSequence {
  readonly sequence: LlamaContextSequence;
  readonly completion: LlamaCompletion;
  busy: boolean;
  lastUsed: number;
}

export class SequencePool {
  private tick = 0;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(readonly members: readonly PooledSequence[]) {}

  get busyCount(): number {
    return this.members.filter((m) => m.busy).length;
  }

  /** Takes the free sequence that already holds the longest prefix of `prompt` (BOS included). */
  take(prompt: readonly Token[]): { member: PooledSequence; reusedTokens: number } {
    let best: PooledSequence | null = null;
    let bestShared = -1;
    for (const member of this.members) {
      if (member.busy) continue;
      const shared = sharedPrefix(member.sequence.contextTokens, prompt);
      if (shared > bestShared || (shared === bestShared && best !== null && member.lastUsed < best.lastUsed)) {
        best = member;
        bestShared = shared;
      }
    }
    // Admission hands out no more turns than there are sequences, so this is a bug, not load.
    if (!best) throw new Error('no free context sequence although the request was admitted');
    best.busy = true;
    best.lastUsed = ++this.tick;
    return { member: best, reusedTokens: bestShared };
  }

  /**
   * Runs `task` on `member` (null: work on the model that holds no sequence, e.g. embeddings) and
   * frees the sequence afterwards, whatever the outcome. Unload awaits every such run.
   */
  async use<T>(member: PooledSequence | null, task: () => Promise<T>): Promise<T> {
    const running = task();
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    try {
      return await running;
    } finally {
      this.inFlight.delete(settled);
      if (member) member.busy = false;
    }
  }

  /** Resolves when every generation running on this pool has ended. */
  async drained(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  dispose(): void {
    for (const m of this.members) m.completion.dispose();
  }
}

/** Length of the common prefix of two token lists. */
export function sharedPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
