/**
 * Issue 16 item 11: a bounded, seeded fuzz run over every POST route, fast enough for `npm test`
 * (`npm run bench fuzz` runs a larger one). Routes reach a real app with a fake OpenAI-compatible backend
 * and the tiny in-process image model.
 */
import { startFakeOpenAi, type FakeOpenAi } from '../support/fakes/openai.fake.js';
import { runFuzz } from '../support/fuzz.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { getJson, startApp, type RunningApp } from '../support/app-harness.js';
import { waitFor } from '../support/wait-for.js';

describe('seeded fuzz over every POST route', () => {
  let upstream: FakeOpenAi;
  let running: RunningApp;
  beforeAll(async () => {
    await ensureImageTestModels();
    upstream = await startFakeOpenAi({ models: ['fuzz-chat'] });
    running = await startApp({
      limits: { image_queue: 2, image_max_work: 64 * 64 * 2 },
      backends: [
        { name: 'remote', type: 'openai', url: upstream.url, models: [{ id: 'fuzz-chat' }] },
        { name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] },
      ],
    });
    await waitFor(async () => (await getJson(`${running.url}/health/ready`)).status === 200, 'the app to be ready');
  });
  afterAll(async () => {
    await running.close();
    await upstream.close();
  });

  it('300 cases: no undocumented 5xx, the envelope on every error, no slow answer, liveness throughout', async () => {
    const report = await runFuzz(running.url, {
      seed: 16,
      cases: 300,
      concurrency: 4,
      // Generous: a busy 2-core machine; the findings were 115 s, 160 s and "never".
      slowMs: 10_000,
      models: { chat: 'fuzz-chat', image: 'tiny-lcm' },
    });
    expect(report.failures).toEqual([]);
    expect(report.livePings).toBeGreaterThan(0);
    // The fuzzer reached past validation too, not only 400s.
    expect(Object.keys(report.statuses).length).toBeGreaterThan(2);
  }, 120_000);
});
