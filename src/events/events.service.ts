import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Clock } from '../common/clock.js';
import { ModelStateStore } from '../models/model-state.store.js';

export interface StateEvent {
  seq: number;
  type: string;
  at_ms: number;
  [field: string]: unknown;
}

const HISTORY = 200;

/**
 * One stream of state changes (backend transitions, loads, unloads with freed memory, drift) for
 * SSE clients. Bounded history so a late subscriber can catch up.
 */
@Injectable()
export class EventsService implements OnModuleInit, OnModuleDestroy {
  private readonly emitter = new EventEmitter();
  private readonly history: StateEvent[] = [];
  private readonly unsubscribers: (() => void)[] = [];
  private seq = 0;

  constructor(
    private readonly backendState: BackendStateService,
    private readonly store: ModelStateStore,
    private readonly clock: Clock,
  ) {
    this.emitter.setMaxListeners(1000);
  }

  onModuleInit(): void {
    this.unsubscribers.push(
      this.backendState.onTransition((e) => this.publish({ type: 'backend.transition', ...e })),
      this.store.onEvent((e) => this.publish({ ...e })),
    );
  }

  onModuleDestroy(): void {
    for (const off of this.unsubscribers.splice(0)) off();
    this.emitter.removeAllListeners();
  }

  publish(event: { type: string; at_ms?: number; [field: string]: unknown }): void {
    const full: StateEvent = {
      ...event,
      seq: ++this.seq,
      type: event.type,
      at_ms: event.at_ms ?? this.clock.epochMs(),
    };
    this.history.push(full);
    if (this.history.length > HISTORY) this.history.shift();
    this.emitter.emit('event', full);
  }

  since(seq: number): StateEvent[] {
    return this.history.filter((e) => e.seq > seq);
  }

  subscribe(listener: (event: StateEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
