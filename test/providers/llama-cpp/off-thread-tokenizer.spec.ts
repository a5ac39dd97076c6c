import type { LlamaModel } from 'node-llama-cpp';
import { join } from 'node:path';
import { LlamaRuntime } from '../../../src/providers/llama-cpp/llama-runtime.js';
import { OffThreadTokenizer } from '../../../src/providers/llama-cpp/off-thread-tokenizer.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../../support/llm-test-models.js';
import { TEST_MODELS_DIR } from '../../support/test-paths.js';

describe('OffThreadTokenizer (real node-llama-cpp in a worker thread, tiny generated model)', () => {
  let runtime: LlamaRuntime;
  let model: LlamaModel;
  const tokenizer = new OffThreadTokenizer();

  beforeAll(async () => {
    await ensureLlmTestModels();
    runtime = new LlamaRuntime({ gpu: false, threads: 1 });
    model = await (await runtime.get()).loadModel({ modelPath: TINY_CHAT_GGUF });
  });

  afterAll(async () => {
    await tokenizer.dispose();
    await model?.dispose();
    await runtime?.dispose();
  });

  const text = 'The quick brown fox, 42 times: ' + 'ab cd'.repeat(2000) + 'x'.repeat(3000);

  it('gives the tokens the loaded model gives, for plain text with and without a trimmed leading space', async () => {
    for (const trimLeadingSpace of [false, true]) {
      const off = await tokenizer.tokenize(TINY_CHAT_GGUF, { kind: 'text', text: ` ${text}`, trimLeadingSpace });
      expect(off).toEqual(model.tokenize(` ${text}`, false, trimLeadingSpace ? 'trimLeadingSpace' : undefined));
    }
  });

  it('gives the tokens of a chat template, special tokens included', async () => {
    const lib = await runtime.module();
    const state = lib.resolveChatWrapper(model).generateContextState({
      chatHistory: [
        { type: 'system', text: 'Be brief.' },
        { type: 'user', text },
        { type: 'model', response: [] },
      ],
    });
    const off = await tokenizer.tokenize(TINY_CHAT_GGUF, { kind: 'llama-text', json: state.contextText.toJSON() });
    expect(off).toEqual(state.contextText.tokenize(model.tokenizer));
  });

  it('serves concurrent jobs, each with its own answer', async () => {
    const texts = ['first text', 'the second one', 'third'].map((t) => t.repeat(500));
    const offs = await Promise.all(
      texts.map((t) => tokenizer.tokenize(TINY_CHAT_GGUF, { kind: 'text', text: t, trimLeadingSpace: false })),
    );
    expect(offs).toEqual(texts.map((t) => model.tokenize(t)));
  });

  it('fails a job for a file it cannot read, and keeps serving others', async () => {
    await expect(
      tokenizer.tokenize(join(TEST_MODELS_DIR, 'nope.gguf'), { kind: 'text', text: 'x', trimLeadingSpace: false }),
    ).rejects.toThrow(/tokenizer worker/);
    expect(await tokenizer.tokenize(TINY_CHAT_GGUF, { kind: 'text', text: 'ok', trimLeadingSpace: false })).toEqual(
      model.tokenize('ok'),
    );
  });
});
