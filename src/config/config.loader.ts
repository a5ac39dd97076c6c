/**
 * Loads modelplane.yaml (path from --config or MODELPLANE_CONFIG), applies env overrides,
 * validates everything at once and maps it to the typed AppConfig. Every bad field is
 * reported (path, value, rule) so one boot attempt shows all mistakes.
 */
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { FieldIssue } from '../common/errors.js';
import { flattenValidationErrors } from '../common/validation.js';
import { type BackendKind, REMOTE_KINDS } from './backend-kinds.js';
import type { AppConfig, BackendConfig, ModelConfig } from './app-config.js';
import { CONFIG_DEFAULTS } from './config-defaults.js';
import { type BackendSchema, ConfigSchema, type ModelSchema } from './config.schema.js';
import { demoBackends } from './demo-config.js';
import { peerBackend, staticPeerUrls, toFleetConfig } from './fleet-config.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: FieldIssue[],
  ) {
    super(
      `Invalid configuration (${source}):\n` +
        issues.map((i) => `  - ${i.field} = ${JSON.stringify(i.value)}: ${i.message} [${i.rule}]`).join('\n'),
    );
  }
}

export interface LoadConfigInput {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

type Raw = Record<string, unknown>;

/** `--config path` or `--config=path`, else MODELPLANE_CONFIG, else null (demo). */
export function configPathFrom(argv: readonly string[], env: NodeJS.ProcessEnv): string | null {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') return argv[i + 1] ?? '';
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return env.MODELPLANE_CONFIG && env.MODELPLANE_CONFIG.length > 0 ? env.MODELPLANE_CONFIG : null;
}

export function loadConfig({ argv, env, cwd }: LoadConfigInput): AppConfig {
  const path = configPathFrom(argv, env);
  const source = path === null ? 'embedded demo config' : resolve(cwd, path);
  const raw = path === null ? {} : readYaml(source);
  const issues: FieldIssue[] = prototypeKeyIssues(raw, '');
  const fromEnv = applyEnvOverrides(raw, env, issues);

  const schema = plainToInstance(ConfigSchema, raw);
  const errors = validateSync(schema, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  issues.push(...flattenValidationErrors(errors).map((i) => nameEnvVariable(i, fromEnv)));
  issues.push(...crossFieldIssues(raw));
  issues.push(...busUrlIssues(raw, fromEnv));
  if (issues.length > 0) throw new ConfigError(source, issues);

  const baseDir = path === null ? cwd : dirname(source);
  return toAppConfig(raw, { baseDir, demo: path === null, cwd });
}

function readYaml(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ field: '(file)', value: file, rule: 'readable', message: (err as Error).message }]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(file, [{ field: '(file)', value: file, rule: 'yaml', message: (err as Error).message }]);
  }
  if (parsed === null || parsed === undefined) {
    // Starting "ready" with nothing to serve hides the mistake (a wrong path, a truncated file).
    throw new ConfigError(file, [
      {
        field: '(file)',
        value: file,
        rule: 'notEmpty',
        message: 'the config file is empty; list backends in it, or start without --config for the embedded demo',
      },
    ]);
  }
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(file, [{ field: '(root)', value: parsed, rule: 'isObject', message: 'must be a mapping' }]);
  }
  return parsed as Raw;
}

const ENV_OVERRIDES: { env: string; path: [string, string]; kind: 'string' | 'number' | 'boolean' }[] = [
  { env: 'MODELPLANE_HOST', path: ['server', 'host'], kind: 'string' },
  { env: 'MODELPLANE_PORT', path: ['server', 'port'], kind: 'number' },
  { env: 'MODELPLANE_ADMIN_TOKEN', path: ['server', 'admin_token'], kind: 'string' },
  { env: 'MODELPLANE_API_KEY', path: ['server', 'api_key'], kind: 'string' },
  { env: 'MODELPLANE_IDLE_UNLOAD_S', path: ['eviction', 'idle_unload_s'], kind: 'number' },
  { env: 'MODELPLANE_CHECK_INTERVAL_S', path: ['eviction', 'check_interval_s'], kind: 'number' },
  { env: 'MODELPLANE_BUS_ENABLED', path: ['bus', 'enabled'], kind: 'boolean' },
  { env: 'MODELPLANE_BUS_URL', path: ['bus', 'url'], kind: 'string' },
  { env: 'MODELPLANE_NODE_NAME', path: ['fleet', 'node_name'], kind: 'string' },
  { env: 'MODELPLANE_SELF_URL', path: ['fleet', 'self_url'], kind: 'string' },
  { env: 'MODELPLANE_POD_IP', path: ['fleet', 'pod_ip'], kind: 'string' },
];

