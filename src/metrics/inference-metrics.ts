import { AppError } from '../common/errors.js';
import type { Clock } from '../common/clock.js';
import type { MetricsService, Outcome } from './metrics.service.js';

/** Operations whose answer is generated text: only these have a time to first token. */
const GENERATIONS = new Set(['chatCompletion', 'chatCompletionStream', 'completion', 'completionStream']);

export function outcomeOf(err: unknown, signal: AbortSignal): Outcome {
  if (signal.aborted) return 'cancelled';
  const status = err instanceof AppError ? err.status : 500;
  return status < 500 ? 'client_error' : 'server_error';
}

interface UsageLike {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

function countUsage(metrics: MetricsService, model: string, usage: UsageLike | null | undefined): boolean {
  if (!usage || typeof usage.prompt_tokens !== 'number') return false;
  metrics.tokens(model, 'prompt', usage.prompt_tokens);
  if (typeof usage.completion_tokens === 'number') metrics.tokens(model, 'completion', usage.completion_tokens);
  return true;
}

/** Records one request-shaped inference call: outcome, tokens from `usage`, and (text) the answer time as TTFT. */
export async function measured<T>(
  deps: { metrics: MetricsService; clock: Clock },
  labels: { model: string; operation: string },
  startedMs: number,
  signal: AbortSignal,
  run: () => Promise<T>,
): Promise<T> {
  try {
    const result = await run();
    // Not streamed: the first token reaches the client with the whole answer.
    if (GENERATIONS.has(labels.operation))
      deps.metrics.firstToken(labels.model, (deps.clock.nowMs() - startedMs) / 1000);
    countUsage(deps.metrics, labels.model, (result as { usage?: UsageLike }).usage);
    deps.metrics.requestFinished({ ...labels, outcome: 'ok' });
    return result;
  } catch (err) {
    deps.metrics.requestFinished({ ...labels, outcome: outcomeOf(err, signal) });
    throw err;
  }
}

/**
 * A stream recorded as it is consumed: TTFT at the first chunk, tokens from a final `usage` chunk when
 * the client asked for one, otherwise one completion token per chunk carrying text (how the
 * in-process and proxied streams deliver tokens), and the outcome when it ends.
 */
export async function* measuredStream<T>(
  deps: { metrics: MetricsService; clock: Clock },
  labels: { model: string; operation: string },
  startedMs: number,
  signal: AbortSignal,
  source: AsyncIterable<T>,
): AsyncGenerator<T> {
  let first = true;
  let textChunks = 0;
  let usageSeen = false;
  let outcome: Outcome = 'cancelled';
  try {
    for await (const chunk of source) {
      if (first) {
        first = false;
        deps.metrics.firstToken(labels.model, (deps.clock.nowMs() - startedMs) / 1000);
      }
      const c = chunk as { usage?: UsageLike | null; choices?: { text?: unknown; delta?: { content?: unknown } }[] };
      if (countUsage(deps.metrics, labels.model, c.usage)) usageSeen = true;
      const text = c.choices?.[0]?.delta?.content ?? c.choices?.[0]?.text;
      if (typeof text === 'string' && text.length > 0) textChunks++;
      yield chunk;
    }
    outcome = signal.aborted ? 'cancelled' : 'ok';
  } catch (err) {
    outcome = outcomeOf(err, signal);
    throw err;
  } finally {
    if (!usageSeen) deps.metrics.tokens(labels.model, 'completion', textChunks);
    deps.metrics.requestFinished({ ...labels, outcome });
  }
}
