import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Readiness } from '../backend-state/readiness.js';
import { ModelLifecycleService } from '../models/model-lifecycle.service.js';
import { ModelsService } from '../models/models.service.js';
import { ProbeService } from '../models/probe.service.js';
import type { StateSnapshot } from '../models/state-snapshot.js';
import { MODEL_STATES } from '../models/transitions.js';

/** Closed label sets: a label value is never a model-supplied string, an id in free text or an error. */
export const EVICTION_REASONS = ['idle', 'admin', 'budget', 'shutdown', 'other'] as const;
export type EvictionReason = (typeof EVICTION_REASONS)[number];
export const OUTCOMES = ['ok', 'client_error', 'server_error', 'cancelled'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type TokenKind = 'prompt' | 'completion';

/** Latency buckets (s) from a sub-millisecond health answer to a multi-second image generation. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LOAD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const PROBE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Process metrics are process-wide: one registry per process, however many apps a test starts
 * (prom-client's collectors would otherwise be registered twice and its GC observer duplicated).
 */
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    // Gauges named like counters, which promtool rejects; the per-type nodejs_active_* gauges remain.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/** Maps the lifecycle's unload reason text to the closed set (used until every event carries reason_code). */
export function evictionReason(event: { reason?: unknown; reason_code?: unknown }): EvictionReason {
  const code = event.reason_code;
  if (typeof code === 'string' && (EVICTION_REASONS as readonly string[]).includes(code)) return code as EvictionReason;
  const text = typeof event.reason === 'string' ? event.reason.toLowerCase() : '';
  if (text.startsWith('idle')) return 'idle';
  if (text.startsWith('admin')) return 'admin';
  if (text.startsWith('memory budget') || text.startsWith('budget')) return 'budget';
  if (text.startsWith('shutdown')) return 'shutdown';
  return 'other';
}

/**
 * Prometheus metrics on prom-client. Counters and histograms are fed by events and small calls from
 * the request path; the state gauges are computed at scrape time from the same snapshots /health and
 * /api/models serve, so a scrape can never disagree with them.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnModuleDestroy {
  readonly registry = new Registry();
  private readonly unsubscribers: (() => void)[] = [];

  private readonly httpDuration = new Histogram({
    name: 'modelplane_http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  private readonly ttft = new Histogram({
    name: 'modelplane_time_to_first_token_seconds',
    help: 'Time from admission to the first generated token (first stream chunk; whole answer when not streamed).',
    labelNames: ['model'] as const,
    buckets: TTFT_BUCKETS,
    registers: [this.registry],
  });
  private readonly loadDuration = new Histogram({
    name: 'modelplane_model_load_duration_seconds',
    help: 'Model load duration.',
    labelNames: ['model'] as const,
    buckets: LOAD_BUCKETS,
    registers: [this.registry],
  });
  private readonly probeDuration = new Histogram({
    name: 'modelplane_backend_probe_duration_seconds',
    help: 'Backend probe duration by result (ok or error); cache hits are not probes.',
    labelNames: ['backend', 'result'] as const,
    buckets: PROBE_BUCKETS,
    registers: [this.registry],
  });
  private readonly tokensTotal = new Counter({
    name: 'modelplane_tokens_total',
    help: 'Tokens processed, by kind (prompt or completion).',
    labelNames: ['model', 'kind'] as const,
    registers: [this.registry],
  });
  private readonly requestsTotal = new Counter({
    name: 'modelplane_requests_total',
    help: 'Inference requests by model, operation and outcome (ok, client_error, server_error, cancelled).',
    labelNames: ['model', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly evictionsTotal = new Counter({
    name: 'modelplane_evictions_total',
    help: 'Model unloads by reason (idle, admin, budget, shutdown, other).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(
    private readonly models: ModelsService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly probes: ProbeService,
  ) {
    this.snapshotGauges();
    // Process collectors start now, not at the first scrape, so their first sample covers the whole run.
    processMetrics();
    // Every reason exists from the first scrape: rate() over a series that appears late misses its first step.
    for (const reason of EVICTION_REASONS) this.evictionsTotal.inc({ reason }, 0);
  }

  onModuleInit(): void {
    this.unsubscribers.push(
      this.lifecycle.onEvent((e) => {
        if (e.type === 'model.loaded') this.loadDuration.observe({ model: e.model }, e.load_ms / 1000);
        else if (e.type === 'model.unloaded' && e.was_loaded) this.evictionsTotal.inc({ reason: evictionReason(e) });
      }),
    );
    this.unsubscribers.push(
      this.probes.onProbe((p) =>
        this.probeDuration.observe({ backend: p.backend, result: p.ok ? 'ok' : 'error' }, p.probe_ms / 1000),
      ),
    );
  }

  onModuleDestroy(): void {
    for (const off of this.unsubscribers.splice(0)) off();
  }

  /**
   * The exposition: process metrics, then modelplane's. Every state gauge of one scrape reads the same
   * store snapshot, taken here, so a scrape agrees with itself and with every other view.
   */
  async exposition(): Promise<string> {
    this.scrape = this.models.snapshot();
    try {
      return `${await processMetrics().metrics()}\n${await this.registry.metrics()}`;
    } finally {
      this.scrape = null;
    }
  }

  private scrape: StateSnapshot | null = null;

  private current(): StateSnapshot {
    return this.scrape ?? this.models.snapshot();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  httpRequest(route: string, method: string, status: number, seconds: number): void {
    this.httpDuration.observe({ route, method, status: String(status) }, seconds);
  }

  requestFinished(labels: { model: string; operation: string; outcome: Outcome }): void {
    this.requestsTotal.inc(labels);
  }

  firstToken(model: string, seconds: number): void {
    this.ttft.observe({ model }, seconds);
  }

  tokens(model: string, kind: TokenKind, n: number): void {
    if (n > 0) this.tokensTotal.inc({ model, kind }, n);
  }

  /** Gauges read the current snapshots on every scrape; nothing is cached between scrapes. */
  private snapshotGauges(): void {
    const current = (): StateSnapshot => this.current();
    const healthModels = (): ReturnType<ModelsService['healthModels']> => this.models.healthModels(current());
    const readinessValues = Object.values(Readiness);
    new Gauge({
      name: 'modelplane_readiness',
      help: 'Aggregate readiness (1 for the current value).',
      labelNames: ['readiness'],
      registers: [this.registry],
      collect() {
        const aggregate = current().readiness.readiness;
        for (const r of readinessValues) this.set({ readiness: r }, aggregate === r ? 1 : 0);
      },
    });
    new Gauge({
      name: 'modelplane_backend_readiness',
      help: 'Backend readiness (1 for the current value).',
      labelNames: ['backend', 'readiness'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of current().readiness.backends)
          for (const r of readinessValues) this.set({ backend: b.name, readiness: r }, b.readiness === r ? 1 : 0);
      },
    });
    const perModel = (
      name: string,
      help: string,
      value: (m: ReturnType<ModelsService['healthModels']>[string]) => number | null,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['model'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [model, m] of Object.entries(healthModels())) {
            const v = value(m);
            if (v !== null) this.set({ model }, v);
          }
        },
      });
    };
    // No series for an `unknown` model: nobody observed it unloaded, and a 0 would read as "not loaded"
    // on a dashboard or in an alert. modelplane_model_state{state="unknown"} says what is known.
    perModel('modelplane_model_loaded', 'Model resident (1) or not (0); absent while the state is unknown.', (m) =>
      m.state === 'unknown' ? null : m.state === 'loaded' ? 1 : 0,
    );
    new Gauge({
      name: 'modelplane_model_state',
      help: 'Model state as every view shows it (1 for the current value); unknown = not observable or stale.',
      labelNames: ['model', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [model, m] of Object.entries(healthModels()))
          for (const state of MODEL_STATES) this.set({ model, state }, m.state === state ? 1 : 0);
      },
    });
    perModel('modelplane_model_in_flight', 'Requests holding a lease on the model.', (m) => m.in_flight);
    perModel('modelplane_model_idle_seconds', 'Seconds since the last request ended (loaded models).', (m) =>
      m.state === 'loaded' ? m.idle_seconds : null,
    );
    perModel('modelplane_model_unloads_in_seconds', 'Seconds until idle unload (loaded, idle models).', (m) =>
      m.state === 'loaded' ? m.unloads_in_s : null,
    );
    new Gauge({
      name: 'modelplane_requests_in_flight',
      help: 'Requests holding a lease, all models.',
      registers: [this.registry],
      collect() {
        this.set(Object.values(healthModels()).reduce((n, m) => n + m.in_flight, 0));
      },
    });
  }
}