/** Returns dotted config path → the variable that set it, so a bad value is reported under the variable's name. */
function applyEnvOverrides(raw: Raw, env: NodeJS.ProcessEnv, issues: FieldIssue[]): Map<string, string> {
  const applied = new Map<string, string>();
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    const [section, key] = o.path;
    const target = (raw[section] ??= {});
    if (typeof target !== 'object' || target === null || Array.isArray(target)) continue;
    const converted = convertEnv(value, o.kind);
    if (converted === undefined) {
      issues.push({ field: o.env, value, rule: `is${o.kind}`, message: `must be a ${o.kind}` });
      continue;
    }
    (target as Raw)[key] = converted;
    applied.set(`${section}.${key}`, o.env);
  }
  const level = env.MODELPLANE_LOG_LEVEL;
  if (level !== undefined && level !== '') {
    raw.log_level = level;
    applied.set('log_level', 'MODELPLANE_LOG_LEVEL');
  }
  const format = env.MODELPLANE_LOG_FORMAT;
  if (format !== undefined && format !== '') {
    raw.log_format = format;
    applied.set('log_format', 'MODELPLANE_LOG_FORMAT');
  }
  return applied;
}

function nameEnvVariable(issue: FieldIssue, fromEnv: Map<string, string>): FieldIssue {
  const variable = fromEnv.get(issue.field);
  return variable ? { ...issue, field: `${variable} (${issue.field})` } : issue;
}

/**
 * `__proto__`, `constructor` and `prototype` are dropped silently by class-transformer, so a typo'd or
 * hostile key would be ignored instead of refused like every other unknown key.
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function prototypeKeyIssues(value: unknown, at: string): FieldIssue[] {
  if (typeof value !== 'object' || value === null) return [];
  const issues: FieldIssue[] = [];
  for (const key of Object.keys(value)) {
    const field = Array.isArray(value) ? `${at}[${key}]` : at ? `${at}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) {
      issues.push({ field, value: undefined, rule: 'whitelistValidation', message: `${key} should not exist` });
      continue;
    }
    issues.push(...prototypeKeyIssues((value as Raw)[key], field));
  }
  return issues;
}

const BUS_URL = {
  mqtt: /^(mqtts?|wss?|tcp|ssl):\/\/[^\s/]+/,
  zenoh: /^((zenoh\+)?wss?:\/\/|wss?\/|zenoh:\/\/)[^\s]+$/,
};

/** A bus URL the client library cannot parse would only fail after boot, in a log line; refuse it now. */
function busUrlIssues(raw: Raw, fromEnv: Map<string, string>): FieldIssue[] {
  const bus = section(raw, 'bus');
  if (bus.enabled !== true || typeof bus.url !== 'string') return [];
  const transport = bus.transport === 'zenoh' ? 'zenoh' : 'mqtt';
  if (BUS_URL[transport].test(bus.url)) return [];
  const expected = transport === 'mqtt' ? 'mqtt://host:1883 (mqtt, mqtts, ws, wss, tcp, ssl)' : 'ws://host:10000';
  const variable = fromEnv.get('bus.url');
  return [
    {
      field: variable ? `${variable} (bus.url)` : 'bus.url',
      value: bus.url,
      rule: 'busUrl',
      message: `not a ${transport} URL; expected ${expected}`,
    },
  ];
}

