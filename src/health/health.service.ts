import { Injectable } from '@nestjs/common';
import type { Readiness } from '../backend-state/readiness.js';
import { Clock } from '../common/clock.js';
import { type ModelHealth, ModelsService } from '../models/models.service.js';

export type { ModelHealth };

export interface BackendHealth {
  kind: string;
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
}

export interface HealthSnapshot {
  service: 'modelplane';
  status: Readiness;
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
  timestamp_ms: number;
  uptime_s: number;
  backends: Record<string, BackendHealth>;
  models: Record<string, ModelHealth>;
  [extra: string]: unknown;
}

/** Something that adds a section to GET /health (models, bus). Registered at start-up. */
export type HealthContribution = () => Record<string, unknown>;

/** The one snapshot behind GET /health, /health/ready and the bus heartbeat. */
@Injectable()
export class HealthService {
  private readonly contributions = new Map<string, HealthContribution>();
  private readonly startedMs: number;

  constructor(
    private readonly clock: Clock,
    private readonly models: ModelsService,
  ) {
    this.startedMs = clock.nowMs();
  }

  contribute(section: string, contribution: HealthContribution): void {
    this.contributions.set(section, contribution);
  }

  /** Readiness and models from one store snapshot: the same instant every other view projects. */
  snapshot(): HealthSnapshot {
    const store = this.models.snapshot();
    const state = store.readiness;
    const backends: Record<string, BackendHealth> = {};
    for (const b of state.backends) {
      backends[b.name] = {
        kind: b.kind,
        readiness: b.readiness,
        reason: b.reason,
        backend_initialized: b.backend_initialized,
        last_transition_ms: b.last_transition_ms,
      };
    }
    const snapshot: HealthSnapshot = {
      service: 'modelplane',
      status: state.readiness,
      readiness: state.readiness,
      reason: state.reason,
      backend_initialized: state.backend_initialized,
      last_transition_ms: state.last_transition_ms,
      timestamp_ms: this.clock.epochMs(),
      uptime_s: Math.round((this.clock.nowMs() - this.startedMs) / 1000),
      backends,
      models: this.models.healthModels(store),
    };
    for (const [section, contribution] of this.contributions) snapshot[section] = contribution();
    return snapshot;
  }
}
