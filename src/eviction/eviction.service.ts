import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { InsufficientMemoryError } from '../common/errors.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ModelLifecycleService, type ModelRecord, type UnloadOutcome } from '../models/model-lifecycle.service.js';
import { IN_PROCESS_KINDS } from '../providers/model-provider.js';
import { errorText, ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';
import { type EvictionView, keepReason, type LoadPlan, planLoad, selectIdle } from './eviction.policy.js';

export const SWEEPER_NAME = 'modelplane-idle-sweeper';

/** Latest idle seconds a remote backend reports for a model (rknn-sd `idle_seconds`), if any. */
export type BackendIdleSource = (modelId: string) => number | null;

/** Runs the idle sweeper and the memory budget; every decision comes from eviction.policy. */
@Injectable()
export class EvictionService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(EvictionService.name);
  private sweeping: Promise<UnloadOutcome[]> | null = null;
  private backendIdle: BackendIdleSource = () => null;
  private refreshObservations: () => Promise<unknown> = async () => undefined;

  constructor(
    private readonly lifecycle: ModelLifecycleService,
    private readonly registry: ProviderRegistry,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.lifecycle.setBeforeLoadHook((model) => this.makeRoomFor(model));
  }

  onApplicationBootstrap(): void {
    const interval = setInterval(() => void this.tick(), this.config.eviction.checkIntervalS * 1000);
    interval.unref();
    this.scheduler.addInterval(SWEEPER_NAME, interval);
  }

  onApplicationShutdown(): void {
    if (this.scheduler.doesExist('interval', SWEEPER_NAME)) this.scheduler.deleteInterval(SWEEPER_NAME);
  }

  /**
   * Where remote backends report their own idle time, the sweeper reads it from fresh (cached) probes:
   * `refresh` runs before each sweep, `source` reads the result.
   */
  setBackendIdleSource(source: BackendIdleSource, refresh: () => Promise<unknown>): void {
    this.backendIdle = source;
    this.refreshObservations = refresh;
  }

  view(record: ModelRecord): EvictionView {
    const resolved = this.registry.find(record.id);
    return {
      id: record.id,
      loaded: record.state === 'loaded',
      inFlight: record.inFlight,
      lastActivityMs: record.lastActivityMs,
      backendIdleS: this.backendIdle(record.id),
      thresholdS: this.lifecycle.idleThresholdS(record.id),
      pinned: this.lifecycle.isPinned(record.id),
      canUnload: resolved?.provider.capabilities.canUnload ?? false,
      sizeBytes: record.sizeBytes ?? resolved?.descriptor.expectedSizeBytes ?? null,
      local: resolved ? IN_PROCESS_KINDS.includes(resolved.backend.type) : false,
    };
  }

  views(): EvictionView[] {
    return this.lifecycle.allRecords().map((r) => this.view(r));
  }

  /**
   * One sweep: unload every idle model. Each unload re-checks under the model's lock, so a request that
   * arrived after the decision keeps the model. Overlapping ticks share one sweep.
   */
  tick(): Promise<UnloadOutcome[]> {
    this.sweeping ??= this.sweep().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweep(): Promise<UnloadOutcome[]> {
    const outcomes: UnloadOutcome[] = [];
    if (this.views().some((v) => v.loaded && !v.local)) await this.refreshObservations();
    for (const candidate of selectIdle(this.clock.nowMs(), this.views())) {
      try {
        const outcome = await this.lifecycle.unload(candidate.id, 'idle', {
          onlyIf: (record) => keepReason(this.clock.nowMs(), this.view(record)) === null,
        });
        if (outcome) outcomes.push(outcome);
      } catch (err) {
        this.logger.warn(`idle unload of '${candidate.id}' failed: ${errorText(err)}`);
      }
    }
    return outcomes;
  }

  plan(target: ResolvedModel): LoadPlan {
    const record = this.lifecycle.peek(target.id);
    return planLoad(
      this.clock.nowMs(),
      { id: target.id, sizeBytes: record?.sizeBytes ?? target.descriptor.expectedSizeBytes },
      this.views(),
      {
        maxLoadedModels: this.config.eviction.maxLoadedModels,
        memoryBudgetBytes: this.config.eviction.memoryBudgetMb * 1024 * 1024,
      },
    );
  }

  /** Before an in-process load: evict LRU idle models until it fits, or refuse with insufficient_memory. */
  private async makeRoomFor(target: ResolvedModel): Promise<void> {
    if (!IN_PROCESS_KINDS.includes(target.backend.type)) return;
    // Each round evicts one model and re-plans, since a request may have claimed a candidate meanwhile.
    for (let round = 0; round < 64; round++) {
      const plan = this.plan(target);
      if (!plan.fits) throw new InsufficientMemoryError(target.id, plan.reason ?? 'memory budget exceeded');
      const victim = plan.evict[0];
      if (victim === undefined) return;
      await this.lifecycle.unload(victim, `memory budget (loading '${target.id}')`, {
        onlyIf: (record) => record.inFlight === 0 && record.state === 'loaded',
      });
    }
    throw new InsufficientMemoryError(target.id, 'could not settle the memory budget');
  }
}
