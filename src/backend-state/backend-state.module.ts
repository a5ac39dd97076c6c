import { Global, Module } from '@nestjs/common';
import { BackendStateService } from './backend-state.service.js';

@Global()
@Module({ providers: [BackendStateService], exports: [BackendStateService] })
export class BackendStateModule {}
