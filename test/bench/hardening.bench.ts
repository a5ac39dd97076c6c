/**
 * Hardening benchmark (issue 16): GET /health/live requests/s against a bare Fastify route answering the same
 * JSON (both measured here, interleaved), /health/live latency while two 1024² images generate, and a larger
 * seeded fuzz run (the one in `npm test` is 300 cases).
 */
import Fastify from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { writeTinyPipeline } from '../../src/demo/tiny-image-pipeline.js';
import { startFakeOpenAi } from '../support/fakes/openai.fake.js';
import { runFuzz } from '../support/fuzz.js';
import { availableCores } from '../../src/common/machine.js';
import { startBenchApp } from './app-runner.js';
import { fixed, median, percentile, pingLiveness, table } from './bench-util.js';

const CONNECTIONS = 50;
const ROUND_MS = 1000;
const ROUNDS = 9;

/** Requests/s over `ms` with CONNECTIONS keep-alive connections each sending back-to-back. */
async function requestsPerSecond(url: string, path: string, ms: number): Promise<number> {
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 });
  let count = 0;
  const until = performance.now() + ms;
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const res = await pool.request({ method: 'GET', path });
      await res.body.text();
      if (res.statusCode === 200) count++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return count / seconds;
}

async function livenessThroughput(): Promise<string> {
  const bare = Fastify();
  const body = '{"status":"ok","info":{},"error":{},"details":{}}';
  bare.get('/health/live', (_req, reply) => {
    void reply.header('content-type', 'application/json; charset=utf-8').send(body);
  });
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const { port } = bare.server.address() as { port: number };
  const app = await startBenchApp({ backends: [] });
  const rows: (string | number)[][] = [];
  const ratios: number[] = [];
  try {
    await requestsPerSecond(`http://127.0.0.1:${port}`, '/health/live', 500); // warm-up
    await requestsPerSecond(app.url, '/health/live', 500);
    for (let r = 0; r < ROUNDS; r++) {
      // Alternating order, so neither side always runs on a warmer machine.
      const first = r % 2 === 0;
      const a = first ? await requestsPerSecond(`http://127.0.0.1:${port}`, '/health/live', ROUND_MS) : 0;
      const ours = await requestsPerSecond(app.url, '/health/live', ROUND_MS);
      const bareRps = first ? a : await requestsPerSecond(`http://127.0.0.1:${port}`, '/health/live', ROUND_MS);
      const ready = await requestsPerSecond(app.url, '/health/ready', ROUND_MS);
      ratios.push(ours / bareRps);
      rows.push([r + 1, fixed(bareRps, 0), fixed(ours, 0), fixed(ours / bareRps, 2), fixed(ready / bareRps, 2)]);
    }
  } finally {
    await app.close();
    await bare.close();
  }
  return (
    `### /health/live vs a bare Fastify route (${CONNECTIONS} connections, ${ROUND_MS / 1000} s rounds, interleaved)\n\n` +
    table(
      ['round', 'bare Fastify req/s', '/health/live req/s', 'live / bare', '/health/ready (Nest + terminus) / bare'],
      rows,
    ) +
    `\n\nMedian live / bare: **${fixed(median(ratios), 2)}** (goal ≥ 0.9).`
  );
}

interface LivenessRun {
  seconds: number;
  pings: number[];
  thread: string;
}

