/**
 * Three real modelplane nodes on 127.0.0.1-3 (one port, like the pods of one headless Service), peers found
 * through a real DNS exchange with an in-process responder on loopback. Probes and DNS lookups are driven
 * explicitly (what the background would do on its next round), so nothing depends on machine speed.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app.factory.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, postJson } from '../support/app-harness.js';
import { configFrom } from '../support/config.js';
import { FakeClock } from '../support/fake-clock.js';
import { waitFor } from '../support/wait-for.js';
import { type DnsResponder, startDnsResponder } from '../support/dns-responder.js';
import { type FleetNode, freePort, startNode } from '../support/fleet-harness.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';
import { FleetDiscoveryService } from '../../src/fleet/fleet-discovery.service.js';
import { ProbeService } from '../../src/models/probe.service.js';

const SERVICE = 'modelplane-peers.fleet.svc.cluster.local';
const ADMIN = 'fleet-admin-token-1';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

/** Answers what a real node answered (recorded), until `hang()`: then it takes requests and never replies. */
async function startReplayingPeer(
  recorded: Map<string, string>,
): Promise<{ url: string; hang(): void; held(): number; close(): Promise<void> }> {
  let hung = false;
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (hung) {
      held.push(res);
      return;
    }
    const body = recorded.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(body ?? '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hang: () => {
      hung = true;
    },
    held: () => held.length,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('fleet of three nodes', () => {
  let dns: DnsResponder;
  let port: number;
  const nodes: FleetNode[] = [];
  const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  const peerName = (host: string) => `peer-${host}-${port}`;

  beforeAll(async () => {
    await ensureLlmTestModels();
    dns = await startDnsResponder();
    dns.set(SERVICE, HOSTS);
    port = await freePort();
    const node = (i: number, models: Record<string, unknown>[], eviction: Record<string, unknown> = {}) =>
      startNode(HOSTS[i]!, port, {
        eviction,
        server: { admin_token: ADMIN },
        fleet: {
          node_name: `node-${i + 1}`,
          self_url: `http://${HOSTS[i]}:${port}`,
          // Long periods: the test drives lookups and probes itself.
          probe_interval_ms: 60_000,
          discovery: { dns: { name: SERVICE, port, interval_ms: 60_000, servers: [dns.address] } },
        },
        backends: [{ name: 'local', type: 'llama-cpp', models }],
      });
    // Node 1 holds one model at most: once it has one, another fits only by evicting it.
    nodes.push(
      await node(
        0,
        [
          { id: 'tiny', path: TINY_CHAT_GGUF, context_size: 256 },
          { id: 'roomy', path: TINY_CHAT_GGUF, context_size: 256 },
        ],
        { max_loaded_models: 1 },
      ),
    );
    nodes.push(
      await node(1, [
        { id: 'tiny', path: TINY_CHAT_GGUF, context_size: 256, preload: true },
        { id: 'tiny2', path: TINY_CHAT_GGUF, context_size: 256, preload: true },
        { id: 'roomy', path: TINY_CHAT_GGUF, context_size: 256 },
      ]),
    );
    nodes.push(await node(2, [{ id: 'tiny3', path: TINY_CHAT_GGUF, context_size: 256, preload: true }]));
    // Every node up before any looks at the others.
    for (const n of nodes) await n.observe();
    for (const n of nodes) await n.observe();
  });

  afterAll(async () => {
    for (const n of nodes) await n.close().catch(() => undefined);
    await dns.close();
  });

  it('finds its peers in DNS, never itself, and lists every node and its models with host', async () => {
    const { status, body } = await getJson(`${nodes[0]!.url}/api/fleet/models/loaded`);
    expect(status).toBe(200);
    expect(body.nodes.map((n: { host: string }) => n.host).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    for (const n of body.nodes) {
      expect(n).toMatchObject({ reachable: true, readiness: 'ready', stale: false });
      expect(typeof n.observation_age_ms).toBe('number');
    }
    const where = body.loaded.map((e: { name: string; host: string; node_url: string }) => [
      e.name,
      e.host,
      e.node_url,
    ]);
    expect(where.sort()).toEqual([
      ['tiny', 'node-2', `http://127.0.0.2:${port}`],
      ['tiny2', 'node-2', `http://127.0.0.2:${port}`],
      ['tiny3', 'node-3', `http://127.0.0.3:${port}`],
    ]);
    // Entries are the node's own: its backend, not the peer backend node 1 sees it through.
    expect(body.loaded.find((e: { name: string }) => e.name === 'tiny').backend).toBe('local');
    // Node 1's own view: its peers are backends of kind modelplane, itself is not one.
    const own = await getJson(`${nodes[0]!.url}/api/models/loaded`);
    const peers = own.body.backends.filter((b: { backend_type: string }) => b.backend_type === 'modelplane');
    expect(peers.map((b: { name: string }) => b.name).sort()).toEqual([peerName('127.0.0.2'), peerName('127.0.0.3')]);
    const health = await getJson(`${nodes[0]!.url}/api/fleet/health`);
    expect(health.body).toMatchObject({ status: 'ready', ready_nodes: 3, total_nodes: 3 });
  });

  it('routes a chat for a model warm on node 2 to node 2, and says so', async () => {
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('tiny'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-2');
    expect(res.body.choices[0].message).toBeDefined();
    // Node 1 did not load its own copy.
    const catalog = await getJson(`${nodes[0]!.url}/api/models`);
    const tiny = catalog.body.models.find((m: { id: string; backend: string }) => m.id === 'tiny');
    expect(tiny).toMatchObject({ backend: 'local', state: 'unloaded' });
  });

  it('streams through the node it routed to', async () => {
    const res = await fetch(`${nodes[0]!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat('tiny'), stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-2');
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(await res.text()).toMatch(/data: \[DONE\]/);
  });

  it('serves a model only a peer has through that peer backend when nothing is warm', async () => {
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('tiny3'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-3');
  });

  it('forwards an admin unload through node 1 to node 2 with the admin token', async () => {
    const refused = await postJson(`${nodes[0]!.url}/api/models/tiny2/unload`, {});
    expect(refused.status).toBe(401);
    const res = await postJson(`${nodes[0]!.url}/api/models/tiny2/unload`, {}, { authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: 'tiny2', was_loaded: true });
    const onNode2 = await getJson(`${nodes[1]!.url}/api/models/loaded`);
    const own = onNode2.body.loaded.filter((e: { backend: string }) => e.backend === 'local');
    expect(own.map((e: { name: string }) => e.name)).toEqual(['tiny']);
    await nodes[0]!.observe();
    const fleet = await getJson(`${nodes[0]!.url}/api/fleet/models/loaded`);
    expect(fleet.body.loaded.map((e: { name: string }) => e.name)).not.toContain('tiny2');
  });

  it('forwards an admin load through node 1 to node 2 with the admin token', async () => {
    // 'tiny2' is node 2's alone (unloaded by the test above): node 1 has no copy of its own.
    const refused = await postJson(`${nodes[0]!.url}/api/models/tiny2/load`, {});
    expect(refused.status).toBe(401);
    const res = await postJson(`${nodes[0]!.url}/api/models/tiny2/load`, {}, { authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: 'tiny2' });
    const onNode2 = await getJson(`${nodes[1]!.url}/api/models/loaded`);
    const own = onNode2.body.loaded.filter((e: { backend: string }) => e.backend === 'local');
    expect(own.map((e: { name: string }) => e.name).sort()).toEqual(['tiny', 'tiny2']);
    const onNode1 = await getJson(`${nodes[0]!.url}/api/models`);
    expect(onNode1.body.models.find((m: { id: string }) => m.id === 'tiny').state).toBe('unloaded');
  });

  it("unload-all frees this node's memory only: models loaded on a peer stay, listed as skipped", async () => {
    await nodes[0]!.observe();
    const res = await postJson(`${nodes[0]!.url}/api/models/unload`, {}, { authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
    expect(res.body.unloaded).not.toContain('tiny2');
    expect(res.body.skipped).toContainEqual({ model: 'tiny2', reason: 'on_peer' });
    const onNode2 = await getJson(`${nodes[1]!.url}/api/models/loaded`);
    const own = onNode2.body.loaded.filter((e: { backend: string }) => e.backend === 'local');
    expect(own.map((e: { name: string }) => e.name).sort()).toEqual(['tiny', 'tiny2']);
  });

  it('never forwards a forwarded request again (no loops): it is served where it lands', async () => {
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('tiny'), {
      'x-modelplane-forwarded': 'node-9',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-1');
  });

  it('a model warm here and on a peer, equally busy, is served here (no hop)', async () => {
    // The request above made node 1 load 'tiny'; node 2 holds it too, both idle.
    await nodes[0]!.observe();
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('tiny'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-1');
  });

  it('sends a model warm nowhere to a node that can load it without evicting anything', async () => {
    // Node 1 now holds 'tiny' (the request above) and may hold one model: 'roomy' would evict it there.
    const plan = await getJson(`${nodes[0]!.url}/api/eviction/plan?load=roomy`);
    expect(plan.body).toMatchObject({ fits: true, evict: ['tiny'] });
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('roomy'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-2');
    const catalog = await getJson(`${nodes[0]!.url}/api/models`);
    const states = Object.fromEntries(
      catalog.body.models
        .filter((m: { backend: string }) => m.backend === 'local')
        .map((m: { id: string; state: string }) => [m.id, m.state]),
    );
    expect(states).toEqual({ tiny: 'loaded', roomy: 'unloaded' });
  });

  it('a hung peer never delays the fleet view, and is marked unreachable then stale after its probe deadlines', async () => {
    // A peer that answered what node 3 answers, then hangs: it takes the connection and never replies.
    const recorded = new Map<string, string>();
    for (const path of ['/health/ready', '/api/fleet/node', '/api/models', '/api/models/loaded']) {
      recorded.set(path, await (await fetch(`${nodes[2]!.url}${path}`)).text());
    }
    const peer = await startReplayingPeer(recorded);
    // The node that looks at it runs on a FakeClock: a probe in flight stays in flight until the test moves time.
    const clock = new FakeClock();
    const timeoutMs = 1000;
    const intervalMs = 60_000;
    const app = await createApp(
      configFrom({
        server: { host: '127.0.0.8', port },
        fleet: {
          node_name: 'watcher',
          probe_interval_ms: intervalMs,
          probe_timeout_ms: timeoutMs,
          discovery: { peers: [peer.url] },
        },
        backends: [],
      }),
      { logger: false, clock },
    );
    try {
      await app.listen({ host: '127.0.0.8', port });
      await app.get(BackendStartupService).settled();
      const probes = app.get(ProbeService);
      await probes.whenIdle();
      const url = `http://127.0.0.8:${port}/api/fleet/models/loaded`;
      const before = (await getJson(url)).body;
      const line = before.nodes.find((n: { host: string }) => n.host === 'node-3');
      expect(line).toMatchObject({ reachable: true, stale: false, readiness: 'ready' });
      expect(before.loaded.map((e: { name: string; host: string }) => [e.name, e.host])).toEqual([['tiny3', 'node-3']]);

      peer.hang();
      const probing = probes.probeNow(line.backend);
      await waitFor(() => peer.held() > 0, 'the probe to reach the hung peer');
      // The probe is in flight and cannot end before the clock moves: a read that waited for it would never answer.
      const during = await getJson(url);
      expect(during.status).toBe(200);
      expect(during.body.nodes.find((n: { host: string }) => n.host === 'node-3')).toMatchObject({ reachable: true });

      clock.advance(timeoutMs);
      await probing;
      const after = (await getJson(url)).body;
      expect(after.nodes.find((n: { host: string }) => n.host === 'node-3')).toMatchObject({
        reachable: false,
        readiness: 'unavailable',
      });
      expect(after.loaded).toEqual([]);
      // No good observation for longer than interval + timeout: stale as well.
      clock.advance(intervalMs + 1);
      const later = (await getJson(url)).body;
      expect(later.nodes.find((n: { host: string }) => n.host === 'node-3')).toMatchObject({ stale: true });
    } finally {
      await app.close();
      await peer.close();
    }
  });

  it('a killed node leaves routing and is marked in the fleet view at its next probe', async () => {
    await nodes[2]!.close();
    await nodes[0]!.app.get(ProbeService).probeNow(peerName('127.0.0.3'));
    const { body } = await getJson(`${nodes[0]!.url}/api/fleet/models/loaded`);
    const node3 = body.nodes.find((n: { host: string }) => n.host === 'node-3');
    expect(node3).toMatchObject({ reachable: false, readiness: 'unavailable' });
    expect(body.loaded.map((e: { name: string }) => e.name)).not.toContain('tiny3');
    const res = await postJson(`${nodes[0]!.url}/v1/chat/completions`, chat('tiny3'));
    expect(res.status).toBe(503);
    expect(res.headers.get('x-modelplane-node')).not.toBe('node-3');
    const health = await getJson(`${nodes[0]!.url}/api/fleet/health`);
    expect(health.body).toMatchObject({ status: 'degraded', ready_nodes: 2, total_nodes: 3 });
  });

  it('a record removed from DNS drops that peer from every view', async () => {
    dns.set(SERVICE, HOSTS.slice(0, 2));
    await nodes[0]!.app.get(FleetDiscoveryService).sync();
    const fleet = await getJson(`${nodes[0]!.url}/api/fleet/models/loaded`);
    expect(fleet.body.nodes.map((n: { host: string }) => n.host).sort()).toEqual(['node-1', 'node-2']);
    const own = await getJson(`${nodes[0]!.url}/api/models/loaded`);
    expect(own.body.backends.map((b: { name: string }) => b.name)).not.toContain(peerName('127.0.0.3'));
    const health = await getJson(`${nodes[0]!.url}/health`);
    expect(JSON.stringify(health.body)).not.toContain(peerName('127.0.0.3'));
    const catalog = await getJson(`${nodes[0]!.url}/api/models`);
    expect(catalog.body.models.map((m: { id: string }) => m.id)).not.toContain('tiny3');
  });

  it('a DNS server in trouble (SERVFAIL) changes nothing: one lost answer is not a fleet that vanished', async () => {
    dns.failing(true);
    try {
      await nodes[0]!.app.get(FleetDiscoveryService).sync();
    } finally {
      dns.failing(false);
    }
    const fleet = await getJson(`${nodes[0]!.url}/api/fleet/models/loaded`);
    expect(fleet.body.nodes.map((n: { host: string }) => n.host).sort()).toEqual(['node-1', 'node-2']);
    dns.set(SERVICE, []);
    await nodes[0]!.app.get(FleetDiscoveryService).sync();
    const alone = await getJson(`${nodes[0]!.url}/api/fleet/health`);
    expect(alone.body).toMatchObject({ total_nodes: 1, ready_nodes: 1, status: 'ready' });
  });
});

/**
 * Two nodes that list each other as a `type: modelplane` backend BEFORE their own: resolution by config order
 * alone would send a forwarded request back (A → B → A → ...). A forwarded request is served by the node's own
 * backend when it has the model, and refused (503 not_served_here) when only a peer has it: never sent on.
 */
describe('fleet loop guard (peers listed before the local backend)', () => {
  let port: number;
  let a: FleetNode;
  let b: FleetNode;
  const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  const stateOn = async (node: FleetNode, id: string): Promise<string> => {
    const { body } = await getJson(`${node.url}/api/models`);
    const entry = (body.models as { id: string; backend: string; state: string }[]).find(
      (m) => m.id === id && m.backend === 'local',
    );
    return entry?.state ?? 'absent';
  };

  beforeAll(async () => {
    await ensureLlmTestModels();
    port = await freePort();
    const node = (host: string, name: string, peer: string, models: Record<string, unknown>[]) =>
      startNode(host, port, {
        server: { admin_token: ADMIN },
        fleet: { node_name: name, self_url: `http://${host}:${port}`, probe_interval_ms: 60_000 },
        backends: [
          { name: 'peer', type: 'modelplane', url: `http://${peer}:${port}`, probe_interval_ms: 60_000 },
          { name: 'local', type: 'llama-cpp', models },
        ],
      });
    a = await node('127.0.0.4', 'node-a', '127.0.0.5', [{ id: 'tiny', path: TINY_CHAT_GGUF, context_size: 256 }]);
    b = await node('127.0.0.5', 'node-b', '127.0.0.4', [
      { id: 'tiny', path: TINY_CHAT_GGUF, context_size: 256 },
      { id: 'only-b', path: TINY_CHAT_GGUF, context_size: 256 },
    ]);
    for (const n of [a, b, a, b]) await n.observe();
  });

  afterAll(async () => {
    for (const n of [a, b]) await n?.close().catch(() => undefined);
  });

  it('a forwarded request for a model this node has is served by its own backend, not its peer', async () => {
    const res = await postJson(`${a.url}/v1/chat/completions`, chat('tiny'), { 'x-modelplane-forwarded': 'node-b' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-a');
    expect(await stateOn(a, 'tiny')).toBe('loaded');
    expect(await stateOn(b, 'tiny')).toBe('unloaded');
  });

  it('a forwarded request for a model only a peer has is refused, never forwarded a second time', async () => {
    const res = await postJson(`${a.url}/v1/chat/completions`, chat('only-b'), { 'x-modelplane-forwarded': 'node-c' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body.error).toMatchObject({ code: 'not_served_here', node: 'node-a', forwarded_by: 'node-c' });
    expect(res.headers.get('x-modelplane-node')).toBe('node-a');
    // Node B never saw it: its model is still unloaded.
    expect(await stateOn(b, 'only-b')).toBe('unloaded');
  });

  it('a forwarded admin load for a model only a peer has is refused too', async () => {
    const res = await postJson(
      `${a.url}/api/models/only-b/load`,
      {},
      { authorization: `Bearer ${ADMIN}`, 'x-modelplane-forwarded': 'node-c' },
    );
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('not_served_here');
    expect(await stateOn(b, 'only-b')).toBe('unloaded');
  });

  it('the same request sent by a client (not forwarded) takes its one hop to the peer', async () => {
    const res = await postJson(`${a.url}/v1/chat/completions`, chat('only-b'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelplane-node')).toBe('node-b');
    expect(await stateOn(b, 'only-b')).toBe('loaded');
  });
});
