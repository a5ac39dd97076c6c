/**
 * A real Prometheus server scrapes /metrics after a chat, an image, an idle eviction and an admin unload, and
 * every metric family docs/operations.md lists is queryable with its labels and plausible values; the PromQL
 * queries that page recommends evaluate. metrics.e2e-spec.ts checks the exposition text itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';
import {
  requirePrometheusBinary,
  startPrometheus,
  type PromSeries,
  type PrometheusServer,
} from '../support/prometheus-server.js';
import { waitFor } from '../support/wait-for.js';

const ADMIN = 'prometheus-admin-token';
const JOB = 'modelplane';

/**
 * The queries of docs/operations.md "Useful queries", read from the page itself so the test follows the docs:
 * the first ```promql block, one query per paragraph, comment lines dropped.
 */
function documentedQueries(): string[] {
  const doc = readFileSync(join(process.cwd(), 'docs', 'operations.md'), 'utf8');
  const block = /```promql\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!block) throw new Error('docs/operations.md has no ```promql block');
  return block
    .split(/\n\s*\n/)
    .map((paragraph) =>
      paragraph
        .split('\n')
        .filter((line) => !line.trim().startsWith('#'))
        .join('\n')
        .trim(),
    )
    .filter((query) => query.length > 0);
}

describe('a real Prometheus scrapes /metrics after a chat, an image and evictions', () => {
  let running: RunningApp | undefined;
  let prometheus: PrometheusServer | undefined;
  const clock = new FakeClock();

  /** Series of `selector` from this job's target, with the instance's labels left out of the comparison. */
  const series = async (selector: string): Promise<PromSeries[]> => {
    const found = await prometheus!.query(selector);
    for (const s of found) expect(s.metric).toMatchObject({ job: JOB });
    return found;
  };
  /** The single value of a selector that names one series exactly. */
  const one = async (selector: string): Promise<number> => {
    const found = await series(selector);
    expect({ selector, series: found.length }).toEqual({ selector, series: 1 });
    return found[0]!.value;
  };

  beforeAll(async () => {
    // Before the models load: a missing server fails the suite at once, with what to install.
    requirePrometheusBinary();
    await ensureLlmTestModels();
    await ensureImageTestModels();
    running = await startApp(
      {
        server: { admin_token: ADMIN },
        // The sweeper's own timer never fires here: the test ticks it after moving the clock.
        eviction: { idle_unload_s: 30, check_interval_s: 3600 },
        backends: [
          { name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'chat', path: TINY_CHAT_GGUF }] },
          { name: 'img', type: 'onnx-image', models: [{ id: 'lcm', path: TINY_LCM_DIR }] },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    const chat = async (): Promise<void> => {
      const res = await postJson(`${running!.url}/v1/chat/completions`, {
        model: 'chat',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
      });
      expect(res.status).toBe(200);
    };

    await chat();
    // Idle past idle_unload_s: the sweep unloads the chat model as reason="idle".
    clock.advance(30_000);
    expect(await running.app.get(EvictionService).tick()).toEqual([
      expect.objectContaining({ model: 'chat', was_loaded: true, reason_code: 'idle' }),
    ]);
    const image = await postJson(`${running.url}/v1/images/generations`, {
      model: 'lcm',
      prompt: 'a red square',
      size: '64x64',
    });
    expect(image.status).toBe(200);
    // The chat model loads again and an operator unloads it: reason="admin". The image model stays loaded.
    await chat();
    const unload = await postJson(`${running.url}/api/models/chat/unload`, {}, { authorization: `Bearer ${ADMIN}` });
    expect(unload.status).toBe(200);

    prometheus = await startPrometheus(new URL(running.url).host, JOB);
    await waitFor(
      async () => (await prometheus!.target())?.health === 'up',
      `Prometheus to scrape ${running.url}/metrics successfully`,
      { timeoutMs: 30_000 },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await prometheus!.target())}\n${prometheus!.log()}`);
    });
    // Two scrapes stored: rate() and increase() in the documented queries have two points to work with.
    await waitFor(
      async () => (await prometheus!.query(`count_over_time(up{job="${JOB}"}[5m]) >= 2`)).length === 1,
      'a second scrape',
      { timeoutMs: 30_000 },
    );
  });

  afterAll(async () => {
    // Both run even when the other fails or never started; stop() also removes the TSDB directory.
    await Promise.allSettled([prometheus?.stop(), running?.close()]);
  });

  it('scrapes the target as up', async () => {
    expect(await one(`up{job="${JOB}"}`)).toBe(1);
  });

  it('stores the HTTP latency histogram by route template, method and status', async () => {
    const chats = await one(
      `modelplane_http_request_duration_seconds_bucket{route="/v1/chat/completions",method="POST",status="200",le="+Inf"}`,
    );
    expect(chats).toBe(2);
    expect(
      await one(
        `modelplane_http_request_duration_seconds_bucket{route="/api/models/:id/unload",method="POST",status="200",le="+Inf"}`,
      ),
    ).toBe(1);
    // The histogram's buckets are cumulative: the smallest one never holds more than +Inf.
    const buckets = await series(
      `modelplane_http_request_duration_seconds_bucket{route="/v1/chat/completions",method="POST",status="200"}`,
    );
    expect(buckets.length).toBeGreaterThan(2);
    for (const b of buckets) expect(b.value).toBeLessThanOrEqual(chats);
  });

  it('stores time to first token per model and model load durations', async () => {
    expect(await one('modelplane_time_to_first_token_seconds_bucket{model="chat",le="+Inf"}')).toBe(2);
    expect(await one('modelplane_time_to_first_token_seconds_count{model="chat"}')).toBe(2);
    expect(await series('modelplane_time_to_first_token_seconds_bucket{model="lcm"}')).toEqual([]);
    // chat loaded twice (before and after its idle eviction), lcm once.
    expect(await one('modelplane_model_load_duration_seconds_bucket{model="chat",le="+Inf"}')).toBe(2);
    expect(await one('modelplane_model_load_duration_seconds_bucket{model="lcm",le="+Inf"}')).toBe(1);
    expect(await one('modelplane_model_load_duration_seconds_count{model="lcm"}')).toBe(1);
  });

  it('stores backend probe durations by backend and result', async () => {
    // Local backends are probed too, so no remote backend is needed for this family.
    expect(
      await one('modelplane_backend_probe_duration_seconds_bucket{backend="llm",result="ok",le="+Inf"}'),
    ).toBeGreaterThan(0);
    expect(await series('modelplane_backend_probe_duration_seconds_bucket{result="error"}')).toEqual([]);
  });

  it('counts tokens and requests per model and operation', async () => {
    expect(await one('modelplane_tokens_total{model="chat",kind="completion"}')).toBeGreaterThan(0);
    expect(await one('modelplane_tokens_total{model="chat",kind="prompt"}')).toBeGreaterThan(0);
    expect(await one('modelplane_requests_total{model="chat",operation="chatCompletion",outcome="ok"}')).toBe(2);
    expect(await one('modelplane_requests_total{model="lcm",operation="generateImages",outcome="ok"}')).toBe(1);
    expect(await series('modelplane_requests_total{outcome!="ok"}')).toEqual([]);
  });

  it('counts evictions by reason, every reason a series', async () => {
    const byReason = Object.fromEntries(
      (await series('modelplane_evictions_total')).map((s) => [s.metric.reason, s.value]),
    );
    expect(byReason).toEqual({ idle: 1, admin: 1, budget: 0, shutdown: 0, other: 0 });
  });

  it('stores readiness, loaded and state gauges as /api/models shows them', async () => {
    expect(await one('modelplane_readiness{readiness="ready"}')).toBe(1);
    expect(await one('sum by (job) (modelplane_readiness)')).toBe(1);
    expect(await one('modelplane_backend_readiness{backend="llm",readiness="ready"}')).toBe(1);
    expect(await one('modelplane_backend_readiness{backend="img",readiness="ready"}')).toBe(1);
    expect(await one('modelplane_model_loaded{model="lcm"}')).toBe(1);
    expect(await one('modelplane_model_loaded{model="chat"}')).toBe(0);
    expect(await one('modelplane_model_state{model="lcm",state="loaded"}')).toBe(1);
    expect(await one('modelplane_model_state{model="chat",state="unloaded"}')).toBe(1);
    // The image request was the last thing before the scrapes and the FakeClock has not moved since.
    expect(await one('modelplane_model_in_flight{model="lcm"}')).toBe(0);
    expect(await one('modelplane_model_unloads_in_seconds{model="lcm"}')).toBe(30);
    expect(await series('modelplane_model_unloads_in_seconds{model="chat"}')).toEqual([]);
  });

  it("stores prom-client's process and Node metrics", async () => {
    // A Node process with two runtimes loaded holds well over 10 MB.
    expect(await one('process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(await one('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    const gc = await series('nodejs_gc_duration_seconds_bucket{le="+Inf"}');
    expect(gc.length).toBeGreaterThan(0);
    for (const s of gc) expect(s.metric.kind).toEqual(expect.any(String));
  });

  it('evaluates the three PromQL queries of docs/operations.md', async () => {
    const queries = documentedQueries();
    expect(queries).toHaveLength(3);
    expect(queries[0]).toContain('modelplane_time_to_first_token_seconds_bucket');
    // query() rejects with Prometheus' parse or evaluation error, naming the query.
    const [ttft, failedShare, evictions] = await Promise.all(queries.map((q) => prometheus!.query(q)));
    // No requests between the stored scrapes: the rate is 0 and the quantile NaN, but the model is there.
    expect(ttft!.map((s) => s.metric.model)).toEqual(['chat']);
    // No request failed, so there is no server_error series to divide: an empty answer, not an error.
    expect(failedShare).toEqual([]);
    expect(evictions!.map((s) => s.metric.reason).sort()).toEqual(['admin', 'budget', 'idle', 'other', 'shutdown']);
  });
});
