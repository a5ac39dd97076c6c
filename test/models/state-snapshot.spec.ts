/** The snapshot every view projects: queue counts come from the runtime's own counters, for loaded models only. */
import { configFrom } from '../support/config.js';
import { ControllableProvider } from '../support/controllable-provider.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore } from '../support/model-core.js';

class QueueingProvider extends ControllableProvider {
  waiting = 0;
  queueStats(): { active: number; queued: number } {
    return { active: 1, queued: this.waiting };
  }
}

describe('state snapshot', () => {
  it('shows how many requests wait for a sequence, in /health, the loaded list and the catalog alike', async () => {
    const config = configFrom({
      backends: [{ name: 'local', type: 'llama-cpp', models: [{ id: 'a', path: 'a.gguf' }] }],
    });
    const provider = new QueueingProvider('local', ['a']);
    const core = buildModelCore(config, [provider], new FakeClock());
    provider.waiting = 2;
    expect(core.models.healthModels().a).toMatchObject({ state: 'unloaded', queued: 0 });

    const lease = await core.lifecycle.acquire('a');
    const snapshot = core.models.snapshot();
    expect(core.models.healthModels(snapshot).a).toMatchObject({ state: 'loaded', in_flight: 1, queued: 2 });
    expect(core.models.loaded(snapshot).loaded[0]).toMatchObject({ name: 'a', in_flight: 1, queued: 2 });
    expect(core.models.catalog(snapshot).models[0]).toMatchObject({ id: 'a', queued: 2 });
    lease.release();
  });
});
