/**
 * The built server (as `npm start` runs it) generates images on a worker thread, so ONNX runs never block the
 * event loop; unloading ends the worker. Timing (liveness p99 while 1024² images generate) is in
 * `npm run bench hardening`; here: the worker path works end to end and says where it runs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPortUrl } from '../support/fakes/pathological.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { waitFor } from '../support/wait-for.js';

const MAIN = join(process.cwd(), 'dist', 'src', 'main.js');
const PNG_SIGNATURE = '89504e470d0a1a0a';

describe('image generation on a worker thread (built server)', () => {
  // dist/ is built once for the e2e tier (test/support/build-server.cjs).
  beforeAll(async () => {
    await ensureImageTestModels();
  }, 180_000);

  it('serves concurrent images from a worker, liveness answering, and unload ends it', async () => {
    const base = await closedPortUrl();
    const port = Number(new URL(base).port);
    const dir = mkdtempSync(join(tmpdir(), 'mp-image-worker-'));
    const file = join(dir, 'modelplane.yaml');
    writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port} }\n` +
        `backends:\n  - { name: img, type: onnx-image, models: [{ id: tiny-lcm, path: "${TINY_LCM_DIR}" }] }\n`,
    );
    const child = spawn(process.execPath, [MAIN, '--config', file], { env: { ...process.env, NODE_OPTIONS: '' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor(() => output.includes('listening on'), 'the server to listen', { timeoutMs: 30_000 });
      let live = 0;
      let stop = false;
      const pinger = (async () => {
        while (!stop) {
          // Back to back, no pause: each ping waits for the previous answer, so pings never pile up.
          if ((await fetch(`${base}/health/live`)).status === 200) live++;
        }
      })();
      const results = await Promise.all(
        [1, 2].map(async (seed) => {
          const res = await fetch(`${base}/v1/images/generations`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'tiny-lcm', prompt: 'a fox', size: '256x256', steps: 2, seed }),
          });
          return { status: res.status, body: (await res.json()) as { data: { b64_json: string }[] } };
        }),
      );
      stop = true;
      await pinger;
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(Buffer.from(r.body.data[0]!.b64_json, 'base64').subarray(0, 8).toString('hex')).toBe(PNG_SIGNATURE);
      }
      expect(results[0]!.body.data[0]!.b64_json).not.toBe(results[1]!.body.data[0]!.b64_json);
      expect(live).toBeGreaterThan(0);
      const loaded = (await (await fetch(`${base}/api/models/loaded`)).json()) as {
        loaded: { name: string; details: { thread?: string } }[];
      };
      expect(loaded.loaded.find((m) => m.name === 'tiny-lcm')?.details.thread).toBe('worker');
      // The image thread runs below the event loop's priority (Linux nice per thread), the main thread at 0.
      const nice = threadNiceness(child.pid!);
      expect(nice.get(child.pid!)).toBe(0);
      expect([...nice.values()]).toContain(10);
      const unload = await fetch(`${base}/api/models/tiny-lcm/unload`, { method: 'POST' });
      expect(unload.status).toBe(200);
      expect(((await unload.json()) as { was_loaded: boolean }).was_loaded).toBe(true);
      // A new request after the unload starts a fresh worker.
      const again = await fetch(`${base}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-lcm', prompt: 'a fox', size: '64x64', steps: 1 }),
      });
      expect(again.status).toBe(200);
      expect(output).toContain('worker thread');
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});

/** Nice value of every thread of a process: field 19 of /proc/<pid>/task/<tid>/stat (after the ')' of comm). */
function threadNiceness(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}
