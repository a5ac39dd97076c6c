/**
 * The tokenizer files of the tiny image pipeline (src/demo/tiny-image-pipeline.ts): a small but valid CLIP BPE
 * vocabulary, so the provider's real CLIP tokenizer reads it exactly as it reads a real export's.
 */
import { bytesToUnicode, CLIP_BOS, CLIP_EOS } from '../providers/onnx-image/clip-tokenizer.js';

/** Words whose BPE merges the tiny vocab learns, so common prompts tokenize into whole words. */
const MERGE_WORDS = [
  'a',
  'an',
  'the',
  'of',
  'photo',
  'cat',
  'dog',
  'red',
  'blue',
  'sky',
  'astronaut',
  'riding',
  'horse',
  'painting',
  'portrait',
  'landscape',
  'mountain',
  'sunset',
  'city',
  'night',
  'hello',
  'world',
  'in',
  'on',
  'with',
  "'s",
];

export interface TinyVocab {
  vocab: Record<string, number>;
  merges: string[];
}

/** A valid CLIP-style BPE vocab: bytes, bytes + `</w>`, learned merges, then the two special tokens (as in CLIP). */
export function buildTinyVocab(): TinyVocab {
  const byteChars = bytesToUnicode();
  // CLIP orders base tokens by the byte→unicode table's construction order, not by byte value.
  const base: string[] = [];
  // bytesToUnicode covers every byte 0..255.
  const order = [...Array(256).keys()].sort((a, b) => byteChars[a]!.codePointAt(0)! - byteChars[b]!.codePointAt(0)!);
  for (const b of order) base.push(byteChars[b]!);
  const tokens = [...base, ...base.map((c) => `${c}</w>`)];
  const known = new Set(tokens);
  const merges: string[] = [];
  for (const word of MERGE_WORDS) {
    const chars = Array.from(Buffer.from(word, 'utf8'), (b) => byteChars[b]);
    const symbols = chars.map((c, i) => (i === chars.length - 1 ? `${c}</w>` : c));
    // Left-to-right merges: each prefix becomes a token, and the last merge yields the whole word.
    let current = symbols[0];
    if (current === undefined) throw new Error('MERGE_WORDS must not contain an empty word');
    for (let i = 1; i < symbols.length; i++) {
      const next = symbols[i]!;
      const merged: string = current + next;
      const rule = `${current} ${next}`;
      if (!known.has(merged)) {
        known.add(merged);
        tokens.push(merged);
        merges.push(rule);
      }
      current = merged;
    }
  }
  tokens.push(CLIP_BOS, CLIP_EOS);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocab, merges };
}
