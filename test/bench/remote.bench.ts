/**
 * Remote backends benchmark (issue: remote backends and truthful model reporting), against the real app
 * on loopback with fake backends in the same process:
 * 1. GET /api/models/loaded latency with 1, 10 and 100 remote backends of which 10% hang: a hung backend
 *    must cost an answer nothing since reads project the last observation (goal kept from before reads stopped
 *    probing: p99 ≤ timeout + 50 ms; the stricter one-truth goal is in state.bench.ts);
 * 2. probes per second per backend under 1 vs 50 polling clients: only the background observer probes, so the
 *    rate is one per probe_interval_ms whatever the clients do.
 * Proxy overhead is measured against the real llama-server in proxy.bench.ts.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { startApp, type RunningApp } from '../support/app-harness.js';
import { type PathologicalServer, startHungServer } from '../support/fakes/pathological.js';
import { type FakeRknnSd, startFakeRknnSd } from '../support/fakes/rknn-sd.fake.js';
import { fixed, median, percentile, table } from './bench-util.js';

const PROBE_TIMEOUT_MS = 1500;
const BACKEND_COUNTS = [1, 10, 100];
const LATENCY_WINDOW_MS = 6000;
const LATENCY_CLIENTS = 4;
const LATENCY_POLL_EVERY_MS = 100;
const RATE_BACKENDS = 10;
const RATE_WINDOW_MS = 6000;
const RATE_POLL_EVERY_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 256 });

async function get(url: string): Promise<void> {
  const res = await request(url, { dispatcher: agent });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode}`);
}

/** `clients` pollers, each GET every `everyMs` (after its answer) for `windowMs`; returns each poll's latency. */
async function poll(url: string, clients: number, everyMs: number, windowMs: number): Promise<number[]> {
  const until = performance.now() + windowMs;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      await sleep((everyMs / clients) * i);
      while (performance.now() < until) {
        const started = performance.now();
        await get(url);
        latencies.push(performance.now() - started);
        await sleep(everyMs);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

interface Fleet {
  running: RunningApp;
  healthy: FakeRknnSd[];
  hung: PathologicalServer[];
  close(): Promise<void>;
}

async function startFleet(total: number, hungCount: number): Promise<Fleet> {
  const healthy = await Promise.all(
    Array.from({ length: total - hungCount }, () => startFakeRknnSd({ pipelineLoaded: true })),
  );
  const hung = await Promise.all(Array.from({ length: hungCount }, () => startHungServer()));
  const backend = (name: string, url: string): Record<string, unknown> => ({
    name,
    type: 'rknn-sd',
    url,
    probe_timeout_ms: PROBE_TIMEOUT_MS,
    models: [{ id: `${name}-model`, upstream: 'lcm-dreamshaper-v7-rknn' }],
  });
  const running = await startApp({
    eviction: { check_interval_s: 3600 },
    backends: [...healthy.map((f, i) => backend(`ok-${i}`, f.url)), ...hung.map((f, i) => backend(`hung-${i}`, f.url))],
  });
  await running.app.get(BackendStartupService).settled();
  return {
    running,
    healthy,
    hung,
    close: async () => {
      await running.close();
      await Promise.all([...healthy, ...hung].map((f) => f.close()));
    },
  };
}

async function loadedLatency(): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const total of BACKEND_COUNTS) {
    const hungCount = Math.round(total * 0.1);
    const fleet = await startFleet(total, hungCount);
    try {
      const url = `${fleet.running.url}/api/models/loaded`;
      await get(url); // warm-up (connections, JIT)
      const lat = await poll(url, LATENCY_CLIENTS, LATENCY_POLL_EVERY_MS, LATENCY_WINDOW_MS);
      const p99 = percentile(lat, 99);
      const goal = PROBE_TIMEOUT_MS + 50;
      rows.push([
        total,
        hungCount,
        lat.length,
        fixed(percentile(lat, 50), 1),
        fixed(p99, 1),
        fixed(lat[lat.length - 1]!, 1),
        `≤ ${goal}`,
        p99 <= goal ? 'met' : 'missed',
      ]);
    } finally {
      await fleet.close();
    }
  }
  return [
    `### GET /api/models/loaded latency (ms), ${LATENCY_CLIENTS} clients polling every ${LATENCY_POLL_EVERY_MS} ms ` +
      `for ${LATENCY_WINDOW_MS / 1000} s; probe timeout ${PROBE_TIMEOUT_MS} ms`,
    '',
    table(['backends', 'hung', 'polls', 'p50', 'p99', 'max', 'goal p99', 'goal'], rows),
    '',
    'Reads never probe: a poll projects the last observation, so hung backends cost it nothing.',
  ].join('\n');
}

async function probeRate(): Promise<string> {
  const rows: (string | number)[][] = [];
  const rates: number[] = [];
  for (const clients of [1, 50]) {
    const fleet = await startFleet(RATE_BACKENDS, 0);
    try {
      const url = `${fleet.running.url}/api/models/loaded`;
      await get(url);
      const before = fleet.healthy.map((f) => f.hits('GET /health'));
      const started = performance.now();
      const lat = await poll(url, clients, RATE_POLL_EVERY_MS, RATE_WINDOW_MS);
      const seconds = (performance.now() - started) / 1000;
      const perBackend = fleet.healthy.map((f, i) => (f.hits('GET /health') - before[i]!) / seconds);
      const rate = median(perBackend);
      rates.push(rate);
      rows.push([
        clients,
        fixed(lat.length / seconds, 0),
        fixed(rate, 2),
        fixed(Math.max(...perBackend), 2),
        fixed(percentile(lat, 50), 1),
        fixed(percentile(lat, 99), 1),
      ]);
    } finally {
      await fleet.close();
    }
  }
  const ratio = rates[1]! / rates[0]!;
  return [
    `### Probe rate per backend, ${RATE_BACKENDS} healthy backends, clients polling every ${RATE_POLL_EVERY_MS} ms ` +
      `for ${RATE_WINDOW_MS / 1000} s (background observer only)`,
    '',
    table(['clients', 'polls/s', 'probes/s per backend (median)', 'max', 'poll p50 ms', 'poll p99 ms'], rows),
    '',
    `50 clients vs 1: ${fixed(ratio, 2)}× the probes (goal: independent of the number of clients, ≈ 1×) — ` +
      `${ratio <= 1.25 ? 'met' : 'missed'}.`,
  ].join('\n');
}

export async function runRemoteBench(): Promise<string> {
  const sections = [
    '## Remote backends',
    '',
    `Node ${process.version}, loopback, fakes in the same process as modelplane.`,
    '',
    await loadedLatency(),
    '',
    await probeRate(),
  ];
  await agent.close();
  return sections.join('\n');
}
