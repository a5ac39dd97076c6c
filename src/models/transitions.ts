/**
 * The model-state transition table: which believed-state changes are legal, and which event each one
 * publishes. The store (model-state.store.ts) is the only code that applies it, so an event is published
 * exactly when a model's state really changes and never for a change from a state to itself.
 */

/** What modelplane believes about a model (docs/architecture.md §Model states). */
export const MODEL_STATES = ['unloaded', 'loading', 'loaded', 'unloading', 'failed', 'unknown'] as const;
export type ModelState = (typeof MODEL_STATES)[number];

/** Events a transition can publish; `null` = a legal transition that publishes nothing by itself. */
export type TransitionEvent = 'model.loaded' | 'model.load_failed' | 'model.unloaded' | null;

/**
 * from → to → event. Transitions driven by an observation (a remote backend loaded or dropped a model on
 * its own) publish `model.drift` from the store instead, so only our own loads and unloads publish
 * `model.loaded` / `model.unloaded`.
 */
export const TRANSITIONS: Readonly<Record<ModelState, Readonly<Partial<Record<ModelState, TransitionEvent>>>>> = {
  unknown: { loading: null, unloading: null, loaded: null, unloaded: null },
  unloaded: { loading: null, unloading: null, loaded: null, unknown: null },
  failed: { loading: null, unloading: null, loaded: null, unloaded: null, unknown: null },
  loading: { loaded: 'model.loaded', failed: 'model.load_failed', unloaded: null },
  loaded: { unloading: null, unloaded: null, unknown: null, loading: null },
  // An unload that found nothing loaded ends in `unloaded` without an event (the store checks was_loaded).
  unloading: { unloaded: 'model.unloaded', loaded: null, unknown: null, failed: null },
};

export class IllegalTransitionError extends Error {
  constructor(id: string, from: ModelState, to: ModelState) {
    super(`model '${id}': illegal state transition ${from} → ${to}`);
  }
}

/** The event a transition publishes; throws for a transition the table does not allow. */
export function transitionEvent(id: string, from: ModelState, to: ModelState): TransitionEvent {
  const row = TRANSITIONS[from];
  if (!(to in row)) throw new IllegalTransitionError(id, from, to);
  return row[to] ?? null;
}
