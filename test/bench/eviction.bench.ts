/**
 * Eviction race benchmark (issue: idle eviction): 1 000 requests from 20 concurrent clients against a
 * model with a 50 ms idle threshold swept every 10 ms — every request must succeed and no unload may
 * ever happen while a request holds the model. Then RSS across 100 load/unload cycles.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ModelLifecycleService } from '../../src/models/model-lifecycle.service.js';
import { readRssBytes } from '../../src/models/rss.js';
import { BENCH, TINY_CHAT, writeTinyLlamaGguf } from '../../src/demo/tiny-llama.js';
import { startBenchApp } from './app-runner.js';
import { fixed, table } from './bench-util.js';

const REQUESTS = 1000;
const CLIENTS = 20;
const CYCLES = 100;

async function race(): Promise<(string | number)[][]> {
  const modelPath = join(tmpdir(), 'modelplane-bench-tiny-chat.gguf');
  writeTinyLlamaGguf(modelPath, TINY_CHAT);
  const bench = await startBenchApp({
    eviction: { idle_unload_s: 0.05, check_interval_s: 0.01 },
    backends: [{ name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'chat', path: modelPath }] }],
  });
  const lifecycle = bench.app.get(ModelLifecycleService);
  let evictions = 0;
  let evictedWhileBusy = 0;
  let loads = 0;
  lifecycle.onEvent((e) => {
    if (e.type === 'model.loaded') loads++;
    if (e.type !== 'model.unloaded' || !e.was_loaded) return;
    evictions++;
    // Emitted under the model's lock, where no lease can be taken: any in-flight count is a breach.
    if ((lifecycle.peek(e.model)?.inFlight ?? 0) > 0) evictedWhileBusy++;
  });
  let ok = 0;
  const failures = new Map<string, number>();
  const request = async (): Promise<void> => {
    const res = await fetch(`${bench.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    await res.arrayBuffer();
    if (res.status === 200) ok++;
    else failures.set(String(res.status), (failures.get(String(res.status)) ?? 0) + 1);
  };
  const started = performance.now();
  // Waves of CLIENTS concurrent requests separated by pauses around the 50 ms threshold: the model is
  // evicted between many waves, and the next wave often lands while the sweeper is deciding or unloading.
  for (let sent = 0; sent < REQUESTS; sent += CLIENTS) {
    await Promise.all(
      Array.from({ length: Math.min(CLIENTS, REQUESTS - sent) }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 2));
        await request();
      }),
    );
    await new Promise((r) => setTimeout(r, 30 + Math.random() * 60));
  }
  const seconds = (performance.now() - started) / 1000;
  await bench.close();
  return [
    ['requests', REQUESTS],
    ['succeeded', ok],
    ['failed', [...failures].map(([s, n]) => `${n}×${s}`).join(', ') || 0],
    ['idle evictions during the run', evictions],
    ['loads (initial + reloads after eviction)', loads],
    ['**evictions while a request was in flight**', evictedWhileBusy],
    ['wall time', `${fixed(seconds, 1)} s (${fixed(REQUESTS / seconds, 0)} req/s)`],
  ];
}

async function cycles(): Promise<(string | number)[][]> {
  const modelPath = join(tmpdir(), 'modelplane-bench-26m.gguf');
  writeTinyLlamaGguf(modelPath, BENCH);
  const bench = await startBenchApp({
    backends: [{ name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'big', path: modelPath }] }],
  });
  const lifecycle = bench.app.get(ModelLifecycleService);
  const afterUnload: number[] = [];
  let loadedRss = 0;
  for (let i = 0; i < CYCLES; i++) {
    await lifecycle.load('big');
    if (i === 0) loadedRss = readRssBytes();
    await lifecycle.unload('big', 'bench');
    // Collect JS garbage first (when exposed) so the figure is native memory, not a lazy V8 heap.
    (globalThis as { gc?: () => void }).gc?.();
    afterUnload.push(readRssBytes());
  }
  await bench.close();
  const mb = (b: number): string => fixed(b / 1024 / 1024, 1);
  const first = afterUnload[0]!;
  const last = afterUnload[afterUnload.length - 1]!;
  const growth = (last - first) / first;
  return [
    ['RSS with the model loaded (cycle 1)', `${mb(loadedRss)} MB`],
    ['RSS after unload, cycle 1', `${mb(first)} MB`],
    [`RSS after unload, cycle ${CYCLES}`, `${mb(last)} MB`],
    ['growth cycle 1 → 100 (goal within 10%)', `${fixed(growth * 100, 1)}%`],
    ['max RSS after unload over all cycles', `${mb(Math.max(...afterUnload))} MB`],
  ];
}

export async function runEvictionBench(): Promise<string> {
  const raceRows = await race();
  const cycleRows = await cycles();
  return [
    `### Eviction race (${REQUESTS} requests, ${CLIENTS} concurrent clients, idle threshold 50 ms, sweep every 10 ms, tiny chat model)`,
    '',
    table(['measure', 'value'], raceRows),
    '',
    `### Memory across ${CYCLES} load/unload cycles (generated ${BENCH.name} F16 GGUF, ${CYCLES} × admin load + unload)`,
    '',
    table(['measure', 'value'], cycleRows),
  ].join('\n');
}
