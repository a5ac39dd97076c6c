/**
 * Fleet benchmark, three real nodes, each its own modelplane process (as people run it: a node's event loop
 * serves only that node), on 127.0.0.1 with the tiny chat model:
 * 1. GET /api/fleet/models/loaded on node 1 with 50 peers (2 real nodes, 43 replaying the recorded
 *    answers of node 3 under their own names, 5 that never answer; the simulated ones live in this bench
 *    process), 4 pollers every 100 ms for 10 s, next to GET /health/live polled the same way in the same run
 *    (goal: p99 ≤ 20 ms).
 * 2. Routed chat overhead: the same chat via node 1 (routed to node 2 where the model is warm) and straight
 *    to node 2, interleaved (goal: p50 added ≤ 1 ms).
 * 3. Warm routing: 1000 chats to node 1 for a model warm only on node 2; the share answered by node 2
 *    (goal: 100 %).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { startHungServer } from '../support/fakes/pathological.js';
import { ensureLlmTestModels } from '../support/llm-test-models.js';
import { startModelplane } from './app-runner.js';
import { fixed, percentile, pollUrls, table } from './bench-util.js';

const PEERS = 50;
const HUNG = 5;
const CLIENTS = 4;
const EVERY_MS = 100;
const WINDOW_MS = 10_000;
const OVERHEAD_RUNS = 300;
const ROUTED_RUNS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

async function call(
  url: string,
  body?: unknown,
): Promise<{ status: number; text: string; node: string | undefined; ms: number }> {
  const started = performance.now();
  const res = await request(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: agent,
  });
  const text = await res.body.text();
  const node = res.headers['x-modelplane-node'];
  return {
    status: res.statusCode,
    text,
    node: typeof node === 'string' ? node : undefined,
    ms: performance.now() - started,
  };
}

/** A peer that answers what a real node answered (recorded once), under its own node name. */
async function startRecordedPeer(
  recorded: Map<string, string>,
  name: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const body = req.url === '/api/fleet/node' ? JSON.stringify({ node: name }) : recorded.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(body ?? '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Polls node 1's fleet view (real time: other processes) until every answering peer has been reached. */
async function untilObserved(url: string, nodes: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const view = JSON.parse((await call(`${url}/api/fleet/models/loaded`)).text) as { nodes: { reachable: boolean }[] };
    // Every peer that answers has been reached (the hung ones never are).
    if (view.nodes.length === nodes && view.nodes.filter((n) => n.reachable).length === nodes - HUNG) return;
    if (performance.now() > deadline) throw new Error('node 1 did not reach its answering peers within 60 s');
    await sleep(200);
  }
}

export async function runFleetBench(): Promise<string> {
  const { chat: gguf } = await ensureLlmTestModels();
  const fleet = (i: number, peers: string[]) => ({
    node_name: `node-${i}`,
    probe_interval_ms: 1000,
    probe_timeout_ms: 1000,
    discovery: { peers },
  });
  const model = (id: string, preload: boolean) => ({ id, path: gguf, context_size: 256, preload });
  const node = (i: number, peers: string[], models: ReturnType<typeof model>[]) =>
    startModelplane({
      fleet: fleet(i, peers),
      eviction: { check_interval_s: 3600 },
      backends: [{ name: 'local', type: 'llama-cpp', models }],
    });
  const node2 = await node(2, [], [model('tiny', true)]);
  const node3 = await node(3, [], [model('tiny3', true)]);
  const recorded = new Map<string, string>();
  for (const path of ['/health/ready', '/api/models', '/api/models/loaded']) {
    recorded.set(path, (await call(`${node3.url}${path}`)).text);
  }
  const simulated = await Promise.all(
    Array.from({ length: PEERS - 2 - HUNG }, (_, i) => startRecordedPeer(recorded, `sim-${i}`)),
  );
  const hung = await Promise.all(Array.from({ length: HUNG }, () => startHungServer()));
  const node1 = await node(
    1,
    [node2.url, node3.url, ...simulated.map((s) => s.url), ...hung.map((h) => h.url)],
    [model('tiny', false)],
  );
  try {
    await untilObserved(node1.url, PEERS + 1);
    const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };

    // 1. The fleet view under pollers, with /health/live as the same-run baseline.
    const viewUrl = `${node1.url}/api/fleet/models/loaded`;
    const liveUrl = `${node1.url}/health/live`;
    const first = JSON.parse((await call(viewUrl)).text) as { nodes: unknown[]; loaded: unknown[] };
    // The pollers run on their own thread: this one also answers for the 43 replaying peers.
    const lat = await pollUrls([viewUrl, liveUrl], { clients: CLIENTS, everyMs: EVERY_MS, windowMs: WINDOW_MS });
    const view = lat.get(viewUrl)!;
    const live = lat.get(liveUrl)!;

    // 2. Routed vs straight, interleaved so both see the same machine.
    for (let i = 0; i < 20; i++) {
      await call(`${node1.url}/v1/chat/completions`, chat);
      await call(`${node2.url}/v1/chat/completions`, chat);
    }
    const routed: number[] = [];
    const straight: number[] = [];
    for (let i = 0; i < OVERHEAD_RUNS; i++) {
      routed.push((await call(`${node1.url}/v1/chat/completions`, chat)).ms);
      straight.push((await call(`${node2.url}/v1/chat/completions`, chat)).ms);
    }
    routed.sort((a, b) => a - b);
    straight.sort((a, b) => a - b);
    const added = percentile(routed, 50) - percentile(straight, 50);

    // 3. Warm node chosen.
    let byWarm = 0;
    for (let i = 0; i < ROUTED_RUNS; i++) {
      const res = await call(`${node1.url}/v1/chat/completions`, chat);
      if (res.status === 200 && res.node === 'node-2') byWarm++;
    }
    const row = (name: string, l: number[]) => [
      name,
      l.length,
      fixed(percentile(l, 50), 2),
      fixed(percentile(l, 90), 2),
      fixed(percentile(l, 99), 2),
      fixed(l[l.length - 1]!, 2),
    ];
    const p99 = percentile(view, 99);
    return [
      `### Fleet: GET /api/fleet/models/loaded on node 1 (its own process) with ${PEERS} peers (2 real nodes, ${PEERS - 2 - HUNG} ` +
        `replaying a real node's recorded answers, ${HUNG} hung), ${CLIENTS} pollers every ${EVERY_MS} ms for ` +
        `${WINDOW_MS / 1000} s; /health/live polled the same way in the same run`,
      '',
      `The view listed ${first.nodes.length} nodes and ${first.loaded.length} loaded entries.`,
      '',
      table(
        ['route', 'polls', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [row('/api/fleet/models/loaded', view), row('/health/live', live)],
      ),
      '',
      `fleet view p99 ${fixed(p99, 2)} ms (goal ≤ 20 ms) — ${p99 <= 20 ? 'met' : 'missed'}; ` +
        `${fixed(p99 / percentile(live, 99), 2)}× the p99 of /health/live.`,
      '',
      `### Fleet: routed chat (node 1 → node 2, model warm on node 2) vs straight to node 2, ${OVERHEAD_RUNS} each, interleaved, max_tokens 1`,
      '',
      table(
        ['path', 'p50 ms', 'p90 ms', 'p99 ms'],
        [
          [
            'via node 1',
            fixed(percentile(routed, 50), 2),
            fixed(percentile(routed, 90), 2),
            fixed(percentile(routed, 99), 2),
          ],
          [
            'straight',
            fixed(percentile(straight, 50), 2),
            fixed(percentile(straight, 90), 2),
            fixed(percentile(straight, 99), 2),
          ],
        ],
      ),
      '',
      `p50 added by routing ${fixed(added, 2)} ms (goal ≤ 1 ms) — ${added <= 1 ? 'met' : 'missed'}; ` +
        `${fixed(percentile(routed, 50) / percentile(straight, 50), 3)}× straight.`,
      '',
      `### Fleet: warm routing — ${byWarm} of ${ROUTED_RUNS} chats sent to node 1 were served by node 2, where the model is warm ` +
        `(goal 100 %) — ${byWarm === ROUTED_RUNS ? 'met' : 'missed'}.`,
    ].join('\n');
  } finally {
    await Promise.all([node1, node2, node3].map((n) => n.stop()));
    await Promise.all([...simulated, ...hung].map((s) => s.close()));
    await agent.close();
  }
}
