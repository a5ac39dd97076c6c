import type { Readiness } from '../backend-state/readiness.js';
import type { ChatCompletionRequest, ChatCompletionResponse } from '../providers/openai-types.js';

/** Per-backend part of the status snapshot (extra fields pass through to the heartbeat). */
export interface StatusBackend {
  readiness: Readiness;
  reason: string | null;
  [extra: string]: unknown;
}

/** The same snapshot as GET /health; the heartbeat publishes its contract fields plus `seq`. */
export interface StatusSnapshot {
  service: 'modelplane';
  status: Readiness;
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
  timestamp_ms: number;
  backends: Record<string, StatusBackend>;
  [extra: string]: unknown;
}

/**
 * Port (and DI token): where the heartbeat reads service status. The app binds it to the
 * health snapshot so HTTP and bus can never disagree.
 */
export abstract class BusStatusSource {
  abstract snapshot(): Promise<StatusSnapshot>;
}

/**
 * Port (and DI token): the one inference door (admission control, leases, lazy load, inference).
 * Throws AppError subclasses: BackendUnavailableError (details.readiness/reason) when refused,
 * in which case the runtime was never called; ModelNotFoundError for unknown models.
 */
export abstract class BusChatHandler {
  abstract chat(req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse>;
}

/** Tunables that are not in AppConfig; optional, provided under BUS_OPTIONS. */
export interface BusOptions {
  /** Most bus requests in flight at once; further requests get a too_many_requests reply. */
  maxInFlight: number;
  /** Reconnect pacing of the transports. */
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

export const DEFAULT_BUS_OPTIONS: BusOptions = { maxInFlight: 8, reconnectInitialMs: 500, reconnectMaxMs: 30_000 };

/** DI token for Partial<BusOptions>. */
export const BUS_OPTIONS = Symbol('BUS_OPTIONS');
