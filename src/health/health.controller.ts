import { Controller, Get, Header } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { canServe } from '../backend-state/readiness.js';
import { RawHttpResponse } from '../common/exception.filter.js';
import { HealthService, type HealthSnapshot } from './health.service.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly snapshots: HealthService,
  ) {}

  /** Liveness: the event loop answers. Never depends on a backend (a failing liveness restarts the pod). */
  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /**
   * Readiness: 200 while the service can take traffic (ready or degraded), 503 otherwise. Terminus decides
   * on the aggregate; each backend is listed in `details` (a down backend alone does not fail the check).
   */
  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    const snapshot = this.snapshots.snapshot();
    const backends = this.backendIndicators(snapshot);
    const aggregate = () => {
      const indicator = this.indicators.check('service');
      const info = { readiness: snapshot.readiness, reason: snapshot.reason };
      return canServe(snapshot.readiness) ? indicator.up(info) : indicator.down(info);
    };
    try {
      const result = await this.health.check([aggregate]);
      return { ...result, details: { ...result.details, ...backends } };
    } catch (err) {
      const body = (err as { getResponse?: () => HealthCheckResult }).getResponse?.();
      throw new RawHttpResponse(503, { ...body, details: { ...body?.details, ...backends } });
    }
  }

  @Get()
  @Header('cache-control', 'no-store')
  full(): HealthSnapshot {
    return this.snapshots.snapshot();
  }

  private backendIndicators(snapshot: HealthSnapshot): HealthIndicatorResult {
    const out: HealthIndicatorResult = {};
    for (const [name, b] of Object.entries(snapshot.backends)) {
      out[name] = {
        status: canServe(b.readiness) ? 'up' : 'down',
        kind: b.kind,
        readiness: b.readiness,
        reason: b.reason,
      };
    }
    return out;
  }
}
