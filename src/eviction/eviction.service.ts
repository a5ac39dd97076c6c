import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { keepReason, type LoadPlan, selectIdle } from '../models/eviction-policy.js';
import { ModelLifecycleService, type UnloadOutcome } from '../models/model-lifecycle.service.js';
import { ModelStateStore } from '../models/model-state.store.js';
import { ProbeService } from '../models/probe.service.js';
import { evictionView } from '../models/state-snapshot.js';
import { errorText } from '../common/errors.js';
import { type ResolvedModel } from '../providers/provider-registry.service.js';

export const SWEEPER_NAME = 'modelplane-idle-sweeper';

/**
 * The idle sweeper. Every decision comes from the pure policy over the store's snapshot (the same one
 * every view shows); each unload re-checks under the model's lock with a fresh snapshot.
 */
@Injectable()
export class EvictionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(EvictionService.name);
  private sweeping: Promise<UnloadOutcome[]> | null = null;

  constructor(
    private readonly lifecycle: ModelLifecycleService,
    private readonly store: ModelStateStore,
    private readonly observer: ProbeService,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const interval = setInterval(() => void this.tick(), this.config.eviction.checkIntervalS * 1000);
    interval.unref();
    this.scheduler.addInterval(SWEEPER_NAME, interval);
  }

  onApplicationShutdown(): void {
    if (this.scheduler.doesExist('interval', SWEEPER_NAME)) this.scheduler.deleteInterval(SWEEPER_NAME);
  }

  /**
   * One sweep: unload every idle model. Each unload re-checks under the model's lock, so a request that
   * arrived after the decision keeps the model. Overlapping ticks share one sweep.
   */
  tick(): Promise<UnloadOutcome[]> {
    this.sweeping ??= this.sweep().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  plan(target: ResolvedModel): LoadPlan {
    return this.lifecycle.plan(target);
  }

  private async sweep(): Promise<UnloadOutcome[]> {
    const outcomes: UnloadOutcome[] = [];
    // Remote backends that report their own idle time (rknn-sd) are asked again first: an unload is an
    // action, so it may wait for an observation (reads never do).
    if (this.store.snapshot().models.some((m) => !m.local)) await this.observer.refresh('remote');
    const stillIdle = (id: string): boolean => {
      const m = this.store.snapshot().models.find((x) => x.id === id);
      return m !== undefined && keepReason(this.clock.nowMs(), evictionView(m)) === null;
    };
    for (const candidate of selectIdle(this.clock.nowMs(), this.store.snapshot().models.map(evictionView))) {
      try {
        const outcome = await this.lifecycle.unload(candidate.id, 'idle', { onlyIf: () => stillIdle(candidate.id) });
        if (outcome) outcomes.push(outcome);
      } catch (err) {
        this.logger.warn(`idle unload of '${candidate.id}' failed: ${errorText(err)}`);
      }
    }
    return outcomes;
  }
}
