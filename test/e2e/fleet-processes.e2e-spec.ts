/**
 * The fleet as it runs on Kubernetes, on one machine: three real modelplane processes (the built server) bound
 * to 127.0.0.1, 127.0.0.2 and 127.0.0.3 on one port, like the pods of one headless Service, each finding the
 * others through real DNS exchanges with a responder on loopback. Nothing is driven from inside a node: the
 * background probes and lookups (short intervals) do all the work, so the test waits for what a user would see
 * and asserts what happened and in which order, never how fast. test/e2e/fleet.e2e-spec.ts covers the same
 * behaviour in depth with in-process nodes and explicit probes.
 */
import { type DnsResponder, startDnsResponder } from '../support/dns-responder.js';
import {
  freePort,
  type NodeProcess,
  postJson,
  ProcessFleet,
  requestJson as getJson,
} from '../support/fleet-processes.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';
import { parseExposition } from '../support/prom-parse.js';
import { waitFor } from '../support/wait-for.js';

const SERVICE = 'modelplane-peers.fleet.svc.cluster.local';
const ADMIN = 'fleet-admin-token-processes';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
/** Background periods of every node: short, so the fleet converges in a few rounds. */
const PROBE_INTERVAL_MS = 300;
const DNS_INTERVAL_MS = 300;
/** Far above what a probe of a live node on loopback takes even on a busy machine: no timeout flaps a node. */
const PROBE_TIMEOUT_MS = 5000;
/** For waits on the fleet's background work: generous real time, only so a broken build fails instead of hanging. */
const CONVERGE = { timeoutMs: 30_000 };

interface NodeLine {
  host: string;
  url: string;
  reachable: boolean;
  readiness: string;
  stale: boolean;
}
interface FleetLoaded {
  loaded: { name: string; host: string; node_url: string; backend: string }[];
  nodes: NodeLine[];
}

const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });

async function fleetView(node: NodeProcess): Promise<FleetLoaded> {
  return (await getJson(`${node.url}/api/fleet/models/loaded`)).body as FleetLoaded;
}

/** [model, host, node_url] of every loaded entry, sorted. */
const placements = (view: FleetLoaded): string[][] =>
  view.loaded.map((e) => [e.name, e.host, e.node_url]).sort((a, b) => a.join().localeCompare(b.join()));

/** The node's own loaded models (its local backend, not what it sees through peers). */
async function ownLoaded(node: NodeProcess): Promise<string[]> {
  const { body } = await getJson(`${node.url}/api/models/loaded`);
  return (body.loaded as { name: string; backend: string }[])
    .filter((e) => e.backend === 'local')
    .map((e) => e.name)
    .sort();
}

/** Probes of `backend` that failed, as the node's own /metrics counts them. */
async function failedProbes(node: NodeProcess, backend: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const family = parseExposition(text).find((f) => f.name === 'modelplane_backend_probe_duration_seconds');
  const sample = family?.samples.find(
    (s) => s.name.endsWith('_count') && s.labels.backend === backend && s.labels.result === 'error',
  );
  return sample?.value ?? 0;
}

/** The time a log line was written: pino's `time` for a JSON line, else null. */
function loggedAtMs(line: string): number | null {
  try {
    const parsed = JSON.parse(line) as { time?: unknown };
    return typeof parsed.time === 'number' ? parsed.time : null;
  } catch {
    return null;
  }
}

