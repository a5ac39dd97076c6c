import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bytesToUnicode,
  cleanClipText,
  ClipTokenizer,
  parseMerges,
} from '../../../src/providers/onnx-image/clip-tokenizer.js';
import { writeTinyPipeline } from '../../../src/demo/tiny-image-pipeline.js';

const BOS = 100;
const EOS = 101;

/** A hand-written vocab: ids are chosen here, so every expectation below is computed by hand. */
function handTokenizer(padToken?: string): ClipTokenizer {
  const vocab = new Map<string, number>([
    ['!', 0],
    ['a</w>', 1],
    ['cat</w>', 2],
    ['dog</w>', 3],
    [',</w>', 4],
    ['!</w>', 5],
    ["'s</w>", 6],
    ['it</w>', 7],
    ['of</w>', 8],
    ['photo</w>', 9],
    ['4</w>', 10],
    ['2</w>', 11],
    ['Ã', 12],
    ['©</w>', 13],
    ['<|startoftext|>', BOS],
    ['<|endoftext|>', EOS],
  ]);
  const merges = [
    'c a',
    'ca t</w>',
    'd o',
    'do g</w>',
    "' s</w>",
    'i t</w>',
    'o f</w>',
    'p h',
    'ph o',
    'pho t',
    'phot o</w>',
  ];
  return new ClipTokenizer(vocab, merges, padToken ? { padToken } : {});
}

