/**
 * The real llama-server's answers for every case the fake simulates, against the fixtures in
 * test/fixtures/llama-server: with CAPTURE=1 the files are rewritten from the binary; otherwise a
 * different shape (status, keys, kinds, error type/code/message) fails, so a new binary shows its drift.
 */
import {
  type Captured,
  exchange,
  LOAD_FAILED,
  LOADING,
  readFixture,
  ROUTER,
  routerEntry,
  shapeOf,
  SINGLE,
  writeFixture,
} from '../fixtures/llama-server/exchanges.js';
import { dirname } from 'node:path';
import {
  LLAMA_SERVER_BIN,
  type Peer,
  type PeerModels,
  peerModels,
  startLlamaServer,
  until,
} from './support/llama-server-peer.js';

const CAPTURE = process.env.CAPTURE === '1';

let models: PeerModels;
const peers: Peer[] = [];

beforeAll(async () => {
  models = await peerModels();
});
afterAll(() => models.remove());
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop('SIGKILL')));
});

async function server(args: string[], opts?: Parameters<typeof startLlamaServer>[1]): Promise<Peer> {
  const peer = await startLlamaServer(args, opts);
  peers.push(peer);
  return peer;
}

/** Machine paths in the answers (binary, model folders, checkout) become neutral names in the files. */
function scrub(live: Captured): Captured {
  const text = JSON.stringify(live)
    .split(LLAMA_SERVER_BIN)
    .join('llama-server')
    .split(dirname(models.routerDir))
    .join('/models')
    .split(process.cwd())
    .join('.');
  return JSON.parse(text) as Captured;
}

/** Writes the fixture (CAPTURE=1) or checks the live answer has the captured shape. */
function record(name: string, live: Captured): void {
  if (CAPTURE) {
    writeFixture(name, scrub(live));
    return;
  }
  const fixture = readFixture(name);
  expect({ name, status: live.status }).toEqual({ name, status: fixture.status });
  expect(shapeOf(live.body)).toEqual(shapeOf(fixture.body));
}

it('single-model mode: health, props, models, chat (plain and streamed), context overflow', async () => {
  const peer = await server(['-m', models.chat]);
  for (const ex of SINGLE) record(ex.name, await exchange(peer.url, ex));
});

it('single-model mode while loading: 503 Loading model', async () => {
  // The load lasts a fraction of a second (huge context): restart until the first answer lands inside it.
  for (let attempt = 1; attempt <= 10; attempt++) {
    const peer = await server(['-m', models.chat, '-c', '262144'], { waitFor: 'answering' });
    const live = await exchange(peer.url, LOADING[0]!);
    await peer.stop('SIGKILL');
    if (live.status === 503) {
      record(LOADING[0]!.name, live);
      return;
    }
  }
  throw new Error('no answer landed inside the load in 10 restarts');
});

it('router mode: props, models, refusals', async () => {
  const peer = await server(['--models-dir', models.routerDir, '--no-models-autoload']);
  for (const ex of ROUTER) record(ex.name, await exchange(peer.url, ex));
});

it('router mode: a load whose child exits, reported failed with its exit code', async () => {
  const load = { name: LOAD_FAILED, method: 'POST', path: '/models/load', body: { model: 'broken' } } as const;
  const list = { name: LOAD_FAILED, method: 'GET', path: '/models' } as const;
  // Now and then the real router loses the exited child and reports `loading` for ever (docs/real-servers.md):
  // a fresh router then.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const peer = await server(['--models-dir', models.routerDir, '--no-models-autoload']);
    expect((await exchange(peer.url, load)).status).toBe(200);
    let failed: Captured | null = null;
    const reported = await until(
      async () => {
        const live = await exchange(peer.url, list);
        const entry = routerEntry(live.body, 'broken') as { status: { failed?: boolean } } | null;
        if (entry?.status.failed) failed = { ...live, body: entry };
        return failed !== null;
      },
      'the router to report the failed load',
      15_000,
    ).then(
      () => true,
      () => false,
    );
    if (reported) {
      record(LOAD_FAILED, failed!);
      return;
    }
    await peer.stop('SIGKILL');
  }
  throw new Error('the router lost the failed child in 3 routers out of 3');
}, 120_000);
