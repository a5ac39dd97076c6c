import { SystemClock } from '../../../src/common/clock.js';
import { UpstreamError, UpstreamTimeoutError } from '../../../src/common/errors.js';
import { OpenAiProvider } from '../../../src/providers/remote/openai.provider.js';
import { UpstreamUnavailableError } from '../../../src/providers/remote/upstream-errors.js';
import { RknnSdProvider } from '../../../src/providers/remote/rknn-sd.provider.js';
import {
  closedPortUrl,
  type PathologicalServer,
  startHtmlErrorServer,
  startHungServer,
} from '../../support/fakes/pathological.js';
import { remoteBackend } from './backend.js';

const chat = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };

describe('upstream failures map to the error envelope, request-scoped', () => {
  let server: PathologicalServer | undefined;
  let provider: OpenAiProvider | RknnSdProvider | undefined;
  afterEach(async () => {
    await provider?.dispose();
    await server?.close();
    server = undefined;
  });

  it('a server that never answers gives 504 upstream_timeout within the request timeout', async () => {
    server = await startHungServer();
    provider = new OpenAiProvider(remoteBackend('openai', server.url, { requestTimeoutMs: 200 }), new SystemClock());
    const started = Date.now();
    const err = await provider.chatCompletion('m', chat, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamTimeoutError);
    expect(err).toMatchObject({ status: 504, code: 'upstream_timeout' });
    // At the 200 ms request timeout, not a hang: the bound leaves a busy machine plenty of room.
    expect(Date.now() - started).toBeLessThan(200 + 10_000);
  });

  it('a hung server also bounds a stream that never starts', async () => {
    server = await startHungServer();
    const streaming = new OpenAiProvider(
      remoteBackend('openai', server.url, { requestTimeoutMs: 150 }),
      new SystemClock(),
    );
    provider = streaming;
    const consume = async (): Promise<void> => {
      for await (const _ of streaming.chatCompletionStream('m', chat, new AbortController().signal)) void _;
    };
    await expect(consume()).rejects.toMatchObject({ status: 504 });
  });

  it('an HTML 500 page gives 502 upstream_error with the upstream status and the page title', async () => {
    server = await startHtmlErrorServer(500);
    provider = new RknnSdProvider(remoteBackend('rknn-sd', server.url), new SystemClock());
    const err = await provider
      .generateImages('x', { model: 'x', prompt: 'p' }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ status: 502, code: 'upstream_error', details: { upstream_status: 500 } });
    expect((err as Error).message).toContain('HTTP 500: 500 Internal Server Error');
    expect((err as Error).message).not.toContain('<');
  });

  it('a closed port gives 503 backend_unavailable with Retry-After, saying the connection was refused', async () => {
    provider = new OpenAiProvider(remoteBackend('openai', await closedPortUrl()), new SystemClock());
    const err = await provider.chatCompletion('m', chat, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect(err).toMatchObject({ status: 503, code: 'backend_unavailable', headers: { 'retry-after': '1' } });
    expect((err as Error).message).toContain('connection refused');
  });
});
