/**
 * The real entry point as a user starts it: exit code 2 on a bad config, exit 0 on SIGTERM, JSON on
 * stdout from the first line, and a built app that serves its dashboard without src/ beside it.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait-for.js';

const MAIN = join(process.cwd(), 'dist', 'src', 'main.js');

function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mp-proc-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, text);
  return file;
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, NODE_OPTIONS: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('listening on')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

interface Exited {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A started main.js: its base URL once it logged `listening on`, and a SIGTERM stop. */
interface Running {
  url: string;
  stop(): Promise<Exited>;
}

function start(
  main: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [main, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<Exited>((done) =>
      child.on('exit', (code, signal) => done({ code, signal, stdout, stderr })),
    );
    const stop = (): Promise<Exited> => {
      child.kill('SIGTERM');
      return exited;
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // The line names the bound port (the configs here ask for port 0).
      const port = /listening on http:\/\/[^:]+:(\d+)/.exec(stdout)?.[1];
      if (port) resolve({ url: `http://127.0.0.1:${port}`, stop });
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then((r) => reject(new Error(`exited before listening (code ${r.code}): ${r.stderr}${r.stdout}`)));
  });
}

describe('modelplane process', () => {
  // The entry point runs built by `npm run build`, as `npm start` and the container image do: once for the
  // e2e tier, before any spec (test/support/build-server.cjs).

  it('exits with code 2 and names every bad field on an invalid config', async () => {
    const file = writeConfig(
      'eviction: { check_interval_s: 0, idle_unload_s: -5 }\nbackends:\n  - { name: npu, type: rknn-sd }\n  - { name: x, type: tensorrt }\n',
    );
    const result = await run(['--config', file]);
    expect(result.code).toBe(2);
    for (const field of [
      'eviction.check_interval_s',
      'eviction.idle_unload_s',
      'backends[0].url',
      'backends[1].type',
    ]) {
      expect(result.stderr).toContain(field);
    }
  });

  it('exits with code 2 on unparseable YAML', async () => {
    const result = await run(['--config', writeConfig('server: [unclosed')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/yaml/i);
  });

  it('exits with code 2 when the config file does not exist', async () => {
    const result = await run([], { MODELPLANE_CONFIG: '/nonexistent/modelplane.yaml' });
    expect(result.code).toBe(2);
  });

  it('shuts down cleanly with exit code 0 on SIGTERM', async () => {
    const result = await run(['--config', writeConfig('server: { port: 0 }\nbackends: []\n')]);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('SIGTERM received');
  });

  it('writes only JSON lines to stdout in demo mode, from the demo line before the app exists to the exit', async () => {
    // The default `npm start` and the image's command: no config file, so the embedded demo.
    const cwd = mkdtempSync(join(tmpdir(), 'mp-demo-'));
    const admin = 'process-admin-token-41c7';
    const apiKey = 'process-api-key-9e02';
    const app = await start(MAIN, [], {
      cwd,
      env: { MODELPLANE_PORT: '0', MODELPLANE_ADMIN_TOKEN: admin, MODELPLANE_API_KEY: apiKey, MODELPLANE_CONFIG: '' },
    });
    let result: Exited;
    try {
      const ready = async (): Promise<boolean> => (await fetch(`${app.url}/health/ready`)).status === 200;
      await waitFor(ready, 'the demo backends to be ready', { timeoutMs: 60_000 });
      // Requests carrying credentials, right and wrong: none of them may show up in a line.
      const chat = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      });
      expect(chat.status).toBe(200);
      const denied = await fetch(`${app.url}/api/models/demo-chat/unload`, {
        method: 'POST',
        headers: { authorization: 'Bearer wrong-admin-token-5d', 'x-api-key': apiKey },
      });
      expect(denied.status).toBe(401);
      const unload = await fetch(`${app.url}/api/models/demo-chat/unload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'x-api-key': apiKey },
      });
      expect(unload.status).toBe(200);
    } finally {
      result = await app.stop();
    }
    expect(result.code).toBe(0);

    const lines = result.stdout.split('\n').filter((l) => l.length > 0);
    const parsed = lines.map((line) => {
      try {
        return JSON.parse(line) as { msg?: string; context?: string };
      } catch {
        throw new Error(`stdout line is not JSON: ${line}`);
      }
    });
    expect(parsed[0]).toMatchObject({ context: 'demo', msg: expect.stringMatching(/^demo models ready/) as unknown });
    expect(parsed.some((l) => l.msg?.startsWith('listening on'))).toBe(true);
    expect(parsed.some((l) => l.msg?.startsWith('SIGTERM received'))).toBe(true);
    for (const secret of [admin, apiKey, 'wrong-admin-token-5d']) expect(result.stdout).not.toContain(secret);
  }, 120_000);

  it('serves the dashboard from a built app with no src/ beside it, as in the container image', async () => {
    // The image's layout: dist, node_modules and package.json only.
    const root = mkdtempSync(join(tmpdir(), 'mp-image-layout-'));
    mkdirSync(join(root, 'dist'));
    cpSync(join(process.cwd(), 'dist', 'src'), join(root, 'dist', 'src'), { recursive: true });
    cpSync(join(process.cwd(), 'package.json'), join(root, 'package.json'));
    symlinkSync(join(process.cwd(), 'node_modules'), join(root, 'node_modules'));
    const config = writeConfig('server: { port: 0 }\nbackends: []\n');
    const app = await start(join(root, 'dist', 'src', 'main.js'), ['--config', config], { cwd: root });
    try {
      const page = await fetch(`${app.url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await page.text()).toContain('/dashboard/app.js');
      for (const [file, type] of [
        ['app.js', /^text\/javascript/],
        ['style.css', /^text\/css/],
      ] as const) {
        const res = await fetch(`${app.url}/dashboard/${file}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(type);
      }
    } finally {
      expect((await app.stop()).code).toBe(0);
    }
  });
});
