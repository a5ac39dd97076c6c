/**
 * The model-state transition table (src/models/transitions.ts) and the store that applies it: which
 * changes of a model's state are legal, which event each publishes, that a change from a state to itself
 * publishes nothing, and that an illegal change is refused (the store throws and leaves the state as it was).
 */
import type { UnloadOutcome } from '../../src/models/model-state.store.js';
import {
  IllegalTransitionError,
  MODEL_STATES,
  type ModelState,
  TRANSITIONS,
  transitionEvent,
} from '../../src/models/transitions.js';
import { configFrom } from '../support/config.js';
import { ControllableProvider } from '../support/controllable-provider.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore } from '../support/model-core.js';

/** The table as specified: every legal from → to, and the event it publishes (null: none by itself). */
const ALLOWED: [ModelState, ModelState, string | null][] = [
  ['unknown', 'loading', null],
  ['unknown', 'unloading', null],
  ['unknown', 'loaded', null],
  ['unknown', 'unloaded', null],
  ['unloaded', 'loading', null],
  ['unloaded', 'unloading', null],
  ['unloaded', 'loaded', null],
  ['unloaded', 'unknown', null],
  ['failed', 'loading', null],
  ['failed', 'unloading', null],
  ['failed', 'loaded', null],
  ['failed', 'unloaded', null],
  ['failed', 'unknown', null],
  ['loading', 'loaded', 'model.loaded'],
  ['loading', 'failed', 'model.load_failed'],
  ['loading', 'unloaded', null],
  ['loaded', 'unloading', null],
  ['loaded', 'unloaded', null],
  ['loaded', 'unknown', null],
  ['loaded', 'loading', null],
  ['unloading', 'unloaded', 'model.unloaded'],
  ['unloading', 'loaded', null],
  ['unloading', 'unknown', null],
  ['unloading', 'failed', null],
];
const allowed = new Map(ALLOWED.map(([from, to, event]) => [`${from}→${to}`, event]));

describe('transition table', () => {
  it.each(ALLOWED)('%s → %s is legal and publishes %s', (from, to, event) => {
    expect(transitionEvent('m', from, to)).toBe(event);
  });

  it('every other pair, a state to itself included, is refused with IllegalTransitionError', () => {
    const refused: string[] = [];
    for (const from of MODEL_STATES)
      for (const to of MODEL_STATES) {
        if (allowed.has(`${from}→${to}`)) continue;
        expect(() => transitionEvent('m', from, to)).toThrow(IllegalTransitionError);
        refused.push(`${from}→${to}`);
      }
    expect(refused).toHaveLength(MODEL_STATES.length ** 2 - ALLOWED.length);
    for (const state of MODEL_STATES) expect(refused).toContain(`${state}→${state}`);
    expect(() => transitionEvent('m', 'loading', 'unloading')).toThrow(
      "model 'm': illegal state transition loading → unloading",
    );
  });

  it('the table holds exactly the specified rows', () => {
    const rows = Object.entries(TRANSITIONS).flatMap(([from, row]) =>
      Object.entries(row).map(([to, event]) => `${from}→${to}:${event}`),
    );
    expect(rows.sort()).toEqual(ALLOWED.map(([from, to, event]) => `${from}→${to}:${event}`).sort());
  });
});

describe('the store applies the table', () => {
  function setup() {
    const config = configFrom({
      backends: [{ name: 'local', type: 'llama-cpp', models: [{ id: 'a', path: 'a.gguf' }] }],
    });
    const core = buildModelCore(config, [new ControllableProvider('local', ['a'])], new FakeClock());
    const events: string[] = [];
    core.store.onEvent((e) => events.push(e.type));
    return { store: core.store, events };
  }
  const outcome = (wasLoaded: boolean): UnloadOutcome => ({
    ok: true,
    model: 'a',
    was_loaded: wasLoaded,
    reason: 'admin request',
    reason_code: 'admin',
    expected_freed_mb: null,
    rss_freed_mb: null,
  });

  it('a load publishes model.loaded once; loaded → loaded again publishes nothing', () => {
    const { store, events } = setup();
    expect(store.record('a').state).toBe('unloaded');
    store.loadStarted('a');
    store.loadSucceeded('a', 10, null);
    expect(store.peek('a')!.state).toBe('loaded');
    store.loadSucceeded('a', 10, null);
    expect(events).toEqual(['model.loaded']);
  });

  it('a failed load publishes model.load_failed', () => {
    const { store, events } = setup();
    store.loadStarted('a');
    store.loadFailed('a', 'bad file');
    expect(store.peek('a')).toMatchObject({ state: 'failed', reason: 'bad file' });
    expect(events).toEqual(['model.load_failed']);
  });

  it('an unload of a loaded model publishes model.unloaded; an unload of nothing publishes nothing', () => {
    const { store, events } = setup();
    store.loadStarted('a');
    store.loadSucceeded('a', 10, null);
    store.unloadStarted('a');
    store.unloadSucceeded('a', outcome(true));
    expect(store.peek('a')!.state).toBe('unloaded');
    expect(events).toEqual(['model.loaded', 'model.unloaded']);

    store.unloadStarted('a');
    store.unloadSucceeded('a', outcome(false));
    expect(events).toEqual(['model.loaded', 'model.unloaded']);
  });

  it('a failed unload returns to the state before it, publishing nothing', () => {
    const { store, events } = setup();
    store.loadStarted('a');
    store.loadSucceeded('a', 10, null);
    const previous = store.unloadStarted('a');
    store.unloadFailed('a', previous);
    expect(store.peek('a')!.state).toBe('loaded');
    expect(events).toEqual(['model.loaded']);
  });

  it('an illegal change (an unload of a model still loading) throws and leaves the state as it was', () => {
    const { store, events } = setup();
    store.loadStarted('a');
    expect(() => store.unloadStarted('a')).toThrow(IllegalTransitionError);
    expect(store.peek('a')!.state).toBe('loading');
    expect(events).toEqual([]);
  });
});