/** /health/live pinged every 10 ms while two 1024² images generate; `threads` null: the backend default. */
async function pingDuringImages(path: string, threads: number | null): Promise<LivenessRun> {
  const app = await startBenchApp({
    backends: [
      {
        name: 'img',
        type: 'onnx-image',
        ...(threads === null ? {} : { threads }),
        models: [{ id: 'img', path, preload: true }],
      },
    ],
  });
  const liveness = pingLiveness(app.url);
  try {
    const started = performance.now();
    await Promise.all(
      [1, 2].map((seed) =>
        fetch(`${app.url}/v1/images/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'img', prompt: 'a fox', size: '1024x1024', steps: 2, seed }),
        }).then((r) => r.text()),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const pings = await liveness.stop();
    // Where the pipeline really ran: the built bench has the worker file, so this must say 'worker'.
    const loaded = (await (await fetch(`${app.url}/api/models/loaded`)).json()) as {
      loaded: { name: string; details: { thread?: string } }[];
    };
    const thread = loaded.loaded.find((m) => m.name === 'img')?.details.thread ?? 'unknown';
    return { seconds, pings, thread };
  } finally {
    await liveness.stop();
    await app.close();
  }
}

/**
 * The default (cores − 1 intra-op threads, no spinning) against every core (what `threads: <cores>` asks
 * for, the old default), interleaved so both see the same machine.
 */
export async function livenessDuringImages(rounds = 3): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-hardening-bench-'));
  const path = writeTinyPipeline(join(dir, 'lcm'), { scheduler: 'lcm' });
  const cores = availableCores();
  const configs: [string, number | null][] = [
    [`threads: ${cores} (every core)`, cores],
    [`default (${Math.max(1, cores - 1)} of ${cores} cores)`, null],
  ];
  const rows: (string | number)[][] = [];
  const p99s = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [label, threads] of r % 2 === 0 ? configs : [...configs].reverse()) {
      const run = await pingDuringImages(path, threads);
      const p99 = percentile(run.pings, 99);
      p99s.set(label, [...(p99s.get(label) ?? []), p99]);
      rows.push([
        r + 1,
        label,
        run.thread,
        fixed(run.seconds, 2),
        run.pings.length,
        fixed(percentile(run.pings, 50), 1),
        fixed(p99, 1),
        fixed(run.pings.at(-1) ?? NaN, 1),
      ]);
    }
  }
  const medians = configs.map(([label]) => `${label}: ${fixed(median(p99s.get(label) ?? []), 1)} ms`).join('; ');
  return (
    `### /health/live while two 1024² images generate (tiny LCM, 2 steps each, ${cores} cores, intra-op spinning off)\n\n` +
    table(['round', 'image backend', 'runs on', 'images wall s', 'pings', 'p50 ms', 'p99 ms', 'max ms'], rows) +
    `\n\nMedian p99 — ${medians} (goal ≤ 50 ms).`
  );
}

async function largeFuzz(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-fuzz-bench-'));
  const path = writeTinyPipeline(join(dir, 'lcm'), { scheduler: 'lcm' });
  const upstream = await startFakeOpenAi({ models: ['fuzz-chat'] });
  const app = await startBenchApp({
    limits: { image_queue: 2, image_max_work: 64 * 64 * 2 },
    backends: [
      { name: 'remote', type: 'openai', url: upstream.url, models: [{ id: 'fuzz-chat' }] },
      { name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path }] },
    ],
  });
  try {
    const report = await runFuzz(app.url, {
      seed: 1616,
      cases: 3000,
      concurrency: 8,
      slowMs: 10_000,
      models: { chat: 'fuzz-chat', image: 'tiny-lcm' },
    });
    const lat = [...report.latenciesMs].sort((a, b) => a - b);
    const live = [...report.liveLatenciesMs].sort((a, b) => a - b);
    const statuses = Object.entries(report.statuses)
      .map(([s, n]) => `${s}×${n}`)
      .join(', ');
    return (
      `### Seeded fuzz, ${report.cases} cases (seed 1616, 8 in flight)\n\n` +
      table(
        ['failures', 'statuses', 'p50 ms', 'p99 ms', 'max ms', 'live pings', 'live p99 ms'],
        [
          [
            report.failures.length,
            statuses,
            fixed(percentile(lat, 50), 1),
            fixed(percentile(lat, 99), 1),
            fixed(lat.at(-1) ?? NaN, 1),
            report.livePings,
            fixed(percentile(live, 99), 1),
          ],
        ],
      ) +
      (report.failures.length > 0
        ? `\n\nFirst failures:\n\n${report.failures
            .slice(0, 5)
            .map((f) => `- ${f}`)
            .join('\n')}`
        : '')
    );
  } finally {
    await app.close();
    await upstream.close();
  }
}

export async function runHardeningBench(): Promise<string> {
  return ['## Hardening (issue 16)', await livenessThroughput(), await livenessDuringImages(), await largeFuzz()].join(
    '\n\n',
  );
}
