/**
 * A bounded, seeded fuzzer over every POST route (issue 16 item 11). Each case sends a valid-looking request
 * with one part made hostile (wrong types, nulls, huge numbers, long strings, deep/wide JSON, invalid UTF-8,
 * prototype keys, traversal ids) and checks what a user would notice: no 5xx other than the documented 503s,
 * the envelope and request id on every error, no answer slower than a bound, and /health/live answering all
 * the while. The same seed replays the same cases.
 */
import { mulberry32 as prng } from '../../src/common/prng.js';

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** No answer (or liveness ping) may take longer. */
  slowMs: number;
  /** Model ids the routes know. */
  models: { chat: string; image: string };
}

export interface FuzzReport {
  cases: number;
  failures: string[];
  statuses: Record<string, number>;
  latenciesMs: number[];
  livePings: number;
  liveLatenciesMs: number[];
}

/** 503 codes the API documents (docs/api.md); any other 5xx is a finding. */
const DOCUMENTED_503 = new Set([
  'model_overloaded',
  'backend_unavailable',
  'insufficient_memory',
  'shutting_down',
  'not_served_here',
  'too_many_connections',
]);

interface Case {
  path: string;
  body: string | Buffer | undefined;
  contentType: string | undefined;
  label: string;
}

class CaseMaker {
  constructor(
    private readonly random: () => number,
    private readonly models: FuzzOptions['models'],
  ) {}

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  private hostileValue(depth = 0): unknown {
    const kinds = [
      () => null,
      () => this.random() < 0.5,
      () => this.pick([0, -1, 1e308, -1e308, 2 ** 53 + 1, 1e-320, 4294967296, -0.5, 1.5]),
      () => 'x'.repeat(this.pick([0, 1, 255, 10_000, 200_000])),
      () => this.pick(['\u0000', '\ud800', '😀'.repeat(100), '../../../etc/passwd', '%ff%00', '<script>', 'a\nb\r\n']),
      () => Array.from({ length: this.pick([0, 1, 50, 3000]) }, () => this.int(10)),
      () =>
        depth < 3 ? { [this.pick(['__proto__', 'constructor', 'prototype', 'a'])]: this.hostileValue(depth + 1) } : {},
      () => this.deep(this.pick([10, 100, 1000])),
    ];
    return this.pick(kinds)();
  }

  private deep(levels: number): unknown {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = this.random() < 0.5 ? [v] : { a: v };
    return v;
  }

  private template(path: string): Record<string, unknown> {
    const message = { role: 'user', content: 'hi' };
    if (path.endsWith('/chat/completions')) return { model: this.models.chat, messages: [message], max_tokens: 4 };
    if (path.endsWith('/completions')) return { model: this.models.chat, prompt: 'hi', max_tokens: 4 };
    if (path.endsWith('/embeddings')) return { model: this.models.chat, input: 'hi' };
    if (path.endsWith('/images/generations'))
      return { model: this.models.image, prompt: 'a fox', size: '64x64', steps: 1 };
    return {};
  }

  next(): Case {
    const id = this.pick([
      this.models.chat,
      'nope',
      '..%2F..%2Fetc',
      '..',
      'a'.repeat(99),
      '%00',
      encodeURIComponent('ü/..'),
      'x'.repeat(101),
    ]);
    const path = this.pick([
      '/v1/chat/completions',
      '/v1/completions',
      '/v1/embeddings',
      '/v1/images/generations',
      '/api/models/unload',
      `/api/models/${id}/load`,
      `/api/models/${id}/unload`,
    ]);
    const base = this.template(path);
    const mode = this.int(10);
    if (mode === 0) {
      // Bytes that are not UTF-8, JSON cut short, or nesting deeper than any stack-based walker survives.
      const raw = this.pick([
        Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        '{"model": "x", "messages": [',
        `{"model":"x","messages":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      ]);
      return { path, body: raw, contentType: 'application/json', label: `${path} raw` };
    }
    if (mode === 1) {
      return {
        path,
        body: JSON.stringify(this.hostileValue()),
        contentType: 'application/json',
        label: `${path} whole body`,
      };
    }
    if (mode === 2) {
      return {
        path,
        body: 'model=x',
        contentType: this.pick(['text/plain', 'application/x-www-form-urlencoded', undefined]),
        label: `${path} content-type`,
      };
    }
    const keys = [...Object.keys(base), 'stream', 'n', 'temperature', 'seed', 'messages', 'extra'];
    const key = this.pick(keys);
    const body = { ...base, [key]: this.hostileValue() };
    if (key === 'messages' && this.random() < 0.5)
      body.messages = [{ role: this.hostileValue(), content: this.hostileValue() }];
    return { path, body: JSON.stringify(body), contentType: 'application/json', label: `${path} ${key}` };
  }
}

export async function runFuzz(baseUrl: string, options: FuzzOptions): Promise<FuzzReport> {
  const maker = new CaseMaker(prng(options.seed), options.models);
  const cases = Array.from({ length: options.cases }, () => maker.next());
  const report: FuzzReport = {
    cases: cases.length,
    failures: [],
    statuses: {},
    latenciesMs: [],
    livePings: 0,
    liveLatenciesMs: [],
  };
  let done = false;
  // Liveness is sampled as the fuzz progresses, not on a timer: the next ping starts once another case finished.
  let caseFinished: () => void = () => undefined;
  const nextCaseFinished = (): Promise<void> => new Promise((resolve) => (caseFinished = resolve));

  const liveness = (async () => {
    while (!done) {
      const started = performance.now();
      try {
        const res = await fetch(`${baseUrl}/health/live`, { signal: AbortSignal.timeout(options.slowMs) });
        await res.text();
        if (res.status !== 200) report.failures.push(`/health/live answered ${res.status}`);
      } catch (err) {
        report.failures.push(`/health/live failed: ${String(err)}`);
      }
      report.livePings++;
      report.liveLatenciesMs.push(performance.now() - started);
      if (!done) await nextCaseFinished();
    }
  })();

  let nextCase = 0;
  const worker = async (): Promise<void> => {
    while (nextCase < cases.length) {
      const c = cases[nextCase++]!;
      const started = performance.now();
      try {
        const headers: Record<string, string> = {};
        if (c.contentType) headers['content-type'] = c.contentType;
        const res = await fetch(`${baseUrl}${c.path}`, {
          method: 'POST',
          headers,
          body: c.body,
          signal: AbortSignal.timeout(options.slowMs),
        });
        const text = await res.text();
        const ms = performance.now() - started;
        report.latenciesMs.push(ms);
        report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
        if (res.status < 400) continue;
        let code: unknown;
        try {
          const error = (JSON.parse(text) as { error?: { code?: unknown; request_id?: unknown; message?: unknown } })
            .error;
          code = error?.code;
          if (
            typeof code !== 'string' ||
            typeof error?.message !== 'string' ||
            error.request_id !== res.headers.get('x-request-id')
          ) {
            report.failures.push(`${c.label}: ${res.status} without the envelope or request id: ${text.slice(0, 200)}`);
          }
        } catch {
          report.failures.push(`${c.label}: ${res.status} body is not JSON: ${text.slice(0, 200)}`);
        }
        if (res.status >= 500 && !(res.status === 503 && DOCUMENTED_503.has(String(code)))) {
          report.failures.push(`${c.label}: ${res.status} ${String(code)}: ${text.slice(0, 300)}`);
        }
      } catch (err) {
        report.failures.push(`${c.label}: no answer within ${options.slowMs} ms (${String(err)})`);
      } finally {
        caseFinished();
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  done = true;
  caseFinished();
  await liveness;
  return report;
}
