/**
 * Proxy overhead against the REAL llama.cpp llama-server (issue: faithful to the real servers): the same
 * chat straight to the server and through modelplane, interleaved pair by pair in one run (alternating
 * which goes first), so both paths see the same machine load. Measured:
 * 1. streamed 64-token chats: p50 total and p50 time to first token, and what modelplane adds to each
 *    (goal: ≤ 1 ms at p50 for both);
 * 2. non-streamed 64-token chats: tokens/s through modelplane as a fraction of direct (goal: ≥ 0.98).
 * The binary comes from LLAMA_SERVER_BIN (nothing downloaded); the model is the project's generated
 * tiny-chat GGUF. `ignore_eos` (a llama.cpp field modelplane passes through) makes every answer 64 tokens.
 * modelplane runs as its own process (the compiled main, as people run it), so the client's work in this
 * process (reading both paths' streams) is not counted against the proxy.
 * 3. CPU time of the modelplane process per proxied request (user + system, from /proc), streamed and
 *    non-streamed: unlike wall-clock figures it hardly moves with other load on the machine, so it is
 *    the number to compare before/after a change on a busy machine.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { ensureLlmTestModels } from '../support/llm-test-models.js';
import { LLAMA_SERVER_BIN, type Peer, startLlamaServer } from '../peers/support/llama-server-peer.js';
import { type ServerProcess, startModelplane } from './app-runner.js';
import { fixed, loadAverageNote, median, percentile, table } from './bench-util.js';

const TOKENS = 64;
const WARMUP = 30;
const RUNS = Number(process.env.PROXY_BENCH_RUNS ?? 200);

const agent = new Agent({ keepAliveTimeout: 10_000, connections: 8 });

interface Timing {
  totalMs: number;
  firstTokenMs: number;
  tokens: number;
}

/** The first SSE event carrying generated text (llama-server first sends a role-only chunk). */
const FIRST_TOKEN = /"delta":\{[^}]*"content":"[^"]/;

async function streamed(url: string, body: string): Promise<Timing> {
  const started = performance.now();
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body,
  });
  let firstTokenMs = NaN;
  let text = '';
  for await (const chunk of res.body) {
    text += (chunk as Buffer).toString('utf8');
    if (Number.isNaN(firstTokenMs) && FIRST_TOKEN.test(text)) firstTokenMs = performance.now() - started;
  }
  const totalMs = performance.now() - started;
  if (res.statusCode !== 200 || !text.includes('data: [DONE]')) {
    throw new Error(`stream failed: ${res.statusCode} ${text.slice(0, 300)}`);
  }
  const tokens = (text.match(/"content":"[^"]/g) ?? []).length;
  return { totalMs, firstTokenMs, tokens };
}

async function whole(url: string, body: string): Promise<Timing> {
  const started = performance.now();
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.body.text();
  const totalMs = performance.now() - started;
  if (res.statusCode !== 200) throw new Error(`chat failed: ${res.statusCode} ${text.slice(0, 300)}`);
  const parsed = JSON.parse(text) as { usage?: { completion_tokens?: number } };
  return { totalMs, firstTokenMs: NaN, tokens: parsed.usage?.completion_tokens ?? 0 };
}

/** `runs` pairs, alternating which path goes first; returns [direct, through] timings. */
async function pairs(
  runs: number,
  direct: () => Promise<Timing>,
  through: () => Promise<Timing>,
): Promise<[Timing[], Timing[]]> {
  const a: Timing[] = [];
  const b: Timing[] = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      a.push(await direct());
      b.push(await through());
    } else {
      b.push(await through());
      a.push(await direct());
    }
  }
  return [a, b];
}

/**
 * The pid of the modelplane child this process spawned (its command line names main.js and --config), found
 * through /proc rather than the spawn handle so app-runner needs no change for it.
 */
function modelplanePid(): number {
  const children = readdirSync('/proc/self/task').flatMap((tid) =>
    readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
  const ours = children.filter((pid) => {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('main.js')) && argv.includes('--config');
  });
  if (ours.length !== 1) throw new Error(`expected one modelplane child process, found ${ours.length}`);
  return ours[0]!;
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

interface Cpu {
  userMs: number;
  systemMs: number;
}

/** CPU ms the process has used so far (all threads), in user space and in the kernel. */
function cpuMs(pid: number): Cpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = (ticks: string | undefined): number => (Number(ticks) / CLOCK_TICKS_PER_S) * 1000;
  return { userMs: ms(fields[11]), systemMs: ms(fields[12]) };
}

/** Runs `phase` and returns the modelplane process's CPU ms per proxied request during it. */
async function cpuPerRequest(pid: number, requests: number, phase: () => Promise<unknown>): Promise<Cpu> {
  const before = cpuMs(pid);
  await phase();
  const after = cpuMs(pid);
  return {
    userMs: (after.userMs - before.userMs) / requests,
    systemMs: (after.systemMs - before.systemMs) / requests,
  };
}

const cpuCells = (cpu: Cpu): string[] => [
  fixed(cpu.userMs + cpu.systemMs, 2),
  fixed(cpu.userMs, 2),
  fixed(cpu.systemMs, 2),
];

const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
const p = (xs: number[], q: number): string => fixed(percentile(sorted(xs), q), 2);

