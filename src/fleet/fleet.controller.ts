import { Controller, Get, Header } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { type FleetLoadedEntry, type FleetNode, FleetViewService } from './fleet-view.service.js';

@Controller('api/fleet')
@ApiTags('fleet')
export class FleetController {
  constructor(private readonly view: FleetViewService) {}

  /** Who this node is: what a peer's probe reads to name it in its fleet views. */
  @Get('node')
  @ApiOperation({ summary: "This node's name and URL (what peers' probes read)" })
  @Header('cache-control', 'no-store')
  node(): { node: string; url: string } {
    return { node: this.view.nodeName, url: this.view.selfUrl };
  }

  /** Every model loaded on any node, each with the node's `host` and `node_url`; every node listed. */
  @Get('models/loaded')
  @ApiOperation({ summary: 'Every model loaded on any node of the fleet, with host and node_url; every node' })
  @Header('cache-control', 'no-store')
  loaded(): { loaded: FleetLoadedEntry[]; nodes: FleetNode[] } {
    return this.view.loaded();
  }

  /** Readiness per node, summarised. */
  @Get('health')
  @ApiOperation({ summary: 'Readiness per node of the fleet, summarised' })
  @Header('cache-control', 'no-store')
  health(): ReturnType<FleetViewService['health']> {
    return this.view.health();
  }
}