describe('CLIP tokenizer', () => {
  const tok = handTokenizer();

  it('uses the GPT-2/CLIP byte table (printable bytes map to themselves, space to Ġ)', () => {
    const table = bytesToUnicode();
    expect(table[0x41]).toBe('A');
    expect(table[0x20]).toBe('Ġ');
    expect(new Set(table).size).toBe(256);
  });

  it('cleans text: whitespace runs collapse, trims, lowercases', () => {
    expect(cleanClipText('  A\t\tPhoto \n of  ')).toBe('a photo of');
  });

  it('splits words, marks word ends with </w> and applies merges', () => {
    expect(tok.tokenize('A  photo\tof a CAT')).toEqual(['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
  });

  it('pre-tokenizes punctuation, contractions and digits like CLIP', () => {
    expect(tok.encodeRaw('cat, dog!')).toEqual([2, 4, 3, 5]);
    expect(tok.encodeRaw("it's")).toEqual([7, 6]);
    expect(tok.encodeRaw('42')).toEqual([10, 11]);
  });

  it('byte-encodes non-ASCII text (é = C3 A9 → "Ã", "©</w>")', () => {
    expect(tok.tokenize('é')).toEqual(['Ã', '©</w>']);
    expect(tok.encodeRaw('é')).toEqual([12, 13]);
  });

  it('maps pieces missing from the vocab to unk (<|endoftext|>) and keeps special tokens whole', () => {
    // z, e, b, r are not in this vocab; a</w> is.
    expect(tok.encodeRaw('zebra')).toEqual([EOS, EOS, EOS, EOS, 1]);
    expect(tok.encodeRaw('cat<|endoftext|>')).toEqual([2, EOS]);
  });

  it('adds bos/eos and pads to 77 with the pad token', () => {
    const ids = tok.encode('a photo of a cat');
    expect(ids).toHaveLength(77);
    expect(Array.from(ids.slice(0, 8))).toEqual([BOS, 1, 9, 8, 1, 2, EOS, EOS]);
    expect(ids.slice(7).every((id) => id === EOS)).toBe(true);
    const sd2 = handTokenizer('!').encode('cat');
    expect(Array.from(sd2.slice(0, 4))).toEqual([BOS, 2, EOS, 0]);
  });

  it('truncates to 75 tokens and still ends with eos', () => {
    const ids = tok.encode('cat '.repeat(100));
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(BOS);
    expect(ids.slice(1, 76).every((id) => id === 2)).toBe(true);
    expect(ids[76]).toBe(EOS);
  });

  it('encodes an empty prompt as bos, eos, padding (the unconditional input)', () => {
    expect(Array.from(tok.encode('').slice(0, 3))).toEqual([BOS, EOS, EOS]);
  });

  it('reads merges.txt with its #version header', () => {
    expect(parseMerges('#version: 0.2\nc a\r\nca t</w>\n\n')).toEqual(['c a', 'ca t</w>']);
  });

  it('loads a diffusers tokenizer folder (the generated tiny vocab)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
    try {
      writeTinyPipeline(join(dir, 'p'));
      const folder = join(dir, 'p', 'tokenizer');
      const loaded = await ClipTokenizer.fromFolder(folder);
      const vocab = JSON.parse(readFileSync(join(folder, 'vocab.json'), 'utf8')) as Record<string, number>;
      expect(loaded.bosId).toBe(vocab['<|startoftext|>']);
      expect(loaded.eosId).toBe(vocab['<|endoftext|>']);
      expect(loaded.maxLength).toBe(77);
      const ids = loaded.encode('A photo of a CAT, riding!');
      expect(Array.from(ids.slice(0, 10))).toEqual([
        loaded.bosId,
        vocab['a</w>'],
        vocab['photo</w>'],
        vocab['of</w>'],
        vocab['a</w>'],
        vocab['cat</w>'],
        vocab[',</w>'],
        vocab['riding</w>'],
        vocab['!</w>'],
        loaded.eosId,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a folder laid out like the real CLIP vocab and yields the real CLIP ids (bos 49406, eos 49407)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clip-real-layout-'));
    try {
      writeClipLayoutFolder(dir);
      const real = await ClipTokenizer.fromFolder(dir);
      expect([real.bosId, real.eosId, real.padId]).toEqual([49406, 49407, 49407]);
      // Byte tokens: id = position in CLIP's byte order, +256 with </w> ("a" 320, "!" 256, "," 267, "." 269).
      // "a!" is two words to CLIP's pre-tokenizer (letters, then symbols), so both end a word.
      expect(real.encodeRaw('a!')).toEqual([320, 256]);
      expect(real.encodeRaw('a , .')).toEqual([320, 267, 269]);
      expect(real.encodeRaw('42')).toEqual([275, 273]);
      // é is C3 A9: "Ã" (127) then "©</w>" (256 + 102) when no merge joins them.
      expect(real.encodeRaw('é')).toEqual([127, 358]);
      // The prompt of the diffusers docs, as the reference CLIPTokenizer encodes it.
      const ids = real.encode('A photo of an astronaut riding a horse on mars');
      expect(Array.from(ids.slice(0, 13))).toEqual([
        49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407, 49407,
      ]);
      expect(Array.from(real.encode('a photo of a cat').slice(0, 7))).toEqual([
        49406, 320, 1125, 539, 320, 2368, 49407,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Ids of whole words in the real CLIP vocab (openai/clip-vit-large-patch14 vocab.json, as used by SD 1.x);
 * the diffusers docs prompt encodes to exactly these.
 */
const REAL_WORD_IDS: Record<string, number> = {
  'photo</w>': 1125,
  'of</w>': 539,
  'an</w>': 550,
  'astronaut</w>': 18376,
  'riding</w>': 6765,
  'horse</w>': 4558,
  'on</w>': 525,
  'mars</w>': 7496,
  'cat</w>': 2368,
};

/**
 * A tokenizer folder with the real vocab's layout, built here from CLIP's published rule rather than from the
 * code under test: ids 0-255 are the bytes in bytes_to_unicode order (printable ! to ~, ¡ to ¬, ® to ÿ, then
 * the other bytes as U+0100 upwards), 256-511 the same with </w>, then merges, then <|startoftext|> 49406 and
 * <|endoftext|> 49407 (vocab size 49408). Only the merges that build the words above are included; BPE needs
 * only their relative order, and their intermediate pieces get ids nothing asserts on.
 */
function writeClipLayoutFolder(dir: string): void {
  const printable = [...range(0x21, 0x7e), ...range(0xa1, 0xac), ...range(0xae, 0xff)];
  const others = range(0, 0xff).filter((b) => !printable.includes(b));
  const order = [...printable, ...others];
  const charOf = new Map<number, string>();
  printable.forEach((b) => charOf.set(b, String.fromCodePoint(b)));
  others.forEach((b, i) => charOf.set(b, String.fromCodePoint(256 + i)));
  const vocab: Record<string, number> = {};
  order.forEach((b, i) => {
    vocab[charOf.get(b)!] = i;
    vocab[`${charOf.get(b)!}</w>`] = 256 + i;
  });
  const merges: string[] = [];
  let nextIntermediate = 40000;
  for (const word of Object.keys(REAL_WORD_IDS)) {
    const chars = Array.from(word.replace('</w>', ''));
    let current = chars[0]!;
    chars.slice(1).forEach((c, i) => {
      const next = i === chars.length - 2 ? `${c}</w>` : c;
      merges.push(`${current} ${next}`);
      current += next;
      vocab[current] ??= nextIntermediate++;
    });
    vocab[word] = REAL_WORD_IDS[word]!;
  }
  vocab['<|startoftext|>'] = 49406;
  vocab['<|endoftext|>'] = 49407;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
