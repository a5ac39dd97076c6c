/**
 * LLM benchmark (issue: llama-cpp provider): tokens/s through POST /v1/chat/completions and
 * /v1/completions vs the same generation called directly on node-llama-cpp, same process, same
 * runtime settings, interleaved runs; plus time-to-first-token over SSE.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { directGenerate } from '../../src/providers/llama-cpp/direct-generate.js';
import { BENCH, writeTinyLlamaGguf } from '../../src/demo/tiny-llama.js';
import { LlamaRuntime } from '../../src/providers/llama-cpp/llama-runtime.js';
import { startBenchApp } from './app-runner.js';
import { fixed, median, streamCompletion, table } from './bench-util.js';

const MAX_TOKENS = 200;
const RUNS = 9;

interface Sample {
  tokens: number;
  totalMs: number;
  firstTokenMs: number;
}

function httpStream(url: string, path: string, body: Record<string, unknown>): Promise<Sample> {
  return streamCompletion(url, path, { ...body, temperature: 0, max_tokens: MAX_TOKENS });
}

async function httpJson(url: string, path: string, body: Record<string, unknown>): Promise<Sample> {
  const started = performance.now();
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, temperature: 0, max_tokens: MAX_TOKENS }),
  });
  const json = (await res.json()) as { usage: { completion_tokens: number } };
  const totalMs = performance.now() - started;
  return { tokens: json.usage.completion_tokens, totalMs, firstTokenMs: NaN };
}

const tps = (s: Sample): number => (s.tokens / s.totalMs) * 1000;
/** Generation speed after the first token: prompt evaluation excluded. */
const decodeTps = (s: Sample): number => ((s.tokens - 1) / (s.totalMs - s.firstTokenMs)) * 1000;

export async function runLlmBench(): Promise<string> {
  const modelPath = join(tmpdir(), 'modelplane-bench-26m.gguf');
  const written = writeTinyLlamaGguf(modelPath, BENCH);
  const runtime = new LlamaRuntime({ gpu: false });
  const bench = await startBenchApp({
    backends: [
      {
        name: 'llm',
        type: 'llama-cpp',
        threads: runtime.threads,
        models: [{ id: 'bench', path: modelPath, preload: true }],
      },
    ],
  });
  const direct: Sample[] = [];
  const directChat: Sample[] = [];
  const completions: Sample[] = [];
  const chat: Sample[] = [];
  const chatStream: Sample[] = [];
  try {
    // Warm both paths once (page cache, allocator), then interleave so machine noise hits both alike.
    await directGenerate(runtime, { modelPath, prompt: 'warm up', maxTokens: 16 });
    await httpJson(bench.url, '/v1/completions', { model: 'bench', prompt: 'warm up' });
    for (let i = 0; i < RUNS; i++) {
      // A different prompt per run: the provider reuses a cached prompt prefix, the direct call does not.
      const prompt = `Run ${i}: once upon a time`;
      const steps: (() => Promise<void>)[] = [
        async () => {
          const d = (await directGenerate(runtime, { modelPath, prompt, maxTokens: MAX_TOKENS })).runs[0]!;
          direct.push({ tokens: d.completionTokens, totalMs: d.totalMs, firstTokenMs: d.firstTokenMs });
        },
        async () => {
          const d = (await directGenerate(runtime, { modelPath, prompt, maxTokens: MAX_TOKENS, chat: true })).runs[0]!;
          directChat.push({ tokens: d.completionTokens, totalMs: d.totalMs, firstTokenMs: d.firstTokenMs });
        },
        async () => void completions.push(await httpJson(bench.url, '/v1/completions', { model: 'bench', prompt })),
        async () =>
          void chat.push(
            await httpJson(bench.url, '/v1/chat/completions', {
              model: 'bench',
              messages: [{ role: 'user', content: prompt }],
            }),
          ),
        async () =>
          void chatStream.push(
            await httpStream(bench.url, '/v1/chat/completions', {
              model: 'bench',
              messages: [{ role: 'user', content: prompt }],
            }),
          ),
      ];
      // Rotate the order each round so no path always runs right after another (thermal/cache order bias).
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
    }
  } finally {
    await bench.close();
    await runtime.dispose();
  }
  const ratio = (samples: Sample[], baseline: Sample[], f: (s: Sample) => number): string => {
    const value = median(samples.map(f)) / median(baseline.map(f));
    return Number.isNaN(value) ? '—' : fixed(value, 3);
  };
  const row = (name: string, samples: Sample[], baseline: Sample[]): (string | number)[] => [
    name,
    fixed(median(samples.map(tps)), 1),
    ratio(samples, baseline, tps),
    Number.isNaN(median(samples.map((s) => s.firstTokenMs)))
      ? '—'
      : fixed(median(samples.map((s) => s.firstTokenMs)), 1),
    ratio(samples, baseline, decodeTps),
  ];
  return [
    `### LLM tokens/s (node-llama-cpp ${runtime.threads} thread(s), generated ${BENCH.name} F16 model, ${(written.sizeBytes / 1e6).toFixed(1)} MB, ${MAX_TOKENS} tokens greedy, median of ${RUNS} interleaved runs)`,
    '',
    table(
      ['path', 'tokens/s', 'ratio vs its direct baseline (goal ≥ 0.97)', 'time to first token ms', 'decode-only ratio'],
      [
        row('direct: LlamaCompletion on the raw prompt (baseline A)', direct, direct),
        row('POST /v1/completions (vs A)', completions, direct),
        row('direct: same prompt through the chat wrapper + its stop triggers (baseline B)', directChat, directChat),
        row('POST /v1/chat/completions (vs B)', chat, directChat),
        row('POST /v1/chat/completions stream: SSE (vs B)', chatStream, directChat),
      ],
    ),
  ].join('\n');
}
