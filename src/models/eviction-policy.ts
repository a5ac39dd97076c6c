/**
 * Pure eviction decisions: functions of (now, model views) with no I/O and no logging, so the sweeper,
 * the memory budget and GET /api/eviction/plan all agree and tests need no clock tricks.
 */
import { toMb } from '../common/units.js';

export interface EvictionView {
  id: string;
  loaded: boolean;
  inFlight: number;
  /** Monotonic ms of the last load or request end through modelplane; null if never used through us. */
  lastActivityMs: number | null;
  /** Idle seconds the backend itself reports (rknn-sd), null when it does not. */
  backendIdleS: number | null;
  /** Seconds; 0 = never idle-evicted. */
  thresholdS: number;
  pinned: boolean;
  canUnload: boolean;
  sizeBytes: number | null;
  /** Counts against this host's memory budget (in-process models). */
  local: boolean;
}

/** Idle seconds: ours, or the backend's when smaller (other clients' use protects the model). */
export function idleSeconds(nowMs: number, m: EvictionView): number | null {
  if (m.inFlight > 0) return 0;
  const ours = m.lastActivityMs === null ? null : Math.max(0, (nowMs - m.lastActivityMs) / 1000);
  if (ours === null) return m.backendIdleS;
  return m.backendIdleS === null ? ours : Math.min(ours, m.backendIdleS);
}

/** Seconds until the sweeper may unload it; null when pinned, disabled, in flight, or not loaded. */
export function unloadsInS(nowMs: number, m: EvictionView): number | null {
  if (!m.loaded || m.pinned || m.thresholdS === 0 || m.inFlight > 0 || !m.canUnload) return null;
  const idle = idleSeconds(nowMs, m);
  if (idle === null) return null;
  return Math.max(0, m.thresholdS - idle);
}

export type KeepReason = 'not_loaded' | 'pinned' | 'disabled' | 'busy' | 'cannot_unload' | 'never_used' | 'recent';

export function keepReason(nowMs: number, m: EvictionView): KeepReason | null {
  if (!m.loaded) return 'not_loaded';
  if (m.pinned) return 'pinned';
  if (!m.canUnload) return 'cannot_unload';
  if (m.inFlight > 0) return 'busy';
  if (m.thresholdS === 0) return 'disabled';
  const idle = idleSeconds(nowMs, m);
  if (idle === null) return 'never_used';
  return idle >= m.thresholdS ? null : 'recent';
}

/** Models the idle sweeper should unload now. */
export function selectIdle(nowMs: number, models: readonly EvictionView[]): EvictionView[] {
  return models.filter((m) => keepReason(nowMs, m) === null);
}

export interface BudgetLimits {
  maxLoadedModels: number;
  memoryBudgetBytes: number;
}

export interface PlanEntry {
  id: string;
  action: 'evict' | 'keep';
  reason: string;
  idle_s: number | null;
  size_mb: number | null;
  pinned: boolean;
  in_flight: number;
}

export interface LoadPlan {
  model: string;
  fits: boolean;
  /** Why it cannot fit, when it cannot. */
  reason: string | null;
  loaded_count: number;
  max_loaded_models: number;
  used_mb: number;
  needed_mb: number | null;
  memory_budget_mb: number;
  evict: string[];
  candidates: PlanEntry[];
}

/**
 * What must go so `target` can load within the budget: least-recently-used idle, unpinned, unloadable local
 * models first. Busy and pinned models are never candidates. Only local (in-process) models count.
 */
export function planLoad(
  nowMs: number,
  target: { id: string; sizeBytes: number | null },
  models: readonly EvictionView[],
  limits: BudgetLimits,
): LoadPlan {
  const local = models.filter((m) => m.local && m.loaded && m.id !== target.id);
  const alreadyLoaded = models.some((m) => m.id === target.id && m.loaded);
  let count = local.length;
  let used = local.reduce((sum, m) => sum + (m.sizeBytes ?? 0), 0);
  const need = target.sizeBytes ?? 0;
  const over = (): boolean =>
    !alreadyLoaded &&
    ((limits.maxLoadedModels > 0 && count + 1 > limits.maxLoadedModels) ||
      (limits.memoryBudgetBytes > 0 && used + need > limits.memoryBudgetBytes));

  const entries: PlanEntry[] = [];
  const lru = [...local].sort((a, b) => (a.lastActivityMs ?? -Infinity) - (b.lastActivityMs ?? -Infinity));
  const evict: string[] = [];
  for (const m of lru) {
    const base = {
      id: m.id,
      idle_s: roundS(idleSeconds(nowMs, m)),
      size_mb: toMb(m.sizeBytes),
      pinned: m.pinned,
      in_flight: m.inFlight,
    };
    const blocked = m.pinned ? 'pinned' : m.inFlight > 0 ? 'busy' : !m.canUnload ? 'cannot_unload' : null;
    if (blocked) {
      entries.push({ ...base, action: 'keep', reason: blocked });
    } else if (over()) {
      evict.push(m.id);
      count--;
      used -= m.sizeBytes ?? 0;
      entries.push({ ...base, action: 'evict', reason: 'least recently used idle model' });
    } else {
      entries.push({ ...base, action: 'keep', reason: 'not needed to fit' });
    }
  }
  const fits = !over();
  let reason: string | null = null;
  if (!fits) {
    const busy = entries.filter((e) => e.reason === 'busy').length;
    const pinned = entries.filter((e) => e.reason === 'pinned').length;
    reason =
      limits.maxLoadedModels > 0 && count + 1 > limits.maxLoadedModels
        ? `max_loaded_models=${limits.maxLoadedModels} reached and nothing evictable (${busy} busy, ${pinned} pinned)`
        : `needs ${toMb(need)} MB, ${toMb(limits.memoryBudgetBytes - used)} MB free of memory_budget_mb=${toMb(limits.memoryBudgetBytes)} after evicting every idle unpinned model (${busy} busy, ${pinned} pinned)`;
  }
  return {
    model: target.id,
    fits,
    reason,
    loaded_count: local.length,
    max_loaded_models: limits.maxLoadedModels,
    used_mb: toMb(local.reduce((sum, m) => sum + (m.sizeBytes ?? 0), 0)) ?? 0,
    needed_mb: toMb(target.sizeBytes),
    memory_budget_mb: toMb(limits.memoryBudgetBytes) ?? 0,
    evict: fits ? evict : [],
    candidates: entries,
  };
}

function roundS(s: number | null): number | null {
  return s === null ? null : Math.round(s * 10) / 10;
}
