/**
 * Admission after the backend dies and comes back (issue 12 case 2), against the REAL llama.cpp llama-server
 * with modelplane's DEFAULT probe settings (interval, failure threshold and timeouts as shipped). A client sends
 * a small chat (non-streamed, max_tokens 1) through modelplane every 50 ms, whatever the previous one is doing,
 * and N times over:
 * 1. down: the server is killed (SIGKILL) → time until the first chat is answered
 *    `503 backend_unavailable` (goal ≤ 1 s), and every status seen before it;
 * 2. up: the server is started again on the same port; from the moment it answers `GET /health` 200 itself
 *    (polled every 20 ms) → time until the first chat through modelplane is answered 200 (goal ≤ 1 s).
 * modelplane runs as its own process (the compiled main), so this process's client and polling do not share its
 * event loop. The binary comes from LLAMA_SERVER_BIN (nothing downloaded); the model is the generated tiny chat.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { ensureLlmTestModels } from '../support/llm-test-models.js';
import { freePort, LLAMA_SERVER_BIN, type Peer, startLlamaServer } from '../peers/support/llama-server-peer.js';
import { type ServerProcess, startModelplane } from './app-runner.js';
import { fixed, loadAverageNote, median, table } from './bench-util.js';

const CYCLES = Number(process.env.RESTART_BENCH_CYCLES ?? 5);
const CHAT_EVERY_MS = 50;
const GOAL_MS = 1_000;
/** How long each side of a cycle is held once reached, so the next transition starts from a settled state. */
const HOLD_MS = 3_000;
/** Upper bound on waiting for a transition; far above the goal, only so a broken build cannot hang the bench. */
const GIVE_UP_MS = 60_000;

const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

interface Answer {
  sentMs: number;
  answeredMs: number;
  /** HTTP status, or 0 when the request itself failed (no answer from modelplane). */
  status: number;
  /** `error.code` of an error answer ('' for a 200 or a body without one). */
  code: string;
  retryAfter: boolean;
}

const label = (a: Answer): string => (a.status === 0 ? 'no answer' : a.code ? `${a.status} ${a.code}` : `${a.status}`);

/** Sends a chat every CHAT_EVERY_MS (not waiting for the previous one) and keeps every answer. */
class ChatClient {
  readonly answers: Answer[] = [];
  private running = true;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly loop: Promise<void>;

