/**
 * One truth benchmark: reads are projections of the state store, so they never wait for a backend.
 * 1. GET /api/models/loaded with 100 remote backends of which 10 hang, 4 clients polling every 100 ms for
 *    10 s, next to GET /health/live polled the same way in the same run (goal: loaded p99 ≤ 20 ms), and
 *    the age of the truth served: the largest observation_age_ms of a healthy backend in any answer
 *    (goal ≤ probe_interval_ms + probe_timeout_ms).
 * 2. GET /health with 20 in-process models (18 GGUF ids and 2 ONNX image pipelines, one of each loaded) vs
 *    GET /health/live, same run (goal: p50 ≤ 2 ms).
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { startFakeRknnSd } from '../support/fakes/rknn-sd.fake.js';
import { startHungServer } from '../support/fakes/pathological.js';
import { ensureImageTestModels } from '../support/image-test-models.js';
import { ensureLlmTestModels } from '../support/llm-test-models.js';
import { startBenchApp } from './app-runner.js';
import { fixed, percentile, table } from './bench-util.js';

const BACKENDS = 100;
const HUNG = 10;
const PROBE_INTERVAL_MS = 1000;
const PROBE_TIMEOUT_MS = 1500;
const CLIENTS = 4;
const EVERY_MS = 100;
const WINDOW_MS = 10_000;
const IN_PROCESS_MODELS = 20;
/** Of IN_PROCESS_MODELS, ONNX image pipelines (the rest are GGUF ids): the kind whose catalog walked a folder. */
const IMAGE_MODELS = 2;
const HEALTH_RUNS = 2000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

async function get(url: string): Promise<string> {
  const res = await request(url, { dispatcher: agent });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode}`);
  return text;
}

/** `CLIENTS` pollers of each url, interleaved, every `EVERY_MS` for `WINDOW_MS`; latencies per url. */
async function pollTogether(
  urls: string[],
  onAnswer: (url: string, body: string) => void,
): Promise<Map<string, number[]>> {
  const until = performance.now() + WINDOW_MS;
  const latencies = new Map(urls.map((u) => [u, [] as number[]]));
  await Promise.all(
    urls.flatMap((url, u) =>
      Array.from({ length: CLIENTS }, async (_, i) => {
        await sleep((EVERY_MS / (CLIENTS * urls.length)) * (i * urls.length + u));
        while (performance.now() < until) {
          const started = performance.now();
          const body = await get(url);
          latencies.get(url)!.push(performance.now() - started);
          onAnswer(url, body);
          await sleep(EVERY_MS);
        }
      }),
    ),
  );
  for (const l of latencies.values()) l.sort((a, b) => a - b);
  return latencies;
}

const row = (name: string, lat: number[]): (string | number)[] => [
  name,
  lat.length,
  fixed(percentile(lat, 50), 2),
  fixed(percentile(lat, 90), 2),
  fixed(percentile(lat, 99), 2),
  fixed(lat[lat.length - 1]!, 2),
];

async function loadedWithHungBackends(): Promise<string> {
  const healthy = await Promise.all(
    Array.from({ length: BACKENDS - HUNG }, () => startFakeRknnSd({ pipelineLoaded: true })),
  );
  const hung = await Promise.all(Array.from({ length: HUNG }, () => startHungServer()));
  const backend = (name: string, url: string): Record<string, unknown> => ({
    name,
    type: 'rknn-sd',
    url,
    probe_interval_ms: PROBE_INTERVAL_MS,
    probe_timeout_ms: PROBE_TIMEOUT_MS,
    models: [{ id: `${name}-model` }],
  });
  const app = await startBenchApp({
    eviction: { check_interval_s: 3600 },
    backends: [...healthy.map((f, i) => backend(`ok-${i}`, f.url)), ...hung.map((f, i) => backend(`hung-${i}`, f.url))],
  });
  try {
    const loadedUrl = `${app.url}/api/models/loaded`;
    const liveUrl = `${app.url}/health/live`;
    await get(loadedUrl);
    await get(liveUrl);
    await sleep(2 * PROBE_INTERVAL_MS); // a few rounds of background probes, hung ones included
    let maxAge = 0;
    let staleAnswers = 0;
    const lat = await pollTogether([loadedUrl, liveUrl], (url, body) => {
      if (url !== loadedUrl) return;
      const parsed = JSON.parse(body) as {
        backends: { name: string; observation_age_ms: number | null; stale: boolean }[];
      };
      for (const b of parsed.backends) {
        if (!b.name.startsWith('ok-')) continue;
        if (b.observation_age_ms !== null) maxAge = Math.max(maxAge, b.observation_age_ms);
        if (b.stale) staleAnswers++;
      }
    });
    const loaded = lat.get(loadedUrl)!;
    const live = lat.get(liveUrl)!;
    const p99 = percentile(loaded, 99);
    const ageBound = PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS;
    return [
      `### GET /api/models/loaded, ${BACKENDS} remote backends of which ${HUNG} hang, ${CLIENTS} clients every ` +
        `${EVERY_MS} ms for ${WINDOW_MS / 1000} s (probe_interval_ms ${PROBE_INTERVAL_MS}, probe_timeout_ms ${PROBE_TIMEOUT_MS}); ` +
        `/health/live polled the same way in the same run`,
      '',
      table(
        ['route', 'polls', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [row('/api/models/loaded', loaded), row('/health/live', live)],
      ),
      '',
      `loaded p99 ${fixed(p99, 2)} ms (goal ≤ 20 ms) — ${p99 <= 20 ? 'met' : 'missed'}; ` +
        `${fixed(p99 / percentile(live, 99), 2)}× the p99 of /health/live.`,
      `Oldest truth served about a healthy backend: ${maxAge} ms (goal ≤ ${ageBound} ms) — ${maxAge <= ageBound ? 'met' : 'missed'}; ` +
        `healthy backends flagged stale in ${staleAnswers} backend entries.`,
    ].join('\n');
  } finally {
    await app.close();
    await Promise.all([...healthy, ...hung].map((f) => f.close()));
  }
}

