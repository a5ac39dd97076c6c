/**
 * A llama-server backend (the fake, which answers what the real one does) seen from a client: how a
 * proxied stream ends when the server goes silent or becomes unavailable in the middle of it, and which
 * OpenAI fields reach the server.
 */
import { getJson, observeNow, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { type FakeLlamaServer, startFakeLlamaServer } from '../support/fakes/index.js';

const NO_BACKGROUND = 3_600_000;
/** Short, so the silent stream below is cut quickly; the whole-request bound is far away. */
const STREAM_IDLE_MS = 150;
const REQUEST_TIMEOUT_MS = 600_000;

let llama: FakeLlamaServer;
let running: RunningApp;

beforeAll(async () => {
  llama = await startFakeLlamaServer({ model: 'qwen.gguf', reply: 'one two three four five six seven eight' });
  running = await startApp(
    {
      backends: [
        {
          name: 'llama',
          type: 'llama-server',
          url: llama.url,
          probe_interval_ms: NO_BACKGROUND,
          request_timeout_ms: REQUEST_TIMEOUT_MS,
          stream_idle_timeout_ms: STREAM_IDLE_MS,
          models: [{ id: 'qwen', upstream: 'qwen.gguf' }],
        },
      ],
    },
    { clock: new FakeClock() },
  );
  await observeNow(running);
});

afterAll(async () => {
  await running.close();
  await llama.close();
});

afterEach(() => {
  llama.wire.chunkDelayMs = 0;
  llama.setLoading(false);
});

/** Opens a streamed chat; resolves once the answer's headers are in (modelplane has the first chunk). */
async function openStream(): Promise<{ status: number; rest: () => Promise<string> }> {
  const res = await fetch(`${running.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }], stream: true }),
  });
  return { status: res.status, rest: () => res.text() };
}

/** The `error` objects of a stream's `data:` events. */
function errorEvents(text: string): { code: string; message: string }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice('data: '.length)) as { error?: { code: string; message: string } })
    .flatMap((e) => (e.error ? [e.error] : []));
}

describe('a proxied llama-server stream', () => {
  it('silent between chunks for longer than stream_idle_timeout_ms: an upstream_timeout event naming that bound, no [DONE]', async () => {
    // The first chunk comes at once, the next one only after far more than the idle bound.
    llama.wire.chunkDelayMs = 5_000;
    const stream = await openStream();
    expect(stream.status).toBe(200);
    const text = await stream.rest();
    expect(errorEvents(text)).toEqual([
      expect.objectContaining({ code: 'upstream_timeout', message: expect.stringContaining(`${STREAM_IDLE_MS} ms`) }),
    ]);
    expect(text).not.toContain(`${REQUEST_TIMEOUT_MS}`);
    expect(text).not.toContain('[DONE]');
  });

  it('whose backend becomes unavailable mid-stream: a backend_unavailable event, no [DONE]', async () => {
    // Slow enough that the stream is still running when the probe below finds the server loading again.
    llama.wire.chunkDelayMs = 1_000;
    const stream = await openStream();
    expect(stream.status).toBe(200);
    llama.setLoading(true);
    await observeNow(running);
    expect((await getJson(`${running.url}/health`)).body.backends.llama).toMatchObject({
      readiness: 'unavailable',
      reason: 'loading model',
    });
    const text = await stream.rest();
    expect(errorEvents(text)).toEqual([expect.objectContaining({ code: 'backend_unavailable' })]);
    expect(text).not.toContain('[DONE]');
    // The server's stream was dropped, not read to its end.
    expect(text).not.toContain('eight');
  });
});

describe('OpenAI fields sent to a llama-server backend', () => {
  it('tools, tool_choice, sampling penalties and tool-call messages reach the server as sent', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        // As OpenAI clients send a turn that only called tools; modelplane itself reads it as empty text.
        content: null,
        // A per-message field modelplane does not model (here llama.cpp's reasoning text).
        reasoning_content: 'The user wants the weather.',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c":21}' },
    ];
    const fields = {
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      top_k: 7,
      min_p: 0.05,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      repeat_penalty: 1.1,
    };
    const before = llama.requestsTo('POST /v1/chat/completions').length;
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen', messages, ...fields }),
    });
    expect(res.status).toBe(200);
    const sent = llama.requestsTo('POST /v1/chat/completions');
    expect(sent).toHaveLength(before + 1);
    const body = sent.at(-1)!.body as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'qwen.gguf', ...fields });
    expect(body.messages).toEqual(messages);
  });
});
