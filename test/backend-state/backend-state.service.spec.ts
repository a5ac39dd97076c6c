import { BackendStateService, type TransitionEvent } from '../../src/backend-state/backend-state.service.js';
import { Readiness } from '../../src/backend-state/readiness.js';
import { FakeClock } from '../support/fake-clock.js';

function setup() {
  const clock = new FakeClock();
  const sut = new BackendStateService(clock);
  const events: TransitionEvent[] = [];
  sut.onTransition((e) => events.push(e));
  return { clock, sut, events };
}

describe(BackendStateService.name, () => {
  it('starts a registered backend as initializing and not initialized', () => {
    const { sut } = setup();
    sut.register('llm', 'llama-cpp');
    expect(sut.get('llm')).toMatchObject({
      readiness: Readiness.Initializing,
      reason: null,
      backend_initialized: false,
    });
    expect(sut.snapshot().readiness).toBe(Readiness.Initializing);
  });

  it('markInitialized moves last_transition_ms but publishes no transition (readiness did not change)', () => {
    const { sut, clock, events } = setup();
    sut.register('llm', 'llama-cpp');
    const before = sut.get('llm').last_transition_ms;
    clock.advance(250);
    sut.markInitialized('llm');
    expect(sut.get('llm').backend_initialized).toBe(true);
    expect(sut.get('llm').last_transition_ms).toBe(before + 250);
    expect(sut.snapshot().last_transition_ms).toBe(before + 250);
    expect(events).toHaveLength(0);
  });

  it.each<[Readiness, string | null, Readiness, string | null, boolean]>([
    [Readiness.Ready, null, Readiness.Ready, null, false],
    [Readiness.Ready, null, Readiness.Unavailable, 'connect ECONNREFUSED', true],
    [Readiness.Unavailable, 'a', Readiness.Unavailable, 'b', false],
    [Readiness.Unavailable, 'a', Readiness.Ready, null, true],
    [Readiness.Degraded, 'x', Readiness.Degraded, 'x', false],
  ])('%s(%s) → %s(%s) emits=%s', (from, fromReason, to, toReason, emits) => {
    const { sut, events, clock } = setup();
    sut.register('b', 'ollama');
    sut.set('b', from, fromReason);
    events.length = 0;
    const stamp = sut.get('b').last_transition_ms;
    clock.advance(10);
    sut.set('b', to, toReason);
    expect(events.length).toBe(emits ? 1 : 0);
    expect(sut.get('b').last_transition_ms).toBe(emits ? stamp + 10 : stamp);
    if (emits) expect(events[0]).toMatchObject({ backend: 'b', from, to, reason: toReason });
    // A new reason for the same readiness is recorded, quietly.
    expect(sut.get('b').reason).toBe(toReason);
  });

  it('finalize: some preloads failed → degraded naming the model; aggregate degraded', () => {
    const { sut } = setup();
    sut.register('llm', 'llama-cpp');
    sut.register('img', 'onnx-image');
    sut.finalize('llm', { initError: null, preloadFailures: [{ id: 'qwen', reason: 'ENOENT' }], preloadCount: 2 });
    sut.finalize('img', { initError: null, preloadFailures: [], preloadCount: 0 });
    const snap = sut.snapshot();
    expect(snap.readiness).toBe(Readiness.Degraded);
    expect(snap.reason).toContain('qwen');
    expect(snap.backend_initialized).toBe(true);
  });

  it('finalize: an init failure keeps its reason and the aggregate is unavailable', () => {
    const { sut } = setup();
    sut.register('llm', 'llama-cpp');
    sut.finalize('llm', { initError: 'binding failed to load', preloadFailures: [], preloadCount: 0 });
    expect(sut.get('llm')).toMatchObject({
      readiness: Readiness.Unavailable,
      reason: 'binding failed to load',
      backend_initialized: true,
    });
    expect(sut.snapshot().readiness).toBe(Readiness.Unavailable);
  });
});
