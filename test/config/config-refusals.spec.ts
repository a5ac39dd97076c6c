/** Issue 16 item 7: values that cannot work are refused at boot with the field (or variable) named. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/config.loader.js';
import { LIMIT_DEFAULTS, TIMER_MAX_MS } from '../../src/config/limits.js';

function load(yaml: unknown, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mp-refusal-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, typeof yaml === 'string' ? yaml : stringify(yaml));
  return loadConfig({ argv: ['--config', file], env, cwd: dir });
}

function fieldsOf(yaml: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    load(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.field);
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

const remote = (extra: Record<string, unknown>) => ({
  backends: [{ name: 'gpu', type: 'ollama', url: 'http://127.0.0.1:1', ...extra }],
});

describe('config values that cannot work', () => {
  it.each([
    ['probe_timeout_ms', remote({ probe_timeout_ms: 3_000_000_000 }), 'backends[0].probe_timeout_ms'],
    ['request_timeout_ms', remote({ request_timeout_ms: 1e300 }), 'backends[0].request_timeout_ms'],
    ['probe_interval_ms', remote({ probe_interval_ms: TIMER_MAX_MS + 1 }), 'backends[0].probe_interval_ms'],
    ['load_timeout_ms', remote({ load_timeout_ms: TIMER_MAX_MS + 1 }), 'backends[0].load_timeout_ms'],
    ['check_interval_s', { eviction: { check_interval_s: 3_000_000 } }, 'eviction.check_interval_s'],
    ['idle_unload_s', { eviction: { idle_unload_s: 3_000_000 } }, 'eviction.idle_unload_s'],
    ['shutdown_drain_s', { server: { shutdown_drain_s: 3_000_000 } }, 'server.shutdown_drain_s'],
    ['heartbeat_s', { bus: { heartbeat_s: 3_000_000 } }, 'bus.heartbeat_s'],
    ['server.request_timeout_ms', { server: { request_timeout_ms: 1e300 } }, 'server.request_timeout_ms'],
  ])('a timer beyond 2^31-1 ms (%s) is refused', (_name, yaml, field) => {
    expect(fieldsOf(yaml)).toContain(field);
  });

  it('refuses a load_timeout_ms of 0 (a router load could never succeed)', () => {
    expect(fieldsOf(remote({ load_timeout_ms: 0 }))).toContain('backends[0].load_timeout_ms');
  });

  it('accepts the largest timer Node can hold', () => {
    const config = load(remote({ probe_timeout_ms: TIMER_MAX_MS }));
    expect(config.backends[0]!.probeTimeoutMs).toBe(TIMER_MAX_MS);
  });

  it('refuses __proto__, constructor and prototype keys like any unknown key', () => {
    const fields = fieldsOf(
      'server:\n  __proto__: { port: 1 }\nbackends:\n  - { name: a, type: ollama, url: "http://x:1", constructor: 1 }\nprototype: 2\n',
    );
    expect(fields).toEqual(expect.arrayContaining(['server.__proto__', 'backends[0].constructor', 'prototype']));
  });

  it('names the environment variable when an override is out of range', () => {
    const fields = fieldsOf({ backends: [] }, { MODELPLANE_PORT: '70000' });
    expect(fields).toEqual(['MODELPLANE_PORT (server.port)']);
  });

  it.each([
    ['mqtt', 'localhost:1883'],
    ['mqtt', 'http://broker:1883'],
    ['zenoh', 'broker:10000'],
  ])('refuses a %s bus url that cannot be dialled (%s) when the bus is enabled', (transport, url) => {
    expect(fieldsOf({ bus: { enabled: true, transport, url }, backends: [] })).toEqual(['bus.url']);
  });

  it('names MODELPLANE_BUS_URL when the bad bus url came from it', () => {
    const fields = fieldsOf({ backends: [] }, { MODELPLANE_BUS_ENABLED: 'true', MODELPLANE_BUS_URL: 'broker' });
    expect(fields).toEqual(['MODELPLANE_BUS_URL (bus.url)']);
  });

  it('accepts a bad bus url while the bus is off, and real urls when on', () => {
    expect(() => load({ bus: { enabled: false, url: 'nonsense' }, backends: [] })).not.toThrow();
    expect(() => load({ bus: { enabled: true, url: 'mqtts://broker.local:8883' }, backends: [] })).not.toThrow();
    expect(() =>
      load({ bus: { enabled: true, transport: 'zenoh', url: 'ws://127.0.0.1:10000' }, backends: [] }),
    ).not.toThrow();
  });

  it('refuses an empty config file and says what to do instead', () => {
    try {
      load('');
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/empty.*embedded demo/);
    }
  });

  it('reads the bounds from server.* and limits.*, with defaults', () => {
    const config = load({
      server: { headers_timeout_ms: 2000, request_timeout_ms: 3000, keep_alive_timeout_ms: 4000, max_connections: 50 },
      limits: { body_max_keys: 100, body_max_depth: 8, image_queue: 2 },
      backends: [],
    });
    expect(config.limits).toEqual({
      ...LIMIT_DEFAULTS,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 3000,
      keepAliveTimeoutMs: 4000,
      maxConnections: 50,
      bodyMaxKeys: 100,
      bodyMaxDepth: 8,
      imageQueue: 2,
    });
    expect(load({ backends: [] }).limits).toEqual(LIMIT_DEFAULTS);
  });
});
