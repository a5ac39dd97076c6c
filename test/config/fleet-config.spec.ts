import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/config.loader.js';
import { isSelf } from '../../src/config/fleet-config.js';

function load(yaml: unknown, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mp-fleet-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, stringify(yaml));
  return loadConfig({ argv: ['--config', file], env, cwd: dir });
}

describe('fleet config', () => {
  const list = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080/', 'http://10.0.0.3:8080'];

  it('turns static peers into modelplane backends, one per address, never this node (self_url)', () => {
    const config = load({
      server: { admin_token: 'admin-token-1', api_key: 'key-1' },
      fleet: { node_name: 'gpu-1', self_url: 'http://10.0.0.1:8080', discovery: { peers: list } },
      backends: [],
    });
    expect(config.backends.map((b) => [b.name, b.type, b.url])).toEqual([
      ['peer-10.0.0.2-8080', 'modelplane', 'http://10.0.0.2:8080'],
      ['peer-10.0.0.3-8080', 'modelplane', 'http://10.0.0.3:8080'],
    ]);
    // One fleet, one set of secrets: peers get this node's keys.
    expect(config.backends[0]).toMatchObject({ apiKey: 'key-1', adminToken: 'admin-token-1', failureThreshold: 1 });
    expect(config.fleet).toMatchObject({ nodeName: 'gpu-1', routing: true, dns: null });
  });

  it('leaves out the pod IP from the downward API, whatever the port, and takes the node name from env', () => {
    const config = load(
      { fleet: { discovery: { peers: list } }, backends: [] },
      { MODELPLANE_POD_IP: '10.0.0.3', MODELPLANE_NODE_NAME: 'edge-7' },
    );
    expect(config.backends.map((b) => b.url)).toEqual(['http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
    expect(config.fleet?.nodeName).toBe('edge-7');
  });

  it('reads DNS discovery with the port defaulting to the server port', () => {
    const config = load({
      server: { port: 9000 },
      fleet: { discovery: { dns: { name: 'mp-peers.ns.svc.cluster.local', interval_ms: 2000 } } },
      backends: [],
    });
    expect(config.fleet?.dns).toEqual({
      name: 'mp-peers.ns.svc.cluster.local',
      port: 9000,
      intervalMs: 2000,
      scheme: 'http',
      servers: [],
    });
  });

  it('refuses a bad fleet section naming every bad field', () => {
    let issues: { field: string }[] = [];
    try {
      load({
        fleet: {
          node_name: 'has space',
          self_url: 'not a url',
          peers: ['http://x'],
          discovery: { peers: ['ftp://x'], dns: { port: 70000, interval_ms: 5 } },
        },
        backends: [],
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues = err.issues;
    }
    expect([...new Set(issues.map((i) => i.field))].sort()).toEqual(
      [
        'fleet.discovery.dns.interval_ms',
        'fleet.discovery.dns.name',
        'fleet.discovery.dns.port',
        'fleet.discovery.peers',
        'fleet.node_name',
        'fleet.peers',
        'fleet.self_url',
      ].sort(),
    );
  });

  it('knows itself by origin or by pod IP (IPv6 included)', () => {
    expect(isSelf('http://10.0.0.1:8080', { selfUrl: 'http://10.0.0.1:8080', podIp: null })).toBe(true);
    expect(isSelf('http://10.0.0.1:9090', { selfUrl: 'http://10.0.0.1:8080', podIp: null })).toBe(false);
    expect(isSelf('http://[fd00::5]:8080', { selfUrl: null, podIp: 'fd00::5' })).toBe(true);
    expect(isSelf('http://[fd00::6]:8080', { selfUrl: null, podIp: 'fd00::5' })).toBe(false);
  });
});
