import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_DEFAULTS } from '../../src/config/config-defaults.js';
import { configFrom } from '../support/config.js';

type Raw = Record<string, unknown>;

/** The reference YAML block of docs/configuration.md, as a reader sees it. */
function documented(): Raw {
  const text = readFileSync(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
  const reference = text.slice(text.indexOf('## Reference'));
  const block = /```yaml\n([\s\S]*?)```/.exec(reference);
  if (!block) throw new Error('docs/configuration.md has no yaml block under "## Reference"');
  return parse(block[1]!) as Raw;
}

describe('config defaults', () => {
  const docs = documented();
  const backends = docs.backends as Raw[];

  it.each(['server', 'eviction', 'bus', 'limits'] as const)('docs/configuration.md shows the %s defaults', (name) => {
    expect(docs[name]).toMatchObject(CONFIG_DEFAULTS[name]);
  });

  it('docs/configuration.md shows the top-level, backend and model defaults', () => {
    expect({ data_dir: docs.data_dir, log_level: docs.log_level }).toEqual({
      data_dir: CONFIG_DEFAULTS.data_dir,
      log_level: CONFIG_DEFAULTS.log_level,
    });
    // The remote example backend lists every probe and size setting at its default.
    expect(backends[1]).toMatchObject(CONFIG_DEFAULTS.backend);
    expect((backends[0]!.models as Raw[])[0]).toMatchObject(CONFIG_DEFAULTS.model);
  });

  it('a file that sets nothing gets the documented values', () => {
    const remote = { name: 'r', type: 'ollama', url: 'http://127.0.0.1:1', models: [{ id: 'm' }] };
    const config = configFrom({ backends: [remote] });
    const server = docs.server as Raw;
    const bus = docs.bus as Raw;
    const limits = docs.limits as Raw;
    expect(config.server).toMatchObject({
      host: server.host,
      port: server.port,
      bodyLimitBytes: server.body_limit_bytes,
      shutdownDrainS: server.shutdown_drain_s,
    });
    expect(config.limits).toEqual({
      headersTimeoutMs: server.headers_timeout_ms,
      requestTimeoutMs: server.request_timeout_ms,
      keepAliveTimeoutMs: server.keep_alive_timeout_ms,
      maxConnections: server.max_connections,
      bodyMaxKeys: limits.body_max_keys,
      bodyMaxDepth: limits.body_max_depth,
      imageQueue: limits.image_queue,
      imageMaxWork: limits.image_max_work,
    });
    const eviction = docs.eviction as Raw;
    expect(config.eviction).toEqual({
      idleUnloadS: eviction.idle_unload_s,
      checkIntervalS: eviction.check_interval_s,
      maxLoadedModels: eviction.max_loaded_models,
      memoryBudgetMb: eviction.memory_budget_mb,
    });
    expect(config.bus).toEqual({
      enabled: bus.enabled,
      transport: bus.transport,
      url: bus.url,
      heartbeatS: bus.heartbeat_s,
      connectTimeoutMs: bus.connect_timeout_ms,
      topics: bus.topics,
    });
    expect(config.logLevel).toBe(docs.log_level);
    const doc = backends[1]!;
    expect(config.backends[0]).toMatchObject({
      probeTimeoutMs: doc.probe_timeout_ms,
      probeCacheMs: doc.probe_cache_ms,
      probeIntervalMs: doc.probe_interval_ms,
      failureThreshold: doc.failure_threshold,
      requestTimeoutMs: doc.request_timeout_ms,
      streamIdleTimeoutMs: doc.stream_idle_timeout_ms,
      loadTimeoutMs: doc.load_timeout_ms,
      maxLineBytes: doc.max_line_bytes,
      maxBodyBytes: doc.max_body_bytes,
    });
    const model = (backends[0]!.models as Raw[])[0]!;
    expect(config.backends[0]!.models[0]).toMatchObject({
      preload: model.preload,
      pin: model.pin,
      embeddings: model.embeddings,
      parallel: model.parallel,
    });
  });
});
