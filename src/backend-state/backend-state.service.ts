import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { Clock } from '../common/clock.js';
import type { BackendKind } from '../config/backend-kinds.js';
import { aggregateReadiness, finalReadiness, type FinalizeInput, Readiness } from './readiness.js';

export interface BackendStateView {
  name: string;
  kind: BackendKind;
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  /** Epoch ms of the last change of readiness, reason or initialization. */
  last_transition_ms: number;
}

export interface ServiceStateView {
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
  backends: BackendStateView[];
}

export interface TransitionEvent {
  backend: string;
  from: Readiness;
  to: Readiness;
  reason: string | null;
  at_ms: number;
}

/** Owns per-backend readiness. Every change moves last_transition_ms and emits 'transition'. */
@Injectable()
export class BackendStateService {
  private readonly states = new Map<string, BackendStateView>();
  private readonly emitter = new EventEmitter();
  private readonly startedAtMs: number;
  private lastServiceTransitionMs: number;

  constructor(private readonly clock: Clock) {
    this.startedAtMs = clock.epochMs();
    this.lastServiceTransitionMs = this.startedAtMs;
  }

  register(name: string, kind: BackendKind): void {
    this.states.set(name, {
      name,
      kind,
      readiness: Readiness.Initializing,
      reason: null,
      backend_initialized: false,
      last_transition_ms: this.clock.epochMs(),
    });
  }

  /** A run-time backend (fleet peer) left: it no longer counts in the service readiness. */
  unregister(name: string): void {
    if (!this.states.delete(name)) return;
    this.lastServiceTransitionMs = this.clock.epochMs();
  }

  get(name: string): BackendStateView {
    const state = this.states.get(name);
    if (!state) throw new Error(`unknown backend '${name}'`);
    return { ...state };
  }

  has(name: string): boolean {
    return this.states.has(name);
  }

  /**
   * The backend's init() finished (successfully or not): moves last_transition_ms, but publishes no
   * transition (readiness did not change; finalize() publishes the real one).
   */
  markInitialized(name: string): void {
    const state = this.mutable(name);
    if (state.backend_initialized) return;
    state.backend_initialized = true;
    state.last_transition_ms = this.clock.epochMs();
    this.lastServiceTransitionMs = state.last_transition_ms;
  }

  /**
   * Set readiness. Only a change of readiness is a transition (event, last_transition_ms); a new reason for
   * the same readiness (another error text in a failure streak) is recorded quietly.
   */
  set(name: string, readiness: Readiness, reason: string | null): void {
    const state = this.mutable(name);
    if (state.readiness === readiness) {
      state.reason = reason;
      return;
    }
    const from = state.readiness;
    state.readiness = readiness;
    state.reason = reason;
    state.last_transition_ms = this.clock.epochMs();
    this.lastServiceTransitionMs = state.last_transition_ms;
    this.emitter.emit('transition', this.event(state, from));
  }

  /** Settle a backend after init and preloads. */
  finalize(name: string, input: FinalizeInput): void {
    const { readiness, reason } = finalReadiness(input);
    this.markInitialized(name);
    this.set(name, readiness, reason);
  }

  snapshot(): ServiceStateView {
    const backends = [...this.states.values()].map((s) => ({ ...s }));
    const readiness = aggregateReadiness(backends.map((b) => b.readiness));
    const reasons = backends.filter((b) => b.reason !== null).map((b) => `${b.name}: ${b.reason}`);
    return {
      readiness,
      reason: reasons.length > 0 ? reasons.join('; ') : null,
      backend_initialized: backends.every((b) => b.backend_initialized),
      last_transition_ms: this.lastServiceTransitionMs,
      backends,
    };
  }

  onTransition(listener: (event: TransitionEvent) => void): () => void {
    this.emitter.on('transition', listener);
    return () => this.emitter.off('transition', listener);
  }

  private mutable(name: string): BackendStateView {
    const state = this.states.get(name);
    if (!state) throw new Error(`unknown backend '${name}'`);
    return state;
  }

  private event(state: BackendStateView, from: Readiness): TransitionEvent {
    return { backend: state.name, from, to: state.readiness, reason: state.reason, at_ms: state.last_transition_ms };
  }
}
