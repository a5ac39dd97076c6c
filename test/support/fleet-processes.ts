/**
 * A fleet of real modelplane processes on one machine: each node is the built server (dist/src/main.js, as
 * `npm start` runs it) in its own process, bound to its own 127.x address on one shared port, as the pods
 * behind one headless Service would be. Every process started here is killed by `stopAll()` (and, as a last
 * resort, when the test process exits), and the folder of config files is removed with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { waitFor } from './wait-for.js';

// Only plain helpers here: the nodes are other processes, so this process never loads the app (no Nest, no
// native runtime, no ts-jest compile of src/), which keeps the spec's start-up short.

export const BUILT_MAIN = join(process.cwd(), 'dist', 'src', 'main.js');

export interface NodeProcess {
  host: string;
  url: string;
  pid: number;
  /** Everything the process wrote so far, stdout and stderr. */
  output(): string;
  /** Calls `listener` with each complete line the process writes from now on, and when it was read. */
  onLine(listener: (line: string, readAtMs: number) => void): () => void;
  /** Sends `signal` and resolves once the process is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
  readonly exited: boolean;
}

export class ProcessFleet {
  private readonly dir = mkdtempSync(join(tmpdir(), 'mp-fleet-processes-'));
  private readonly children: ChildProcess[] = [];
  // A test process that dies without running afterAll must not leave servers behind.
  private readonly onExit = (): void => {
    for (const child of this.children) if (isRunning(child)) child.kill('SIGKILL');
  };

  constructor() {
    process.once('exit', this.onExit);
  }

  /**
   * Starts one node (config `yaml`, bound to host:port) and resolves once it is listening. The child gets
   * this environment minus MODELPLANE_* (the config file alone decides) and without NODE_OPTIONS (jest's
   * --experimental-vm-modules is not for the server).
   */
  async start(host: string, port: number, yaml: Record<string, unknown>): Promise<NodeProcess> {
    const file = join(this.dir, `${host}.yaml`);
    writeFileSync(file, stringify({ ...yaml, server: { ...(yaml.server as object | undefined), host, port } }));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MODELPLANE_')));
    const child = spawn(process.execPath, [BUILT_MAIN, '--config', file], {
      env: { ...env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(child);
    let output = '';
    let partial = '';
    const listeners = new Set<(line: string, readAtMs: number) => void>();
    const read = (chunk: Buffer): void => {
      const readAtMs = Date.now();
      const text = chunk.toString();
      output += text;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) for (const listener of listeners) listener(line, readAtMs);
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const url = `http://${host}:${port}`;
    const node: NodeProcess = {
      host,
      url,
      pid: child.pid ?? -1,
      output: () => output,
      onLine: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      kill: async (signal) => {
        if (isRunning(child)) child.kill(signal);
        await gone;
      },
      get exited() {
        return !isRunning(child);
      },
    };
    await waitFor(
      async () => {
        if (node.exited) throw new Error(`node ${host} exited while starting:\n${output.slice(-4000)}`);
        return (await fetch(`${url}/health/live`).catch(() => null))?.status === 200;
      },
      `node ${host} to listen`,
      { timeoutMs: 60_000 },
    );
    return node;
  }

  /** SIGKILLs every process still running, waits for each to be gone, and removes the config folder. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (!isRunning(child)) return;
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await gone;
      }),
    );
    process.off('exit', this.onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export { freePort, getJson as requestJson, postJson } from './http-json.js';
