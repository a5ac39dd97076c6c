import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/config.loader.js';

function load(yaml: unknown, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mp-config-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, typeof yaml === 'string' ? yaml : stringify(yaml));
  return loadConfig({ argv: ['--config', file], env, cwd: dir });
}

function issuesOf(yaml: unknown, env: NodeJS.ProcessEnv = {}) {
  try {
    load(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe(loadConfig.name, () => {
  it('applies defaults for a file that sets nothing but an empty backend list', () => {
    const config = load('backends: []\n');
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, adminToken: null });
    expect(config.eviction).toEqual({ idleUnloadS: 600, checkIntervalS: 60, maxLoadedModels: 0, memoryBudgetMb: 0 });
    expect(config.bus).toMatchObject({ enabled: false, transport: 'mqtt', heartbeatS: 5 });
    expect(config.bus.topics).toEqual({
      request: 'local/llm/request',
      response: 'local/llm/response',
      status: 'local/llm/status',
    });
    expect(config.backends).toEqual([]);
    expect(config.demo).toBe(false);
  });

  it('uses the embedded demo when no config path is given', () => {
    const config = loadConfig({ argv: [], env: {}, cwd: tmpdir() });
    expect(config.demo).toBe(true);
  });

  it('reads the path from MODELPLANE_CONFIG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-config-'));
    writeFileSync(join(dir, 'm.yaml'), 'server: { port: 9999 }\n');
    const config = loadConfig({ argv: [], env: { MODELPLANE_CONFIG: join(dir, 'm.yaml') }, cwd: '/' });
    expect(config.server.port).toBe(9999);
  });

  it('maps backends and models with per-backend defaults, resolving paths against the file folder', () => {
    const config = load({
      backends: [
        {
          name: 'local',
          type: 'llama-cpp',
          models: [{ id: 'qwen', path: 'models/q.gguf', preload: true, pin: true, idle_unload_s: 30 }],
        },
        { name: 'box', type: 'ollama', url: 'http://gpu-box:11434/', probe_timeout_ms: 800 },
      ],
    });
    expect(config.backends[0]).toMatchObject({
      name: 'local',
      type: 'llama-cpp',
      url: null,
      probeTimeoutMs: 1500,
      failureThreshold: 3,
    });
    expect(config.backends[0]!.models[0]).toMatchObject({
      id: 'qwen',
      path: 'models/q.gguf',
      preload: true,
      pin: true,
      idleUnloadS: 30,
    });
    expect(config.backends[1]).toMatchObject({ url: 'http://gpu-box:11434', probeTimeoutMs: 800, models: [] });
  });

  it('applies every env override', () => {
    const config = load('backends: []\n', {
      MODELPLANE_HOST: '0.0.0.0',
      MODELPLANE_PORT: '9090',
      MODELPLANE_ADMIN_TOKEN: 'secret-token-123',
      MODELPLANE_API_KEY: 'k',
      MODELPLANE_IDLE_UNLOAD_S: '30',
      MODELPLANE_CHECK_INTERVAL_S: '2',
      MODELPLANE_BUS_ENABLED: 'true',
      MODELPLANE_BUS_URL: 'mqtt://10.0.0.1:1883',
      MODELPLANE_LOG_LEVEL: 'debug',
    });
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 9090, adminToken: 'secret-token-123', apiKey: 'k' });
    expect(config.eviction).toMatchObject({ idleUnloadS: 30, checkIntervalS: 2 });
    expect(config.bus).toMatchObject({ enabled: true, url: 'mqtt://10.0.0.1:1883' });
    expect(config.logLevel).toBe('debug');
  });

  describe('rejects, naming the field', () => {
    it.each<[string, unknown, string, string]>([
      ['unparseable YAML', 'server: [unclosed', '(file)', 'yaml'],
      ['unknown backend type', { backends: [{ name: 'x', type: 'tensorrt' }] }, 'backends[0].type', 'isIn'],
      ['check_interval_s = 0', { eviction: { check_interval_s: 0 } }, 'eviction.check_interval_s', 'min'],
      ['negative check_interval_s', { eviction: { check_interval_s: -5 } }, 'eviction.check_interval_s', 'min'],
      ['negative idle threshold', { eviction: { idle_unload_s: -1 } }, 'eviction.idle_unload_s', 'min'],
      [
        'negative per-model threshold',
        { backends: [{ name: 'l', type: 'llama-cpp', models: [{ id: 'm', path: 'm.gguf', idle_unload_s: -3 }] }] },
        'backends[0].models[0].idle_unload_s',
        'min',
      ],
      ['negative memory budget', { eviction: { memory_budget_mb: -1 } }, 'eviction.memory_budget_mb', 'min'],
      [
        'duplicate backend names',
        {
          backends: [
            { name: 'a', type: 'ollama', url: 'http://h:1' },
            { name: 'a', type: 'ollama', url: 'http://h:2' },
          ],
        },
        'backends[1].name',
        'unique',
      ],
      [
        'duplicate model ids',
        {
          backends: [
            {
              name: 'a',
              type: 'llama-cpp',
              models: [
                { id: 'm', path: 'a' },
                { id: 'm', path: 'b' },
              ],
            },
          ],
        },
        'backends[0].models[1].id',
        'unique',
      ],
      [
        'missing url for a remote kind',
        { backends: [{ name: 'npu', type: 'rknn-sd' }] },
        'backends[0].url',
        'required',
      ],
      ['bad url', { backends: [{ name: 'npu', type: 'rknn-sd', url: 'not a url' }] }, 'backends[0].url', 'isUrl'],
      [
        'missing path for an in-process model',
        { backends: [{ name: 'l', type: 'onnx-image', models: [{ id: 'img' }] }] },
        'backends[0].models[0].path',
        'required',
      ],
      [
        'path traversal in a model id',
        { backends: [{ name: 'l', type: 'llama-cpp', models: [{ id: '../etc', path: 'x' }] }] },
        'backends[0].models[0].id',
        'matches',
      ],
      ['unknown key', { server: { prot: 80 } }, 'server.prot', 'whitelistValidation'],
      ['port out of range', { server: { port: 70000 } }, 'server.port', 'max'],
      ['non-numeric env port', 'x: 1', 'MODELPLANE_PORT', 'isnumber'],
    ])('%s', (_name, yaml, field, rule) => {
      const env = field === 'MODELPLANE_PORT' ? { MODELPLANE_PORT: 'eighty' } : {};
      const issues = issuesOf(yaml, env);
      expect(issues).toEqual(expect.arrayContaining([expect.objectContaining({ field, rule })]));
    });

    it('reports every bad field at once', () => {
      const issues = issuesOf({
        eviction: { check_interval_s: 0, idle_unload_s: -1 },
        backends: [
          { name: 'npu', type: 'rknn-sd' },
          { name: 'z', type: 'nope' },
        ],
      });
      const fields = issues.map((i) => i.field);
      expect(fields).toEqual(
        expect.arrayContaining([
          'eviction.check_interval_s',
          'eviction.idle_unload_s',
          'backends[0].url',
          'backends[1].type',
        ]),
      );
    });

    it('puts path, value and rule in the message', () => {
      try {
        load({ eviction: { check_interval_s: 0 } });
        throw new Error('expected rejection');
      } catch (err) {
        expect((err as Error).message).toMatch(/eviction\.check_interval_s = 0: .*\[min\]/);
      }
    });
  });
});
