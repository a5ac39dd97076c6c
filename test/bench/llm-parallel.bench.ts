/**
 * Parallel in-process LLM benchmark: aggregate tokens/s and time to first token with 1, 4 and 8
 * concurrent streaming clients, modelplane (`parallel: 8` and the serialized `parallel: 1`) against
 * the real llama.cpp `llama-server -np 8` when LLAMA_SERVER_BIN points at one; plus the
 * time-to-first-token gain of prefix reuse on a 10-turn chat. Both servers run as their own process.
 * Same generated GGUF, thread count,
 * context per sequence and prompts on every side, interleaved in one run.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { directGenerate } from '../../src/providers/llama-cpp/direct-generate.js';
import { BENCH, writeTinyLlamaGguf } from '../../src/demo/tiny-llama.js';
import { LlamaRuntime } from '../../src/providers/llama-cpp/llama-runtime.js';
import { type ServerProcess, spawnServer, startModelplane } from './app-runner.js';
import { fixed, median, percentile, streamCompletion, table } from './bench-util.js';

const MAX_TOKENS = 128;
const CONTEXT_PER_SEQUENCE = 1536;
const PARALLEL = 8;
const CLIENTS = [1, 4, 8];
const ROUNDS = 3;
const TURNS = 10;

interface Round {
  tokensPerSecond: number;
  firstTokenMs: number[];
}

const prompt = (client: number, round: number): string =>
  `Client ${client}, round ${round}: write a long story about a lighthouse keeper and the sea.`;

/** `clients` concurrent streamed completions of MAX_TOKENS each; aggregate tokens/s over the wall time. */
async function concurrent(
  url: string,
  model: string,
  clients: number,
  round: number,
  extra?: Record<string, unknown>,
): Promise<Round> {
  const started = performance.now();
  const samples = await Promise.all(
    Array.from({ length: clients }, (_, c) =>
      streamCompletion(url, '/v1/completions', {
        model,
        prompt: prompt(c, round),
        max_tokens: MAX_TOKENS,
        temperature: 0,
        // llama-server: generate all MAX_TOKENS like modelplane does (a random model may emit EOS).
        ...(extra ?? {}),
      }),
    ),
  );
  const wallMs = performance.now() - started;
  const tokens = samples.reduce((sum, s) => sum + s.tokens, 0);
  return { tokensPerSecond: (tokens / wallMs) * 1000, firstTokenMs: samples.map((s) => s.firstTokenMs) };
}

/**
 * Two 10-turn conversations alternating on one model; the time to first token of every turn after
 * the first. With one sequence each turn finds the other conversation's tokens there and evaluates
 * its whole history again; with more, it continues on the sequence that holds its history.
 */
async function multiTurn(url: string, model: string): Promise<number[]> {
  const histories = [0, 1].map((c) => [
    { role: 'system', content: 'You are a patient storyteller who answers every question at length.' },
    { role: 'user', content: `Conversation ${c}: tell me about the harbour town and its old fishermen.` },
  ]);
  const ttft: number[] = [];
  for (let turn = 0; turn < TURNS; turn++) {
    for (const history of histories) {
      const sample = await streamCompletion(url, '/v1/chat/completions', {
        model,
        messages: history,
        max_tokens: 24,
        temperature: 0,
      });
      if (turn > 0) ttft.push(sample.firstTokenMs);
      history.push(
        { role: 'assistant', content: sample.text },
        { role: 'user', content: `Turn ${turn + 1}: and what happened after that, in the winter?` },
      );
    }
  }
  return ttft;
}

function startLlamaServer(bin: string, modelPath: string, threads: number): Promise<ServerProcess> {
  return spawnServer(
    'llama-server',
    bin,
    (port) => [
      ...['-m', modelPath, '--host', '127.0.0.1', '--port', String(port)],
      ...['-np', String(PARALLEL), '-c', String(CONTEXT_PER_SEQUENCE * PARALLEL)],
      ...['-t', String(threads), '-tb', String(threads)],
    ],
    '/health',
  );
}

