import { Module } from '@nestjs/common';
import { EvictionModule } from '../eviction/eviction.module.js';
import { ModelsModule } from '../models/models.module.js';
import { FleetDiscoveryService } from './fleet-discovery.service.js';
import { FleetRouterService } from './fleet-router.service.js';
import { FleetViewService } from './fleet-view.service.js';
import { FleetController } from './fleet.controller.js';

/** Fleet: the peers' views (projections of the store), warm routing, and DNS discovery of peers. */
@Module({
  imports: [ModelsModule, EvictionModule],
  controllers: [FleetController],
  providers: [FleetViewService, FleetRouterService, FleetDiscoveryService],
  exports: [FleetViewService, FleetRouterService, FleetDiscoveryService],
})
export class FleetModule {}
