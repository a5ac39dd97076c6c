/**
 * The `fleet:` section: who this node is, how it finds its peers (a static list, or the A/AAAA records of a
 * Kubernetes headless Service), and the probe settings every discovered peer gets. Peers become backends of
 * kind `modelplane`, so they are observed, admitted and shown like any other remote backend.
 */
import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { BackendConfig } from './app-config.js';
import { BACKEND_DEFAULTS } from './config-defaults.js';
import { TIMER_MAX_MS } from './limits.js';

/** How every URL in the config is validated (backends and peers alike). */
export const URL_OPTIONS = { require_tld: false, require_protocol: true, protocols: ['http', 'https'] };

export class FleetDnsSchema {
  @IsString() @MinLength(1) name!: string;
  @IsOptional() @IsInt() @Min(1) @Max(65535) port?: number;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) interval_ms?: number;
  @IsOptional() @Matches(/^https?$/, { message: 'scheme must be http or https' }) scheme?: string;
  /** DNS servers to ask (host or host:port); default: the system's resolver (the cluster DNS in a pod). */
  @IsOptional() @IsArray() @IsString({ each: true }) @MinLength(1, { each: true }) servers?: string[];
}

export class FleetDiscoverySchema {
  @IsOptional() @IsArray() @IsUrl(URL_OPTIONS, { each: true }) peers?: string[];
  @IsOptional() @ValidateNested() @Type(() => FleetDnsSchema) dns?: FleetDnsSchema;
}

export class FleetSchema {
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,63}$/, { message: 'node_name must be 1-63 letters, digits, . _ -' })
  node_name?: string;
  @IsOptional() @IsUrl(URL_OPTIONS) self_url?: string;
  @IsOptional() @IsString() pod_ip?: string;
  @IsOptional() @IsString() @MinLength(8) admin_token?: string;
  @IsOptional() @IsBoolean() routing?: boolean;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) probe_interval_ms?: number;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) probe_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(1) failure_threshold?: number;
  @IsOptional() @ValidateNested() @Type(() => FleetDiscoverySchema) discovery?: FleetDiscoverySchema;
}

export interface FleetConfig {
  /** This node's name in every fleet view and `x-modelplane-node` (Kubernetes: the node name). */
  nodeName: string;
  /** How peers reach this node; null → derived from server.host/port. */
  selfUrl: string | null;
  /** This pod's IP (downward API): a DNS record with it is this node, never a peer. */
  podIp: string | null;
  /** Sent to peers' admin routes when load/unload is forwarded; defaults to server.admin_token. */
  adminToken: string | null;
  /** The API key peers expect on inference routes (one fleet, one key): server.api_key. */
  apiKey: string | null;
  /** Route inference to the node where the model is warm (off: every node serves what it is asked). */
  routing: boolean;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  failureThreshold: number;
  dns: { name: string; port: number; intervalMs: number; scheme: 'http' | 'https'; servers: string[] } | null;
}

type Raw = Record<string, unknown>;

function section(raw: Raw, key: string): Raw {
  const v = raw[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : {};
}
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);

/** The fleet settings of a config built in code without a `fleet:` section: a fleet of one. */
export function fleetOf(config: {
  fleet?: FleetConfig;
  server: { adminToken: string | null; apiKey: string | null; port: number };
}): FleetConfig {
  return config.fleet ?? toFleetConfig({}, config.server);
}

/** Maps the validated `fleet:` section (and `server:` for defaults) to FleetConfig. */
export function toFleetConfig(
  raw: Raw,
  server: { adminToken: string | null; apiKey: string | null; port: number },
): FleetConfig {
  const fleet = section(raw, 'fleet');
  const dns = section(section(fleet, 'discovery'), 'dns');
  return {
    nodeName: str(fleet.node_name) ?? hostname(),
    selfUrl: str(fleet.self_url)?.replace(/\/+$/, '') ?? null,
    podIp: str(fleet.pod_ip),
    adminToken: str(fleet.admin_token) ?? server.adminToken,
    apiKey: server.apiKey,
    routing: typeof fleet.routing === 'boolean' ? fleet.routing : true,
    probeIntervalMs: num(fleet.probe_interval_ms, 2000),
    probeTimeoutMs: num(fleet.probe_timeout_ms, 1000),
    failureThreshold: num(fleet.failure_threshold, 1),
    dns:
      str(dns.name) === null
        ? null
        : {
            name: String(dns.name),
            port: num(dns.port, server.port),
            intervalMs: num(dns.interval_ms, 5000),
            scheme: dns.scheme === 'https' ? 'https' : 'http',
            servers: Array.isArray(dns.servers) ? dns.servers.filter((x): x is string => typeof x === 'string') : [],
          },
  };
}

/** Static `fleet.discovery.peers` URLs, less this node. */
export function staticPeerUrls(raw: Raw, fleet: FleetConfig): string[] {
  const peers = section(section(raw, 'fleet'), 'discovery').peers;
  const urls = Array.isArray(peers) ? peers.filter((p): p is string => typeof p === 'string') : [];
  return [...new Set(urls.map((u) => u.replace(/\/+$/, '')))].filter((u) => !isSelf(u, fleet));
}

/** An address as the host part of a URL: an IPv6 address in brackets, anything else as it is. */
export function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/**
 * Whether a URL is this node: the same origin as `self_url`, or a host equal to the pod IP (one pod per IP,
 * whatever the port). A list shared by every node (one ConfigMap) then works on each of them.
 */
export function isSelf(url: string, fleet: Pick<FleetConfig, 'selfUrl' | 'podIp'>): boolean {
  const target = new URL(url);
  if (fleet.selfUrl !== null && new URL(fleet.selfUrl).host === target.host) return true;
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return fleet.podIp !== null && host === fleet.podIp;
}

/** The backend a peer becomes; its name is stable for one address, so a peer that returns is the same backend. */
export function peerBackend(url: string, fleet: FleetConfig): BackendConfig {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const name = `peer-${(isIP(host) === 6 ? host.replace(/:/g, '.') : host).slice(0, 50)}-${port}`.replace(
    /[^A-Za-z0-9._-]/g,
    '-',
  );
  return {
    name,
    type: 'modelplane',
    url: `${u.protocol}//${u.host}`,
    apiKey: fleet.apiKey,
    threads: null,
    ...BACKEND_DEFAULTS,
    probeIntervalMs: fleet.probeIntervalMs,
    probeTimeoutMs: fleet.probeTimeoutMs,
    failureThreshold: fleet.failureThreshold,
    adminToken: fleet.adminToken,
    models: [],
  };
}
