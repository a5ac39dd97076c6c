/**
 * One truth, reproduction 6 as filed: with 20 in-process models, an onnx-image pipeline among them, a read
 * (GET /health, /api/models, /api/models/loaded, /metrics) rebuilds no catalog and touches no model file.
 * Before, one GET /health rebuilt the catalog 81 times and walked the ONNX pipeline folder 5 times with
 * synchronous file calls.
 *
 * `node:fs` and `node:fs/promises` are the real modules with their path-taking calls counted, so the test
 * sees every stat, folder walk and read of the models' files whichever module makes it, without depending
 * on which helper the provider uses. It lives in its own file because the mock has to be in place before
 * the app is imported.
 */
import { jest } from '@jest/globals';
import type * as FsModule from 'node:fs';
import type * as FsPromisesModule from 'node:fs/promises';
import { TEST_MODELS_DIR } from '../support/test-paths.js';

/** Paths under the test models folder that a counted fs call named, in order. */
const touched: string[] = [];

/** The calls that stat, list, open or read a path given as their first argument. */
const PATH_CALLS = [
  'existsSync',
  'statSync',
  'lstatSync',
  'readdirSync',
  'opendirSync',
  'readFileSync',
  'openSync',
  'accessSync',
  'realpathSync',
  'stat',
  'lstat',
  'readdir',
  'opendir',
  'readFile',
  'open',
  'access',
  'realpath',
  'createReadStream',
] as const;

function counting<T extends object>(actual: T): T {
  const out: Record<string, unknown> = { ...(actual as Record<string, unknown>) };
  for (const name of PATH_CALLS) {
    const real = (actual as Record<string, unknown>)[name];
    if (typeof real !== 'function') continue;
    out[name] = function (this: unknown, ...args: unknown[]) {
      const path = args[0] instanceof URL ? args[0].pathname : args[0];
      if (typeof path === 'string' && path.startsWith(TEST_MODELS_DIR)) touched.push(`${name} ${path}`);
      return (real as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  return out as T;
}

jest.unstable_mockModule('node:fs', () => {
  const actual = jest.requireActual<typeof FsModule>('node:fs');
  const fs = counting(actual);
  return { ...fs, default: fs };
});
jest.unstable_mockModule('node:fs/promises', () => {
  const actual = jest.requireActual<typeof FsPromisesModule>('node:fs/promises');
  const fs = counting(actual);
  return { ...fs, default: fs };
});

const { BackendStartupService } = await import('../../src/models/backend-startup.service.js');
const { ProviderRegistry } = await import('../../src/providers/provider-registry.service.js');
const { getJson, postJson, startApp } = await import('../support/app-harness.js');
const { ensureImageTestModels } = await import('../support/image-test-models.js');
const { ensureLlmTestModels } = await import('../support/llm-test-models.js');
const { expectViewsAgree, readViews } = await import('../support/views.js');

const GGUF_MODELS = 18;

describe('one truth: reads rebuild nothing and touch no model file', () => {
  let running: Awaited<ReturnType<typeof startApp>>;

  beforeAll(async () => {
    const [llm, image] = await Promise.all([ensureLlmTestModels(), ensureImageTestModels()]);
    running = await startApp({
      eviction: { idle_unload_s: 900, check_interval_s: 3600 },
      backends: [
        {
          name: 'local',
          type: 'llama-cpp',
          models: Array.from({ length: GGUF_MODELS }, (_, i) => ({ id: `m${i}`, path: llm.chat })),
        },
        {
          name: 'image',
          type: 'onnx-image',
          models: [
            { id: 'tiny-lcm', path: image.lcm },
            { id: 'tiny-euler', path: image.euler },
          ],
        },
      ],
    });
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(() => running?.close());

  it('6: 20 in-process models incl. an ONNX pipeline: /health, the lists and /metrics call no descriptors() and no file stat or folder walk', async () => {
    // The catalog index was built at start-up, and that did walk the pipeline folders: the counter sees it.
    expect(touched.some((t) => t.startsWith('readdirSync ') && t.includes('tiny-lcm'))).toBe(true);
    // One model of each kind is resident, so the reads have loaded entries to project too.
    const image = await postJson(`${running.url}/v1/images/generations`, {
      model: 'tiny-lcm',
      prompt: 'a fox',
      size: '64x64',
      steps: 1,
    });
    expect(image.status).toBe(200);
    const chat = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'm3',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    });
    expect(chat.status).toBe(200);
    const views = await readViews(running.url);
    expectViewsAgree(views);
    expect(views.catalog.size).toBe(GGUF_MODELS + 2);
    expect([...views.loaded].sort()).toEqual(['m3', 'tiny-lcm']);

    const spies = running.app
      .get(ProviderRegistry)
      .all()
      .map(({ backend, provider }) => ({ backend: backend.name, spy: jest.spyOn(provider, 'descriptors') }));
    touched.length = 0;
    try {
      for (let i = 0; i < 20; i++) {
        for (const path of ['/health', '/api/models', '/api/models/loaded']) {
          expect((await getJson(`${running.url}${path}`)).status).toBe(200);
        }
        expect((await fetch(`${running.url}/metrics`)).status).toBe(200);
      }
      expect(spies.map(({ backend, spy }) => ({ backend, calls: spy.mock.calls.length }))).toEqual([
        { backend: 'local', calls: 0 },
        { backend: 'image', calls: 0 },
      ]);
      expect(touched).toEqual([]);
    } finally {
      for (const { spy } of spies) spy.mockRestore();
    }
  });
});
