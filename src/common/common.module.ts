import { type DynamicModule, Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from './clock.js';
import { ShutdownNotice } from './shutdown.js';

@Global()
@Module({})
export class CommonModule {
  /** `clock` lets tests move time instead of sleeping. */
  static forRoot(clock?: Clock): DynamicModule {
    const provider = clock ? { provide: Clock, useValue: clock } : { provide: Clock, useClass: SystemClock };
    return { module: CommonModule, providers: [provider, ShutdownNotice], exports: [Clock, ShutdownNotice] };
  }
}
