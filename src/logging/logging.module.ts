import { type DynamicModule, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { loggerParams } from './logging.js';
import { RequestContextInterceptor } from './request-context.interceptor.js';

@Module({})
export class LoggingModule {
  /** `root` is the app's pino logger (createRootLogger). */
  static forRoot(root: Logger): DynamicModule {
    return {
      module: LoggingModule,
      imports: [LoggerModule.forRoot(loggerParams(root))],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RequestContextInterceptor }],
    };
  }
}