export async function runProxyBench(): Promise<string> {
  const heading = '## Proxy overhead against the real llama-server';
  if (!LLAMA_SERVER_BIN) {
    return `${heading}\n\nNOT RUN: LLAMA_SERVER_BIN is not set (point it at a llama.cpp llama-server binary).`;
  }
  const models = await ensureLlmTestModels();
  let peer: Peer | null = null;
  let app: ServerProcess | null = null;
  try {
    peer = await startLlamaServer(['-m', models.chat]);
    app = await startModelplane({
      eviction: { check_interval_s: 3600 },
      backends: [{ name: 'llama', type: 'llama-server', url: peer.url, models: [{ id: 'chat' }] }],
    });
    const pid = modelplanePid();
    const messages = [{ role: 'user', content: 'hello' }];
    const base = { messages, max_tokens: TOKENS, temperature: 0, ignore_eos: true };
    const directUrl = `${peer.url}/v1/chat/completions`;
    const ourUrl = `${app.url}/v1/chat/completions`;
    const directStream = JSON.stringify({ ...base, model: 'tiny-chat.gguf', stream: true });
    const ourStream = JSON.stringify({ ...base, model: 'chat', stream: true });
    const directWhole = JSON.stringify({ ...base, model: 'tiny-chat.gguf' });
    const ourWhole = JSON.stringify({ ...base, model: 'chat' });

    // Warm up, then RUNS interleaved pairs while modelplane's CPU time is counted.
    const measured = async (direct: () => Promise<Timing>, ours: () => Promise<Timing>) => {
      await pairs(WARMUP, direct, ours);
      let timings: [Timing[], Timing[]] = [[], []];
      const cpu = await cpuPerRequest(pid, RUNS, async () => {
        timings = await pairs(RUNS, direct, ours);
      });
      return { direct: timings[0], ours: timings[1], cpu };
    };
    const {
      direct: sd,
      ours: st,
      cpu: cpuStreamed,
    } = await measured(
      () => streamed(directUrl, directStream),
      () => streamed(ourUrl, ourStream),
    );
    const {
      direct: wd,
      ours: wt,
      cpu: cpuWhole,
    } = await measured(
      () => whole(directUrl, directWhole),
      () => whole(ourUrl, ourWhole),
    );
    for (const t of [...sd, ...st, ...wd, ...wt]) {
      if (t.tokens !== TOKENS) throw new Error(`expected ${TOKENS} tokens, got ${t.tokens}`);
    }

    const total = (xs: Timing[]): number[] => xs.map((t) => t.totalMs);
    const first = (xs: Timing[]): number[] => xs.map((t) => t.firstTokenMs);
    const addedTotal = median(total(st)) - median(total(sd));
    const addedFirst = median(first(st)) - median(first(sd));
    const pairedTotal = st.map((t, i) => t.totalMs - sd[i]!.totalMs);
    const pairedFirst = st.map((t, i) => t.firstTokenMs - sd[i]!.firstTokenMs);
    const rate = (xs: Timing[]): number[] => xs.map((t) => t.tokens / (t.totalMs / 1000));
    const rateRatio = median(rate(wt)) / median(rate(wd));
    const verdict = (ok: boolean): string => (ok ? 'met' : 'missed');

    return [
      heading,
      '',
      `Node ${process.version}; llama-server \`-t 1\` on loopback with the generated tiny-chat GGUF; ` +
        `${TOKENS}-token chats (\`ignore_eos\`), ${RUNS} interleaved pairs per mode after ${WARMUP} warm-up pairs; ` +
        'one client at a time; modelplane in its own process.',
      '',
      `### Streamed, ${TOKENS} tokens (ms)`,
      '',
      table(
        ['path', 'total p50', 'total p90', 'first token p50', 'first token p90'],
        [
          ['straight to llama-server', p(total(sd), 50), p(total(sd), 90), p(first(sd), 50), p(first(sd), 90)],
          ['through modelplane', p(total(st), 50), p(total(st), 90), p(first(st), 50), p(first(st), 90)],
          ['added (paired)', p(pairedTotal, 50), p(pairedTotal, 90), p(pairedFirst, 50), p(pairedFirst, 90)],
        ],
      ),
      '',
      `p50 added: total ${fixed(addedTotal, 2)} ms (×${fixed(median(total(st)) / median(total(sd)), 3)}), ` +
        `first token ${fixed(addedFirst, 2)} ms (×${fixed(median(first(st)) / median(first(sd)), 3)}); ` +
        `goal ≤ 1 ms each — ${verdict(addedTotal <= 1 && addedFirst <= 1)}.`,
      '',
      `### Non-streamed, ${TOKENS} tokens`,
      '',
      table(
        ['path', 'p50 ms', 'p90 ms', 'tokens/s p50'],
        [
          ['straight to llama-server', p(total(wd), 50), p(total(wd), 90), fixed(median(rate(wd)), 0)],
          ['through modelplane', p(total(wt), 50), p(total(wt), 90), fixed(median(rate(wt)), 0)],
        ],
      ),
      '',
      `tokens/s through modelplane: ${fixed(rateRatio, 3)} of direct (goal ≥ 0.98) — ${verdict(rateRatio >= 0.98)}.`,
      '',
      '### CPU of the modelplane process per proxied request',
      '',
      'User + system time of the whole process (all threads, /proc), over the measured pairs divided by the ' +
        'requests it proxied; includes its background probes (every 5 s). Robust to other load on the machine.',
      '',
      table(
        ['mode', 'CPU ms / request', 'user', 'system'],
        [
          [`streamed, ${TOKENS} tokens`, ...cpuCells(cpuStreamed)],
          [`non-streamed, ${TOKENS} tokens`, ...cpuCells(cpuWhole)],
        ],
      ),
      '',
      loadAverageNote(),
    ].join('\n');
  } finally {
    await app?.stop();
    await peer?.stop();
    await agent.close();
  }
}
