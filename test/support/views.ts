/**
 * Every view of model state, read over HTTP, and the check that they agree: /api/models, /api/models/loaded,
 * /health and /metrics are projections of one store snapshot, so per model they must say the same thing.
 */
import { getJson } from './app-harness.js';

export interface Views {
  /** id → state per /api/models */
  catalog: Map<string, string>;
  /** id → in_flight per /api/models */
  catalogInFlight: Map<string, number>;
  /** ids listed by /api/models/loaded */
  loaded: Set<string>;
  /** id → state per /health */
  health: Map<string, string>;
  /** id → in_flight per /health */
  healthInFlight: Map<string, number>;
  /** id → value of modelplane_model_loaded per /metrics (no entry: no series) */
  metricLoaded: Map<string, number>;
  /** id → the state whose modelplane_model_state series is 1 (several: the states joined with ',') */
  metricState: Map<string, string>;
  /** id → value of modelplane_model_in_flight per /metrics */
  metricInFlight: Map<string, number>;
  /** modelplane_requests_in_flight per /metrics */
  metricRequestsInFlight: number | null;
  /** backend name → entry of /api/models/loaded backends[] */
  backends: Map<string, Record<string, unknown>>;
}

/** `name{model="id"} value` series of one per-model gauge. */
function perModelSeries(metrics: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const pattern = new RegExp(`^${name}\\{(?:[^}]*,)?model="([^"]+)"[^}]*\\} ([0-9.e+-]+)$`);
  for (const line of metrics.split('\n')) {
    const m = pattern.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function stateSeries(metrics: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of metrics.split('\n')) {
    const m = /^modelplane_model_state\{model="([^"]+)",state="([^"]+)"\} 1$/.exec(line);
    if (m) out.set(m[1]!, out.has(m[1]!) ? `${out.get(m[1]!)},${m[2]}` : m[2]!);
  }
  return out;
}

export async function readViews(url: string): Promise<Views> {
  const [catalog, loaded, health, metrics] = await Promise.all([
    getJson(`${url}/api/models`),
    getJson(`${url}/api/models/loaded`),
    getJson(`${url}/health`),
    fetch(`${url}/metrics`).then((r) => r.text()),
  ]);
  const models = catalog.body.models as { id: string; state: string; in_flight: number }[];
  const healthModels = Object.entries(health.body.models as Record<string, { state: string; in_flight: number }>);
  const total = /^modelplane_requests_in_flight ([0-9.e+-]+)$/m.exec(metrics);
  return {
    catalog: new Map(models.map((m) => [m.id, m.state])),
    catalogInFlight: new Map(models.map((m) => [m.id, m.in_flight])),
    loaded: new Set((loaded.body.loaded as { name: string }[]).map((m) => m.name)),
    health: new Map(healthModels.map(([k, v]) => [k, v.state])),
    healthInFlight: new Map(healthModels.map(([k, v]) => [k, v.in_flight])),
    metricLoaded: perModelSeries(metrics, 'modelplane_model_loaded'),
    metricState: stateSeries(metrics),
    metricInFlight: perModelSeries(metrics, 'modelplane_model_in_flight'),
    metricRequestsInFlight: total ? Number(total[1]) : null,
    backends: new Map((loaded.body.backends as Record<string, unknown>[]).map((b) => [String(b.name), b])),
  };
}

/**
 * Throws (with the disagreement) unless every view says the same about every model: its state, whether it
 * is loaded (modelplane_model_loaded has no series while the state is `unknown`) and its in-flight count.
 */
export function expectViewsAgree(v: Views): void {
  const problems: string[] = [];
  let inFlight = 0;
  for (const [id, state] of v.catalog) {
    const health = v.health.get(id);
    if (health !== state) problems.push(`${id}: /api/models ${state}, /health ${health}`);
    if ((state === 'loaded') !== v.loaded.has(id))
      problems.push(`${id}: /api/models ${state}, /api/models/loaded ${v.loaded.has(id) ? 'lists' : 'omits'} it`);
    const metric = v.metricLoaded.get(id);
    const expected = state === 'unknown' ? undefined : state === 'loaded' ? 1 : 0;
    if (metric !== expected) problems.push(`${id}: /api/models ${state}, /metrics loaded=${metric}`);
    if (v.metricState.get(id) !== state)
      problems.push(`${id}: /api/models ${state}, /metrics modelplane_model_state=${v.metricState.get(id)}`);
    const flight = v.catalogInFlight.get(id)!;
    inFlight += flight;
    if (v.healthInFlight.get(id) !== flight || v.metricInFlight.get(id) !== flight)
      problems.push(
        `${id}: in flight /api/models ${flight}, /health ${v.healthInFlight.get(id)}, /metrics ${v.metricInFlight.get(id)}`,
      );
  }
  if (v.metricRequestsInFlight !== inFlight)
    problems.push(
      `in flight: /api/models ${inFlight} in all, modelplane_requests_in_flight ${v.metricRequestsInFlight}`,
    );
  for (const id of v.loaded) if (!v.catalog.has(id)) problems.push(`${id}: loaded but not in /api/models`);
  for (const id of v.health.keys()) if (!v.catalog.has(id)) problems.push(`${id}: in /health but not in /api/models`);
  if (problems.length > 0) throw new Error(`views disagree:\n  ${problems.join('\n  ')}`);
}
