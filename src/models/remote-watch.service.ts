import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ProbeService } from './probe.service.js';

/**
 * Probes every remote backend in the background (per backend `probe_interval_ms`), so its readiness
 * (and recovery) follows the server even when no client polls. Intervals go through SchedulerRegistry
 * and are removed at shutdown.
 */
@Injectable()
export class RemoteWatchService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly names: string[] = [];

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly probes: ProbeService,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    for (const { provider, backend } of this.registry.all()) {
      if (!provider.capabilities.remote) continue;
      const name = `modelplane-probe-${backend.name}`;
      const opts = {
        timeoutMs: backend.probeTimeoutMs,
        cacheMs: backend.probeCacheMs,
        failureThreshold: backend.failureThreshold,
      };
      this.probes.watch(provider, opts);
      const interval = setInterval(() => void this.probes.observe(provider, opts), backend.probeIntervalMs);
      interval.unref();
      this.scheduler.addInterval(name, interval);
      this.names.push(name);
    }
  }

  onApplicationShutdown(): void {
    for (const name of this.names.splice(0)) {
      if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
    }
  }
}
