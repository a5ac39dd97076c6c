/**
 * A fleet on one machine: all of 127.0.0.0/8 is loopback on Linux, so nodes bind 127.0.0.1, 127.0.0.2, ...
 * on one shared port, as the pods behind one headless Service would, each a real modelplane app.
 */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from '../../src/app.factory.js';
import { FleetDiscoveryService } from '../../src/fleet/fleet-discovery.service.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { ProbeService } from '../../src/models/probe.service.js';
import { configFrom } from './config.js';

export interface FleetNode {
  app: NestFastifyApplication;
  host: string;
  url: string;
  close(): Promise<void>;
  /** Wait for start-up, discovery and one fresh probe of every backend (what the background would do next). */
  observe(): Promise<void>;
}

export { freePort } from './http-json.js';

export async function startNode(host: string, port: number, yaml: Record<string, unknown>): Promise<FleetNode> {
  const config = configFrom({ ...yaml, server: { host, port, ...(yaml.server as object | undefined) } });
  const app = await createApp(config, { logger: false });
  await app.listen({ host, port });
  const node: FleetNode = {
    app,
    host,
    url: `http://${host}:${port}`,
    close: () => app.close(),
    observe: async () => {
      await app.get(BackendStartupService).settled();
      const discovery = app.get(FleetDiscoveryService);
      await discovery.sync();
      await discovery.whenSettled();
      const probes = app.get(ProbeService);
      await probes.whenIdle();
      await probes.refresh();
    },
  };
  return node;
}
