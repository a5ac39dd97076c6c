import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
});
