import { Controller, Get, Header } from '@nestjs/common';
import { type FleetLoadedEntry, type FleetNode, FleetViewService } from './fleet-view.service.js';

@Controller('api/fleet')
export class FleetController {
  constructor(private readonly view: FleetViewService) {}

  /** Who this node is: what a peer's probe reads to name it in its fleet views. */
  @Get('node')
  @Header('cache-control', 'no-store')
  node(): { node: string; url: string } {
    return { node: this.view.nodeName, url: this.view.selfUrl };
  }

  /** Every model loaded on any node, each with the node's `host` and `node_url`; every node listed. */
  @Get('models/loaded')
  @Header('cache-control', 'no-store')
  loaded(): { loaded: FleetLoadedEntry[]; nodes: FleetNode[] } {
    return this.view.loaded();
  }

  /** Readiness per node, summarised. */
  @Get('health')
  @Header('cache-control', 'no-store')
  health(): ReturnType<FleetViewService['health']> {
    return this.view.health();
  }
}
