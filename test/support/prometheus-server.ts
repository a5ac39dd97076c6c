/**
 * A real Prometheus server (Debian package `prometheus`; scripts/ensure-test-tools.sh installs it) scraping a
 * target every second from a temporary config and TSDB directory, queried through its HTTP API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for.js';

/** One series of an instant-vector answer of /api/v1/query. */
export interface PromSeries {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  url: string;
  /** Runs an instant query; rejects with Prometheus' own error text when the query fails. */
  query(promql: string): Promise<PromSeries[]>;
  /** Health of the job's target as /api/v1/targets reports it (`up`, `down`, `unknown`), with its last error. */
  target(): Promise<{ health: string; lastError: string } | undefined>;
  /** Everything the server wrote to stderr: the failure message shows why a start or a scrape failed. */
  log(): string;
  /** Stops the server and removes its config and TSDB directory; safe to call more than once. */
  stop(): Promise<void>;
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

/** Fails with what to install when the binary is missing: the test must not be skipped silently. */
export function requirePrometheusBinary(): void {
  const probe = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'the `prometheus` server binary is not runnable (Debian package prometheus: run scripts/ensure-test-tools.sh ' +
        `or apt-get install -y prometheus): ${probe.error?.message ?? probe.stderr}`,
    );
  }
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `what` names the call in the error: e.g. the PromQL text, which the URL only holds encoded. */
async function api<T>(url: string, what: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success') throw new Error(`${what}: ${body.errorType ?? ''} ${body.error ?? res.status}`);
  return body.data;
}

/** Starts Prometheus scraping `target` (`host:port`) as job `job` every second; resolves once its API answers. */
export async function startPrometheus(target: string, job: string): Promise<PrometheusServer> {
  requirePrometheusBinary();
  const dir = await mkdtemp(join(tmpdir(), 'modelplane-prometheus-'));
  let child: ChildProcess | undefined;
  let stderr = '';
  let exited = false;

  const stop = async (): Promise<void> => {
    if (child && !exited) {
      const exit = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child.kill('SIGTERM');
      // Prometheus flushes its head block on SIGTERM; a server that hangs there is killed instead of kept.
      const killer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        `  - job_name: ${job}`,
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    child = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    child.once('exit', () => (exited = true));

    await waitFor(
      async () => {
        if (exited) throw new Error(`prometheus exited during start-up:\n${stderr}`);
        return fetch(`${url}/-/ready`).then(
          (res) => res.status === 200,
          () => false,
        );
      },
      'prometheus to answer /-/ready',
      { timeoutMs: 30_000 },
    );

    return {
      url,
      log: () => stderr,
      stop,
      async query(promql) {
        const data = await api<{
          resultType: string;
          result: { metric: Record<string, string>; value: [number, string] }[];
        }>(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, `query ${promql}`);
        if (data.resultType !== 'vector') throw new Error(`${promql}: expected a vector, got ${data.resultType}`);
        return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
      },
      async target() {
        const data = await api<{
          activeTargets: { labels: Record<string, string>; health: string; lastError: string }[];
        }>(`${url}/api/v1/targets?state=active`, 'targets');
        const found = data.activeTargets.find((t) => t.labels.job === job);
        return found && { health: found.health, lastError: found.lastError };
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
