/**
 * A real llama.cpp `llama-server` as a test peer: the binary named by LLAMA_SERVER_BIN, started on a
 * free loopback port with one thread, serving the project's generated GGUFs. Nothing is downloaded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../support/http-json.js';
import { ensureLlmTestModels, type LlmTestModels, writeBadGguf } from '../../support/llm-test-models.js';

/** Relative paths (as .ci/run sets it) are relative to the repository root, where jest runs. */
export const LLAMA_SERVER_BIN = process.env.LLAMA_SERVER_BIN ? resolve(process.env.LLAMA_SERVER_BIN) : '';

/** Upper bound on waiting for the real server to start or stop; generous, never asserted as speed. */
const START_LIMIT_MS = 60_000;

export { freePort };

export interface Peer {
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything the server printed (for failure messages). */
  log(): string;
  /** Sends `signal` and waits for the process to exit (SIGKILL after the limit). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface PeerOptions {
  port?: number;
  /** Wait until `GET /health` is 200 (default) or only until the port answers at all ('answering'). */
  waitFor?: 'ready' | 'answering';
}

/** Starts llama-server with `args` (model or router flags); host, port and `-t 1` are added here. */
export async function startLlamaServer(args: string[], opts: PeerOptions = {}): Promise<Peer> {
  if (!LLAMA_SERVER_BIN) throw new Error('LLAMA_SERVER_BIN is not set');
  const port = opts.port ?? (await freePort());
  const child = spawn(LLAMA_SERVER_BIN, [...args, '--host', '127.0.0.1', '--port', String(port), '-t', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const peer: Peer = {
    url,
    port,
    process: child,
    log: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), START_LIMIT_MS);
      await exited;
      clearTimeout(killer);
    },
  };
  const deadline = Date.now() + START_LIMIT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited (${child.exitCode}):\n${output}`);
    const status = await fetch(`${url}/health`)
      .then((r) => r.status)
      .catch(() => 0);
    if (status === 200 || (status !== 0 && opts.waitFor === 'answering')) return peer;
    if (Date.now() > deadline) {
      await peer.stop('SIGKILL');
      throw new Error(`llama-server did not start:\n${output}`);
    }
    // A restart into loading is caught only by looking often; a ready server needs no hurry.
    await sleep(opts.waitFor === 'answering' ? 2 : 20);
  }
}

/** Polls `check` until it is true (real time, bounded); for waiting on the real server's own state. */
export async function until(check: () => Promise<boolean>, what: string, limitMs = START_LIMIT_MS): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface PeerModels extends LlmTestModels {
  /**
   * A router models dir holding tiny-chat, plus `broken.gguf`: a valid GGUF without
   * `llama.feed_forward_length`, so the child exits with code 1 right after reading it. (Random bytes
   * would fail too, but the router then often never reaps its child and reports `loading` for ever.)
   */
  routerDir: string;
  emptyDir: string;
  /** Removes the folders made here. */
  remove(): void;
}

/** The generated GGUFs, and folders laid out for router mode. */
export async function peerModels(): Promise<PeerModels> {
  const models = await ensureLlmTestModels();
  const root = mkdtempSync(join(tmpdir(), 'modelplane-peer-'));
  const routerDir = join(root, 'router');
  const emptyDir = join(root, 'empty');
  mkdirSync(routerDir);
  mkdirSync(emptyDir);
  copyFileSync(models.chat, join(routerDir, 'tiny-chat.gguf'));
  copyFileSync(writeBadGguf(), join(routerDir, 'broken.gguf'));
  return { ...models, routerDir, emptyDir, remove: () => rmSync(root, { recursive: true, force: true }) };
}
