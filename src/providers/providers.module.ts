import { Module } from '@nestjs/common';
import { ProviderFactory } from './provider.factory.js';
import { ProviderRegistry } from './provider-registry.service.js';

@Module({
  providers: [ProviderFactory, ProviderRegistry],
  exports: [ProviderRegistry],
})
export class ProvidersModule {}
