/** Small helpers shared by the benchmarks: percentiles and a markdown table printer. */
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/**
 * Pollers of several urls, interleaved, in a thread of their own (plain JavaScript, so it runs from dist-bench
 * unchanged). They stop when `windowMs` is over or when told to, and post their latencies per url.
 */
const POLLERS = `
const { parentPort, workerData } = require('node:worker_threads');
const { urls, clients, everyMs, windowMs, requireOk } = workerData;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const latencies = urls.map(() => []);
let stopped = false;
parentPort.on('message', () => { stopped = true; });
(async () => {
  // The first fetch of each url loads the HTTP client into this thread and opens a connection: not the server's time.
  for (const url of urls) await (await fetch(url)).text();
  const until = performance.now() + windowMs;
  await Promise.all(urls.flatMap((url, u) => Array.from({ length: clients }, async (_, i) => {
    await sleep((everyMs / (clients * urls.length)) * (i * urls.length + u));
    while (!stopped && performance.now() < until) {
      const t = performance.now();
      const res = await fetch(url);
      await res.text();
      if (requireOk && res.status !== 200) throw new Error('GET ' + url + ' answered ' + res.status);
      latencies[u].push(performance.now() - t);
      await sleep(everyMs);
    }
  })));
  parentPort.postMessage(latencies);
})().catch((err) => { throw err; });
`;

interface PollOptions {
  clients: number;
  everyMs: number;
  /** Infinity: until stopped. */
  windowMs: number;
  /** A non-200 answer fails the run (else every answer is timed). */
  requireOk: boolean;
}

/** The poller thread and its latencies per url (sorted) once it ends; `stop()` ends it early. */
function startPollers(urls: string[], opts: PollOptions): { stop(): void; result: Promise<number[][]> } {
  const worker = new Worker(POLLERS, { eval: true, workerData: { urls, ...opts } });
  const result = new Promise<number[][]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => worker.terminate());
  return {
    stop: () => worker.postMessage('stop'),
    result: result.then((latencies) => latencies.map((l) => l.sort((a, b) => a - b))),
  };
}

/**
 * Pings `${url}/health/live` back to back (10 ms apart) until `stop()`, which resolves with the round-trip
 * times in ms, sorted: the liveness a load balancer sees while something else keeps the server busy. The
 * prober has an event loop of its own, as a kubelet would: the benchmark's clients reading megabyte answers
 * on this thread must not delay its pings and be counted against the server.
 */
export function pingLiveness(url: string): { stop(): Promise<number[]> } {
  const pollers = startPollers([`${url}/health/live`], {
    clients: 1,
    everyMs: 10,
    windowMs: Infinity,
    requireOk: false,
  });
  return {
    stop: async () => {
      pollers.stop();
      return (await pollers.result)[0]!;
    },
  };
}

/**
 * `clients` pollers of each url, interleaved, every `everyMs` for `windowMs`, on a thread of their own (as
 * the Models app or a kubelet would be): whatever else the benchmark's event loop serves (simulated peers,
 * fake backends) never delays a poll and is never counted against the server. Sorted latencies per url.
 */
export async function pollUrls(
  urls: string[],
  opts: { clients: number; everyMs: number; windowMs: number },
): Promise<Map<string, number[]>> {
  const latencies = await startPollers(urls, { ...opts, requireOk: true }).result;
  return new Map(urls.map((url, i) => [url, latencies[i]!]));
}

export interface StreamSample {
  text: string;
  tokens: number;
  totalMs: number;
  firstTokenMs: number;
}

/**
 * Streams one OpenAI-style request (chat or text completions) and times it; tokens are counted from usage
 * when sent, else one per content chunk.
 */
export async function streamCompletion(
  url: string,
  path: string,
  body: Record<string, unknown>,
): Promise<StreamSample> {
  const started = performance.now();
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`${url}${path}: HTTP ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let first: number | null = null;
  let buffer = '';
  let chunks = 0;
  let text = '';
  let usage: number | null = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let idx: number;
    while ((idx = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, idx).trim();
      buffer = buffer.slice(idx + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6)) as {
        choices?: { delta?: { content?: string }; text?: string }[];
        usage?: { completion_tokens: number } | null;
      };
      const piece = chunk.choices?.[0]?.delta?.content ?? chunk.choices?.[0]?.text ?? '';
      if (piece) {
        text += piece;
        chunks++;
        first ??= performance.now();
      }
      if (chunk.usage) usage = chunk.usage.completion_tokens;
    }
  }
  return {
    text,
    tokens: usage ?? chunks,
    totalMs: performance.now() - started,
    firstTokenMs: (first ?? started) - started,
  };
}

/** The machine's 1, 5 and 15 minute load averages, for a benchmark's closing line (a busy machine skews figures). */
export function loadAverageNote(): string {
  return `Load average at the end: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}.`;
}
