import { aggregateReadiness, finalReadiness, Readiness } from '../../src/backend-state/readiness.js';

const { Initializing, Ready, Degraded, Unavailable } = Readiness;

describe(aggregateReadiness.name, () => {
  it.each<[string, Readiness[], Readiness]>([
    ['no backends', [], Ready],
    ['all ready', [Ready, Ready], Ready],
    ['one still initializing', [Ready, Initializing], Initializing],
    ['initializing wins over unavailable', [Unavailable, Initializing], Initializing],
    ['one degraded', [Ready, Degraded], Degraded],
    ['one unavailable, one ready', [Ready, Unavailable], Degraded],
    ['all unavailable', [Unavailable, Unavailable], Unavailable],
    ['only degraded', [Degraded], Degraded],
  ])('%s', (_name, input, expected) => {
    expect(aggregateReadiness(input)).toBe(expected);
  });
});

describe(finalReadiness.name, () => {
  it('is ready with no preloads', () => {
    expect(finalReadiness({ initError: null, preloadFailures: [], preloadCount: 0 })).toEqual({
      readiness: Ready,
      reason: null,
    });
  });

  it('is ready when every preload succeeded', () => {
    expect(finalReadiness({ initError: null, preloadFailures: [], preloadCount: 2 }).readiness).toBe(Ready);
  });

  it('is degraded naming the failed ids when some preloads failed', () => {
    const result = finalReadiness({
      initError: null,
      preloadFailures: [{ id: 'm2', reason: 'ENOENT' }],
      preloadCount: 2,
    });
    expect(result.readiness).toBe(Degraded);
    expect(result.reason).toContain('m2');
    expect(result.reason).toContain('ENOENT');
  });

  it('is unavailable when all preloads failed', () => {
    const result = finalReadiness({
      initError: null,
      preloadFailures: [
        { id: 'a', reason: 'x' },
        { id: 'b', reason: 'y' },
      ],
      preloadCount: 2,
    });
    expect(result.readiness).toBe(Unavailable);
    expect(result.reason).toMatch(/a .*b/);
  });

  it('keeps the init failure reason over preload outcomes', () => {
    const result = finalReadiness({ initError: 'binding failed', preloadFailures: [], preloadCount: 1 });
    expect(result).toEqual({ readiness: Unavailable, reason: 'binding failed' });
  });
});