function convertEnv(value: string, kind: 'string' | 'number' | 'boolean'): string | number | boolean | undefined {
  if (kind === 'string') return value;
  if (kind === 'number') {
    const n = Number(value);
    return value.trim() !== '' && Number.isFinite(n) ? n : undefined;
  }
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return undefined;
}

function asArray(value: unknown): Raw[] {
  return Array.isArray(value) ? value.filter((v): v is Raw => typeof v === 'object' && v !== null) : [];
}

function crossFieldIssues(raw: Raw): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const names = new Map<unknown, number>();
  const modelIds = new Map<unknown, string>();
  asArray(raw.backends).forEach((b, i) => {
    const at = `backends[${i}]`;
    if (names.has(b.name)) {
      issues.push({
        field: `${at}.name`,
        value: b.name,
        rule: 'unique',
        message: `duplicate backend name (also backends[${names.get(b.name)}])`,
      });
    } else {
      names.set(b.name, i);
    }
    const remote = REMOTE_KINDS.includes(b.type as BackendKind);
    if (remote && (typeof b.url !== 'string' || b.url.length === 0)) {
      issues.push({
        field: `${at}.url`,
        value: b.url,
        rule: 'required',
        message: `url is required for backend type '${String(b.type)}'`,
      });
    }
    if (!remote && b.url !== undefined && typeof b.type === 'string' && !REMOTE_KINDS.includes(b.type as BackendKind)) {
      issues.push({
        field: `${at}.url`,
        value: b.url,
        rule: 'forbidden',
        message: `in-process backend type '${b.type}' takes no url`,
      });
    }
    asArray(b.models).forEach((m, j) => {
      const mat = `${at}.models[${j}]`;
      if (modelIds.has(m.id)) {
        issues.push({
          field: `${mat}.id`,
          value: m.id,
          rule: 'unique',
          message: `duplicate model id (also ${modelIds.get(m.id)})`,
        });
      } else {
        modelIds.set(m.id, mat);
      }
      if (!remote && (typeof m.path !== 'string' || m.path.length === 0)) {
        issues.push({
          field: `${mat}.path`,
          value: m.path,
          rule: 'required',
          message: `path is required for in-process backend type '${String(b.type)}'`,
        });
      }
    });
  });
  return issues;
}

