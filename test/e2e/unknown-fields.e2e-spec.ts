/**
 * Issue 16: fields of an OpenAI request that we do not declare are carried as they came, never walked by
 * validation (class-transformer used to copy every nested value before dropping it), and reach a remote
 * OpenAI-compatible backend unchanged.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fakes/index.js';

const NO_BACKGROUND = 3_600_000;

/** An object nested `levels` deep: {"d":{"d":...{"leaf":true}}}. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < levels; i++) value = { d: value };
  return value;
}

describe('unknown request fields are passed through opaque', () => {
  let upstream: FakeOpenAi;
  let running: RunningApp;

  beforeAll(async () => {
    upstream = await startFakeOpenAi({ models: ['Qwen/Qwen2.5-0.5B-Instruct'], reply: 'Hello from vllm' });
    running = await startApp(
      {
        backends: [
          {
            name: 'vllm',
            type: 'openai',
            url: upstream.url,
            probe_interval_ms: NO_BACKGROUND,
            models: [{ id: 'vllm-chat', upstream: 'Qwen/Qwen2.5-0.5B-Instruct' }],
          },
        ],
      },
      { clock: new FakeClock() },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await upstream.close();
  });

  it('a wide and deep unknown field is answered normally, liveness answering, and forwarded unchanged', async () => {
    const wide: Record<string, string> = {};
    for (let i = 0; i < 9_000; i++) wide[`key_${i}`] = `value ${i}`;
    // Within the default bounds (10,000 keys, 64 levels): what a client may legitimately send.
    const vendor = { wide, deep: nested(55), list: [1, 'two', null, { three: [3] }] };
    const live: number[] = [];
    let stop = false;
    const pinger = (async () => {
      while (!stop) {
        live.push((await fetch(`${running.url}/health/live`)).status);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'vllm-chat',
      messages: [{ role: 'user', content: 'hello' }],
      temperature: 0.2,
      vendor_extension: vendor,
      user: 'u-42',
    });
    stop = true;
    await pinger;

    expect(res.status).toBe(200);
    expect(res.body.choices[0].message.content).toBe('Hello from vllm');
    expect(res.body.model).toBe('vllm-chat');
    expect(live.length).toBeGreaterThan(0);
    expect(live.every((s) => s === 200)).toBe(true);

    const sent = upstream.requestsTo('POST /v1/chat/completions').at(-1)?.body as Record<string, unknown>;
    expect(sent.model).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(sent.temperature).toBe(0.2);
    expect(sent.user).toBe('u-42');
    expect(sent.vendor_extension).toEqual(vendor);
  });

  it('a declared field is still validated next to an unknown one, in the envelope', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'vllm-chat',
      messages: [{ role: 'user', content: 'hello' }],
      temperature: 'hot',
      vendor_extension: nested(40),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(JSON.stringify(res.body.error)).toContain('temperature');
    expect(JSON.stringify(res.body.error)).not.toContain('vendor_extension');
    expect((await getJson(`${running.url}/health/live`)).status).toBe(200);
  });
});