  constructor(private readonly url: string) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const start = performance.now();
    for (let tick = 0; this.running; tick++) {
      const sent = this.send();
      this.inFlight.add(sent);
      void sent.finally(() => this.inFlight.delete(sent));
      // Paced against the start, so a slow tick does not push every later one back.
      await sleep(Math.max(0, start + (tick + 1) * CHAT_EVERY_MS - performance.now()));
    }
  }

  private async send(): Promise<void> {
    const sentMs = performance.now();
    try {
      const res = await request(`${this.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
      });
      const text = await res.body.text();
      let code = '';
      if (res.statusCode !== 200) {
        try {
          const parsed = JSON.parse(text) as { error?: { code?: unknown } };
          code = typeof parsed.error?.code === 'string' ? parsed.error.code : 'no error.code';
        } catch {
          code = 'non-JSON body';
        }
      }
      this.answers.push({
        sentMs,
        answeredMs: performance.now(),
        status: res.statusCode,
        code,
        retryAfter: res.headers['retry-after'] !== undefined,
      });
    } catch {
      this.answers.push({ sentMs, answeredMs: performance.now(), status: 0, code: '', retryAfter: false });
    }
  }

  /** Resolves with the first answer at or after `fromMs` that `match` accepts. */
  async first(fromMs: number, match: (a: Answer) => boolean, what: string): Promise<Answer> {
    const deadline = performance.now() + GIVE_UP_MS;
    for (;;) {
      const found = this.answers.find((a) => a.answeredMs >= fromMs && match(a));
      if (found) return found;
      if (performance.now() > deadline) throw new Error(`no ${what} within ${GIVE_UP_MS / 1000} s`);
      await sleep(5);
    }
  }

  /** Counts of each status answered in [fromMs, toMs). */
  statuses(fromMs: number, toMs: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const a of this.answers) {
      if (a.answeredMs >= fromMs && a.answeredMs < toMs) counts.set(label(a), (counts.get(label(a)) ?? 0) + 1);
    }
    return counts;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all(this.inFlight);
  }
}

interface Cycle {
  downMs: number;
  /** Statuses answered after the kill and before the first 503 backend_unavailable. */
  beforeDown: Map<string, number>;
  /** Every status answered from the kill to the restarted server's own /health 200. */
  whileDown: Map<string, number>;
  /** Statuses answered while the server was starting again (spawn → its /health 200). */
  whileStarting: Map<string, number>;
  /** Negative when a chat was admitted before this process's 20 ms poll saw the server's /health 200. */
  upMs: number;
  /** Statuses answered after the server's /health 200 and before the first 200 through modelplane. */
  beforeUp: Map<string, number>;
  /** Every 503 backend_unavailable of the cycle carried Retry-After. */
  retryAfter: boolean;
}

const describeCounts = (counts: Map<string, number>): string =>
  counts.size === 0
    ? '—'
    : [...counts]
        .sort((x, y) => y[1] - x[1])
        .map(([what, n]) => `${what} ×${n}`)
        .join(', ');

const merge = (all: Map<string, number>[]): Map<string, number> => {
  const out = new Map<string, number>();
  for (const m of all) for (const [k, n] of m) out.set(k, (out.get(k) ?? 0) + n);
  return out;
};

async function oneCycle(client: ChatClient, peer: Peer, args: string[]): Promise<{ cycle: Cycle; peer: Peer }> {
  const cycleStart = performance.now();
  const killedMs = performance.now();
  await peer.stop('SIGKILL');
  const down = await client.first(
    killedMs,
    (a) => a.status === 503 && a.code === 'backend_unavailable',
    '503 backend_unavailable after the kill',
  );
  await sleep(HOLD_MS);

  const spawnedMs = performance.now();
  // startLlamaServer polls the server's own GET /health every 20 ms and returns right after its first 200.
  const restarted = await startLlamaServer(args, { port: peer.port });
  const healthyMs = performance.now();
  // From the spawn: modelplane's own probe can see the server healthy a few ms before this poll does.
  const up = await client.first(spawnedMs, (a) => a.status === 200, '200 after the restart');
  await sleep(HOLD_MS);

  const unavailable = client.answers.filter(
    (a) => a.answeredMs >= cycleStart && a.status === 503 && a.code === 'backend_unavailable',
  );
  return {
    peer: restarted,
    cycle: {
      downMs: down.answeredMs - killedMs,
      beforeDown: client.statuses(killedMs, down.answeredMs),
      whileDown: client.statuses(killedMs, healthyMs),
      whileStarting: client.statuses(spawnedMs, healthyMs),
      upMs: up.answeredMs - healthyMs,
      beforeUp: client.statuses(healthyMs, up.answeredMs),
      retryAfter: unavailable.every((a) => a.retryAfter),
    },
  };
}

export async function runRestartBench(): Promise<string> {
  const heading = '## Admission after the backend dies and comes back (issue 12 case 2)';
  if (!LLAMA_SERVER_BIN) {
    return `${heading}\n\nNOT RUN: LLAMA_SERVER_BIN is not set (point it at a llama.cpp llama-server binary).`;
  }
  const models = await ensureLlmTestModels();
  const args = ['-m', models.chat];
  let peer: Peer | null = null;
  let app: ServerProcess | null = null;
  let client: ChatClient | null = null;
  try {
    peer = await startLlamaServer(args, { port: await freePort() });
    // Default probe settings on purpose: the goal is stated for them.
    app = await startModelplane({
      backends: [{ name: 'llama', type: 'llama-server', url: peer.url, models: [{ id: 'chat' }] }],
    });
    client = new ChatClient(app.url);
    await client.first(performance.now(), (a) => a.status === 200, 'first 200 before the cycles');
    await sleep(HOLD_MS);

    const cycles: Cycle[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const next = await oneCycle(client, peer, args);
      peer = next.peer;
      cycles.push(next.cycle);
    }
    await client.stop();

    const stats = (xs: number[]): string[] => {
      const s = [...xs].sort((a, b) => a - b);
      return [fixed(s[0]!, 0), fixed(median(s), 0), fixed(s[s.length - 1]!, 0)];
    };
    const verdict = (xs: number[]): string => (Math.max(...xs) <= GOAL_MS ? 'met' : 'missed');
    const downs = cycles.map((c) => c.downMs);
    const ups = cycles.map((c) => c.upMs);

    return [
      heading,
      '',
      `Node ${process.version}; llama-server \`-t 1\` on loopback with the generated tiny-chat GGUF; modelplane in ` +
        'its own process with default probe settings; a non-streamed chat (`max_tokens: 1`) every ' +
        `${CHAT_EVERY_MS} ms, not waiting for the previous one; ${CYCLES} cycles of SIGKILL → restart on the same port, ` +
        `each side held ${HOLD_MS / 1000} s.`,
      '',
      table(
        ['transition', 'from → to', 'min ms', 'median ms', 'max ms', 'goal', ''],
        [
          ['down', 'SIGKILL → first `503 backend_unavailable`', ...stats(downs), `≤ ${GOAL_MS} ms`, verdict(downs)],
          [
            'up',
            "server's own `/health` 200 → first 200 through modelplane",
            ...stats(ups),
            `≤ ${GOAL_MS} ms`,
            verdict(ups),
          ],
        ],
      ),
      '',
      '### Per cycle',
      '',
      table(
        [
          'cycle',
          'down ms',
          'answered before the first 503',
          'while the server started',
          'up ms',
          'answered before the first 200',
        ],
        cycles.map((c, i) => [
          i + 1,
          fixed(c.downMs, 0),
          describeCounts(c.beforeDown),
          describeCounts(c.whileStarting),
          fixed(c.upMs, 0),
          describeCounts(c.beforeUp),
        ]),
      ),
      '',
      `Statuses seen between the kill and the first 503, all cycles: ${describeCounts(merge(cycles.map((c) => c.beforeDown)))}. ` +
        `From the kill to the restarted server's /health 200: ${describeCounts(merge(cycles.map((c) => c.whileDown)))}. ` +
        `Between the server's /health 200 and the first 200: ${describeCounts(merge(cycles.map((c) => c.beforeUp)))}. ` +
        `Every \`503 backend_unavailable\` carried Retry-After: ${cycles.every((c) => c.retryAfter) ? 'yes' : 'NO'}.`,
      '',
      loadAverageNote(),
    ].join('\n');
  } finally {
    await client?.stop();
    await app?.stop();
    await peer?.stop('SIGKILL');
    await agent.close();
  }
}
