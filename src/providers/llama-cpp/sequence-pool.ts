/**
 * The context sequences of one loaded model. Admission (RequestQueue) guarantees that a request
 * holding a turn finds a free sequence here; this pool only decides which one. Like llama-server's
 * slot selection by prompt similarity, a request goes to the free sequence whose evaluated tokens
 * it continues, so a multi-turn chat picks up where its last turn left off and only the new
 * messages are evaluated. Anything else goes to the sequence used least recently, which keeps the
 * caches of recent conversations alive longest.
 */
import type { LlamaCompletion, LlamaContextSequence, Token } from 'node-llama-cpp';
import type { DecodeGate } from './decode-gate.js';

export interface PooledSequence {
  readonly sequence: LlamaContextSequence;
  readonly completion: LlamaCompletion;
  /** Tokens the running generation has produced so far, held-back ones included (generated-tokens.ts). */
  readonly generated: Token[];
  busy: boolean;
  lastUsed: number;
  /** Tokens of the last prompt run on this sequence (0: never used). */
  promptLength: number;
}

export class SequencePool {
  private tick = 0;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    readonly members: readonly PooledSequence[],
    private readonly gate: DecodeGate,
  ) {}

  get busyCount(): number {
    return this.members.filter((m) => m.busy).length;
  }

  /**
   * Takes the free sequence whose last prompt `prompt` (BOS included) extends, the longest such
   * when several do: that is the same conversation continuing. Anything else is a new conversation
   * and takes the least recently used sequence, so it never overwrites a conversation that merely
   * starts with the same system prompt; that shared start is still reused from whatever the chosen
   * sequence holds. (llama-server compares the prefix with a similarity threshold instead, which on
   * short chats with a long system prompt hands one user's cache to another.)
   */
  take(prompt: readonly Token[]): { member: PooledSequence; reusedTokens: number } {
    let continued: PooledSequence | null = null;
    let continuedShared = 0;
    let lru: PooledSequence | null = null;
    for (const member of this.members) {
      if (member.busy) continue;
      if (!lru || member.lastUsed < lru.lastUsed) lru = member;
      if (member.promptLength === 0) continue;
      const shared = sharedPrefix(member.sequence.contextTokens, prompt);
      if (shared >= member.promptLength && shared > continuedShared) {
        continued = member;
        continuedShared = shared;
      }
    }
    const chosen = continued ?? lru;
    // Admission hands out no more turns than there are sequences, so this is a bug, not load.
    if (!chosen) throw new Error('no free context sequence although the request was admitted');
    chosen.busy = true;
    chosen.lastUsed = ++this.tick;
    chosen.promptLength = prompt.length;
    return { member: chosen, reusedTokens: sharedPrefix(chosen.sequence.contextTokens, prompt) };
  }

  /**
   * Trims what `member` holds beyond the prefix it shares with `prompt` (BOS included), as
   * LlamaCompletion would before evaluating it, but with the other sequences held at the decode
   * gate so the trim is not starved by their generations (decode-gate.ts).
   */
  async align(member: PooledSequence, prompt: readonly Token[]): Promise<void> {
    const { sequence } = member;
    // LlamaCompletion keeps the prompt's last token out of the state it adapts, to decode it for logits.
    const start = sequence.compareContextTokens(prompt.slice(0, -1)).firstDifferentIndex;
    const end = sequence.nextTokenIndex;
    if (start >= end) return;
    await this.gate.hold(() => sequence.eraseContextTokenRanges([{ start, end }]));
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
