/** Readiness of one backend, and of the whole service (docs/api.md "Health, events, metrics"). */
export enum Readiness {
  Initializing = 'initializing',
  Ready = 'ready',
  Degraded = 'degraded',
  Unavailable = 'unavailable',
}

/** Whether a backend in this readiness admits requests. */
export function canServe(readiness: Readiness): boolean {
  return readiness === Readiness.Ready || readiness === Readiness.Degraded;
}

/**
 * Aggregate readiness: `initializing` until every backend settled; `ready` if all ready;
 * `unavailable` if none can serve; `degraded` otherwise. No backends → ready.
 */
export function aggregateReadiness(backends: readonly Readiness[]): Readiness {
  if (backends.length === 0) return Readiness.Ready;
  if (backends.some((r) => r === Readiness.Initializing)) return Readiness.Initializing;
  if (backends.every((r) => r === Readiness.Ready)) return Readiness.Ready;
  if (!backends.some(canServe)) return Readiness.Unavailable;
  return Readiness.Degraded;
}

export interface FinalizeInput {
  /** The init failure's reason, when init failed. */
  initError: string | null;
  /** Ids of preloads that failed, with their reasons. */
  preloadFailures: { id: string; reason: string }[];
  preloadCount: number;
}

/**
 * Readiness after init and preloads settle: none/all preloads ok → ready; some failed →
 * degraded naming the failed ids; all failed → unavailable. An init failure wins and keeps its reason.
 */
export function finalReadiness(input: FinalizeInput): { readiness: Readiness; reason: string | null } {
  if (input.initError !== null) return { readiness: Readiness.Unavailable, reason: input.initError };
  const failed = input.preloadFailures;
  if (failed.length === 0) return { readiness: Readiness.Ready, reason: null };
  const detail = failed.map((f) => `${f.id} (${f.reason})`).join(', ');
  if (failed.length >= input.preloadCount) {
    return { readiness: Readiness.Unavailable, reason: `all preloads failed: ${detail}` };
  }
  return { readiness: Readiness.Degraded, reason: `preload failed: ${detail}` };
}
