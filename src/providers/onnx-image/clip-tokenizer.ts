import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * CLIP byte-level BPE tokenizer (the one Stable Diffusion text encoders were trained with), read from
 * a diffusers `tokenizer/` folder (vocab.json + merges.txt, optional tokenizer_config.json).
 */

export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
export const CLIP_MAX_LENGTH = 77;

/**
 * CLIP's pre-tokenizer: special tokens, English contractions, letter runs, single digits, and runs of
 * other non-space symbols. Matching is case-insensitive like the reference (text is lowercased anyway).
 */
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/**
 * GPT-2/CLIP byte→unicode table: printable bytes map to themselves, the rest to code points from 256 up,
 * so every byte sequence becomes a string of visible characters that BPE can merge.
 */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const table = new Array<string>(256);
  // cs grows in step with bs, so cs[i] exists.
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i]!)));
  return table;
}

const BYTE_ENCODER = bytesToUnicode();

/** The reference cleanup: NFC, collapse whitespace runs to one space, trim, lowercase. */
export function cleanClipText(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
}

export interface ClipTokenizerOptions {
  maxLength?: number;
  bosToken?: string;
  eosToken?: string;
  /** SD 1.x pads with <|endoftext|>; SD 2.x tokenizers pad with "!". */
  padToken?: string;
  unkToken?: string;
}

export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();

  constructor(
    private readonly vocab: Map<string, number>,
    merges: readonly string[],
    options: ClipTokenizerOptions = {},
  ) {
    this.maxLength = options.maxLength ?? CLIP_MAX_LENGTH;
    const bos = options.bosToken ?? CLIP_BOS;
    const eos = options.eosToken ?? CLIP_EOS;
    this.bosId = this.requireId(bos, 'bos');
    this.eosId = this.requireId(eos, 'eos');
    this.padId = this.requireId(options.padToken ?? eos, 'pad');
    this.unkId = this.requireId(options.unkToken ?? eos, 'unk');
    merges.forEach((line, rank) => {
      const parts = line.split(' ');
      if (parts.length === 2) this.ranks.set(`${parts[0]} ${parts[1]}`, rank);
    });
    this.cache.set(bos, [bos]);
    this.cache.set(eos, [eos]);
  }

  /** Loads vocab.json, merges.txt and (when present) tokenizer_config.json / special_tokens_map.json. */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const vocabJson = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as unknown;
    if (typeof vocabJson !== 'object' || vocabJson === null || Array.isArray(vocabJson)) {
      throw new Error('tokenizer/vocab.json is not a JSON object of token → id');
    }
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(vocabJson)) {
      if (typeof id === 'number') vocab.set(token, id);
    }
    const merges = parseMerges(await readFile(join(dir, 'merges.txt'), 'utf8'));
    const options: ClipTokenizerOptions = {};
    for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
      const path = join(dir, name);
      if (!existsSync(path)) continue;
      const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      options.bosToken = tokenContent(config.bos_token) ?? options.bosToken;
      options.eosToken = tokenContent(config.eos_token) ?? options.eosToken;
      options.padToken = tokenContent(config.pad_token) ?? options.padToken;
      options.unkToken = tokenContent(config.unk_token) ?? options.unkToken;
      const max = config.model_max_length;
      // Some configs carry a huge sentinel (1e30) meaning "no limit"; CLIP's position table is 77.
      if (typeof max === 'number' && Number.isInteger(max) && max > 2 && max <= 1024) options.maxLength = max;
    }
    return new ClipTokenizer(vocab, merges, options);
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** BPE pieces (vocab strings) for text, without bos/eos. */
  tokenize(text: string): string[] {
    const pieces: string[] = [];
    for (const match of cleanClipText(text).matchAll(CLIP_PATTERN)) {
      const word = match[0];
      const encoded = word === CLIP_BOS || word === CLIP_EOS ? word : byteEncode(word);
      pieces.push(...this.bpe(encoded));
    }
    return pieces;
  }

  /** Token ids without bos/eos or padding. */
  encodeRaw(text: string): number[] {
    return this.tokenize(text).map((piece) => this.vocab.get(piece) ?? this.unkId);
  }

  /**
   * What the text encoder takes: bos, the tokens truncated to maxLength-2, eos, then padding to
   * exactly maxLength (the diffusers call: padding="max_length", truncation=True).
   */
  encode(text: string): Int32Array {
    const ids = this.encodeRaw(text).slice(0, this.maxLength - 2);
    const out = new Int32Array(this.maxLength).fill(this.padId);
    out[0] = this.bosId;
    out.set(ids, 1);
    out[ids.length + 1] = this.eosId;
    return out;
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = chars.map((c, i) => (i === chars.length - 1 ? `${c}</w>` : c));
    while (word.length > 1) {
      let bestRank = Infinity;
      let bestPair: [string, string] | null = null;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestPair = [word[i]!, word[i + 1]!];
        }
      }
      if (!bestPair) break;
      const [first, second] = bestPair;
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    // Bounded: prompts are short, but a cache keyed by arbitrary user words must not grow forever.
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }

  private requireId(token: string, role: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`tokenizer vocab has no ${role} token '${token}'`);
    return id;
  }
}

/** merges.txt: an optional "#version" header, then one "left right" pair per line, in rank order. */
export function parseMerges(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith('#version')));
}

function byteEncode(word: string): string {
  let out = '';
  for (const byte of Buffer.from(word, 'utf8')) out += BYTE_ENCODER[byte];
  return out;
}

/** Special tokens are stored either as a string or as {content: string} (AddedToken). */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}