const D = CONFIG_DEFAULTS;
const B = CONFIG_DEFAULTS.backend;
const M = CONFIG_DEFAULTS.model;

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}
function str(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}
function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}
function section(raw: Raw, key: string): Raw {
  const v = raw[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : {};
}

function toModel(m: ModelSchema | Raw): ModelConfig {
  const r = m as Raw;
  return {
    id: String(r.id),
    path: str(r.path),
    upstreamName: str(r.upstream),
    purpose: str(r.purpose),
    preload: bool(r.preload, M.preload),
    pin: bool(r.pin, M.pin),
    idleUnloadS: typeof r.idle_unload_s === 'number' ? r.idle_unload_s : null,
    contextSize: typeof r.context_size === 'number' ? r.context_size : null,
    embeddings: bool(r.embeddings, M.embeddings),
    parallel: num(r.parallel, M.parallel),
    maxQueueWaitS: num(r.max_queue_wait_s, M.max_queue_wait_s),
  };
}

function toBackend(b: BackendSchema | Raw): BackendConfig {
  const r = b as Raw;
  return {
    name: String(r.name),
    type: r.type as BackendKind,
    url: str(r.url)?.replace(/\/+$/, '') ?? null,
    apiKey: str(r.api_key),
    probeTimeoutMs: num(r.probe_timeout_ms, B.probe_timeout_ms),
    probeCacheMs: num(r.probe_cache_ms, B.probe_cache_ms),
    probeIntervalMs: num(r.probe_interval_ms, B.probe_interval_ms),
    failureThreshold: num(r.failure_threshold, B.failure_threshold),
    requestTimeoutMs: num(r.request_timeout_ms, B.request_timeout_ms),
    streamIdleTimeoutMs: num(r.stream_idle_timeout_ms, B.stream_idle_timeout_ms),
    loadTimeoutMs: num(r.load_timeout_ms, B.load_timeout_ms),
    maxLineBytes: num(r.max_line_bytes, B.max_line_bytes),
    maxBodyBytes: num(r.max_body_bytes, B.max_body_bytes),
    threads: typeof r.threads === 'number' ? r.threads : null,
    models: asArray(r.models).map(toModel),
  };
}

function toAppConfig(raw: Raw, where: { baseDir: string; demo: boolean; cwd: string }): AppConfig {
  const server = section(raw, 'server');
  const eviction = section(raw, 'eviction');
  const bus = section(raw, 'bus');
  const topics = section(bus, 'topics');
  const limits = section(raw, 'limits');
  const dataDirRaw = str(raw.data_dir) ?? D.data_dir;
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(where.baseDir, dataDirRaw);
  const fleet = toFleetConfig(raw, {
    adminToken: str(server.admin_token),
    apiKey: str(server.api_key),
    port: num(server.port, D.server.port),
  });
  const configured =
    where.demo && raw.backends === undefined ? demoBackends(dataDir) : asArray(raw.backends).map(toBackend);
  // Static fleet peers are remote backends like any other (kind modelplane), after the configured ones.
  const peers = staticPeerUrls(raw, fleet).map((url) => peerBackend(url, fleet));
  return {
    baseDir: where.baseDir,
    dataDir,
    demo: where.demo,
    logLevel: (str(raw.log_level) ?? D.log_level) as AppConfig['logLevel'],
    logFormat: (str(raw.log_format) ?? null) as AppConfig['logFormat'],
    server: {
      host: str(server.host) ?? D.server.host,
      port: num(server.port, D.server.port),
      adminToken: str(server.admin_token),
      apiKey: str(server.api_key),
      bodyLimitBytes: num(server.body_limit_bytes, D.server.body_limit_bytes),
      shutdownDrainS: num(server.shutdown_drain_s, D.server.shutdown_drain_s),
    },
    eviction: {
      idleUnloadS: num(eviction.idle_unload_s, D.eviction.idle_unload_s),
      checkIntervalS: num(eviction.check_interval_s, D.eviction.check_interval_s),
      maxLoadedModels: num(eviction.max_loaded_models, D.eviction.max_loaded_models),
      memoryBudgetMb: num(eviction.memory_budget_mb, D.eviction.memory_budget_mb),
    },
    bus: {
      enabled: bool(bus.enabled, D.bus.enabled),
      transport: (str(bus.transport) ?? D.bus.transport) as 'mqtt' | 'zenoh',
      url: str(bus.url) ?? D.bus.url,
      heartbeatS: num(bus.heartbeat_s, D.bus.heartbeat_s),
      connectTimeoutMs: num(bus.connect_timeout_ms, D.bus.connect_timeout_ms),
      topics: {
        request: str(topics.request) ?? D.bus.topics.request,
        response: str(topics.response) ?? D.bus.topics.response,
        status: str(topics.status) ?? D.bus.topics.status,
      },
    },
    limits: {
      bodyMaxKeys: num(limits.body_max_keys, D.limits.body_max_keys),
      bodyMaxDepth: num(limits.body_max_depth, D.limits.body_max_depth),
      headersTimeoutMs: num(server.headers_timeout_ms, D.server.headers_timeout_ms),
      requestTimeoutMs: num(server.request_timeout_ms, D.server.request_timeout_ms),
      keepAliveTimeoutMs: num(server.keep_alive_timeout_ms, D.server.keep_alive_timeout_ms),
      maxConnections: num(server.max_connections, D.server.max_connections),
      imageQueue: num(limits.image_queue, D.limits.image_queue),
      imageMaxWork: num(limits.image_max_work, D.limits.image_max_work),
    },
    backends: [...configured, ...peers.filter((p) => !configured.some((c) => c.name === p.name))],
    fleet,
  };
}
