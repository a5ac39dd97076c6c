/**
 * Every view of model state, read over HTTP, and the check that they agree: /api/models, /api/models/loaded,
 * /health and /metrics are projections of one store snapshot, so per model they must say the same thing.
 */
import { getJson } from './app-harness.js';

export interface Views {
  /** id → state per /api/models */
  catalog: Map<string, string>;
  /** ids listed by /api/models/loaded */
  loaded: Set<string>;
  /** id → state per /health */
  health: Map<string, string>;
  /** id → value of modelplane_model_loaded per /metrics */
  metricLoaded: Map<string, number>;
  /** backend name → entry of /api/models/loaded backends[] */
  backends: Map<string, Record<string, unknown>>;
}

export async function readViews(url: string): Promise<Views> {
  const [catalog, loaded, health, metrics] = await Promise.all([
    getJson(`${url}/api/models`),
    getJson(`${url}/api/models/loaded`),
    getJson(`${url}/health`),
    fetch(`${url}/metrics`).then((r) => r.text()),
  ]);
  const metricLoaded = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    const m = /^modelplane_model_loaded\{(?:[^}]*,)?model="([^"]+)"[^}]*\} ([0-9.e+-]+)$/.exec(line);
    if (m) metricLoaded.set(m[1]!, Number(m[2]));
  }
  return {
    catalog: new Map((catalog.body.models as { id: string; state: string }[]).map((m) => [m.id, m.state])),
    loaded: new Set((loaded.body.loaded as { name: string }[]).map((m) => m.name)),
    health: new Map(
      Object.entries(health.body.models as Record<string, { state: string }>).map(([k, v]) => [k, v.state]),
    ),
    metricLoaded,
    backends: new Map((loaded.body.backends as Record<string, unknown>[]).map((b) => [String(b.name), b])),
  };
}

/** Throws (with the disagreement) unless every view says the same about every model. */
export function expectViewsAgree(v: Views): void {
  const problems: string[] = [];
  for (const [id, state] of v.catalog) {
    const health = v.health.get(id);
    if (health !== state) problems.push(`${id}: /api/models ${state}, /health ${health}`);
    if ((state === 'loaded') !== v.loaded.has(id))
      problems.push(`${id}: /api/models ${state}, /api/models/loaded ${v.loaded.has(id) ? 'lists' : 'omits'} it`);
    const metric = v.metricLoaded.get(id);
    if (metric !== (state === 'loaded' ? 1 : 0))
      problems.push(`${id}: /api/models ${state}, /metrics loaded=${metric}`);
  }
  for (const id of v.loaded) if (!v.catalog.has(id)) problems.push(`${id}: loaded but not in /api/models`);
  for (const id of v.health.keys()) if (!v.catalog.has(id)) problems.push(`${id}: in /health but not in /api/models`);
  if (problems.length > 0) throw new Error(`views disagree:\n  ${problems.join('\n  ')}`);
}
