/**
 * node-llama-cpp (3.x) holds back generated text that could be the start of a stop trigger ("<"
 * while "</s>" is one) and, when max_tokens ends the generation, drops it: on the tiny chat model
 * about 3% of 8-token answers came back one character short, and a stream never received that
 * text. llama-server returns everything it generated up to the limit, and so do we: each pooled
 * sequence records the tokens it yields, and a generation that stops on max_tokens gets the
 * held-back tail appended.
 */
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { DecodeGate } from './decode-gate.js';

/** What `TextDecoder` makes of an incomplete UTF-8 sequence at the end of the tokens. */
const REPLACEMENT_CHAR = '\uFFFD';

/**
 * Makes `sequence` append every token its evaluation yields to the returned list, and wait at
 * `gate` before each decode it asks for. The caller empties the list before each generation;
 * evaluations without generation yield nothing.
 */
export function recordGeneratedTokens(sequence: LlamaContextSequence, gate: DecodeGate): Token[] {
  const generated: Token[] = [];
  const evaluate = sequence.evaluate.bind(sequence);
  sequence.evaluate = (tokens, options) => recording(evaluate(tokens, options), generated, gate);
  return generated;
}

async function* recording(
  inner: AsyncGenerator<Token, void, void | Token | Token[]>,
  sink: Token[],
  gate: DecodeGate,
): AsyncGenerator<Token, void, void | Token | Token[]> {
  let input: void | Token | Token[] = undefined;
  try {
    for (;;) {
      const held = gate.passage();
      if (held) await held;
      const next = await inner.next(input);
      if (next.done) return;
      sink.push(next.value);
      input = yield next.value;
    }
  } finally {
    await inner.return(undefined);
  }
}

/**
 * The text of `generated` that `response` lacks: what was held back as a possible stop trigger
 * when the generation hit its token limit. Empty when the response already has it all, and
 * without a trailing incomplete character (a multi-byte character cut by the limit).
 */
export function heldBackText(model: LlamaModel, generated: readonly Token[], response: string): string {
  const full = model.detokenize([...generated]);
  if (full.length <= response.length || !full.startsWith(response)) return '';
  let tail = full.slice(response.length);
  while (tail.endsWith(REPLACEMENT_CHAR)) tail = tail.slice(0, -1);
  return tail;
}