async function healthWithInProcessModels(): Promise<string> {
  const [{ chat }, image] = await Promise.all([ensureLlmTestModels(), ensureImageTestModels()]);
  const pipelines = [image.lcm, image.euler];
  const app = await startBenchApp({
    eviction: { check_interval_s: 3600 },
    backends: [
      {
        name: 'local',
        type: 'llama-cpp',
        models: Array.from({ length: IN_PROCESS_MODELS - IMAGE_MODELS }, (_, i) => ({ id: `m${i}`, path: chat })),
      },
      {
        name: 'image',
        type: 'onnx-image',
        models: Array.from({ length: IMAGE_MODELS }, (_, i) => ({ id: `img${i}`, path: pipelines[i % 2] })),
      },
    ],
  });
  try {
    // One model of each kind resident, so /health projects loaded entries of both.
    for (const [path, body] of [
      ['/v1/chat/completions', { model: 'm0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }],
      ['/v1/images/generations', { model: 'img0', prompt: 'a fox', size: '64x64', steps: 1 }],
    ] as const) {
      const res = await request(`${app.url}${path}`, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`POST ${path} → ${res.statusCode}`);
    }
    const healthUrl = `${app.url}/health`;
    const liveUrl = `${app.url}/health/live`;
    for (let i = 0; i < 200; i++) {
      await get(healthUrl);
      await get(liveUrl);
    }
    const health: number[] = [];
    const live: number[] = [];
    for (let i = 0; i < HEALTH_RUNS; i++) {
      // Alternate the order so neither route always runs second.
      for (const [url, into] of i % 2 === 0
        ? ([
            [healthUrl, health],
            [liveUrl, live],
          ] as const)
        : ([
            [liveUrl, live],
            [healthUrl, health],
          ] as const)) {
        const started = performance.now();
        await get(url);
        into.push(performance.now() - started);
      }
    }
    health.sort((a, b) => a - b);
    live.sort((a, b) => a - b);
    const p50 = percentile(health, 50);
    return [
      `### GET /health with ${IN_PROCESS_MODELS} in-process models (${IMAGE_MODELS} of them ONNX image pipelines; one GGUF and one image model loaded) vs GET /health/live, ${HEALTH_RUNS} sequential requests each, interleaved`,
      '',
      table(
        ['route', 'requests', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [row('/health', health), row('/health/live', live)],
      ),
      '',
      `/health p50 ${fixed(p50, 2)} ms (goal ≤ 2 ms) — ${p50 <= 2 ? 'met' : 'missed'}; ` +
        `${fixed(p50 / percentile(live, 50), 2)}× /health/live.`,
    ].join('\n');
  } finally {
    await app.close();
  }
}

export async function runStateBench(): Promise<string> {
  const sections = [
    '## One truth: reads project the state store',
    '',
    `Node ${process.version}, loopback, fakes in the same process as modelplane.`,
    '',
    await loadedWithHungBackends(),
    '',
    await healthWithInProcessModels(),
  ];
  await agent.close();
  return sections.join('\n');
}
