/**
 * The fake llama-server against what the real one answered (test/fixtures/llama-server, captured by
 * test/peers/llama-server.fixtures.peer-spec.ts): the same requests, and the fake may not say anything the
 * real server does not (an invented key, another kind of value, another status, error type or message).
 */
import {
  type Captured,
  disagreements,
  exchange,
  LOAD_FAILED,
  LOADING,
  readFixture,
  ROUTER,
  routerEntry,
  shapeOf,
  SINGLE,
} from '../../fixtures/llama-server/exchanges.js';
import { type FakeLlamaServer, startFakeLlamaServer } from '../../support/fakes/llama-server.fake.js';
import { waitFor } from '../../support/wait-for.js';

const fakes: FakeLlamaServer[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(opts: Parameters<typeof startFakeLlamaServer>[0]): Promise<FakeLlamaServer> {
  const started = await startFakeLlamaServer(opts);
  fakes.push(started);
  return started;
}

function expectAsCaptured(name: string, live: Captured): void {
  const real = readFixture(name);
  expect({ name, status: live.status }).toEqual({ name, status: real.status });
  expect(disagreements(shapeOf(real.body), shapeOf(live.body))).toEqual([]);
}

// The generated chat model: 512-token context; the reply longer than max_tokens, as the random model's is.
const TINY = { model: 'tiny-chat.gguf', contextSize: 512, reply: 'one two three four five six' };

it.each(SINGLE.map((ex) => [ex.name, ex] as const))('single-model mode, %s', async (_name, ex) => {
  const server = await fake(TINY);
  expectAsCaptured(ex.name, await exchange(server.url, ex));
});

it('single-model mode while loading: 503 Loading model', async () => {
  const server = await fake({ ...TINY, loading: true });
  expectAsCaptured(LOADING[0]!.name, await exchange(server.url, LOADING[0]!));
});

it.each(ROUTER.map((ex) => [ex.name, ex] as const))('router mode, %s', async (_name, ex) => {
  const server = await fake({
    mode: 'router',
    autoload: false,
    models: { broken: 'unloaded', 'tiny-chat': 'unloaded' },
  });
  expectAsCaptured(ex.name, await exchange(server.url, ex));
});

it('router mode, a load whose child exits: the entry reports failed with the exit code', async () => {
  const server = await fake({
    mode: 'router',
    autoload: false,
    models: { broken: 'unloaded', 'tiny-chat': 'unloaded' },
  });
  server.failNextLoad();
  const load = await exchange(server.url, {
    name: LOAD_FAILED,
    method: 'POST',
    path: '/models/load',
    body: { model: 'broken' },
  });
  expect(load.status).toBe(200);
  let entry: unknown = null;
  await waitFor(async () => {
    const live = await exchange(server.url, { name: LOAD_FAILED, method: 'GET', path: '/models' });
    entry = routerEntry(live.body, 'broken');
    return (entry as { status: { failed?: boolean } }).status.failed === true;
  }, 'the fake router to report the failed load');
  expectAsCaptured(LOAD_FAILED, { request: load.request, status: 200, body: entry });
});
