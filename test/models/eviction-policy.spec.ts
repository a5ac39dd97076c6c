import {
  type EvictionView,
  idleSeconds,
  keepReason,
  planLoad,
  selectIdle,
  unloadsInS,
} from '../../src/models/eviction-policy.js';

const MB = 1024 * 1024;
const NOW = 1_000_000;

function model(overrides: Partial<EvictionView> = {}): EvictionView {
  return {
    id: 'm',
    loaded: true,
    inFlight: 0,
    lastActivityMs: NOW - 120_000,
    backendIdleS: null,
    thresholdS: 60,
    pinned: false,
    canUnload: true,
    sizeBytes: 100 * MB,
    local: true,
    ...overrides,
  };
}

describe(idleSeconds.name, () => {
  it('counts from the last activity on the monotonic clock', () => {
    expect(idleSeconds(NOW, model({ lastActivityMs: NOW - 5_000 }))).toBe(5);
  });
  it('is 0 while a request is in flight', () => {
    expect(idleSeconds(NOW, model({ inFlight: 1 }))).toBe(0);
  });
  it('takes the smaller of ours and the backend-reported idle time', () => {
    expect(idleSeconds(NOW, model({ lastActivityMs: NOW - 300_000, backendIdleS: 7 }))).toBe(7);
    expect(idleSeconds(NOW, model({ lastActivityMs: NOW - 3_000, backendIdleS: 700 }))).toBe(3);
  });
  it('uses the backend figure alone when modelplane never used the model', () => {
    expect(idleSeconds(NOW, model({ lastActivityMs: null, backendIdleS: 42 }))).toBe(42);
    expect(idleSeconds(NOW, model({ lastActivityMs: null, backendIdleS: null }))).toBeNull();
  });
});

describe(selectIdle.name, () => {
  it.each<[string, Partial<EvictionView>, boolean]>([
    ['idle past its threshold', {}, true],
    ['exactly at the threshold', { lastActivityMs: NOW - 60_000 }, true],
    ['idle below its threshold', { lastActivityMs: NOW - 59_000 }, false],
    ['with a request in flight', { inFlight: 2 }, false],
    ['pinned', { pinned: true }, false],
    ['threshold 0 (never)', { thresholdS: 0 }, false],
    ['not loaded', { loaded: false }, false],
    ['on a backend that cannot unload', { canUnload: false }, false],
    ['remote, idle per the backend too', { local: false, backendIdleS: 90 }, true],
    ['remote, recently used by another client', { local: false, backendIdleS: 10 }, false],
  ])('a model %s → evict=%s', (_name, overrides, evicted) => {
    expect(selectIdle(NOW, [model(overrides)]).length).toBe(evicted ? 1 : 0);
  });

  it('explains why a model stays', () => {
    expect(keepReason(NOW, model({ inFlight: 1 }))).toBe('busy');
    expect(keepReason(NOW, model({ pinned: true }))).toBe('pinned');
    expect(keepReason(NOW, model({ thresholdS: 0 }))).toBe('disabled');
    expect(keepReason(NOW, model({ lastActivityMs: NOW - 1000 }))).toBe('recent');
  });
});

describe(unloadsInS.name, () => {
  it('counts down to the threshold', () => {
    expect(unloadsInS(NOW, model({ lastActivityMs: NOW - 45_000 }))).toBe(15);
  });
  it('is null when pinned, disabled or in flight', () => {
    expect(unloadsInS(NOW, model({ pinned: true }))).toBeNull();
    expect(unloadsInS(NOW, model({ thresholdS: 0 }))).toBeNull();
    expect(unloadsInS(NOW, model({ inFlight: 1 }))).toBeNull();
  });
});

describe(planLoad.name, () => {
  const limits = (maxLoadedModels: number, memoryBudgetMb: number) => ({
    maxLoadedModels,
    memoryBudgetBytes: memoryBudgetMb * MB,
  });

  it('evicts nothing when unlimited', () => {
    const plan = planLoad(NOW, { id: 'new', sizeBytes: 500 * MB }, [model({ id: 'a' })], limits(0, 0));
    expect(plan).toMatchObject({ fits: true, evict: [] });
  });

  it('evicts least-recently-used first to respect max_loaded_models', () => {
    const models = [
      model({ id: 'newest', lastActivityMs: NOW - 1_000 }),
      model({ id: 'oldest', lastActivityMs: NOW - 90_000 }),
      model({ id: 'middle', lastActivityMs: NOW - 30_000 }),
    ];
    const plan = planLoad(NOW, { id: 'x', sizeBytes: 1 * MB }, models, limits(2, 0));
    expect(plan.fits).toBe(true);
    expect(plan.evict).toEqual(['oldest', 'middle']);
  });

  it('evicts by memory until the new model fits', () => {
    const models = [model({ id: 'a', lastActivityMs: NOW - 50_000 }), model({ id: 'b', lastActivityMs: NOW - 10_000 })];
    const plan = planLoad(NOW, { id: 'x', sizeBytes: 150 * MB }, models, limits(0, 300));
    expect(plan.evict).toEqual(['a']);
    expect(plan.fits).toBe(true);
  });

  it('never evicts pinned or busy models and says why it cannot fit', () => {
    const models = [model({ id: 'p', pinned: true }), model({ id: 'busy', inFlight: 1 })];
    const plan = planLoad(NOW, { id: 'x', sizeBytes: 1 * MB }, models, limits(2, 0));
    expect(plan.fits).toBe(false);
    expect(plan.evict).toEqual([]);
    expect(plan.reason).toMatch(/max_loaded_models=2.*1 busy, 1 pinned/);
    expect(plan.candidates.map((c) => [c.id, c.reason])).toEqual(
      expect.arrayContaining([
        ['p', 'pinned'],
        ['busy', 'busy'],
      ]),
    );
  });

  it('ignores remote models (they do not use this host memory)', () => {
    const plan = planLoad(NOW, { id: 'x', sizeBytes: 1 * MB }, [model({ id: 'remote', local: false })], limits(1, 0));
    expect(plan).toMatchObject({ fits: true, evict: [] });
  });

  it('needs nothing for a model that is already loaded', () => {
    const plan = planLoad(
      NOW,
      { id: 'a', sizeBytes: 100 * MB },
      [model({ id: 'a' }), model({ id: 'b' })],
      limits(1, 0),
    );
    expect(plan).toMatchObject({ fits: true, evict: [] });
  });
});