describe('fleet of three modelplane processes on 127.0.0.1-3, peers from DNS', () => {
  const fleet = new ProcessFleet();
  let dns: DnsResponder | undefined;
  let port: number;
  const nodes: NodeProcess[] = [];
  const peerName = (host: string) => `peer-${host}-${port}`;
  const n1 = (): NodeProcess => nodes[0]!;
  const n2 = (): NodeProcess => nodes[1]!;
  const n3 = (): NodeProcess => nodes[2]!;

  beforeAll(async () => {
    await ensureLlmTestModels();
    dns = await startDnsResponder();
    dns.set(SERVICE, HOSTS);
    port = await freePort();
    const model = (id: string, preload: boolean) => ({ id, path: TINY_CHAT_GGUF, context_size: 256, preload });
    const node = (i: number, models: ReturnType<typeof model>[]) =>
      fleet.start(HOSTS[i]!, port, {
        log_level: 'warn',
        log_format: 'json',
        server: { admin_token: ADMIN },
        fleet: {
          node_name: `node-${i + 1}`,
          self_url: `http://${HOSTS[i]}:${port}`,
          probe_interval_ms: PROBE_INTERVAL_MS,
          probe_timeout_ms: PROBE_TIMEOUT_MS,
          failure_threshold: 1,
          discovery: { dns: { name: SERVICE, port, interval_ms: DNS_INTERVAL_MS, servers: [dns!.address] } },
        },
        backends: [{ name: 'local', type: 'llama-cpp', models }],
      });
    // Node 1 has its own copy of 'tiny', unloaded: warm routing must prefer node 2's loaded one over loading it.
    // Node 2 has 'tiny3' unloaded: once node 3 is gone, it is the node with room for it.
    nodes.push(
      ...(await Promise.all([
        node(0, [model('one', true), model('tiny', false)]),
        node(1, [model('tiny', true), model('tiny2', true), model('tiny3', false)]),
        node(2, [model('tiny3', true)]),
      ])),
    );
    // Every node has found the two others in DNS and probed them while they were ready.
    for (const n of nodes) {
      await waitFor(
        async () => {
          const { body } = await getJson(`${n.url}/api/fleet/health`);
          return body.ready_nodes === 3 && body.total_nodes === 3;
        },
        `${n.host} to see three ready nodes`,
        CONVERGE,
      );
    }
  }, 300_000);

  afterAll(async () => {
    await fleet.stopAll();
    await dns?.close();
  });

  it('lists every node and each node’s own loaded models with host and node_url, the same on every node', async () => {
    const view = await fleetView(n1());
    expect(view.nodes.map((n) => [n.host, n.url]).sort()).toEqual(
      HOSTS.map((h, i) => [`node-${i + 1}`, `http://${h}:${port}`]),
    );
    for (const line of view.nodes) expect(line).toMatchObject({ reachable: true, readiness: 'ready', stale: false });
    const expected = [
      ['one', 'node-1', `http://127.0.0.1:${port}`],
      ['tiny', 'node-2', `http://127.0.0.2:${port}`],
      ['tiny2', 'node-2', `http://127.0.0.2:${port}`],
      ['tiny3', 'node-3', `http://127.0.0.3:${port}`],
    ];
    expect(placements(view)).toEqual(expected);
    // Each entry is the node's own (its local backend), not the peer backend node 1 sees it through.
    expect(new Set(view.loaded.map((e) => e.backend))).toEqual(new Set(['local']));
    // Nodes 2 and 3 tell the same story from where they stand.
    for (const other of [n2(), n3()]) expect(placements(await fleetView(other))).toEqual(expected);
    // A node never lists itself as a peer.
    const own = await getJson(`${n1().url}/api/models/loaded`);
    const peers = (own.body.backends as { name: string; backend_type: string }[])
      .filter((b) => b.backend_type === 'modelplane')
      .map((b) => b.name)
      .sort();
    expect(peers).toEqual([peerName('127.0.0.2'), peerName('127.0.0.3')]);
  });

  it('a chat for a model warm on node 2, sent to node 1, is served by node 2', async () => {
    const res = await postJson(`${n1().url}/v1/chat/completions`, chat('tiny'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-2');
    expect(res.body.choices[0].message.role).toBe('assistant');
    // Node 1 did not load its own copy to answer it.
    expect(await ownLoaded(n1())).toEqual(['one']);
  });

  it('an admin unload sent to node 1 unloads the model on node 2, and the fleet view follows', async () => {
    const refused = await postJson(`${n1().url}/api/models/tiny2/unload`, {});
    expect(refused.status).toBe(401);
    expect(await ownLoaded(n2())).toEqual(['tiny', 'tiny2']);
    const res = await postJson(`${n1().url}/api/models/tiny2/unload`, {}, { authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: 'tiny2', was_loaded: true });
    expect(await ownLoaded(n2())).toEqual(['tiny']);
    await waitFor(
      async () => !(await fleetView(n1())).loaded.some((e) => e.name === 'tiny2'),
      "node 1's fleet view to drop tiny2",
      CONVERGE,
    );
  });

  it('node 3 killed (SIGKILL): its next probe marks it unreachable in the fleet view and takes it out of routing', async () => {
    const node3 = peerName('127.0.0.3');
    // While node 3 lives, a chat for its warm model goes there.
    const before = await postJson(`${n1().url}/v1/chat/completions`, chat('tiny3'));
    expect(before.status).toBe(200);
    expect(before.headers.get('x-modelplane-node')).toBe('node-3');
    const failedBefore = await failedProbes(n1(), node3);

    // Node 1 logs the readiness change its first failed probe of node 3 makes: the time of that probe.
    let probeFailedAtMs: number | null = null;
    const stopWatching = n1().onLine((line, readAtMs) => {
      if (probeFailedAtMs === null && line.includes(`'${node3}'`) && line.includes('→ unavailable'))
        probeFailedAtMs = loggedAtMs(line) ?? readAtMs;
    });
    let markedAtMs = 0;
    let view: FleetLoaded | undefined;
    try {
      const killedAtMs = Date.now();
      await n3().kill('SIGKILL');
      await waitFor(
        async () => {
          view = await fleetView(n1());
          markedAtMs = Date.now();
          return view.nodes.find((n) => n.host === 'node-3')?.reachable === false;
        },
        "node 1's fleet view to mark node 3",
        CONVERGE,
      );
      const probeAt = probeFailedAtMs as number | null;
      console.log(
        probeAt === null
          ? `node 3 killed: fleet view marked it ${markedAtMs - killedAtMs} ms after the kill (probe time not in the log)`
          : `node 3 killed: first failed probe ${probeAt - killedAtMs} ms after the kill; ` +
              `fleet view showed it ${markedAtMs - probeAt} ms after that probe (probe interval ${PROBE_INTERVAL_MS} ms)`,
      );
    } finally {
      stopWatching();
    }

    // Marked by a probe (DNS still lists node 3, so its line stays), and only once one had failed.
    expect(await failedProbes(n1(), node3)).toBeGreaterThan(failedBefore);
    expect(view!.nodes.find((n) => n.host === 'node-3')).toMatchObject({ reachable: false, readiness: 'unavailable' });
    expect(view!.loaded.map((e) => e.host)).not.toContain('node-3');
    const health = await getJson(`${n1().url}/api/fleet/health`);
    expect(health.body).toMatchObject({ status: 'degraded', ready_nodes: 2, total_nodes: 3 });

    // Routing no longer chooses node 3: the same chat goes to node 2, which has room to load the model.
    const after = await postJson(`${n1().url}/v1/chat/completions`, chat('tiny3'));
    expect(after.status).toBe(200);
    expect(after.headers.get('x-modelplane-node')).toBe('node-2');
    expect(await ownLoaded(n2())).toEqual(['tiny', 'tiny3']);
  });

  it("node 3's DNS record removed: every node drops that peer from its views", async () => {
    dns!.set(SERVICE, HOSTS.slice(0, 2));
    for (const n of [n1(), n2()]) {
      await waitFor(
        async () =>
          (await fleetView(n)).nodes
            .map((line) => line.host)
            .sort()
            .join() === 'node-1,node-2',
        `${n.host} to drop node 3`,
        CONVERGE,
      );
    }
    const own = await getJson(`${n1().url}/api/models/loaded`);
    expect((own.body.backends as { name: string }[]).map((b) => b.name)).not.toContain(peerName('127.0.0.3'));
    const health = await getJson(`${n1().url}/api/fleet/health`);
    expect(health.body).toMatchObject({ status: 'ready', ready_nodes: 2, total_nodes: 2 });
    expect(JSON.stringify((await getJson(`${n1().url}/health`)).body)).not.toContain(peerName('127.0.0.3'));
  });
});
