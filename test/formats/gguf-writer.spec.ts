import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { toHalf as float32ToFloat16Bits } from '../../src/common/float16.js';
import { BENCH, TINY_CHAT, TINY_VOCAB_SIZE, tinyLlamaSpec, writeTinyLlamaGguf } from '../../src/demo/tiny-llama.js';
import { ggufFileSize, GgufValueType, writeGgufFile } from '../../src/formats/gguf-writer.js';
import { checkGgufMetadata } from '../../src/providers/llama-cpp/gguf-check.js';

describe('GGUF writer', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelplane-gguf-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a tiny llama model that node-llama-cpp parses back with every hyperparameter', async () => {
    const path = join(dir, 'tiny.gguf');
    const result = writeTinyLlamaGguf(path, TINY_CHAT);

    expect(result.written).toBe(true);
    expect(statSync(path).size).toBe(result.sizeBytes);
    expect(result.sizeBytes).toBeGreaterThan(400_000);
    expect(result.sizeBytes).toBeLessThan(600_000);

    const info = await readGgufFileInfo(path);
    expect(info.version).toBe(3);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking parsed metadata of a known shape
    const meta = info.metadata as unknown as Record<string, any>;
    expect(meta.general.architecture).toBe('llama');
    expect(meta.general.name).toBe('tiny-chat');
    expect(meta.llama).toMatchObject({
      context_length: TINY_CHAT.contextLength,
      embedding_length: TINY_CHAT.nEmbd,
      block_count: TINY_CHAT.nLayers,
      feed_forward_length: TINY_CHAT.nFf,
      attention: { head_count: TINY_CHAT.nHeads, head_count_kv: TINY_CHAT.nHeads },
    });
    expect(meta.llama.attention.layer_norm_rms_epsilon).toBeCloseTo(1e-5, 8);
    expect(meta.tokenizer.ggml.model).toBe('llama');
    expect(meta.tokenizer.ggml.tokens).toHaveLength(TINY_VOCAB_SIZE);
    expect(meta.tokenizer.ggml.tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(meta.tokenizer.ggml.token_type[3]).toBe(6);

    const tensors = info.fullTensorInfo ?? [];
    expect(tensors).toHaveLength(3 + 9 * TINY_CHAT.nLayers);
    const embd = tensors.find((t) => t.name === 'token_embd.weight');
    expect(embd?.dimensions.map(Number)).toEqual([TINY_CHAT.nEmbd, TINY_VOCAB_SIZE]);
    const down = tensors.find((t) => t.name === 'blk.1.ffn_down.weight');
    expect(down?.dimensions.map(Number)).toEqual([TINY_CHAT.nFf, TINY_CHAT.nEmbd]);
    // Offsets are aligned to 32 bytes, as llama.cpp requires.
    for (const t of tensors) expect(Number(t.offset) % 32).toBe(0);

    expect(checkGgufMetadata(info).problems).toEqual([]);
  });

  it('is deterministic for a seed and different for another seed', () => {
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    const c = join(dir, 'c.gguf');
    writeTinyLlamaGguf(a, TINY_CHAT);
    writeTinyLlamaGguf(b, TINY_CHAT);
    writeTinyLlamaGguf(c, { ...TINY_CHAT, seed: 99 });

    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readFileSync(a).equals(readFileSync(c))).toBe(false);
  });

  it('keeps an existing file of the expected size and rewrites a truncated one, leaving no temp files', () => {
    const path = join(dir, 'idem.gguf');
    expect(writeTinyLlamaGguf(path, TINY_CHAT).written).toBe(true);
    expect(writeTinyLlamaGguf(path, TINY_CHAT).written).toBe(false);

    writeFileSync(path, Buffer.alloc(100));
    const again = writeTinyLlamaGguf(path, TINY_CHAT);
    expect(again.written).toBe(true);
    expect(statSync(path).size).toBe(again.sizeBytes);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('stores matrices as F16 when asked, roughly halving the file', async () => {
    const path = join(dir, 'f16.gguf');
    const f32 = ggufFileSize(tinyLlamaSpec(TINY_CHAT));
    const { sizeBytes } = writeTinyLlamaGguf(path, { ...TINY_CHAT, f16: true });

    expect(sizeBytes).toBeLessThan(f32 * 0.6);
    const info = await readGgufFileInfo(path);
    const types = new Map((info.fullTensorInfo ?? []).map((t) => [t.name, Number(t.ggmlType)]));
    expect(types.get('blk.0.attn_q.weight')).toBe(1);
    expect(types.get('blk.0.attn_norm.weight')).toBe(0);
  });

  it('sizes the BENCH preset in the tens of megabytes without writing it', () => {
    const size = ggufFileSize(tinyLlamaSpec(BENCH));
    expect(size).toBeGreaterThan(20_000_000);
    expect(size).toBeLessThan(100_000_000);
  });

  it('leaves out keys on request, and the pre-load check names them', async () => {
    const path = join(dir, 'bad.gguf');
    writeTinyLlamaGguf(path, { ...TINY_CHAT, omitKeys: ['llama.feed_forward_length', 'tokenizer.ggml.tokens'] });

    const check = checkGgufMetadata(await readGgufFileInfo(path));
    expect(check.architecture).toBe('llama');
    expect(check.problems).toEqual(['missing key llama.feed_forward_length', 'missing key tokenizer.ggml.tokens']);
  });

  it('writes arbitrary keys and tensors through the generic API', async () => {
    const path = join(dir, 'generic.gguf');
    const size = writeGgufFile(path, {
      kv: [
        { key: 'general.architecture', type: GgufValueType.STRING, value: 'test' },
        { key: 'x.u64', type: GgufValueType.U64, value: 2n ** 40n },
        { key: 'x.flag', type: GgufValueType.BOOL, value: true },
        { key: 'x.list', type: GgufValueType.ARRAY, itemType: GgufValueType.I32, value: [-1, 2, 3] },
      ],
      tensors: [{ name: 'w', dims: [3], type: 'f32', data: () => Float32Array.from([1, 2, 3]) }],
    });
    expect(existsSync(path)).toBe(true);
    expect(statSync(path).size).toBe(size);

    const info = await readGgufFileInfo(path);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking parsed metadata of a known shape
    const meta = info.metadata as unknown as Record<string, any>;
    expect(meta.x).toEqual({ u64: 2n ** 40n, flag: true, list: [-1, 2, 3] });
    // The tensor's 12 bytes are the last ones in the file.
    const tail = readFileSync(path).subarray(size - 12);
    expect(Array.from(new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + 12)))).toEqual([1, 2, 3]);
  });

  it('converts floats to half precision with correct rounding', () => {
    expect(float32ToFloat16Bits(0)).toBe(0x0000);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(0.5)).toBe(0x3800);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});