export async function runLlmParallelBench(): Promise<string> {
  const modelPath = join(tmpdir(), 'modelplane-bench-26m.gguf');
  writeTinyLlamaGguf(modelPath, BENCH);
  const runtime = new LlamaRuntime({ gpu: false });
  const threads = runtime.threads;
  const bin = process.env.LLAMA_SERVER_BIN;
  const haveServer = bin !== undefined && bin !== '' && existsSync(bin);
  const notes: string[] = [];
  if (!haveServer) {
    notes.push(
      `**llama-server not found** (LLAMA_SERVER_BIN=${bin ?? 'unset'}): only the modelplane rows were measured.`,
    );
  }
  const model = (id: string, parallel: number) => ({
    id,
    path: modelPath,
    preload: true,
    parallel,
    context_size: CONTEXT_PER_SEQUENCE,
    idle_unload_s: 0,
  });
  const bench = await startModelplane({
    backends: [
      {
        name: 'llm',
        type: 'llama-cpp',
        threads,
        models: [model('p8', PARALLEL), model('p1', 1)],
      },
    ],
  });
  const server = haveServer ? await startLlamaServer(bin, modelPath, threads) : null;
  const sides: { name: string; url: string; model: string; extra?: Record<string, unknown> }[] = [
    { name: `modelplane parallel: ${PARALLEL}`, url: bench.url, model: 'p8' },
    { name: 'modelplane parallel: 1 (serialized)', url: bench.url, model: 'p1' },
    ...(server
      ? [{ name: `llama-server -np ${PARALLEL}`, url: server.url, model: 'bench', extra: { ignore_eos: true } }]
      : []),
  ];
  const results = new Map<string, Round[]>();
  const direct: number[] = [];
  let reuse: number[] = [];
  let noReuse: number[] = [];
  let binary = 'prebuilt';
  try {
    for (const side of sides) await concurrent(side.url, side.model, 2, -1, side.extra); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      const d = await directGenerate(runtime, {
        modelPath,
        prompt: prompt(0, round),
        maxTokens: MAX_TOKENS,
        contextSize: CONTEXT_PER_SEQUENCE,
      });
      direct.push(d.runs[0]!.tokensPerSecond);
      for (const clients of CLIENTS) {
        // Rotate the order of the sides each round so none always runs first (cache and thermal bias).
        for (let k = 0; k < sides.length; k++) {
          const side = sides[(round + k) % sides.length]!;
          const key = `${side.name}|${clients}`;
          const list = results.get(key) ?? [];
          list.push(await concurrent(side.url, side.model, clients, round, side.extra));
          results.set(key, list);
        }
      }
    }
    reuse = await multiTurn(bench.url, 'p8');
    noReuse = await multiTurn(bench.url, 'p1');
  } finally {
    await server?.stop();
    await bench.stop();
    binary = (runtime.peek()?.buildType ?? 'prebuilt') === 'localBuild' ? 'built on this machine' : 'prebuilt';
    await runtime.dispose();
  }

  const tps = (name: string, clients: number): number =>
    median((results.get(`${name}|${clients}`) ?? []).map((r) => r.tokensPerSecond));
  const ttft = (name: string, clients: number, p: number): number =>
    percentile(
      (results.get(`${name}|${clients}`) ?? []).flatMap((r) => r.firstTokenMs).sort((a, b) => a - b),
      p,
    );
  const serverName = server ? sides[2]!.name : null;
  const rows = sides.map((side) => [
    side.name,
    ...CLIENTS.map((c) => fixed(tps(side.name, c), 1)),
    ...(serverName ? CLIENTS.map((c) => fixed(tps(side.name, c) / tps(serverName, c), 3)) : []),
    fixed(ttft(side.name, 8, 50), 1),
    fixed(ttft(side.name, 8, 99), 1),
  ]);
  const directTps = median(direct);
  return [
    `### Parallel in-process LLM (${BENCH.name} F16, ${threads} thread(s), ${CONTEXT_PER_SEQUENCE} tokens per sequence, ` +
      `${MAX_TOKENS} tokens per request greedy, streamed /v1/completions, median of ${ROUNDS} interleaved rounds; ` +
      `node-llama-cpp binary: ${binary})`,
    '',
    ...notes,
    ...(notes.length ? [''] : []),
    table(
      [
        'side',
        ...CLIENTS.map((c) => `tokens/s, ${c} client(s)`),
        ...(serverName ? CLIENTS.map((c) => `vs llama-server, ${c}`) : []),
        'TTFT p50 ms, 8 clients',
        'TTFT p99 ms, 8 clients',
      ],
      rows,
    ),
    '',
    `1 client, modelplane parallel: ${PARALLEL} vs node-llama-cpp called directly (${fixed(directTps, 1)} tokens/s): ` +
      `**${fixed(tps(sides[0]!.name, 1) / directTps, 3)}** (goal ≥ 0.97).`,
    '',
    table(
      ['10-turn chat, two conversations alternating (turns 2-10)', 'TTFT p50 ms', 'TTFT p99 ms'],
      [
        [
          `parallel: ${PARALLEL} (each conversation keeps its sequence)`,
          fixed(median(reuse), 1),
          fixed(
            percentile(
              [...reuse].sort((a, b) => a - b),
              99,
            ),
            1,
          ),
        ],
        [
          'parallel: 1 (the other conversation evicted it)',
          fixed(median(noReuse), 1),
          fixed(
            percentile(
              [...noReuse].sort((a, b) => a - b),
              99,
            ),
            1,
          ),
        ],
        ['gain (p50 without / with reuse)', fixed(median(noReuse) / median(reuse), 2), ''],
      ],
    ),
  ].join('\n');
}
